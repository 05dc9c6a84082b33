package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Exit statuses of Main.
const (
	// ExitFailed is the status of a service whose run function returned an
	// error.
	ExitFailed = 1
	// ExitPanic is the status of a service whose run function panicked:
	// the status Go gives a panic nobody recovers, so that whatever
	// supervises the service sees a crash as it always did.
	ExitPanic = 2
)

// Main runs run under a context that SIGINT or SIGTERM cancels, and exits
// with its outcome. A clean stop exits 0. When run fails, Main prints one
// line naming the binary and exits with ExitFailed. When run panics, Main
// prints the panic and the stack where it happened, naming the binary, and
// exits with ExitPanic: run's deferred calls (draining NATS, closing the
// database pool) have run by then, which an unrecovered panic would not
// have allowed. A panic in a goroutine run started is not run's and still
// crashes the process: such goroutines recover their own (as the consume
// loop does for every handler).
func Main(name string, run func(ctx context.Context) error) {
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := runMain(ctx, name, run, os.Stderr)
	stop()
	if code != 0 {
		os.Exit(code)
	}
}

// runMain runs run and returns Main's exit status, having written to w
// what stopped the service, if anything did.
func runMain(ctx context.Context, name string, run func(ctx context.Context) error, w io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			// The deferred call runs on the panicking goroutine before its
			// stack unwinds, so the stack still shows where the panic was.
			fmt.Fprintf(w, "%s: panic: %v\n\n%s", name, r, debug.Stack())
			code = ExitPanic
		}
	}()
	if err := run(ctx); err != nil {
		fatal(w, name, err)
		return ExitFailed
	}
	return 0
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

// JetStream connects to NATS as name (one of the pipeline.Service names)
// and ensures the connector's streams: it creates every stream that is
// missing, with the configured replica count and retention, so that the
// services start in any order, and applies its configuration to the
// streams name owns (pipeline.StreamOwner). The caller drains the
// connection when it stops.
func JetStream(ctx context.Context, c Common, name string, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, js, err := natsx.ConnectAuth(ctx, c.NATSURL, name, c.NATS, log)
	if err != nil {
		return nil, nil, err
	}
	// Only a stream's owner may change its configuration: a change of
	// NATS_STREAM_REPLICAS, EVENTS_MAX_AGE or EVENTS_MAX_BYTES (the
	// writer's CLARITY_ENTITLEMENTS) is in force once the owner has
	// started, not whichever service starts first. A service that creates
	// a missing stream creates it with its own settings, which the owner
	// then applies over.
	// Each stream is looked up once: the owned ones created or updated,
	// the others created when missing.
	var owned, others []jetstream.StreamConfig
	for _, s := range pipeline.WithEventRetention(pipeline.Streams(c.StreamReplicas), c.EventsMaxAge, c.EventsMaxBytes) {
		if pipeline.StreamOwner(s.Name) == name {
			owned = append(owned, s)
		} else {
			others = append(others, s)
		}
	}
	if err := natsx.EnsureStreams(ctx, js, owned...); err != nil {
		nc.Close()
		return nil, nil, err
	}
	if err := natsx.CreateMissingStreams(ctx, js, others...); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
