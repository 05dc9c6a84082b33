package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// outboxRows returns the number of outbox rows and the most changes one holds.
func outboxRows(t testing.TB, pool *pgxpool.Pool) (rows, most int) {
	t.Helper()
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*), COALESCE(max(last_seq - first_seq + 1), 0) FROM outbox`).Scan(&rows, &most); err != nil {
		t.Fatal(err)
	}
	return rows, most
}

// wantSequence checks that the connector's sequence stands at the last of
// evs: the next transaction numbers its changes after them.
func wantSequence(t testing.TB, pool *pgxpool.Pool, evs []event) {
	t.Helper()
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT seq FROM sequences`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if len(evs) > 0 && seq != evs[len(evs)-1].Seq {
		t.Errorf("got sequence %d, want %d, the last event's", seq, evs[len(evs)-1].Seq)
	}
}

// wantDependentsFirst checks that every deleted grant and attribute comes
// before the deletion of its user or entitlement, when that is deleted too.
func wantDependentsFirst(t testing.TB, evs []event) {
	t.Helper()
	at := map[string]int{}
	for i, e := range evs {
		if e.Op == clarity.OpDeleted {
			at[e.Kind+" "+e.Subject] = i
		}
	}
	for i, e := range evs {
		if e.Op != clarity.OpDeleted || (e.Kind != clarity.KindServiceUserEntitlement && e.Kind != clarity.KindServiceUserAttribute) {
			continue
		}
		user, rest, _ := strings.Cut(e.Subject, "|")
		owners := []string{clarity.KindServiceUser + " " + user}
		if e.Kind == clarity.KindServiceUserEntitlement {
			owners = append(owners, clarity.KindEntitlement+" "+rest)
		}
		for _, o := range owners {
			if j, ok := at[o]; ok && j < i {
				t.Errorf("event %s comes after the deletion of %s (%s)", e, o, evs[j])
			}
		}
	}
}

// A run completion that deletes much of the account, and a webhook that
// deletes an entitlement held by many, write their changes to several
// outbox rows of bounded size, in one gapless sequence, dependents first.
func TestDeletionsInChunks(t *testing.T) {
	t.Parallel()
	const spill = 20
	s, pool := newStore(t, store.Options{SpillAt: spill, UserChunk: 3, EntitlementChunk: 2})

	const n = 12
	var recs []*pb.Record
	for _, id := range []string{"g1", "g2", "g3", "big"} {
		recs = append(recs, group(t, id, strings.ToUpper(id)), groupAdmin(t, id, strings.ToUpper(id)))
	}
	for i := range n {
		id := fmt.Sprintf("u%02d", i)
		recs = append(recs, user(t, id, id+"@example.com", id),
			grant(t, id, "group:g1"), grant(t, id, "group:g3"), attr(t, id, "department", "Sales"))
	}
	admins := map[string][]string{"g1": {"u00@example.com", "u01@example.com"}, "g3": {"u02@example.com"}}
	first := syncRun(t, s, pool, newRun("r1", 0, "a"), admins, recs...)
	next := first[len(first)-1].Seq + 1

	// The second run sees u00, g1 and big, and u00 is still g1's admin.
	u00 := recs[8:12]
	if u00[0].Key != "u00" {
		t.Fatalf("test setup: got %s, want u00", u00[0].Key)
	}
	keep := append([]*pb.Record{group(t, "g1", "G1"), groupAdmin(t, "g1", "G1"), group(t, "big", "BIG"), groupAdmin(t, "big", "BIG")}, u00[:2]...)
	keep = append(keep, u00[3])
	run := newRun("r2", 10_000, "b")
	applyPage(t, s, page(run, usersActive, 1, keep...))
	applyPage(t, s, adminsPage(run, "g1", "u00@example.com"))
	applyPage(t, s, adminsPage(run, "g3"))
	markFetched(t, s, fetched(run, 3,
		listing{l: usersActive, pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g1", pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g3", pages: 1}))
	if !finalize(t, s, "r2") {
		if got := runStatus(t, pool, "r2"); got != store.RunCompleted {
			t.Fatalf("run r2: got status %q, want completed", got)
		}
	}
	rows, most := outboxRows(t, pool)
	evs := take(t, pool)
	var want []string
	for i := 1; i < n; i++ {
		id := fmt.Sprintf("u%02d", i)
		want = append(want, ev(clarity.OpDeleted, uk(id)), ev(clarity.OpDeleted, gk(id, "group:g1")),
			ev(clarity.OpDeleted, gk(id, "group:g3")), ev(clarity.OpDeleted, ak(id, "department")))
	}
	want = append(want,
		ev(clarity.OpDeleted, gk("u00", "group:g3")),                                                           // its entitlement goes
		ev(clarity.OpDeleted, gk("u01", "group_admin:g1")), ev(clarity.OpDeleted, gk("u02", "group_admin:g3")), // their users go
		ev(clarity.OpDeleted, ek("group:g2")), ev(clarity.OpDeleted, ek("group_admin:g2")),
		ev(clarity.OpDeleted, ek("group:g3")), ev(clarity.OpDeleted, ek("group_admin:g3")),
		"sync.started r2", "sync.completed r2")
	wantSet(t, evs, want...)
	wantSeqs(t, evs, next)
	wantDependentsFirst(t, evs)
	if len(evs) > 0 && evs[len(evs)-1].typ() != "sync.completed r2" {
		t.Errorf("got last event %s, want sync.completed r2", evs[len(evs)-1])
	}
	// The run's own transactions: its start, its page, then the completion
	// in several rows, each written once it holds spill changes or more, a
	// round of at most spill deletions at a time.
	if rows < 3 {
		t.Errorf("got %d outbox rows for %d changes, want the completion spread over several", rows, len(evs))
	}
	if limit := 2*spill - 1; most > limit {
		t.Errorf("got an outbox row of %d changes, want at most %d", most, limit)
	}
	wantSequence(t, pool, evs)
	wantLive(t, pool, uk("u00"), ek("group:g1"), ek("group_admin:g1"), ek("group:big"), ek("group_admin:big"),
		gk("u00", "group:g1"), ak("u00", "department"), gk("u00", "group_admin:g1"))

	// A webhook deletes an entitlement that many hold.
	var many []*pb.Record
	for i := range 3 * spill {
		id := fmt.Sprintf("m%03d", i)
		many = append(many, user(t, id, id+"@example.com", id), grant(t, id, "group:big"))
	}
	applyChange(t, s, change(20_000, many...))
	created := take(t, pool)
	wantSeqs(t, created, evs[len(evs)-1].Seq+1)
	b := change(30_000)
	b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:big"}}
	applyChange(t, s, b)
	rows, most = outboxRows(t, pool)
	evs = take(t, pool)
	want = []string{ev(clarity.OpDeleted, ek("group:big"))}
	for i := range 3 * spill {
		want = append(want, ev(clarity.OpDeleted, gk(fmt.Sprintf("m%03d", i), "group:big")))
	}
	wantSet(t, evs, want...)
	wantSeqs(t, evs, created[len(created)-1].Seq+1)
	wantSequence(t, pool, evs)
	wantDependentsFirst(t, evs)
	if len(evs) > 0 && evs[len(evs)-1].typ() != ev(clarity.OpDeleted, ek("group:big")) {
		t.Errorf("got last event %s, want the entitlement's deletion", evs[len(evs)-1])
	}
	if rows < 3 || most > spill {
		t.Errorf("got %d outbox rows of at most %d changes, want at least 3 of at most %d", rows, most, spill)
	}
}

