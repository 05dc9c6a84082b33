package natsx_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
)

// TestDrain: Drain returns once the connection is closed, with what was
// published before it delivered.
func TestDrain(t *testing.T) {
	srv := natstest.Run(t)
	recv, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	got := make(chan *nats.Msg, 1000)
	if _, err := recv.ChanSubscribe("drain.>", got); err != nil {
		t.Fatal(err)
	}
	if err := recv.Flush(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if err := nc.Publish("drain.x", []byte("last words")); err != nil {
			t.Fatal(err)
		}
	}
	if err := natsx.Drain(nc); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("Drain returned before the connection closed")
	}
	deadline := time.After(5 * time.Second)
	for n := 0; n < 1000; n++ {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("got %d of the 1000 messages published before Drain", n)
		}
	}
	// Draining a closed connection is no error.
	if err := natsx.Drain(nc); err != nil {
		t.Fatalf("drain a closed connection: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                     "nats://127.0.0.1:4222",
		"nats://alice:s3cret@nats:4222":             "nats://redacted@nats:4222",
		"nats://t0ken@a:4222, nats://bob:pw@b:4222": "nats://redacted@a:4222,nats://redacted@b:4222",
		"tls://nats.example.com:4222,nats://c:4222": "tls://nats.example.com:4222,nats://c:4222",
	} {
		if got := natsx.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
