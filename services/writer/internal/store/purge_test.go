package store_test

import (
	"context"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestPurge deletes every record of a removed connector, each with its
// deleted event, dependents before their owners, and leaves other
// connectors alone.
func TestPurge(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	org := guardOrg(t, 3, 2)
	syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g0": {"u0@x.com"}}, org...)
	before := live(t, pool)
	if len(before) == 0 {
		t.Fatal("nothing stored")
	}
	n, err := s.Purge(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	evs := take(t, pool)
	if int(n) != len(before) || len(evs) != len(before) {
		t.Fatalf("purge deleted %d records with %d events, want the %d stored", n, len(evs), len(before))
	}
	// Owners go after everything that depends on them.
	seenOwner := false
	for _, e := range evs {
		if e.Op != clarity.OpDeleted {
			t.Errorf("purge emitted %s", e)
		}
		owner := e.Kind == clarity.KindServiceUser || e.Kind == clarity.KindEntitlement
		if !owner && seenOwner {
			t.Errorf("%s deleted after an owner", e)
		}
		seenOwner = seenOwner || owner
	}
	if got := live(t, pool); len(got) != 0 {
		t.Errorf("%d records live after the purge", len(got))
	}
	// A connector never seen: nothing deleted, nothing created.
	if n, err := s.Purge(ctx, pipeline.ConnectorRef{Tenant: "other", ID: "zoom"}); err != nil || n != 0 {
		t.Errorf("purge of an unknown connector: %d, %v", n, err)
	}
	var conns int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM connectors`).Scan(&conns); err != nil || conns != 1 {
		t.Errorf("connectors: %d (%v), want 1", conns, err)
	}
}