// A run after which many users lost attributes deletes those stale
// attributes in several chunks, and keeps what it saw, whether it probes
// each user's records or hashes them.
func TestStaleRecordsInChunks(t *testing.T) {
	t.Parallel()
	const spill = 20
	for name, probe := range map[string]int64{"probed": 1000, "hashed": 1} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			staleRecordsInChunks(t, store.Options{SpillAt: spill, UserChunk: 3, EntitlementChunk: 2, ProbeUsers: probe})
		})
	}
}

func staleRecordsInChunks(t *testing.T, opts store.Options) {
	spill := opts.SpillAt
	s, pool := newStore(t, opts)

	n := 3 * spill
	var before, after []*pb.Record
	var want, live []string
	for i := range n {
		id := fmt.Sprintf("u%02d", i)
		before = append(before, user(t, id, id+"@example.com", id), grant(t, id, "group:g1"), attr(t, id, "department", "Sales"))
		after = append(after, user(t, id, id+"@example.com", id+" renamed"), grant(t, id, "group:g1"))
		want = append(want, ev(clarity.OpUpdated, uk(id)), ev(clarity.OpDeleted, ak(id, "department")))
		live = append(live, uk(id), gk(id, "group:g1"))
	}
	g1 := group(t, "g1", "G1")
	first := syncRun(t, s, pool, newRun("r1", 0, "a"), nil, append(before, g1)...)
	run := newRun("r2", 10_000, "b")
	applyPage(t, s, page(run, usersActive, 1, append(after, g1)...))
	take(t, pool) // the run's start and the page's updates
	markFetched(t, s, fetched(run, 3, listing{l: usersActive, pages: 1}))
	if !finalize(t, s, "r2") {
		t.Fatal("finalize r2: got not completed, want completed")
	}
	rows, most := outboxRows(t, pool)
	evs := take(t, pool)
	var deleted []string
	for _, w := range want {
		if strings.Contains(w, ".deleted ") {
			deleted = append(deleted, w)
		}
	}
	wantSet(t, evs, append(deleted, "sync.completed r2")...)
	wantSeqs(t, evs, first[len(first)-1].Seq+1+int64(n)+1) // after r1, r2's start and its n updates
	wantSequence(t, pool, evs)
	if rows < 3 || most > 2*spill-1 {
		t.Errorf("got the completion in %d outbox rows of at most %d changes, want at least 3 of at most %d", rows, most, 2*spill-1)
	}
	wantLive(t, pool, append(live, ek("group:g1"))...)
}
