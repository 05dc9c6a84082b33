package runstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// conn is the connector whose runs the tests claim.
var conn = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// openStore starts a JetStream server and opens the run-state bucket on it.
func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), natstest.JetStream(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claim(t testing.TB, s *Store, seq uint64, requestID string) (Decision, State, uint64) {
	t.Helper()
	d, st, rev, err := s.Claim(context.Background(), conn, seq, requestID, "full")
	if err != nil {
		t.Fatalf("claim of trigger %d: %v", seq, err)
	}
	return d, st, rev
}

// name names a decision in failure messages.
func name(d Decision) string {
	switch d {
	case Coalesced:
		return "Coalesced"
	case Start:
		return "Start"
	case Resume:
		return "Resume"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

func TestClaim(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }

	d, first, rev := claim(t, s, 1, "a")
	if d != Start {
		t.Fatalf("first trigger: got %s, want Start", name(d))
	}
	if first.RunID == "" || !first.Active || first.Attempt != 1 || first.TriggerSeq != 1 || first.Mode != "full" ||
		first.StartedAtMs != clock.UnixMilli() || !slices.Equal(first.RequestIDs, []string{"a"}) {
		t.Errorf("got state %+v, want an active run of trigger 1, attempt 1, started now, request a", first)
	}

	steps := []struct {
		name         string
		seq          uint64
		request      string
		want         Decision
		wantRequests []string
		wantAttempt  int
	}{
		{"another trigger joins", 2, "b", Coalesced, []string{"a", "b"}, 1},
		{"its redelivery", 2, "b", Coalesced, []string{"a", "b"}, 1},
		{"a trigger with a known request id", 3, "a", Coalesced, []string{"a", "b"}, 1},
		{"a trigger without request id", 4, "", Coalesced, []string{"a", "b"}, 1},
		{"the run's own trigger again", 1, "a", Resume, []string{"a", "b"}, 2},
		{"and once more", 1, "a", Resume, []string{"a", "b"}, 3},
	}
	for _, st := range steps {
		d, got, r := claim(t, s, st.seq, st.request)
		if d != st.want {
			t.Errorf("%s: got %s, want %s", st.name, name(d), name(st.want))
		}
		if got.RunID != first.RunID || got.StartedAtMs != first.StartedAtMs || !got.Active || got.TriggerSeq != 1 {
			t.Errorf("%s: got state %+v, want the run of trigger 1", st.name, got)
		}
		if !slices.Equal(got.RequestIDs, st.wantRequests) {
			t.Errorf("%s: got request ids %q, want %q", st.name, got.RequestIDs, st.wantRequests)
		}
		if got.Attempt != st.wantAttempt {
			t.Errorf("%s: got attempt %d, want %d", st.name, got.Attempt, st.wantAttempt)
		}
		cur, curRev, err := s.Current(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if r != curRev || !slices.Equal(cur.RequestIDs, got.RequestIDs) || cur.Attempt != got.Attempt {
			t.Errorf("%s: got stored %+v at revision %d, want %+v at revision %d", st.name, cur, curRev, got, r)
		}
		rev = r
	}

	// The clock stepped back: the next run still gets a later generation.
	s.now = func() time.Time { return clock.Add(-time.Hour) }
	if err := s.Close(ctx, conn, first, rev); err != nil {
		t.Fatalf("close at the current revision: %v", err)
	}
	d, next, _ := claim(t, s, 5, "c")
	if d != Start {
		t.Fatalf("trigger after close: got %s, want Start", name(d))
	}
	if next.RunID == first.RunID || next.StartedAtMs <= first.StartedAtMs || !slices.Equal(next.RequestIDs, []string{"c"}) || next.Attempt != 1 {
		t.Errorf("got state %+v, want a new run after %d with request c", next, first.StartedAtMs)
	}
}

func TestCloseWithStaleRevision(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	_, st, rev := claim(t, s, 1, "a")
	// A trigger joins while the run finishes: the run must not close
	// without serving it.
	_, joined, newRev := claim(t, s, 2, "b")
	if err := s.Close(ctx, conn, st, rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("close at a stale revision: got %v, want ErrConflict", err)
	}
	cur, _, err := s.Current(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !cur.Active || !slices.Equal(cur.RequestIDs, []string{"a", "b"}) {
		t.Errorf("got state %+v after a failed close, want the active run with requests a and b", cur)
	}
	if _, err := s.Update(ctx, conn, st, rev); !errors.Is(err, ErrConflict) {
		t.Errorf("update at a stale revision: got %v, want ErrConflict", err)
	}
	if err := s.Close(ctx, conn, joined, newRev); err != nil {
		t.Fatalf("close at the current revision: %v", err)
	}
	if cur, _, _ := s.Current(ctx, conn); cur.Active {
		t.Errorf("got state %+v after close, want inactive", cur)
	}
}

func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	const n = 8
	type result struct {
		d   Decision
		st  State
		err error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, st, _, err := s.Claim(context.Background(), conn, uint64(i+1), fmt.Sprintf("req-%d", i), "full")
			results[i] = result{d, st, err}
		}()
	}
	close(start)
	wg.Wait()

	starts := 0
	var runID string
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("claim %d: %v", i, r.err)
		}
		if r.d == Start {
			starts++
		} else if r.d != Coalesced {
			t.Errorf("claim %d: got %s, want Start or Coalesced", i, name(r.d))
		}
		if runID == "" {
			runID = r.st.RunID
		}
		if r.st.RunID != runID {
			t.Errorf("claim %d: got run %s, want every claim on run %s", i, r.st.RunID, runID)
		}
	}
	if starts != 1 {
		t.Errorf("got %d Start decisions, want exactly 1", starts)
	}
	cur, _, err := s.Current(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(cur.RequestIDs))
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("req-%d", i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got request ids %q, want every trigger's once: %q", got, want)
	}
}

