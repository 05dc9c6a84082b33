package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// TestUserDigest covers the users-page shortcut: an unchanged user is only
// marked as seen, yet everything it holds survives the run; a user that
// lost a grant is compared record by record and the grant goes at the end of
// the run; a webhook change makes the next page compare the user again.
func TestUserDigest(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1, g2 := clarity.GroupKey("g1"), clarity.GroupKey("g2")
	first := syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1), grant(t, "u1", g2),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	if got, want := len(first), 8; got != want { // started, 6 created, completed
		t.Fatalf("first run: got %d events, want %d: %v", got, want, first)
	}

	// Unchanged: nothing but the run's own events, every record still there.
	second := syncRun(t, s, pool, newRun("r2", 1000), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1), grant(t, "u1", g2),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantTypes(t, second, ev(clarity.OpStarted, "sync r2"), ev(clarity.OpCompleted, "sync r2"))
	if d := syncData(t, second[1]); d.Stats.Unchanged != 6 {
		t.Errorf("unchanged run: got %d unchanged, want 6", d.Stats.Unchanged)
	}
	wantLive(t, pool, uk("u1"), uk("u2"), gk("u1", g1), gk("u1", g2), gk("u2", g1), ak("u1", "department"))

	// Alice left g2: only that grant goes, and only when the run completes.
	third := syncRun(t, s, pool, newRun("r3", 2000), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantSet(t, third, ev(clarity.OpStarted, "sync r3"), "service_user_entitlement.deleted u1|"+g2, ev(clarity.OpCompleted, "sync r3"))

	// A webhook removes Bob's grant; Zoom still lists it (the webhook was
	// wrong or undone): the next page must compare Bob again and bring it back.
	b := change(2500)
	b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: clarity.GrantKey("u2", g1)}}
	applyChange(t, s, b)
	take(t, pool)
	fourth := syncRun(t, s, pool, newRun("r4", 3000), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantSet(t, fourth, ev(clarity.OpStarted, "sync r4"), "service_user_entitlement.created u2|"+g1, ev(clarity.OpCompleted, "sync r4"))
}

// TestStaleGrantOfDeletedEntitlement: a group deleted by a webhook while a
// full sync runs must not get grants back from a page read before the
// deletion, whether the user held the grant before or not, and also when
// the page was asked for in the very millisecond of the deletion (Zoom
// read its state before the deletion took effect).
func TestStaleGrantOfDeletedEntitlement(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		deletedAt int64 // offset of the deletion; the users page is read at 1100
		held      bool  // whether the user held the grant before the run
	}{
		{"later, held none", 2000, false},
		{"later, held it", 2000, true},
		{"same millisecond, held none", 1100, false},
		{"same millisecond, held it", 1100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			g1 := clarity.GroupKey("g1")
			first := []*pb.Record{group(t, "g1", "Sales"), user(t, "u1", "alice@example.com", "Alice")}
			if tc.held {
				first = append(first, grant(t, "u1", g1))
			}
			syncRun(t, s, pool, newRun("r1", 0), nil, first...)

			run := newRun("r2", 1000)
			del := change(tc.deletedAt)
			del.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_ENTITLEMENT, Key: g1}}
			applyChange(t, s, del)
			applyPage(t, s, page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1)))
			wantLive(t, pool, uk("u1"))
		})
	}
}

