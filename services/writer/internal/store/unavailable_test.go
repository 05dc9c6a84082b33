package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// TestUnavailableListingsDeleteNothingOfTheirs: a connector synced groups,
// admins and roles; then its account became free, and a run completed
// without the groups and roles listings. That run deletes no group, admin
// or role entitlement and no grant of theirs, not even a membership the
// users' pages no longer give; a user's role grant follows its role_id;
// a user absent goes as usual, grants and all; sync.completed names the
// unavailable listings. Once the account is paid again, a run that lists
// no group and fewer roles deletes them.
func TestUnavailableListingsDeleteNothingOfTheirs(t *testing.T) {
	t.Parallel()
	// The accidental-deletion guard counts no spared entitlement as going:
	// at 0.4, four of seven would hold the free run's deletions.
	// The license entitlements ride on the roles page; without it, the
	// writer makes them.
	var licenses []*pb.Record
	for _, l := range clarity.Licenses {
		licenses = append(licenses, record(t, pb.Kind_KIND_ENTITLEMENT, l.ID, l))
	}
	for _, threshold := range []float64{0, 0.4} {
		s, pool := newStore(t, store.Options{DeleteThreshold: threshold})
		alice := user(t, "u1", "alice@example.com", "Alice")
		bob := user(t, "u2", "bob@example.com", "Bob")
		carol := user(t, "u3", "carol@example.com", "Carol")
		ents := []*pb.Record{group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales"), role(t, "1", "Admin"), role(t, "2", "Member")}
		ents = append(ents, licenses...)
		syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": {"alice@example.com"}},
			append(ents, alice, bob, carol,
				grant(t, "u1", "group:g1"), grant(t, "u2", "group:g1"),
				grant(t, "u1", "role:1"), grant(t, "u2", "role:2"), grant(t, "u3", "role:2"), grant(t, "u2", "license:basic"))...)
		wantLive(t, pool, uk("u1"), uk("u2"), uk("u3"),
			ek("group:g1"), ek("group_admin:g1"), ek("role:1"), ek("role:2"),
			ek("license:basic"), ek("license:licensed"), ek("license:unassigned"),
			gk("u1", "group:g1"), gk("u2", "group:g1"), gk("u1", "group_admin:g1"),
			gk("u1", "role:1"), gk("u2", "role:2"), gk("u3", "role:2"), gk("u2", "license:basic"))

		// Free: Alice became a member, Bob's page no longer names his
		// group, Carol left.
		free := newRun("r2", 10_000)
		applyPage(t, s, page(free, usersActive, 1, alice, bob, grant(t, "u1", "group:g1"), grant(t, "u1", "role:2"), grant(t, "u2", "role:2"),
			grant(t, "u2", "license:basic")))
		f := fetched(free, 4, listing{l: usersActive, pages: 1})
		f.Unavailable = []string{clarity.UnavailableRoles, clarity.UnavailableGroups}
		markFetched(t, s, f)
		if !finalize(t, s, "r2") {
			t.Fatalf("threshold %g: the free run did not complete", threshold)
		}
		evs := take(t, pool)
		wantSet(t, evs,
			ev(clarity.OpCreated, gk("u1", "role:2")),
			ev(clarity.OpDeleted, gk("u1", "role:1")),
			ev(clarity.OpDeleted, gk("u3", "role:2")),
			ev(clarity.OpDeleted, uk("u3")),
			"sync.started r2", "sync.completed r2")
		if d := lastSync(t, evs); !slices.Equal(d.Unavailable, []string{"groups", "roles"}) {
			t.Errorf("threshold %g: sync.completed unavailable got %q, want [groups roles]", threshold, d.Unavailable)
		}
		wantLive(t, pool, uk("u1"), uk("u2"),
			ek("group:g1"), ek("group_admin:g1"), ek("role:1"), ek("role:2"),
			ek("license:basic"), ek("license:licensed"), ek("license:unassigned"),
			gk("u1", "group:g1"), gk("u2", "group:g1"), gk("u1", "group_admin:g1"),
			gk("u1", "role:2"), gk("u2", "role:2"), gk("u2", "license:basic"))

		// Paid again: the group is gone from Zoom, and so is role 1.
		paid := newRun("r3", 20_000)
		applyPage(t, s, page(paid, usersActive, 1, alice, bob, grant(t, "u1", "role:2"), grant(t, "u2", "role:2"),
			grant(t, "u2", "license:basic")))
		applyPage(t, s, page(paid, pb.Listing_LISTING_ROLES, 1, append([]*pb.Record{role(t, "2", "Member")}, licenses...)...))
		markFetched(t, s, fetched(paid, 4, listing{l: usersActive, pages: 1}, listing{l: groups, pages: 1},
			listing{l: pb.Listing_LISTING_ROLES, pages: 1}))
		applyPage(t, s, page(paid, groups, 1))
		if got := runStatus(t, pool, "r3"); got != store.RunCompleted {
			t.Fatalf("threshold %g: paid run status %q, want completed", threshold, got)
		}
		evs = take(t, pool)
		d := lastSync(t, evs)
		if d.Unavailable != nil {
			t.Errorf("threshold %g: paid run's sync.completed: unavailable %q, want none", threshold, d.Unavailable)
		}
		if threshold > 0 {
			// Three of seven entitlements going: the guard holds them,
			// as on any run, until confirmed.
			if d.Deletions != store.DeletionsHeld {
				t.Errorf("threshold %g: paid run's deletions %q, want held", threshold, d.Deletions)
			}
			if _, err := s.ConfirmDeletions(context.Background(), ref, "r3"); err != nil {
				t.Fatalf("confirm r3: %v", err)
			}
		}
		wantLive(t, pool, uk("u1"), uk("u2"), ek("role:2"), gk("u1", "role:2"), gk("u2", "role:2"),
			ek("license:basic"), ek("license:licensed"), ek("license:unassigned"), gk("u2", "license:basic"))
	}
}

// TestUnknownUnavailableListing: a manifest naming a listing the writer
// does not know as unavailable is refused: the writer could not tell what
// completing the run would wrongly delete.
func TestUnknownUnavailableListing(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	f := fetched(newRun("r1", 0), 1, listing{l: usersActive, pages: 1})
	f.Unavailable = []string{"webinars"}
	if err := s.Fetched(context.Background(), ref, f); !errors.Is(err, store.ErrBadBatch) {
		t.Errorf("got %v, want ErrBadBatch", err)
	}
}