func TestUnreadableStateIsReplaced(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	if _, err := s.kv.Put(ctx, conn.Key(), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := claim(t, s, 1, "a"); d != Start {
		t.Errorf("got %s, want Start", name(d))
	}
}

// TestLateRedeliveryIsServed: a delivery of a trigger whose run has ended
// (it was handed back while another delivery finished the run) starts no
// second run; a new trigger does.
func TestLateRedeliveryIsServed(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	ctx := context.Background()
	_, st, rev := claim(t, s, 7, "a")
	if err := s.Close(ctx, conn, st, rev); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := claim(t, s, 7, "a"); d != Served {
		t.Errorf("late redelivery of trigger 7: got decision %v, want Served", d)
	}
	if d, next, _ := claim(t, s, 8, "b"); d != Start || next.RunID == st.RunID {
		t.Errorf("new trigger 8: got decision %v run %s, want Start of a new run", d, next.RunID)
	}
}

// TestOrphanedRun: a run whose trigger left the trigger stream without the
// run being closed (its handler dead-lettered it) is driven by nobody: the
// next trigger starts a new run instead of joining it for good. While the
// trigger is still there, triggers join the run as before.
func TestOrphanedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	s, err := Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	trigger := func() uint64 {
		ack, err := js.Publish(ctx, pipeline.SyncSubject(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	first := trigger()
	d, run, _ := claim(t, s, first, "a")
	if d != Start {
		t.Fatalf("first trigger: got %s, want Start", name(d))
	}
	if d, st, _ := claim(t, s, trigger(), "b"); d != Coalesced || st.RunID != run.RunID {
		t.Fatalf("a trigger while the run's own is pending: got %s of run %s, want Coalesced into %s", name(d), st.RunID, run.RunID)
	}

	// The run's trigger is dead-lettered: acknowledged and gone.
	stream, err := js.Stream(ctx, pipeline.StreamSync)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, first); err != nil {
		t.Fatal(err)
	}
	d, next, _ := claim(t, s, trigger(), "c")
	if d != Start || next.RunID == run.RunID || !next.Active || !slices.Equal(next.RequestIDs, []string{"c"}) {
		t.Fatalf("a trigger after the run's own left: got %s, state %+v; want Start of a new run for c", name(d), next)
	}
}