// TestCompleteRunAfterFailedRun: a run that fails after comparing a user
// deletes nothing, and the next complete run, which finds the user
// unchanged since, still deletes what that user lost.
func TestCompleteRunAfterFailedRun(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1, g2 := clarity.GroupKey("g1"), clarity.GroupKey("g2")
	syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), grant(t, "u1", g2))

	failed := newRun("r2", 1000)
	applyPage(t, s, page(failed, pb.Listing_LISTING_USERS_ACTIVE, 1, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1)))
	if err := s.Fail(context.Background(), ref, &pb.RunFailed{Run: failed, Error: "zoom refused"}); err != nil {
		t.Fatal(err)
	}
	evs := take(t, pool)
	wantTypes(t, evs, ev(clarity.OpStarted, "sync r2"), ev(clarity.OpFailed, "sync r2"))
	wantLive(t, pool, uk("u1"), gk("u1", g1), gk("u1", g2))

	done := syncRun(t, s, pool, newRun("r3", 2000), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1))
	wantSet(t, done, ev(clarity.OpStarted, "sync r3"), "service_user_entitlement.deleted u1|"+g2, ev(clarity.OpCompleted, "sync r3"))
	wantLive(t, pool, uk("u1"), gk("u1", g1))
}

// TestRecordsBeforeTheirUser: a webhook may name a grant or an attribute
// of a user no page has listed yet (a group.member_added of an invitee
// names its id, which no listing keys it by). Such records are left out: a
// grant of a user that does not exist is never stored nor published. The
// user's first page brings the user with its own records.
func TestRecordsBeforeTheirUser(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1, g2 := clarity.GroupKey("g1"), clarity.GroupKey("g2")
	applyChange(t, s, change(-5000, grant(t, "u1", g1), grant(t, "u1", g2), attr(t, "u1", "department", "Sales")))
	if evs := take(t, pool); len(evs) != 0 {
		t.Errorf("records of a user not stored: got %d events, want none", len(evs))
	}
	wantLive(t, pool)

	evs := syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), attr(t, "u1", "department", "Sales"),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantTypes(t, evs, "sync.started r1",
		ev(clarity.OpCreated, uk("u1")), ev(clarity.OpCreated, gk("u1", g1)), ev(clarity.OpCreated, ak("u1", "department")),
		ev(clarity.OpCreated, uk("u2")), ev(clarity.OpCreated, gk("u2", g1)),
		"sync.completed r1")
	wantLive(t, pool, ak("u1", "department"), gk("u1", g1), gk("u2", g1), uk("u1"), uk("u2"))
}

// TestRecordsOfUsersNotYetSeen: a webhook may give or delete records of a
// user no run has seen yet. What it gives is left out (the user does not
// exist); what it deletes stays deleted against older input. The first page
// that lists the user creates it with its records, once, with the run's
// counts and events saying so.
func TestRecordsOfUsersNotYetSeen(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1 := clarity.GroupKey("g1")
	applyChange(t, s, change(500, grant(t, "u1", g1), attr(t, "u1", "department", "Sales")))
	applyChange(t, s, del(2000, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey("u2", g1)))
	if evs := take(t, pool); len(evs) != 0 {
		t.Errorf("records of a user not stored: got %d events, want none", len(evs))
	}

	evs := syncRun(t, s, pool, newRun("r1", 1000), nil, group(t, "g1", "Sales"),
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), attr(t, "u1", "department", "Sales"),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1),
		user(t, "u3", "carol@example.com", "Carol"), grant(t, "u3", g1))
	wantSet(t, evs, ev(clarity.OpStarted, "sync r1"), ev(clarity.OpCreated, ek(g1)), ev(clarity.OpCreated, uk("u1")),
		ev(clarity.OpCreated, gk("u1", g1)), ev(clarity.OpCreated, ak("u1", "department")), ev(clarity.OpCreated, uk("u2")),
		ev(clarity.OpCreated, uk("u3")), ev(clarity.OpCreated, gk("u3", g1)), ev(clarity.OpCompleted, "sync r1"))
	if d := syncData(t, evs[len(evs)-1]); d.Stats.Created != 7 || d.Stats.Unchanged != 1 {
		t.Errorf("run: got %d created, %d unchanged, want 7 and 1", d.Stats.Created, d.Stats.Unchanged)
	}
	wantLive(t, pool, ek(g1), uk("u1"), uk("u2"), uk("u3"), gk("u1", g1), ak("u1", "department"), gk("u3", g1))
}

