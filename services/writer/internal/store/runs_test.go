package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

const (
	usersActive = pb.Listing_LISTING_USERS_ACTIVE
	groups      = pb.Listing_LISTING_GROUPS
)

func TestApplyPageCreatesRecordsAndOutboxInOrder(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0, "req-1")
	recs := []*pb.Record{
		user(t, "u1", "alice@example.com", "Alice"),
		user(t, "u2", "bob@example.com", "Bob"),
		group(t, "g1", "Sales"),
		grant(t, "u1", "group:g1"),
		attr(t, "u1", "department", "Sales"),
	}
	applyPage(t, s, page(run, usersActive, 1, recs...))

	evs := take(t, pool)
	wantTypes(t, evs,
		"sync.started r1",
		ev(clarity.OpCreated, uk("u1")),
		ev(clarity.OpCreated, uk("u2")),
		ev(clarity.OpCreated, ek("group:g1")),
		ev(clarity.OpCreated, gk("u1", "group:g1")),
		ev(clarity.OpCreated, ak("u1", "department")),
	)
	wantSeqs(t, evs, 1)
	for i, r := range recs {
		if i+1 >= len(evs) {
			break
		}
		if got, want := evs[i+1].Data, string(r.Data); got != want {
			t.Errorf("event %s: got data %s, want %s", evs[i+1], got, want)
		}
	}
	if len(evs) > 0 {
		d := syncData(t, evs[0])
		if d.RunID != "r1" || d.RequestID != "req-1" || !slices.Equal(d.RequestIDs, []string{"req-1"}) || d.Mode != "full" {
			t.Errorf("got sync.started data %+v, want run r1, request req-1, mode full", d)
		}
		if want := time.UnixMilli(run.StartedAtMs).UTC().Format(time.RFC3339Nano); d.StartedAt != want {
			t.Errorf("got started_at %q, want %q", d.StartedAt, want)
		}
		if d.FinishedAt != "" {
			t.Errorf("got finished_at %q on sync.started, want none", d.FinishedAt)
		}
	}
	got := live(t, pool)
	for _, r := range recs {
		k := store.KindName(r.Kind) + " " + r.Key
		if got[k] != string(r.Data) {
			t.Errorf("record %s: got data %q, want %s", k, got[k], r.Data)
		}
	}
	if len(got) != len(recs) {
		t.Errorf("got %d live records, want %d", len(got), len(recs))
	}
}

