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

// compressAbove is the size from which Compress compresses: raw Zoom pages
// and record batches (hundreds of kilobytes of JSON and keys) shrink several
// times, and every byte saved is a byte JetStream copies, stores and sends
// less; small control messages are left as they are.
const compressAbove = 4 << 10

// Compress replaces a large msg.Data by its S2 encoding and marks it so;
// Consumer.Run hands handlers the data decoded.
func Compress(msg *nats.Msg) {
	if len(msg.Data) < compressAbove {
		return
	}
	enc := s2.Encode(nil, msg.Data)
	if len(enc) >= len(msg.Data) {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Data = enc
	msg.Header.Set(HeaderEncoding, EncodingS2)
}

// Decode returns the data of a message as it was before Compress.
func Decode(h nats.Header, data []byte) ([]byte, error) {
	switch enc := h.Get(HeaderEncoding); enc {
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

// decoded is a message whose Data is decoded.
type decoded struct {
	jetstream.Msg
	data []byte
}

func (d decoded) Data() []byte { return d.data }