// TestResyncUpdatesUsersInPlace: a no-op resync marks every user as seen.
// That must be a heap-only update, which keeps the row in its page and
// writes no index entry: the page a user is created in must keep room for
// it, which it does when users are spread among their records.
func TestResyncUpdatesUsersInPlace(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	var recs []*pb.Record
	for i := range 300 {
		id := fmt.Sprintf("u%03d", i)
		recs = append(recs, user(t, id, id+"@example.com", "User "+id),
			grant(t, id, clarity.GroupKey("g1")), grant(t, id, clarity.GroupKey("g2")), grant(t, id, clarity.RoleKey("r1")),
			attr(t, id, "department", "Sales"), attr(t, id, "timezone", "Europe/Paris"))
	}
	pages := func() map[string]string {
		rows, err := pool.Query(context.Background(),
			`SELECT key, (ctid::text::point)[0]::text FROM records WHERE kind = $1`, pb.Kind_KIND_SERVICE_USER)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for rows.Next() {
			var k, p string
			if err := rows.Scan(&k, &p); err != nil {
				t.Fatal(err)
			}
			m[k] = p
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	syncRun(t, s, pool, newRun("r1", 0), nil, recs...)
	before := pages()
	evs := syncRun(t, s, pool, newRun("r2", 1000), nil, recs...)
	wantTypes(t, evs, ev(clarity.OpStarted, "sync r2"), ev(clarity.OpCompleted, "sync r2"))
	moved := 0
	for k, p := range pages() {
		if before[k] != p {
			moved++
		}
	}
	if moved > len(before)/20 {
		t.Errorf("resync moved %d of %d users to another page, want at most 5%%", moved, len(before))
	}
}

// TestDigestOfAPageOlderThanItsUsersRecords: a users page read before a
// webhook changed one of its user's records does not describe what is
// stored for that user afterwards, so it must not let a later identical page
// skip the comparison: Zoom may have undone the webhook's change since, with
// that webhook lost, and only the full sync can set the record right.
func TestDigestOfAPageOlderThanItsUsersRecords(t *testing.T) {
	t.Parallel()
	g1 := clarity.GroupKey("g1")
	alice := func() *pb.Record { return user(t, "u1", "alice@example.com", "Alice") }

	t.Run("a grant the webhook deleted", func(t *testing.T) {
		t.Parallel()
		s, pool := newStore(t)
		syncRun(t, s, pool, newRun("r1", 0), nil, alice(), grant(t, "u1", g1))
		// Run r2's page is read at 1100 and still lists the grant that a
		// webhook deletes at 1500, before the page is applied.
		applyChange(t, s, del(1500, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey("u1", g1)))
		take(t, pool)
		syncRun(t, s, pool, newRun("r2", 1000), nil, alice(), grant(t, "u1", g1))
		wantLive(t, pool, uk("u1"))
		// Alice is back in g1, and that webhook was lost.
		evs := syncRun(t, s, pool, newRun("r3", 3000), nil, alice(), grant(t, "u1", g1))
		wantSet(t, evs, ev(clarity.OpStarted, "sync r3"), ev(clarity.OpCreated, gk("u1", g1)), ev(clarity.OpCompleted, "sync r3"))
	})

	t.Run("an attribute the webhook changed", func(t *testing.T) {
		t.Parallel()
		s, pool := newStore(t)
		syncRun(t, s, pool, newRun("r1", 0), nil, alice(), attr(t, "u1", "department", "Sales"))
		applyChange(t, s, change(1500, attr(t, "u1", "department", "Engineering")))
		take(t, pool)
		syncRun(t, s, pool, newRun("r2", 1000), nil, alice(), attr(t, "u1", "department", "Sales"))
		// Alice went back to Sales, and that webhook was lost.
		evs := syncRun(t, s, pool, newRun("r3", 3000), nil, alice(), attr(t, "u1", "department", "Sales"))
		wantSet(t, evs, ev(clarity.OpStarted, "sync r3"), ev(clarity.OpUpdated, ak("u1", "department")), ev(clarity.OpCompleted, "sync r3"))
	})

	// Run completion finds such a grant among the user's records: probed
	// for when few users were compared, hashed on their user otherwise.
	for _, c := range []struct {
		seen  bool
		probe int64 // Options.ProbeUsers: negative never probes
	}{{true, 1000}, {true, -1}, {false, 1000}, {false, -1}} {
		name := "a grant the webhook gave a user seen before"
		if !c.seen {
			name = "a grant the webhook gave a user not yet seen"
		}
		name += map[bool]string{true: ", probed", false: ", hashed"}[c.probe > 0]
		seen := c.seen
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t, store.Options{ProbeUsers: c.probe})
			if seen {
				syncRun(t, s, pool, newRun("r1", 0), nil, alice())
			}
			// The grant comes at 1500; the page, read at 1100, lacks it.
			applyChange(t, s, change(1500, grant(t, "u1", g1)))
			take(t, pool)
			syncRun(t, s, pool, newRun("r2", 1000), nil, alice())
			if !seen {
				// A grant of a user not stored is left out: r2 creates
				// the user as its page gives it.
				wantLive(t, pool, uk("u1"))
				evs := syncRun(t, s, pool, newRun("r3", 3000), nil, alice())
				wantSet(t, evs, ev(clarity.OpStarted, "sync r3"), ev(clarity.OpCompleted, "sync r3"))
				return
			}
			wantLive(t, pool, uk("u1"), gk("u1", g1))
			// Alice left g1 again, and that webhook was lost.
			evs := syncRun(t, s, pool, newRun("r3", 3000), nil, alice())
			wantSet(t, evs, ev(clarity.OpStarted, "sync r3"), ev(clarity.OpDeleted, gk("u1", g1)), ev(clarity.OpCompleted, "sync r3"))
		})
	}
}

