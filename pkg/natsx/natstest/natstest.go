// Package natstest runs a real NATS server with JetStream in-process, for
// tests and the dev stack.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxPayload is the largest message the server takes: NATS's default of
// 1 MiB, which the deployment's server runs with too (deploy/). Tests and the
// dev stack use the same limit, so that a message too big for production
// fails here as well.
const MaxPayload = 1 << 20

// Start runs a JetStream-enabled server on a free loopback port (or port
// when non-zero) with its store in dir. The caller shuts it down.
func Start(dir string, port int) (*server.Server, error) {
	if port == 0 {
		port = -1
	}
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: MaxPayload,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server: not ready within 10s")
	}
	return s, nil
}

// Run starts a server for one test and stops it when the test ends.
func Run(t testing.TB) *server.Server {
	t.Helper()
	s, err := Start(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// JetStream starts a server for one test, as Run does, connects to it and
// creates the given streams; the connection closes when the test ends.
func JetStream(t testing.TB, streams ...jetstream.StreamConfig) jetstream.JetStream {
	t.Helper()
	s := Run(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(context.Background(), cfg); err != nil {
			t.Fatalf("stream %s: %v", cfg.Name, err)
		}
	}
	return js
}

// StreamMsgs returns the messages the stream holds, in sequence order.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
