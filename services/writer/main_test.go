package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestAliveWhileTheDatabaseIsAway: a writer waiting for its database (or
// migrating it) answers /healthz, so that a liveness probe leaves it be,
// and /readyz says it is not ready; a shutdown meanwhile ends it.
func TestAliveWhileTheDatabaseIsAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("WRITER_ADDR", addr)
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable") // nothing listens on port 1
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("LOG_LEVEL", "error")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	defer cancel()

	status := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for status("/healthz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("no /healthz within 10s while the database is away")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the database is away: %d, want 503", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stopped while starting: %v, want a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not stop")
	}
}

// TestPipelineBusy: stalled runs are failed only when no page or run
// message waits between the fetcher and the writer.
func TestPipelineBusy(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	if busy, err := pipelineBusy(ctx, js); err != nil || busy {
		t.Fatalf("empty pipeline: busy %v, error %v", busy, err)
	}
	ref := pipeline.ConnectorRef{Tenant: "t1", ID: "zoom"}
	for _, subject := range []string{pipeline.RawSubject(ref), pipeline.RecordsSubject(ref)} {
		if _, err := js.Publish(ctx, subject, []byte("page")); err != nil {
			t.Fatal(err)
		}
		if busy, err := pipelineBusy(ctx, js); err != nil || !busy {
			t.Errorf("a message on %s: busy %v, error %v", subject, busy, err)
		}
		stream, err := js.StreamNameBySubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