// TestDigestOfAUserListedTwice: a user whose status changes while a run
// reads the listings appears in two of them. Neither page describes all
// that is then stored for the user (the records the other page gave stay
// until the next run), so neither may let a later identical page skip the
// comparison, whichever is applied last.
func TestDigestOfAUserListedTwice(t *testing.T) {
	t.Parallel()
	g1 := clarity.GroupKey("g1")
	for _, newerLast := range []bool{true, false} {
		t.Run(map[bool]string{true: "the newer page applied last", false: "the older page applied last"}[newerLast], func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			syncRun(t, s, pool, newRun("r1", 0), nil, user(t, "u1", "alice@example.com", "Alice"))

			// Alice joins g1, is deactivated and leaves g1 while r2 runs:
			// the active listing, read at 1100, lists her in g1; the
			// inactive one, read at 1200, lists her in no group.
			run := newRun("r2", 1000)
			active := page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1))
			inactive := page(run, pb.Listing_LISTING_USERS_INACTIVE, 1, user(t, "u1", "alice@example.com", "Alice (left)"))
			inactive.VersionMs = run.StartedAtMs + 200
			if newerLast {
				applyPage(t, s, active)
				applyPage(t, s, inactive)
			} else {
				applyPage(t, s, inactive)
				applyPage(t, s, active)
			}
			markFetched(t, s, fetched(run, 3, listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: 1}, listing{l: pb.Listing_LISTING_USERS_INACTIVE, pages: 1}))
			if !finalize(t, s, "r2") {
				t.Fatal("r2 did not complete")
			}
			take(t, pool)

			evs := syncRun(t, s, pool, newRun("r3", 3000), nil, user(t, "u1", "alice@example.com", "Alice (left)"))
			wantSet(t, evs, ev(clarity.OpStarted, "sync r3"), ev(clarity.OpDeleted, gk("u1", g1)), ev(clarity.OpCompleted, "sync r3"))
		})
	}
}
