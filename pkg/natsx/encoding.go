package natsx

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderEncoding names the encoding of a message's data; absent, the data
// is as published.
const HeaderEncoding = "Zoom-Encoding"

// EncodingS2 is S2 block compression (github.com/klauspost/compress/s2).
const EncodingS2 = "s2"

// compressAbove is the size from which Encode compresses: raw Zoom pages,
// record batches and outbox rows (hundreds of kilobytes of JSON and keys)
// shrink several times, and every byte saved is a byte JetStream or
// PostgreSQL copies, stores and sends less; small ones are left as they are.
const compressAbove = 4 << 10

// Encode returns data S2-compressed and EncodingS2 when data is large and
// compression pays, else data itself and "".
func Encode(data []byte) ([]byte, string) {
	if len(data) < compressAbove {
		return data, ""
	}
	if enc := s2.Encode(nil, data); len(enc) < len(data) {
		return enc, EncodingS2
	}
	return data, ""
}

// DecodeData returns data as it was before Encode gave it encoding enc.
func DecodeData(enc string, data []byte) ([]byte, error) {
	switch enc {
	case "":
		return data, nil
	case EncodingS2:
		out, err := s2.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("decode %s data: %w", enc, err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unknown data encoding %q", enc)
	}
}

// Compress replaces a large msg.Data by its S2 encoding and marks it so;
// Consumer.Run hands handlers the data decoded.
func Compress(msg *nats.Msg) {
	data, enc := Encode(msg.Data)
	if enc == "" {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Data = data
	msg.Header.Set(HeaderEncoding, enc)
}

// Decode returns the data of a message as it was before Compress.
func Decode(h nats.Header, data []byte) ([]byte, error) {
	return DecodeData(h.Get(HeaderEncoding), data)
}

// decoded is a message whose Data is decoded.
type decoded struct {
	jetstream.Msg
	data []byte
}

func (d decoded) Data() []byte { return d.data }

// Headers are the message's headers without HeaderEncoding: the data is
// decoded already, and a handler that decodes what its headers say must not
// decode it twice.
func (d decoded) Headers() nats.Header {
	h := d.Msg.Headers()
	if h.Get(HeaderEncoding) == "" {
		return h
	}
	out := make(nats.Header, len(h))
	for k, v := range h {
		if k != HeaderEncoding {
			out[k] = v
		}
	}
	return out
}
