package console

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// A round that fails once it reads the events (the stream deleted under
// it) leaves no goroutine or iterator behind while the service goes on.
func TestActivityFailedRoundsLeaveNothing(t *testing.T) {
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var cfg jetstream.StreamConfig
	for _, c := range pipeline.Streams(1) {
		if c.Name == clarity.StreamEntitlements {
			cfg = c
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := NewActivity()
	n := 0
	round := func() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		n++
		ref := pipeline.ConnectorRef{Tenant: "acme", ID: fmt.Sprintf("c%d", n)}
		if _, err := js.Publish(ctx, pipeline.EventSubject(ref, clarity.KindSync),
			event(t, ref, 1, clarity.KindSync, clarity.OpStarted, time.Now(), clarity.SyncData{RunID: "r"})); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.follow(ctx, nc, js, zerolog.Nop()) }()
		for a.Of(ref).Current == nil { // the sync events are read
			time.Sleep(5 * time.Millisecond)
		}
		// The iterator of the events since the start is reading.
		for a.Of(ref).Current.Changes[clarity.KindServiceUser] == 0 {
			if _, err := js.Publish(ctx, pipeline.EventSubject(ref, clarity.KindServiceUser),
				event(t, ref, 2, clarity.KindServiceUser, clarity.OpCreated, time.Now(), nil)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := js.DeleteStream(ctx, cfg.Name); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a round whose stream was deleted ended without an error")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the round did not end after its stream was deleted")
		}
	}
	round() // the client's own goroutines start
	before := settled(0)
	const rounds = 5
	for range rounds {
		round()
	}
	if after := settled(before); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after %d failed rounds, %d before\n%s", after, rounds, before, buf[:runtime.Stack(buf, true)])
	}
}

// settled returns the number of goroutines once it is at most want or has
// stopped falling.
func settled(want int) int {
	n := runtime.NumGoroutine()
	for range 50 {
		if want > 0 && n <= want {
			return n
		}
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}
