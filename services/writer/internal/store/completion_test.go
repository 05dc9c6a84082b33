package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

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