// snapshot is every stored row of records and the connector's sequence, to
// show that an operation changed nothing.
func snapshot(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT format('%s|%s|%s|%s|%s|%s|%s', kind, key, data::text, encode(hash, 'hex'), seen_at, version, deleted)
		FROM records ORDER BY kind, key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT COALESCE(max(seq), 0) FROM sequences`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return append(out, fmt.Sprintf("seq=%d", seq))
}

func TestApplyPageAgain(t *testing.T) {
	t.Parallel()
	alice := func(t testing.TB) *pb.Record { return user(t, "u1", "alice@example.com", "Alice") }
	tests := []struct {
		name string
		// second returns the batch applied after page 1 of run r1 (alice, g1).
		second func(t testing.TB, run *pb.Run) *pb.RecordBatch
		want   []string
		// wantData is alice afterwards, when the second batch changed anything.
		wantData *pb.Record
	}{
		{
			name: "same page redelivered",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				return page(run, usersActive, 1, alice(t), group(t, "g1", "Sales"))
			},
		},
		{
			name: "same records on another page",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				return page(run, groups, 1, group(t, "g1", "Sales"))
			},
		},
		{
			name: "changed record",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				b := page(run, usersActive, 2, user(t, "u1", "alice@example.com", "Alicia"))
				b.VersionMs += 50
				return b
			},
			want:     []string{ev(clarity.OpUpdated, uk("u1"))},
			wantData: user(t, "u1", "alice@example.com", "Alicia"),
		},
		{
			name: "changed record in a later run",
			second: func(t testing.TB, _ *pb.Run) *pb.RecordBatch {
				return page(newRun("r2", 1000), usersActive, 1, user(t, "u1", "alice@example.com", "Alicia"))
			},
			want:     []string{"sync.started r2", ev(clarity.OpUpdated, uk("u1"))},
			wantData: user(t, "u1", "alice@example.com", "Alicia"),
		},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			run := newRun("r1", 0)
			applyPage(t, s, page(run, usersActive, 1, alice(t), group(t, "g1", "Sales")))
			first := take(t, pool)
			before := snapshot(t, pool)

			applyPage(t, s, tt.second(t, run))
			evs := take(t, pool)
			wantTypes(t, evs, tt.want...)
			wantSeqs(t, evs, int64(len(first))+1)
			if tt.want == nil {
				if after := snapshot(t, pool); !slices.Equal(after, before) {
					t.Errorf("got stored state\n\t%v\nwant it unchanged\n\t%v", after, before)
				}
				return
			}
			got := live(t, pool)[uk("u1")]
			if got != string(tt.wantData.Data) {
				t.Errorf("got alice %s, want %s", got, tt.wantData.Data)
			}
			for _, e := range evs {
				if e.Op == clarity.OpUpdated && e.Data != string(tt.wantData.Data) {
					t.Errorf("event %s: got data %s, want the full new data %s", e, e.Data, tt.wantData.Data)
				}
			}
		})
	}
}

func TestFinalize(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	bobGrant := grant(t, "u2", "group:g1")
	bobDept := attr(t, "u2", "department", "Sales")
	first := syncRun(t, s, pool, newRun("r1", 0, "a"), nil,
		alice, bob, group(t, "g1", "Sales"),
		grant(t, "u1", "group:g1"), bobGrant,
		attr(t, "u1", "department", "Sales"), bobDept)
	next := int64(len(first)) + 1

	run := newRun("r2", 10_000, "b")
	applyPage(t, s, page(run, usersActive, 1, alice, group(t, "g1", "Sales"), grant(t, "u1", "group:g1"), attr(t, "u1", "department", "Sales")))
	if finalize(t, s, "r2") {
		t.Fatal("finalize before the manifest: got completed, want nothing")
	}
	// The fetcher served a second trigger meanwhile.
	run.RequestIds = []string{"b", "c"}
	markFetched(t, s, fetched(run, 7,
		listing{l: usersActive, pages: 2},
		listing{l: groups, pages: 0}))
	if finalize(t, s, "r2") {
		t.Fatal("finalize with page 2 missing: got completed, want nothing")
	}
	evs := take(t, pool)
	wantTypes(t, evs, "sync.started r2")
	wantSeqs(t, evs, next)
	next += int64(len(evs))
	if got := runStatus(t, pool, "r2"); got != store.RunRunning {
		t.Errorf("got run status %q before its last page, want %q", got, store.RunRunning)
	}
	wantLive(t, pool, uk("u1"), uk("u2"), ek("group:g1"), gk("u1", "group:g1"), gk("u2", "group:g1"),
		ak("u1", "department"), ak("u2", "department"))

	carol := user(t, "u3", "carol@example.com", "Carol")
	// The last page completes the fetched run itself; finalizing again does nothing.
	applyPage(t, s, page(run, usersActive, 2, carol))
	if got := runStatus(t, pool, "r2"); got != store.RunCompleted {
		t.Fatalf("after every page and the manifest: got run status %q, want %q", got, store.RunCompleted)
	}
	if finalize(t, s, "r2") {
		t.Fatal("finalize of a completed run: got completed again, want nothing")
	}
	evs = take(t, pool)
	wantTypes(t, evs,
		ev(clarity.OpCreated, uk("u3")),
		// Dependents go before what they depend on.
		ev(clarity.OpDeleted, ak("u2", "department")),
		ev(clarity.OpDeleted, gk("u2", "group:g1")),
		ev(clarity.OpDeleted, uk("u2")),
		"sync.completed r2",
	)
	wantSeqs(t, evs, next)
	lastData := map[string]string{
		ev(clarity.OpDeleted, uk("u2")):               string(bob.Data),
		ev(clarity.OpDeleted, gk("u2", "group:g1")):   string(bobGrant.Data),
		ev(clarity.OpDeleted, ak("u2", "department")): string(bobDept.Data),
	}
	for _, e := range evs {
		if want, ok := lastData[e.typ()]; ok && e.Data != want {
			t.Errorf("event %s: got data %s, want the last data %s", e, e.Data, want)
		}
	}
	if len(evs) > 0 {
		d := syncData(t, evs[len(evs)-1])
		want := clarity.SyncStats{Created: 1, Updated: 0, Deleted: 3, Unchanged: 4, APIRequests: 7}
		if d.Stats != want {
			t.Errorf("got stats %+v, want %+v", d.Stats, want)
		}
		if !slices.Equal(d.RequestIDs, []string{"b", "c"}) || d.RequestID != "b" {
			t.Errorf("got request_id %q, request_ids %q, want b and [b c]", d.RequestID, d.RequestIDs)
		}
		if d.RunID != "r2" || d.Mode != "full" || d.FinishedAt == "" || d.Error != "" {
			t.Errorf("got sync.completed data %+v, want run r2, mode full, a finish time, no error", d)
		}
	}
	wantLive(t, pool, uk("u1"), uk("u3"), ek("group:g1"), gk("u1", "group:g1"), ak("u1", "department"))
	if got := runStatus(t, pool, "r2"); got != store.RunCompleted {
		t.Errorf("got run status %q, want %q", got, store.RunCompleted)
	}

	// Late copies of what completed the run change nothing.
	if finalize(t, s, "r2") {
		t.Error("second finalize: got completed, want nothing")
	}
	markFetched(t, s, fetched(run, 7, listing{l: usersActive, pages: 2}))
	if finalize(t, s, "r2") {
		t.Error("finalize after a redelivered manifest: got completed, want nothing")
	}
	if finalize(t, s, "no-such-run") {
		t.Error("finalize of an unknown run: got completed, want nothing")
	}
	wantTypes(t, take(t, pool))
}

func TestFailDeletesNothing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	syncRun(t, s, pool, newRun("r1", 0), nil, user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"))

	run := newRun("r2", 10_000, "x")
	applyPage(t, s, page(run, usersActive, 1, user(t, "u1", "alice@example.com", "Alice")))
	markFetched(t, s, fetched(run, 4, listing{l: usersActive, pages: 2}))
	run.RequestIds = []string{"x", "y"}
	if err := s.Fail(ctx, ref, &pb.RunFailed{Run: run, Error: "zoom: 500", ApiRequests: 5}); err != nil {
		t.Fatal(err)
	}
	evs := take(t, pool)
	wantTypes(t, evs, "sync.started r2", "sync.failed r2")
	if len(evs) == 2 {
		d := syncData(t, evs[1])
		if d.Error != "zoom: 500" || d.Stats.APIRequests != 5 || d.Stats.Deleted != 0 || d.Stats.Unchanged != 1 ||
			!slices.Equal(d.RequestIDs, []string{"x", "y"}) || d.FinishedAt == "" {
			t.Errorf("got sync.failed data %+v, want error, 5 requests, 1 unchanged, nothing deleted, request ids x y", d)
		}
	}
	wantLive(t, pool, uk("u1"), uk("u2"))
	if got := runStatus(t, pool, "r2"); got != store.RunFailed {
		t.Errorf("got run status %q, want %q", got, store.RunFailed)
	}
}

func TestEndedRunIgnoresInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(t testing.TB, s *store.Store, run *pb.Run)
	}{
		{"completed", func(t testing.TB, s *store.Store, run *pb.Run) {
			markFetched(t, s, fetched(run, 1, listing{l: usersActive, pages: 1}))
			if !finalize(t, s, run.RunId) {
				t.Fatal("got not completed, want completed")
			}
		}},
		{"failed", func(t testing.TB, s *store.Store, run *pb.Run) {
			if err := s.Fail(context.Background(), ref, &pb.RunFailed{Run: run, Error: "boom"}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			ctx := context.Background()
			run := newRun("r1", 0)
			applyPage(t, s, page(run, usersActive, 1, user(t, "u1", "alice@example.com", "Alice")))
			tt.end(t, s, run)
			take(t, pool)
			before := snapshot(t, pool)

			// A late page, a page of a pass never announced, the manifest
			// again and a failure: none changes the outcome.
			applyPage(t, s, page(run, usersActive, 2, user(t, "u2", "bob@example.com", "Bob")))
			applyPage(t, s, page(run, usersActive, 1, user(t, "u1", "alice@example.com", "Alicia")))
			markFetched(t, s, fetched(run, 1, listing{l: usersActive, pages: 2}))
			if finalize(t, s, "r1") {
				t.Error("finalize of an ended run: got completed, want nothing")
			}
			if err := s.Fail(ctx, ref, &pb.RunFailed{Run: run, Error: "late"}); err != nil {
				t.Fatal(err)
			}
			if err := s.StartRun(ctx, ref, run); err != nil {
				t.Fatal(err)
			}
			wantTypes(t, take(t, pool))
			if after := snapshot(t, pool); !slices.Equal(after, before) {
				t.Errorf("got stored state\n\t%v\nwant it unchanged\n\t%v", after, before)
			}
			if got, want := runStatus(t, pool, "r1"), tt.name; got != want {
				t.Errorf("got run status %q, want %q", got, want)
			}
		})
	}
}

func TestPasses(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	pass := func(p int32, n int32, recs ...*pb.Record) *pb.RecordBatch {
		b := page(run, usersActive, n, recs...)
		b.Ref.Pass = p
		return b
	}
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	// Pass 0 got through two pages before Zoom rejected its page token;
	// pass 1 lists everything again.
	applyPage(t, s, pass(0, 1, alice))
	applyPage(t, s, pass(0, 2, bob))
	applyPage(t, s, pass(1, 1, alice))
	markFetched(t, s, fetched(run, 5, listing{l: usersActive, pages: 2, pass: 1}))
	if finalize(t, s, "r1") {
		t.Fatal("finalize with page 2 of pass 1 missing: got completed (page 2 of pass 0 counted), want nothing")
	}
	if got := runStatus(t, pool, "r1"); got != store.RunRunning {
		t.Fatalf("got run status %q, want %q", got, store.RunRunning)
	}
	applyPage(t, s, pass(1, 2, bob))
	if got := runStatus(t, pool, "r1"); got != store.RunCompleted {
		t.Fatalf("after every page of pass 1: got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	wantTypes(t, evs, "sync.started r1", ev(clarity.OpCreated, uk("u1")), ev(clarity.OpCreated, uk("u2")), "sync.completed r1")
	wantLive(t, pool, uk("u1"), uk("u2"))
}

func TestRunStatsCountEachPageOnce(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	syncRun(t, s, pool, newRun("r1", 0), nil, user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"))

	run := newRun("r2", 10_000)
	p1 := page(run, usersActive, 1, user(t, "u1", "alice@example.com", "Alicia"), user(t, "u3", "carol@example.com", "Carol"))
	p2 := page(run, usersActive, 2, user(t, "u2", "bob@example.com", "Bob"))
	// Each page is delivered twice (the ack of the first delivery was lost).
	for _, p := range []*pb.RecordBatch{p1, p1, p2, p2} {
		applyPage(t, s, p)
	}
	markFetched(t, s, fetched(run, 2, listing{l: usersActive, pages: 2}))
	if !finalize(t, s, "r2") {
		t.Fatal("got not completed, want completed")
	}
	evs := take(t, pool)
	if len(evs) == 0 {
		t.Fatal("got no events")
	}
	d := syncData(t, evs[len(evs)-1])
	want := clarity.SyncStats{Created: 1, Updated: 1, Deleted: 0, Unchanged: 1, APIRequests: 2}
	if d.Stats != want {
		t.Errorf("got stats %+v, want %+v (each page counted once)", d.Stats, want)
	}
}

func TestGroupAdminGrants(t *testing.T) {
	t.Parallel()
	admin := clarity.GroupAdminKey("g1")
	tests := []struct {
		name      string
		userEmail string
		admins    []string
		want      []string // grant owners
	}{
		{"same email", "alice@example.com", []string{"alice@example.com"}, []string{"u1"}},
		{"email in another case", "Alice@Example.COM", []string{"alice@example.com"}, []string{"u1"}},
		{"admin listed in upper case", "alice@example.com", []string{"ALICE@EXAMPLE.COM"}, []string{"u1"}},
		{"email of no user", "alice@example.com", []string{"carol@example.com"}, nil},
		{"one of two", "alice@example.com", []string{"carol@example.com", "bob@example.com"}, []string{"u2"}},
		{"no admins", "alice@example.com", nil, nil},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			evs := syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": tt.admins},
				user(t, "u1", tt.userEmail, "Alice"), user(t, "u2", "bob@example.com", "Bob"),
				group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales"))
			var want []string
			for _, u := range tt.want {
				want = append(want, ev(clarity.OpCreated, gk(u, admin)))
			}
			var got []event
			for _, e := range evs {
				if e.Kind == clarity.KindServiceUserEntitlement {
					got = append(got, e)
				}
			}
			wantSet(t, got, want...)
			for _, e := range got {
				var g clarity.Grant
				if err := json.Unmarshal([]byte(e.Data), &g); err != nil || g.EntitlementID != admin || clarity.GrantKey(g.UserID, g.EntitlementID) != e.Subject {
					t.Errorf("event %s: got data %s, want a grant of %s matching its subject", e, e.Data, admin)
				}
			}
		})
	}
}

func TestGroupAdminGrantsFollowListing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	ents := []*pb.Record{group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales")}
	admin := clarity.GroupAdminKey("g1")
	all := append([]*pb.Record{alice, bob}, ents...)

	syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": {"alice@example.com"}}, all...)
	wantLive(t, pool, uk("u1"), uk("u2"), ek("group:g1"), ek(admin), gk("u1", admin))

	steps := []struct {
		name   string
		admins []string
		recs   []*pb.Record
		want   []string
	}{
		{"unchanged", []string{"alice@example.com"}, all, []string{"sync.started r2", "sync.completed r2"}},
		{"admin changes", []string{"bob@example.com"}, all, []string{"sync.started r3", ev(clarity.OpCreated, gk("u2", admin)), ev(clarity.OpDeleted, gk("u1", admin)), "sync.completed r3"}},
		// Bob is gone from Zoom, yet the admin listing still names him: his
		// grant goes with him, none dangles.
		{"admin user gone", []string{"bob@example.com"}, append([]*pb.Record{alice}, ents...), []string{"sync.started r4", ev(clarity.OpDeleted, gk("u2", admin)), ev(clarity.OpDeleted, uk("u2")), "sync.completed r4"}},
		{"no admin", nil, append([]*pb.Record{alice}, ents...), []string{"sync.started r5", "sync.completed r5"}},
	}
	for i, st := range steps {
		run := newRun(fmt.Sprintf("r%d", i+2), int64(i+1)*10_000)
		evs := syncRun(t, s, pool, run, map[string][]string{"g1": st.admins}, st.recs...)
		t.Logf("step %q", st.name)
		wantTypes(t, evs, st.want...)
		if i == 0 && len(evs) > 0 {
			// Users, entitlements and the derived grant, each once.
			want := clarity.SyncStats{Unchanged: 5, APIRequests: 3}
			if got := syncData(t, evs[len(evs)-1]).Stats; got != want {
				t.Errorf("got stats %+v, want %+v", got, want)
			}
		}
	}
	wantLive(t, pool, uk("u1"), ek("group:g1"), ek(admin))
}

func TestWebhookNewerThanRunSurvivesFinalize(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	syncRun(t, s, pool, newRun("r1", 0), nil, alice, bob)

	run := newRun("r2", 10_000)
	if err := s.StartRun(ctx, ref, run); err != nil {
		t.Fatal(err)
	}
	// Webhooks after the run began, and after its page was fetched (at
	// 10_100): alice renamed, carol created, bob deleted.
	alicia := user(t, "u1", "alice@example.com", "Alicia")
	carol := user(t, "u3", "carol@example.com", "Carol")
	applyChange(t, s, change(10_200, alicia, carol))
	applyChange(t, s, &pb.RecordBatch{VersionMs: base + 10_300, Deletes: []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: "u2"}}})
	wantTypes(t, take(t, pool), "sync.started r2", ev(clarity.OpUpdated, uk("u1")), ev(clarity.OpCreated, uk("u3")), ev(clarity.OpDeleted, uk("u2")))

	// The run's page shows Zoom as it was before those events.
	applyPage(t, s, page(run, usersActive, 1, alice, bob))
	markFetched(t, s, fetched(run, 1, listing{l: usersActive, pages: 1}))
	if !finalize(t, s, "r2") {
		t.Fatal("got not completed, want completed")
	}
	wantTypes(t, take(t, pool), "sync.completed r2")
	got := live(t, pool)
	if got[uk("u1")] != string(alicia.Data) {
		t.Errorf("got alice %s, want the webhook's %s", got[uk("u1")], alicia.Data)
	}
	wantLive(t, pool, uk("u1"), uk("u3"))

	// The next run, which saw neither carol nor bob, does delete carol.
	evs := syncRun(t, s, pool, newRun("r3", 20_000), nil, alicia)
	wantTypes(t, evs, "sync.started r3", ev(clarity.OpDeleted, uk("u3")), "sync.completed r3")
}

func TestConcurrentPagesGetGaplessSequences(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	const workers, pages, perPage = 2, 15, 4
	batches := make([][]*pb.RecordBatch, workers)
	for w := range workers {
		for p := range pages {
			var recs []*pb.Record
			for i := range perPage {
				id := fmt.Sprintf("u-%d-%d-%d", w, p, i)
				recs = append(recs, user(t, id, id+"@example.com", id))
			}
			batches[w] = append(batches[w], page(run, pb.Listing(w+1), int32(p+1), recs...))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*pages)
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, b := range batches[w] {
				if err := s.ApplyPage(context.Background(), ref, b); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := take(t, pool)
	if got, want := len(evs), 1+workers*pages*perPage; got != want {
		t.Errorf("got %d events, want %d", got, want)
	}
	wantSeqs(t, evs, 1)
	subjects := map[string]bool{}
	for _, e := range evs {
		if subjects[e.typ()] {
			t.Errorf("got event %s twice", e)
		}
		subjects[e.typ()] = true
	}
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT seq FROM sequences`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(evs)); seq != want {
		t.Errorf("got connector sequence %d, want %d", seq, want)
	}
}

