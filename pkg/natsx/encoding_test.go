package natsx_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

func TestCompress(t *testing.T) {
	large := []byte(strings.Repeat(`{"id":"KdYKjnimT4KPd8FFgQt9FQ","email":"a@example.com"},`, 200))
	tests := []struct {
		name           string
		data           []byte
		wantCompressed bool
	}{
		{"large and repetitive", large, true},
		{"small", []byte(`{"mode":"full"}`), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := nats.NewMsg("work.x")
			msg.Data = append([]byte(nil), tt.data...)
			natsx.Compress(msg)
			compressed := msg.Header.Get(natsx.HeaderEncoding) == natsx.EncodingS2
			if compressed != tt.wantCompressed {
				t.Fatalf("got compressed %v, want %v", compressed, tt.wantCompressed)
			}
			if compressed && len(msg.Data) >= len(tt.data) {
				t.Errorf("got %d bytes compressed from %d, want fewer", len(msg.Data), len(tt.data))
			}
			got, err := natsx.Decode(msg.Header, msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("got %d bytes decoded, want the %d published", len(got), len(tt.data))
			}
		})
	}
	if _, err := natsx.Decode(nats.Header{natsx.HeaderEncoding: {"zstd"}}, large); err == nil {
		t.Error("got no error for an unknown encoding, want one")
	}
}

// A handler sees compressed messages decoded; one that cannot be decoded is
// a dead letter at once, with its data and encoding as published.
func TestConsumerDecodes(t *testing.T) {
	js := newJS(t)
	large := []byte(strings.Repeat("page of users ", 1000))
	var mu sync.Mutex
	var got [][]byte
	run(t, js, consumer(time.Second), func(_ context.Context, m jetstream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, append([]byte(nil), m.Data()...))
		return nil
	})
	msg := nats.NewMsg("work.a")
	msg.Data = append([]byte(nil), large...)
	natsx.Compress(msg)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "work.b", "not s2 at all", map[string]string{natsx.HeaderEncoding: natsx.EncodingS2})
	waitFor(t, 5*time.Second, "the corrupt message dead-lettered", func() bool { return len(deadLetters(t, js)) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !bytes.Equal(got[0], large) {
		t.Fatalf("got %d messages handled (first %d bytes), want the one compressed message decoded (%d bytes)", len(got), len(first(got)), len(large))
	}
	dl := deadLetters(t, js)[0]
	if string(dl.Data) != "not s2 at all" || dl.Header.Get(natsx.HeaderEncoding) != natsx.EncodingS2 {
		t.Errorf("got dead letter %q with encoding %q, want the message as published", dl.Data, dl.Header.Get(natsx.HeaderEncoding))
	}
	if reason := dl.Header.Get(natsx.HeaderDLQReason); !strings.Contains(reason, "decode s2") {
		t.Errorf("got reason %q, want the decoding error", reason)
	}
}

func first(b [][]byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[0]
}
