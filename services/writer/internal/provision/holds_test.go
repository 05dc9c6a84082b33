package provision

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestChangeUsers names every user a change touches: the replaced user, the
// owners and emails of its records, the users of its deletions, and group
// admins by email.
func TestChangeUsers(t *testing.T) {
	b := &pb.RecordBatch{
		ReplaceUser: "u1",
		Records: []*pb.Record{
			{Kind: pb.Kind_KIND_SERVICE_USER, Key: "u1", UserKey: "u1", Email: "Ann@Example.com"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: "u2|group:g", UserKey: "u2"},
			{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:g"},
		},
		Deletes: []*pb.RecordRef{
			{Kind: pb.Kind_KIND_SERVICE_USER, Key: "pending:bob@example.com"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: "u3|role:5"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: "u4|department"},
			{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:h"},
		},
		AdminsAdded:   []*pb.GroupAdmins{{GroupId: "g", Emails: []string{"Carol@example.com"}}},
		AdminsRemoved: []*pb.GroupAdmins{{GroupId: "g", Emails: []string{"dan@example.com", "ann@example.com"}}},
	}
	got := changeUsers(b)
	want := []string{"u1", "ann@example.com", "u2", "pending:bob@example.com", "u3", "u4", "carol@example.com", "dan@example.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("changeUsers: %q, want %q", got, want)
	}
	if got := changeUsers(&pb.RecordBatch{}); len(got) != 0 {
		t.Fatalf("an empty change: %q", got)
	}
}

// TestLiftOnlyOwnMarks lifts the marks of one request's result only: a
// mark a later request for the same user made stays, so that its changes
// still wait for its own result.
func TestLiftOnlyOwnMarks(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	kv, err := OpenHolds(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := pipeline.ConnectorRef{Tenant: "t1", ID: "zoom"}
	// Request r1 marked u1 and ann; then r2, for the same user, marked u1
	// again.
	for _, m := range []struct{ who, by string }{{"u1", "r1"}, {"ann@example.com", "r1"}, {"u1", "r2"}} {
		if _, err := kv.Put(ctx, pipeline.ProvisionHoldKey(c, m.who), []byte(m.by)); err != nil {
			t.Fatal(err)
		}
	}
	if err := Lift(ctx, kv, c, "r1", []string{"u1", "ann@example.com", "nobody"}); err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, pipeline.ProvisionHoldKey(c, "u1"))
	if err != nil || string(e.Value()) != "r2" {
		t.Fatalf("r2's mark of u1 after r1's result: %v, %v; want it kept", e, err)
	}
	if _, err := kv.Get(ctx, pipeline.ProvisionHoldKey(c, "ann@example.com")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("r1's mark of ann after its result: %v; want it lifted", err)
	}
	if err := Lift(ctx, kv, c, "r2", []string{"u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, pipeline.ProvisionHoldKey(c, "u1")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("r2's mark of u1 after its result: %v; want it lifted", err)
	}
	// A mark made again between the read and the delete stays.
	if _, err := kv.Put(ctx, pipeline.ProvisionHoldKey(c, "u9"), []byte("r3")); err != nil {
		t.Fatal(err)
	}
	e, _ = kv.Get(ctx, pipeline.ProvisionHoldKey(c, "u9"))
	if _, err := kv.Put(ctx, pipeline.ProvisionHoldKey(c, "u9"), []byte("r3")); err != nil {
		t.Fatal(err)
	}
	err = kv.Delete(ctx, pipeline.ProvisionHoldKey(c, "u9"), jetstream.LastRevision(e.Revision()))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("a delete at a stale revision: %v; Lift counts on ErrKeyExists", err)
	}
}

// TestCheckRetention refuses an audit kept longer than the worker keeps a
// request's result; the default passes.
func TestCheckRetention(t *testing.T) {
	if err := CheckRetention(DefaultRetention); err != nil {
		t.Fatalf("the default retention: %v", err)
	}
	if DefaultRetention < pipeline.DefaultProvisionKeep {
		t.Fatalf("default retention %s under the worker's keep %s", DefaultRetention, pipeline.DefaultProvisionKeep)
	}
	if err := CheckRetention(pipeline.DefaultProvisionKeep + time.Hour); err == nil {
		t.Fatal("a retention longer than the worker's keep is accepted")
	}
}