func TestFailStalled(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	syncRun(t, s, pool, newRun("r0", 0), nil, user(t, "u1", "alice@example.com", "Alice"))

	stalled := newRun("stalled", 10_000, "q")
	applyPage(t, s, page(stalled, usersActive, 1))
	fresh := newRun("fresh", 20_000)
	applyPage(t, s, page(fresh, usersActive, 1, user(t, "u1", "alice@example.com", "Alice")))
	otherConnector := newRun("other", 30_000)
	if err := s.StartRun(ctx, pipeline.ConnectorRef{Tenant: ref.Tenant, ID: "zoom2"}, otherConnector); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE runs SET progress_at = now() - interval '1 hour' WHERE run_id IN ('stalled', 'other', 'r0')`); err != nil {
		t.Fatal(err)
	}
	take(t, pool)

	n, err := s.FailStalled(ctx, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("got %d stalled runs failed, want 2", n)
	}
	evs := take(t, pool)
	wantSet(t, evs, "sync.failed stalled", "sync.failed other")
	for _, e := range evs {
		if d := syncData(t, e); d.Error == "" || d.FinishedAt == "" {
			t.Errorf("event %s: got data %+v, want an error and a finish time", e, d)
		}
	}
	for run, want := range map[string]string{"stalled": store.RunFailed, "other": store.RunFailed, "fresh": store.RunRunning, "r0": store.RunCompleted} {
		if got := runStatus(t, pool, run); got != want {
			t.Errorf("run %s: got status %q, want %q", run, got, want)
		}
	}
	wantLive(t, pool, uk("u1"))

	n, err = s.FailStalled(ctx, 10*time.Minute)
	if err != nil || n != 0 {
		t.Errorf("second call: got %d, %v, want 0, nil", n, err)
	}
	wantTypes(t, take(t, pool))
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	run := newRun("r1", 0)
	tests := []struct {
		name  string
		apply func() error
	}{
		{"page without reference", func() error {
			return s.ApplyPage(ctx, ref, &pb.RecordBatch{Run: run})
		}},
		{"page without run id", func() error {
			return s.ApplyPage(ctx, ref, page(&pb.Run{StartedAtMs: base}, usersActive, 1))
		}},
		{"page without start", func() error {
			return s.ApplyPage(ctx, ref, page(&pb.Run{RunId: "r9"}, usersActive, 1))
		}},
		{"record without key", func() error {
			return s.ApplyPage(ctx, ref, page(run, usersActive, 1, &pb.Record{Kind: pb.Kind_KIND_SERVICE_USER, Data: []byte(`{}`)}))
		}},
		{"record of no kind", func() error {
			return s.ApplyChange(ctx, ref, change(1, &pb.Record{Key: "k", Data: []byte(`{}`)}))
		}},
		{"change without time", func() error {
			return s.ApplyChange(ctx, ref, &pb.RecordBatch{Records: []*pb.Record{user(t, "u1", "a@b.c", "A")}})
		}},
		{"delete of no kind", func() error {
			return s.ApplyChange(ctx, ref, &pb.RecordBatch{VersionMs: base, Deletes: []*pb.RecordRef{{Key: "u1"}}})
		}},
	}
	for _, tt := range tests {
		if err := tt.apply(); !errors.Is(err, store.ErrBadBatch) {
			t.Errorf("%s: got error %v, want ErrBadBatch", tt.name, err)
		}
	}
}

// Pages of one run apply side by side. When they overlap (a user listed on
// several pages, a page delivered twice), the newest page wins whatever the
// order, every record is created once, and the page that is the last one
// missing completes the run, exactly once.
func TestConcurrentOverlappingPagesCompleteTheRun(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	const workers, pages, users = 4, 24, 200
	markFetched(t, s, fetched(run, 1, listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: pages}))
	batches := make(chan *pb.RecordBatch, 2*pages)
	for p := range int32(pages) {
		var recs []*pb.Record
		for i := range users {
			id := fmt.Sprintf("u%d", i)
			recs = append(recs, user(t, id, id+"@example.com", fmt.Sprintf("%s on page %d", id, p+1)),
				grant(t, id, "group:g1"), attr(t, id, "department", fmt.Sprintf("d%d", p+1)))
		}
		b := page(run, pb.Listing_LISTING_USERS_ACTIVE, p+1, recs...)
		b.VersionMs += int64(p) // later pages are newer
		batches <- b
		batches <- b // and each is delivered twice
	}
	close(batches)
	var wg sync.WaitGroup
	errs := make(chan error, 2*pages)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := s.ApplyPage(context.Background(), ref, b); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("apply page: %v", err)
	}
	if got := runStatus(t, pool, run.RunId); got != store.RunCompleted {
		t.Fatalf("got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	wantSeqs(t, evs, 1)
	if got := evs[len(evs)-1].typ(); got != "sync.completed r1" {
		t.Errorf("got last event %s, want sync.completed r1", got)
	}
	created := map[string]int{}
	lastData := map[string]string{}
	ends := 0
	for _, e := range evs {
		if e.Kind == clarity.KindSync {
			if e.Op != clarity.OpStarted {
				ends++
			}
			continue
		}
		k := e.Kind + " " + e.Subject
		if e.Op == clarity.OpCreated {
			created[k]++
		}
		lastData[k] = e.Data
	}
	if ends != 1 {
		t.Errorf("got %d run ends, want 1", ends)
	}
	stored := live(t, pool)
	if len(stored) != users*3 { // users, grants, attributes
		t.Errorf("got %d live records, want %d", len(stored), users*3)
	}
	for k, data := range stored {
		if created[k] != 1 {
			t.Errorf("%s: got %d created events, want 1", k, created[k])
		}
		if lastData[k] != data {
			t.Errorf("%s: got last event data %s, want the stored %s", k, lastData[k], data)
		}
	}
	if got, want := stored[uk("u0")], fmt.Sprintf("u0 on page %d", pages); !strings.Contains(got, want) {
		t.Errorf("got u0 %s, want the newest page's (%q)", got, want)
	}
	if got, want := stored[ak("u0", "department")], fmt.Sprintf(`"d%d"`, pages); !strings.Contains(got, want) {
		t.Errorf("got u0's department %s, want the newest page's (%s)", got, want)
	}
}

// A connector row without its sequence row (made by hand, say) gets one
// at its first change, and its events are numbered from 1.
func TestConnectorWithoutSequenceRow(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	if _, err := pool.Exec(context.Background(), `INSERT INTO connectors (tenant, connector) VALUES ($1, $2)`, ref.Tenant, ref.ID); err != nil {
		t.Fatal(err)
	}
	applyChange(t, s, change(0, user(t, "u1", "alice@example.com", "Alice")))
	evs := take(t, pool)
	wantTypes(t, evs, ev(clarity.OpCreated, uk("u1")))
	wantSeqs(t, evs, 1)
}

// TestBundledPages applies the group-admin pages of a run as one bundle: one
// transaction records every page, the same admin listed on two pages of a
// group counts once, and the bundle that completes the manifest completes
// the run.
func TestBundledPages(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	run := newRun("r1", 0)
	var ents []*pb.Record
	for _, g := range []string{"g1", "g2", "g3"} {
		ents = append(ents, group(t, g, "Group "+g), groupAdmin(t, g, "Group "+g))
	}
	applyPage(t, s, page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, append([]*pb.Record{
		user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"),
		user(t, "u3", "carol@example.com", "Carol")}, ents...)...))
	markFetched(t, s, fetched(run, 5,
		listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g1", pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g2", pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g3", pages: 2}))
	take(t, pool)

	other := adminsPage(newRun("r0", -1), "g1", "bob@example.com")
	if err := s.ApplyPages(ctx, ref, []*pb.RecordBatch{adminsPage(run, "g1", "bob@example.com"), other}); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("bundle of two runs: got %v, want ErrBadBatch", err)
	}
	if err := s.ApplyPages(ctx, ref, nil); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("empty bundle: got %v, want ErrBadBatch", err)
	}
	if got := runStatus(t, pool, "r1"); got != store.RunRunning {
		t.Fatalf("after refused bundles: got run status %q, want %q", got, store.RunRunning)
	}

	g3p2 := adminsPage(run, "g3", "CAROL@example.com")
	g3p2.Ref.Page = 2
	bundle := []*pb.RecordBatch{
		adminsPage(run, "g1", "alice@example.com"),
		adminsPage(run, "g2", "bob@example.com", "Alice@Example.com"),
		adminsPage(run, "g3", "carol@example.com"),
		g3p2,
	}
	if err := s.ApplyPages(ctx, ref, bundle); err != nil {
		t.Fatalf("apply bundle: %v", err)
	}
	if got := runStatus(t, pool, "r1"); got != store.RunCompleted {
		t.Fatalf("after the bundle: got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	var grants []event
	for _, e := range evs {
		if e.Kind == clarity.KindServiceUserEntitlement {
			grants = append(grants, e)
		}
	}
	wantSet(t, grants,
		ev(clarity.OpCreated, gk("u1", clarity.GroupAdminKey("g1"))),
		ev(clarity.OpCreated, gk("u2", clarity.GroupAdminKey("g2"))),
		ev(clarity.OpCreated, gk("u1", clarity.GroupAdminKey("g2"))),
		ev(clarity.OpCreated, gk("u3", clarity.GroupAdminKey("g3"))))
	if last := evs[len(evs)-1]; last.typ() != "sync.completed r1" {
		t.Fatalf("last event: got %s, want sync.completed r1", last)
	}
}
