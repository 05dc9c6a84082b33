package runner_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// testBeat is how often the replicas' listers say they are alive: a
// listing round whose lister was silent for RoundBeatsMissed of these (1.5
// s) lost it.
const testBeat = 250 * time.Millisecond

// deadRoundSetup is an account of 2,000 users, the rounds' bucket and a
// replica maker whose batches would wait for a round's end far longer than
// the test runs: a batch served within the test did not wait for that
// fallback.
type deadRoundSetup struct {
	ctx    context.Context
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	sim    *zoomtest.Server
	active []string // active users spread over the account: a listing shows each
	pages  int      // one listing of active and inactive users
	newR   func() *runner.Runner
	// with makes a replica whose client is client(a new client).
	with func(client func(*zoom.Client) runner.Client) *runner.Runner
}

func newDeadRoundSetup(t *testing.T, seed int64) *deadRoundSetup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	js, kv, runs := roundStreams(ctx, t)
	org, sim := newSimulator(t, seed, zoomtest.Size{Users: 2000, Groups: 4, Roles: 4})
	newClient := func() *zoom.Client { return simClient(t, sim) }
	s := &deadRoundSetup{ctx: ctx, js: js, kv: kv, sim: sim}
	n := 0
	for _, u := range org.Users {
		if u.Status == "active" {
			if n%9 == 0 {
				s.active = append(s.active, u.ID)
			}
			n++
		}
	}
	if len(s.active) < 160 {
		t.Fatalf("%d active users picked, want 160", len(s.active))
	}
	for _, st := range []string{"active", "inactive"} {
		if err := newClient().Pages(ctx, zoom.UsersListing(st), func(zoom.RawPage) error { s.pages++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	s.with = func(client func(*zoom.Client) runner.Client) *runner.Runner {
		return runner.New(runner.Config{
			Runs:       runs,
			Syncer:     syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
			Clients:    runner.Fixed{conn: client(newClient())},
			Log:        zerolog.New(zerolog.NewTestWriter(t)),
			HintQuiet:  200 * time.Millisecond,
			HintRounds: kv, HintRoundGather: time.Second,
			// Far longer than the test's own timeout.
			HintRoundMaxWait: time.Hour,
			HintRoundBeat:    testBeat,
		})
	}
	s.newR = func() *runner.Runner {
		return s.with(func(c *zoom.Client) runner.Client { return c })
	}
	return s
}

// send hands hints about ids (version 1000 + index) to r, each in its own
// handler, and returns a wait for their outcomes.
func (s *deadRoundSetup) send(t *testing.T, ctx context.Context, r *runner.Runner, ids []string) func() []error {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		m := hintMsg(t, id, int64(1000+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.HandleHint(ctx, msgOf{m: m})
		}()
	}
	return func() []error { wg.Wait(); return errs }
}

// roundNow is the connector's current round as stored.
func (s *deadRoundSetup) roundNow(t *testing.T) (n int64, state string, wanted int) {
	t.Helper()
	r, err := readRound(s.ctx, s.kv)
	if err != nil {
		t.Fatal(err)
	}
	return r.N, r.State, r.Wanted
}

// waitRound waits until the current round is n, open, with wanted users.
func (s *deadRoundSetup) waitRound(t *testing.T, n int64, wanted int) {
	t.Helper()
	for {
		if s.ctx.Err() != nil {
			t.Fatalf("round %d never had %d users wanted", n, wanted)
		}
		if r, err := readRound(s.ctx, s.kv); err == nil && r.N == n && r.State == "open" && r.Wanted == wanted {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servedByOneListing checks that the hints about ids (sent by send) were
// each published with their version, by one listing of the account (at
// most; it stops once it showed them all) and no re-read, in round n,
// which is done.
func (s *deadRoundSetup) servedByOneListing(t *testing.T, ids []string, errs []error, n int64) {
	t.Helper()
	hintsServed(t, s.js, ids, errs, "a round nobody lists")
	got := s.sim.Requests()
	if got["GET /users"] < 1 || got["GET /users"] > s.pages || got["GET /users/{userId}"] != 0 {
		t.Errorf("%d listing pages and %d re-reads, want one listing (at most %d pages) and no re-read",
			got["GET /users"], got["GET /users/{userId}"], s.pages)
	}
	if cur, state, _ := s.roundNow(t); cur != n || state != "done" {
		t.Errorf("round %d %s, want round %d done", cur, state, n)
	}
}

// TestStoppedListerLeavesItsRoundToTheNext: replica A's batch opens a
// round, replica B's batch joins it, and A stops (its handlers' contexts
// end, as in a rolling deploy) while the round gathers. A cancels its
// round on its way out, and B's batch goes on to the next round, which it
// lists: every user is served by one listing, promptly, not after B's
// longest wait for a round (an hour here).
func TestStoppedListerLeavesItsRoundToTheNext(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 41)
	a, b := s.newR(), s.newR()
	aCtx, stopA := context.WithCancel(s.ctx)
	defer stopA()
	waitA := s.send(t, aCtx, a, s.active[:60])
	s.waitRound(t, 1, 60)
	s.sim.ResetRequests()
	ids := s.active[100:160]
	waitB := s.send(t, s.ctx, b, ids)
	s.waitRound(t, 1, 120)
	stopA()
	waitA()
	s.servedByOneListing(t, ids, waitB(), 2)
}

// TestRoundLeftOpenIsNotJoined: a round left open by a replica that was
// killed (it never cancelled it) started long ago. A batch does not join
// it: it opens the next round and is served by its listing, rather than
// wait for a lister that is gone.
func TestRoundLeftOpenIsNotJoined(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 43)
	s.leaveRound(t, "open", time.Now().Add(-runner.RoundDeadAfter-time.Minute), time.Time{})
	s.sim.ResetRequests()
	ids := s.active[:60]
	s.servedByOneListing(t, ids, s.send(t, s.ctx, s.newR(), ids)(), 8)
}

// TestBatchLeavesARoundThatDiesWhileItWaits: a batch joins a round that
// is open and still young enough to be listed, but whose replica was
// killed; once the round is past when its lister would have listed it,
// the batch stops waiting, opens the next round and is served by its
// listing.
func TestBatchLeavesARoundThatDiesWhileItWaits(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 47)
	s.leaveRound(t, "open", time.Now().Add(-runner.RoundDeadAfter+6*time.Second), time.Time{})
	s.sim.ResetRequests()
	ids := s.active[:60]
	wait := s.send(t, s.ctx, s.newR(), ids)
	// The batch joins the round while it still counts as alive.
	s.waitRound(t, 7, 110)
	s.servedByOneListing(t, ids, wait(), 8)
}

// TestListerStoppedWhileListingEndsItsRound: replica A's round lists
// (held after its second page) when replica B's batch joins it, and A
// stops. A still ends its round and tells B's batch, whose users the
// listing had not shown since it joined: they go on to the next round,
// which B lists, rather than wait for a lister that is gone.
func TestListerStoppedWhileListingEndsItsRound(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 53)
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := s.with(func(c *zoom.Client) runner.Client {
		return &gatedClient{Client: c, after: func(p zoom.RawPage) {
			if p.Number == 2 {
				once.Do(func() {
					close(held)
					<-release
				})
			}
		}}
	})
	aCtx, stopA := context.WithCancel(s.ctx)
	defer stopA()
	waitA := s.send(t, aCtx, a, s.active[:60])
	select {
	case <-held:
	case <-s.ctx.Done():
		t.Fatal("A's round never listed")
	}
	s.sim.ResetRequests()
	ids := s.active[100:160]
	waitB := s.send(t, s.ctx, s.newR(), ids)
	for {
		if n, _, wanted := s.roundNow(t); n == 1 && wanted == 120 {
			break
		}
		if s.ctx.Err() != nil {
			t.Fatal("B's batch never joined A's round")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopA()
	close(release)
	waitA()
	hintsServed(t, s.js, ids, waitB(), "a round nobody ends")
	if got := s.sim.Requests(); got["GET /users/{userId}"] != 0 || got["GET /users"] > s.pages+1 {
		t.Errorf("%d listing pages and %d re-reads since B joined, want B's round (at most %d pages, and A's page on its way) and no re-read",
			got["GET /users"], got["GET /users/{userId}"], s.pages)
	}
	if n, state, _ := s.roundNow(t); n != 2 || state != "done" {
		t.Errorf("round %d %s, want round 2 done", n, state)
	}
}

// leaveRound stores round 7 in state, started at start by a replica that
// is gone, with its lister's last beat at beat (none when zero).
func (s *deadRoundSetup) leaveRound(t *testing.T, state string, start, beat time.Time) {
	t.Helper()
	left, _ := json.Marshal(map[string]any{"n": 7, "state": state, "owner": "gone-1", "wanted": 50,
		"start_ms": start.UnixMilli()})
	if _, err := s.kv.Put(s.ctx, "round."+conn.Key(), left); err != nil {
		t.Fatal(err)
	}
	if !beat.IsZero() {
		if _, err := s.kv.Put(s.ctx, "round."+conn.Key()+".7.beat", []byte(strconv.FormatInt(beat.UnixMilli(), 10))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListingWithoutItsListerIsNotJoined: a round left listing by a
// replica killed while it listed (its beats stopped, or it never beat) is
// not joined, however young it is next to the longest wait for a round (an
// hour here): a batch opens the next round and is served by its listing.
func TestListingWithoutItsListerIsNotJoined(t *testing.T) {
	t.Parallel()
	for name, beat := range map[string]time.Duration{"silent": 10 * time.Second, "never beat": 0} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newDeadRoundSetup(t, 59)
			at := time.Time{}
			if beat > 0 {
				at = time.Now().Add(-beat)
			}
			s.leaveRound(t, "listing", time.Now().Add(-2*time.Minute), at)
			s.sim.ResetRequests()
			ids := s.active[:60]
			s.servedByOneListing(t, ids, s.send(t, s.ctx, s.newR(), ids)(), 8)
		})
	}
}

// TestBatchLeavesAListingWhoseListerDies: a batch joins a listing round
// whose lister beat a moment ago and then never again (its replica was
// killed while it listed); once the beats are missed, the batch leaves
// the round, opens the next and is served by its listing, rather than
// wait for the longest wait (an hour here).
func TestBatchLeavesAListingWhoseListerDies(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 61)
	// Silent for all but the last second of the beats it may miss.
	s.leaveRound(t, "listing", time.Now().Add(-2*time.Minute), time.Now().Add(-roundSilence()+time.Second))
	s.sim.ResetRequests()
	ids := s.active[:60]
	wait := s.send(t, s.ctx, s.newR(), ids)
	for { // the batch joins the listing round while its lister counts as alive
		if n, state, wanted := s.roundNow(t); n == 7 && state == "listing" && wanted == 110 {
			break
		} else if n != 7 || s.ctx.Err() != nil {
			t.Fatalf("round %d %s with %d users: the batch did not join the listing round", n, state, wanted)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.servedByOneListing(t, ids, wait(), 8)
}

// TestLongListingKeepsItsBatches: replica A's listing is held for four
// times as long as a lister may stay silent, while replica B's batch waits
// on it: A's beats keep the round alive, B's batch is served by it, and no
// second round lists.
func TestLongListingKeepsItsBatches(t *testing.T) {
	t.Parallel()
	s := newDeadRoundSetup(t, 67)
	joined := make(chan struct{})
	var once sync.Once
	a := s.with(func(c *zoom.Client) runner.Client {
		return &gatedClient{Client: c, after: func(p zoom.RawPage) {
			if p.Number == 1 {
				once.Do(func() {
					<-joined
					time.Sleep(4 * roundSilence())
				})
			}
		}}
	})
	waitA := s.send(t, s.ctx, a, s.active[:60])
	for {
		if r, err := readRound(s.ctx, s.kv); err == nil && r.State == "listing" {
			break
		}
		if s.ctx.Err() != nil {
			t.Fatal("A's round never listed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ids := s.active[100:160]
	waitB := s.send(t, s.ctx, s.newR(), ids)
	for {
		if n, _, wanted := s.roundNow(t); n == 1 && wanted == 120 {
			break
		}
		if s.ctx.Err() != nil {
			t.Fatal("B's batch never joined A's round")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(joined)
	errsB := waitB()
	for i, err := range errsB {
		if err != nil {
			t.Fatalf("hint about %s: %v", ids[i], err)
		}
	}
	waitA()
	if got := s.sim.Requests(); got["GET /users/{userId}"] != 0 {
		t.Errorf("%d re-reads, want none: the listing served every batch", got["GET /users/{userId}"])
	}
	if n, state, _ := s.roundNow(t); n != 1 || state != "done" {
		t.Errorf("round %d %s, want round 1 done: a live lister's round was taken for lost", n, state)
	}
}

// roundSilence is how long a listing round's lister may stay silent in
// these tests.
func roundSilence() time.Duration { return runner.RoundBeatsMissed * testBeat }
