package console

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// While the dead letters are counted again (NATS not answering), every
// page is served the last counts at once, from one read: none waits for
// it, and a read that fails keeps the last counts with its error.
func TestDeadLettersServeLastCounts(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range pipeline.Streams(1) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	for range 2 {
		m := nats.NewMsg(pipeline.DeadLetterSubject(pipeline.StreamRaw))
		m.Header.Set(natsx.HeaderDLQSubject, "zoom.raw.acme.zoom.page")
		m.Data = []byte("{}")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	d := &deadLetters{js: js, now: clk.now}
	if counts, err := d.count(ctx); err != nil || counts[ref] != 2 {
		t.Fatalf("first count: %v, %v", counts, err)
	}

	srv.Shutdown() // reads now wait until their bound
	clk.add(deadLetterTTL + time.Second)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if counts, err := d.count(ctx); err != nil || counts[ref] != 2 {
				t.Errorf("a page while the counts are read again: %v, %v", counts, err)
			}
		}()
	}
	wg.Wait()
	d.mu.Lock()
	reading := d.reading
	d.mu.Unlock()
	if reading == nil {
		t.Fatal("no read of the counts in flight")
	}
	d.count(ctx)
	d.mu.Lock()
	same := d.reading == reading
	d.mu.Unlock()
	if !same {
		t.Error("a second read started while one is in flight")
	}
	<-reading
	if counts, err := d.count(ctx); err == nil || counts[ref] != 2 {
		t.Errorf("after a failed read: %v, %v; want the last counts and the error", counts, err)
	}
}
