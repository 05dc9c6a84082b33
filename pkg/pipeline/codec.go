package pipeline

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
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

// NewMsg returns a message for subject carrying m, compressed when that
// pays, with Nats-Msg-Id id when id is not empty. Every internal message
// the services publish is made here, so that none goes out uncompressed.
func NewMsg(subject string, m proto.Message, id string) (*nats.Msg, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	data, enc := Encode(b)
	msg.Data = data
	if enc != "" {
		msg.Header.Set(HeaderEncoding, enc)
	}
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	return msg, nil
}

// Data returns the data of a message as it was before NewMsg encoded it.
func Data(h nats.Header, data []byte) ([]byte, error) {
	return DecodeData(h.Get(HeaderEncoding), data)
}

// Unmarshal decodes the data of a message made by NewMsg into m.
func Unmarshal(h nats.Header, data []byte, m proto.Message) error {
	b, err := Data(h, data)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode %T: %w", m, err)
	}
	return nil
}
