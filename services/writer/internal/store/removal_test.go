package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// TestRemovalOfDeletedUsers: the deleted event of a service user says why
// it went (the removal attribute): deleted or disassociated as the webhook
// that deleted it said, absent when a complete full sync no longer listed
// it or the connector was removed. The deleted events of its grants and
// attributes, and of everything else, carry none.
func TestRemovalOfDeletedUsers(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1 := clarity.GroupKey("g1")
	users := func() []*pb.Record {
		var recs []*pb.Record
		for _, u := range []struct{ id, email string }{
			{"u1", "a@x.com"}, {"u2", "b@x.com"}, {"u3", "c@x.com"}, {"u4", "d@x.com"}, {"pending:e@x.com", "e@x.com"},
		} {
			recs = append(recs, user(t, u.id, u.email, u.id), grant(t, u.id, g1), attr(t, u.id, "department", "Sales"))
		}
		return recs
	}
	syncRun(t, s, pool, newRun("r1", 0), nil, append([]*pb.Record{group(t, "g1", "Sales")}, users()...)...)

	gone := func(removal string, keys ...string) *pb.RecordBatch {
		b := &pb.RecordBatch{VersionMs: base + 1000, Source: "test"}
		for _, k := range keys {
			b.Deletes = append(b.Deletes, &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER, Key: k, Removal: removal})
		}
		return b
	}
	applyChange(t, s, gone(clarity.RemovalDeleted, "u1"))
	applyChange(t, s, gone(clarity.RemovalDisassociated, "u2", "pending:e@x.com"))
	want := map[string]string{"u1": clarity.RemovalDeleted, "u2": clarity.RemovalDisassociated, "pending:e@x.com": clarity.RemovalDisassociated}
	checkRemovals(t, "webhooks", take(t, pool), want)

	// Run r2 no longer lists u3.
	var listed []*pb.Record
	for _, r := range users() {
		if k := r.GetUserKey(); k == "u4" {
			listed = append(listed, r)
		}
	}
	checkRemovals(t, "a full sync", syncRun(t, s, pool, newRun("r2", 2000), nil, append([]*pb.Record{group(t, "g1", "Sales")}, listed...)...),
		map[string]string{"u3": clarity.RemovalAbsent})

	if _, err := s.Purge(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	checkRemovals(t, "a purge", take(t, pool), map[string]string{"u4": clarity.RemovalAbsent})

	err := s.ApplyChange(context.Background(), ref, gone("vanished", "u9"))
	if !errors.Is(err, store.ErrBadBatch) {
		t.Errorf("a deletion with removal %q: got %v, want ErrBadBatch", "vanished", err)
	}
}

// checkRemovals checks that the service users deleted in evs are exactly
// those of want, each with its removal, and that no other event carries one.
func checkRemovals(t *testing.T, what string, evs []event, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, e := range evs {
		if e.Kind == clarity.KindServiceUser && e.Op == clarity.OpDeleted {
			got[e.Subject] = e.Removal
			continue
		}
		if e.Removal != "" {
			t.Errorf("%s: %s carries removal %q, want none", what, e, e.Removal)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: users deleted %v, want %v", what, got, want)
	}
	for k, r := range want {
		if got[k] != r {
			t.Errorf("%s: user %s deleted with removal %q, want %q", what, k, got[k], r)
		}
	}
}
