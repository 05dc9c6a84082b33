package service

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
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
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		Fatal(name, err)
		os.Exit(1)
	}
}

// Defaults of the garbage collector, where GOGC and GOMEMLIMIT are unset.
// A sync streams pages through every service: the heap that stays live is
// small (tens of MiB, the same at 10,000 and 100,000 users) and most of
// what is allocated dies within a page. Collecting when the heap has grown
// by twice what survived the last collection, instead of once, cut the CPU
// of writer, normalizer and fetcher by 20-27% in a 100,000-user full sync
// (make bench) for a third more peak memory (writer 50 to 65 MiB). At 400
// the normalizer's peak grew with the account (1.6 times from 10,000 to
// 100,000 users). The soft limit keeps the heap under the 200 MB a service
// is sized for, whatever the pages hold.
const (
	defaultGCPercent   = 200
	defaultMemoryLimit = 192 << 20
)

// tuneGC applies the collector's defaults unless the environment sets its
// own.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
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
