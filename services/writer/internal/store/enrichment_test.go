package store_test

import (
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestEnrichmentAttributesStay: the enrichment attributes of a user (from
// its details, which no listing gives) are not deleted by a full sync that
// compares the user record by record, nor by a re-read of the user by id;
// other attributes their pages no longer give are. They go with their user,
// each with a deleted event.
func TestEnrichmentAttributesStay(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"),
		user(t, "u2", "bob@example.com", "Bob"))
	applyChange(t, s, change(1000, attr(t, "u1", clarity.AttrJobTitle, "Engineer"), attr(t, "u1", clarity.AttrLoginTypes, "100,101")))
	wantSet(t, take(t, pool), ev(clarity.OpCreated, ak("u1", clarity.AttrJobTitle)), ev(clarity.OpCreated, ak("u1", clarity.AttrLoginTypes)))

	// The user changed, without its department: compared record by record.
	evs := syncRun(t, s, pool, newRun("r2", 2000), nil,
		user(t, "u1", "alice@example.com", "Alice B"), user(t, "u2", "bob@example.com", "Bob"))
	wantSet(t, deletionsOf(evs), ev(clarity.OpDeleted, ak("u1", "department")))
	wantLive(t, pool, uk("u1"), uk("u2"), ak("u1", clarity.AttrJobTitle), ak("u1", clarity.AttrLoginTypes))

	// A re-read by id gives the user's whole state but its details.
	b := change(3000, user(t, "u1", "alice@example.com", "Alice C"), attr(t, "u1", "timezone", "UTC"))
	b.ReplaceUser = "u1"
	applyChange(t, s, b)
	wantSet(t, deletionsOf(take(t, pool)))
	wantLive(t, pool, uk("u1"), uk("u2"), ak("u1", "timezone"), ak("u1", clarity.AttrJobTitle), ak("u1", clarity.AttrLoginTypes))

	// Details that no longer give a job title delete it.
	applyChange(t, s, &pb.RecordBatch{VersionMs: base + 3500, Source: "test",
		Deletes: []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: clarity.AttributeKey("u1", clarity.AttrJobTitle)}}})
	wantSet(t, take(t, pool), ev(clarity.OpDeleted, ak("u1", clarity.AttrJobTitle)))

	// A user gone takes its enrichment attributes along.
	evs = syncRun(t, s, pool, newRun("r3", 4000), nil, user(t, "u2", "bob@example.com", "Bob"))
	wantSet(t, deletionsOf(evs), ev(clarity.OpDeleted, uk("u1")), ev(clarity.OpDeleted, ak("u1", "timezone")),
		ev(clarity.OpDeleted, ak("u1", clarity.AttrLoginTypes)))
	wantLive(t, pool, uk("u2"))
}
