package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

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
