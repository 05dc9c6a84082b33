package clarity

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
)

// Marshal encodes a record's data canonically: struct fields in declaration
// order, no HTML escaping, no trailing newline. The same record always gives
// the same bytes, so its hash tells whether it changed.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Hash is the SHA-256 of a record's canonical data.
func Hash(data []byte) []byte {
	h := sha256.Sum256(data)
	return h[:]
}
