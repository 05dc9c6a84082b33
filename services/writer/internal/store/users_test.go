package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestUserDigest covers the users-page shortcut: an unchanged user is only
// marked as seen, yet everything it holds survives the run; a user that
// lost a grant is compared record by record and the grant goes at the end of
// the run; a webhook change makes the next page compare the user again.
func TestUserDigest(t *testing.T) {
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
	wantTypes(t, second, ev("started", "sync r2"), ev("completed", "sync r2"))
	if d := syncData(t, second[1]); d.Stats.Unchanged != 6 {
		t.Errorf("unchanged run: got %d unchanged, want 6", d.Stats.Unchanged)
	}
	wantLive(t, pool, uk("u1"), uk("u2"), gk("u1", g1), gk("u1", g2), gk("u2", g1), ak("u1", "department"))

	// Alice left g2: only that grant goes, and only when the run completes.
	third := syncRun(t, s, pool, newRun("r3", 2000), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantSet(t, third, ev("started", "sync r3"), "service_user_entitlement.deleted u1|"+g2, ev("completed", "sync r3"))

	// A webhook removes Bob's grant; Zoom still lists it (the webhook was
	// wrong or undone): the next page must compare Bob again and bring it back.
	b := change(2500)
	b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: clarity.GrantKey("u2", g1)}}
	applyChange(t, s, b)
	take(t, pool)
	fourth := syncRun(t, s, pool, newRun("r4", 3000), nil,
		user(t, "u1", "alice@example.com", "Alice"), attr(t, "u1", "department", "Sales"), grant(t, "u1", g1),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantSet(t, fourth, ev("started", "sync r4"), "service_user_entitlement.created u2|"+g1, ev("completed", "sync r4"))
}

// TestStaleGrantOfDeletedEntitlement: a group deleted by a webhook while a
// full sync runs must not get grants back from a page read before the
// deletion, even for users who held none before.
func TestStaleGrantOfDeletedEntitlement(t *testing.T) {
	s, pool := newStore(t)
	g1 := clarity.GroupKey("g1")
	syncRun(t, s, pool, newRun("r1", 0), nil, group(t, "g1", "Sales"), user(t, "u1", "alice@example.com", "Alice"))

	run := newRun("r2", 1000)
	// The group is deleted at base+2000; the users page was read at
	// base+1100 (page() reads 100 ms after the run's start) and still lists
	// Alice in it.
	del := change(2000)
	del.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_ENTITLEMENT, Key: g1}}
	applyChange(t, s, del)
	applyPage(t, s, page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1)))
	wantLive(t, pool, uk("u1"))
}

// TestCompleteRunAfterFailedRun: a run that fails after comparing a user
// deletes nothing, and the next complete run, which finds the user
// unchanged since, still deletes what that user lost.
func TestCompleteRunAfterFailedRun(t *testing.T) {
	s, pool := newStore(t)
	g1, g2 := clarity.GroupKey("g1"), clarity.GroupKey("g2")
	syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), grant(t, "u1", g2))

	failed := newRun("r2", 1000)
	applyPage(t, s, page(failed, pb.Listing_LISTING_USERS_ACTIVE, 1, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1)))
	if err := s.Fail(context.Background(), tenant, connector, &pb.RunFailed{Run: failed, Error: "zoom refused"}); err != nil {
		t.Fatal(err)
	}
	evs := take(t, pool)
	wantTypes(t, evs, ev("started", "sync r2"), ev("failed", "sync r2"))
	wantLive(t, pool, uk("u1"), gk("u1", g1), gk("u1", g2))

	done := syncRun(t, s, pool, newRun("r3", 2000), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1))
	wantSet(t, done, ev("started", "sync r3"), "service_user_entitlement.deleted u1|"+g2, ev("completed", "sync r3"))
	wantLive(t, pool, uk("u1"), gk("u1", g1))
}

// TestRecordsBeforeTheirUser: a webhook may store a grant and an attribute
// of a user no page has listed yet. The user's first page then finds them:
// what it gives again is unchanged, what it no longer gives goes at the
// run's completion, and nothing is created twice.
func TestRecordsBeforeTheirUser(t *testing.T) {
	s, pool := newStore(t)
	g1, g2 := clarity.GroupKey("g1"), clarity.GroupKey("g2")
	applyChange(t, s, change(-5000, grant(t, "u1", g1), grant(t, "u1", g2), attr(t, "u1", "department", "Sales")))
	take(t, pool)

	evs := syncRun(t, s, pool, newRun("r1", 0), nil,
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), attr(t, "u1", "department", "Sales"),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1))
	wantTypes(t, evs, "sync.started r1",
		ev("created", uk("u1")),
		ev("created", uk("u2")), ev("created", gk("u2", g1)),
		ev("deleted", gk("u1", g2)),
		"sync.completed r1")
	wantLive(t, pool, ak("u1", "department"), gk("u1", g1), gk("u2", g1), uk("u1"), uk("u2"))
}

// TestRecordsOfUsersNotYetSeen: a webhook may give or delete records of a
// user no run has seen yet. The first page that lists the user creates it
// and leaves those records as the webhook left them: once, with the run's
// counts and events saying so.
func TestRecordsOfUsersNotYetSeen(t *testing.T) {
	s, pool := newStore(t)
	g1 := clarity.GroupKey("g1")
	applyChange(t, s, change(500, grant(t, "u1", g1), attr(t, "u1", "department", "Sales")))
	applyChange(t, s, del(2000, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey("u2", g1)))
	wantSet(t, take(t, pool), ev("created", gk("u1", g1)), ev("created", ak("u1", "department")))

	evs := syncRun(t, s, pool, newRun("r1", 1000), nil, group(t, "g1", "Sales"),
		user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), attr(t, "u1", "department", "Sales"),
		user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", g1),
		user(t, "u3", "carol@example.com", "Carol"), grant(t, "u3", g1))
	wantSet(t, evs, ev("started", "sync r1"), ev("created", ek(g1)), ev("created", uk("u1")), ev("created", uk("u2")),
		ev("created", uk("u3")), ev("created", gk("u3", g1)), ev("completed", "sync r1"))
	if d := syncData(t, evs[len(evs)-1]); d.Stats.Created != 5 || d.Stats.Unchanged != 3 {
		t.Errorf("run: got %d created, %d unchanged, want 5 and 3", d.Stats.Created, d.Stats.Unchanged)
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
			`SELECT key, (ctid::text::point)[0]::text FROM records WHERE kind = 1`)
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
	wantTypes(t, evs, ev("started", "sync r2"), ev("completed", "sync r2"))
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
