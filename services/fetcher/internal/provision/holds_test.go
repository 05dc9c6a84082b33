package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestMarksOutliveTTLWhileRunning: the marks of an action that runs longer
// than the bucket's TTL are renewed until it ends, then expire; a mark
// another request made meanwhile is left as it is.
func TestMarksOutliveTTLWhileRunning(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	cfg := pipeline.ProvisionHoldConfig(1)
	cfg.TTL = 2 * time.Second // the bucket's 3 min, shortened
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &holds{kv: kv, renewEvery: cfg.TTL / 3, log: zerolog.Nop()}
	m := h.forRequest(testConnector, "r-long")
	if err := m.mark(ctx, []string{"u1", "u2"}); err != nil {
		t.Fatal(err)
	}
	// Another request marks u2 meanwhile.
	if _, err := kv.Put(ctx, pipeline.ProvisionHoldKey(testConnector, "u2"), []byte("r-next")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.TTL)
	e, err := kv.Get(ctx, pipeline.ProvisionHoldKey(testConnector, "u1"))
	if err != nil || string(e.Value()) != "r-long" {
		t.Fatalf("u1's mark after %s of an action, the TTL %s: %v, %v; want it kept", 3*cfg.TTL, cfg.TTL, e, err)
	}
	m.end()
	if e, err := kv.Get(ctx, pipeline.ProvisionHoldKey(testConnector, "u2")); err == nil && string(e.Value()) != "r-next" {
		t.Fatalf("u2's mark, made by another request: %q", e.Value())
	}
	time.Sleep(2 * cfg.TTL)
	if _, err := kv.Get(ctx, pipeline.ProvisionHoldKey(testConnector, "u1")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("u1's mark %s after its action ended: %v; want it expired", 2*cfg.TTL, err)
	}
}

// TestUndecodableLedgerEntry: an entry the ledger cannot read is an error,
// never "no progress" (which would run the request again).
func TestUndecodableLedgerEntry(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	l, err := openLedger(ctx, js, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.kv.Put(ctx, "k", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := l.get(ctx, "k"); !errors.Is(err, errUndecodable) || found {
		t.Fatalf("get: found %v, %v; want errUndecodable", found, err)
	}
	if _, _, found, err := l.get(ctx, "none"); err != nil || found {
		t.Fatalf("get of nothing: found %v, %v", found, err)
	}
}
