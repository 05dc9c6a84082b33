package connector

import (
	"context"
	"testing"
)

// A Get that read the record before a Purge, and applies after the watch
// saw the purge, puts the removed connector back into the watched copy.
func TestARemovedConnectorStaysRemoved(t *testing.T) {
	r := newRegistry(t)
	watch(t, r)
	ctx := context.Background()
	rec := s2s("acme", "zoom")
	if _, err := r.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "created", func() bool { _, ok := r.Lookup(rec.Ref()); return ok })
	stale, err := r.kv.Get(ctx, rec.Ref().Key()) // what Get read
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Purge(ctx, rec.Ref()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "purged", func() bool { _, ok := r.Lookup(rec.Ref()); return !ok })
	r.apply(stale) // the rest of Get
	if e, ok := r.Lookup(rec.Ref()); ok {
		t.Errorf("removed connector is back in the watched copy: state %s rev %d; All()=%d", e.State, e.Revision, len(r.All()))
	}
}
