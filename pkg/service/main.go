package service

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

// Main runs run under a context that SIGINT or SIGTERM cancels. When run
// fails, it prints one line naming the binary and exits with status 1; a
// clean stop exits 0.
func Main(name string, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		Fatal(name, err)
		os.Exit(1)
	}
}

// JetStream connects to NATS as name and ensures every stream of the
// connector, with the configured replica count. The caller drains the
// connection when it stops.
func JetStream(ctx context.Context, c Common, name string, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, js, err := natsx.Connect(ctx, c.NATSURL, name, log)
	if err != nil {
		return nil, nil, err
	}
	if err := natsx.EnsureStreams(ctx, js, clarity.Replicated(c.StreamReplicas, clarity.Streams())...); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
