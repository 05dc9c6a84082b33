package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// restartOrg is the organisation of the restart tests: a sync of it runs
// long enough (with slowZoom) to be interrupted in each phase.
func restartOrg(seed int64) *zoomtest.Org {
	return zoomtest.Generate(seed, zoomtest.Size{Users: 8000, Groups: 150, Roles: 10})
}

// interruption is one outage of a dependency during a sync: when it
// happens (a condition on the sync's progress) and what it is.
type interruption struct {
	name string
	// when reports whether the sync that began with mark has reached the
	// moment of the outage; changes is the number of change events the
	// sync implies, requests the Zoom requests it has made so far.
	when func(mark, changes, requests int) bool
}

// TestNATSRestartDuringSync restarts the NATS server (same port and store,
// three seconds away) in the middle of full syncs: once after the listing,
// while changes are being written and published, once while Zoom is being
// listed. Every service reports not ready (503 on /readyz) while NATS is
// away and ready again after, by itself; the sync completes, or fails
// cleanly and the next trigger completes, with exactly the organisation's
// records and changes. (The outage outlasts the tests' TRIGGER_ACK_WAIT of
// 3 s, as a longer restart outlasts the default 30 s: the trigger being
// fetched is redelivered when NATS is back.)
func TestNATSRestartDuringSync(t *testing.T) {
	s := startStack(t, restartOrg(31), zoomtest.Options{}, nil)
	c := collect(t, s)
	slowZoom(s)
	k := newKiller(t, s)
	steps := []interruption{
		// The first sync creates every record: the writer is still busy
		// after the listing ended.
		{"after the listing, while changes are being written and published", func(mark, _, _ int) bool {
			return !k.runActive() && c.mark() > mark
		}},
		{"while Zoom is being listed", func(_, _, requests int) bool { return requests >= 60 }},
	}
	restartDuringSyncs(t, s, c, k, outage{
		what: "NATS", seed: 31, steps: steps,
		restart: func() error { return s.RestartNATS(3 * time.Second) },
		// Every service uses NATS.
		unready: func(string) bool { return true },
	})
}

// TestPostgresRestartDuringSync restarts PostgreSQL (a cluster of the
// test's own, fast shutdown, back on the same port after three seconds) in
// the middle of full syncs: once while pages are being applied and the
// outbox relayed, once while the writer completes the run (deriving admin
// grants, deleting what the run did not see). The writer reports not ready
// while PostgreSQL is away and ready again after, by itself; the sync
// completes, or fails cleanly and the next trigger completes, with exactly
// the organisation's records and changes.
func TestPostgresRestartDuringSync(t *testing.T) {
	dir, err := os.MkdirTemp("", "zoom-pg-restart-")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := devstack.StartPostgres(filepath.Join(dir, "pg"))
	if err != nil {
		_ = os.RemoveAll(dir)
		if os.Getenv("CI") == "true" {
			t.Fatalf("start PostgreSQL: %v", err)
		}
		t.Skipf("PostgreSQL server binaries are needed to restart a cluster: %v", err)
	}
	// Registered first, so it runs last: after the stack has stopped.
	t.Cleanup(func() {
		_ = pg.Stop()
		_ = os.RemoveAll(dir)
	})
	s := startStackOn(t, restartOrg(32), zoomtest.Options{}, pg.URL, map[string]int{"webhook": 0}, nil)
	c := collect(t, s)
	slowZoom(s)
	k := newKiller(t, s)
	steps := []interruption{
		{"while pages are being applied", func(mark, changes, _ int) bool { return c.mark()-mark >= changes/5 }},
		{"while the run is being completed", func(_, _, _ int) bool { return k.finalizing() }},
	}
	restartDuringSyncs(t, s, c, k, outage{
		what: "PostgreSQL", seed: 32, steps: steps,
		restart: func() error { return pg.Restart(3 * time.Second) },
		// Only the writer uses the database.
		unready: func(name string) bool { return name == "writer" },
	})
}

// outage is a dependency restarted in the middle of full syncs.
type outage struct {
	what    string // the dependency, for messages
	seed    uint64 // of the random changes between the syncs
	steps   []interruption
	restart func() error
	// unready reports whether the named service must answer 503 on
	// /readyz during the outage; the others must not.
	unready func(name string) bool
}

// restartDuringSyncs runs one full sync per step of o, with random changes
// between them, and restarts o's dependency when the step's moment comes.
// Every service is ready again by itself after the outage, and each sync
// ends with exactly the organisation's records and changes.
func restartDuringSyncs(t *testing.T, s *devstack.Stack, c *collector, k *killer, o outage) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(o.seed, o.seed))
	before := map[string]json.RawMessage{}
	for i, step := range o.steps {
		if i > 0 {
			if _, err := s.Sim.RandomMutations(ctx, rng, 300); err != nil {
				t.Fatal(err)
			}
		}
		want := expected(s)
		mark := c.mark()
		base := s.Sim.TotalRequests()
		id := triggerSync(t, s)
		changes := len(implied(before, want))
		waitFor(t, time.Minute, func() bool { return step.when(mark, changes, s.Sim.TotalRequests()-base) })

		t.Logf("%s restart %s: %d of %d changes published, %d Zoom requests made",
			o.what, step.name, c.mark()-mark, changes, s.Sim.TotalRequests()-base)
		procs := k.running()
		seen, err := watchReady(procs, o.restart)
		if err != nil {
			t.Fatalf("restart %s: %v", o.what, err)
		}
		for _, p := range procs {
			switch n := seen[p.Name][http.StatusServiceUnavailable]; {
			case o.unready(p.Name) && n == 0:
				t.Errorf("%s restart %s: %s /readyz never answered 503 while %s was down (answers: %v)",
					o.what, step.name, p.Name, o.what, seen[p.Name])
			case !o.unready(p.Name) && n > 0:
				t.Errorf("%s restart %s: %s, which does not use %s, answered 503 (answers: %v)",
					o.what, step.name, p.Name, o.what, seen[p.Name])
			}
		}
		for _, p := range procs {
			waitReady(t, p, 30*time.Second)
			if p.Exited() {
				t.Errorf("%s restart %s: %s exited (log %s)", o.what, step.name, p.Name, p.LogPath())
			}
		}
		t.Logf("%s restart %s: /readyz answers during the outage: %v", o.what, step.name, seen)

		back := time.Now()
		d, runs := finishSync(t, s, c, id, step.name)
		t.Logf("%s restart %s: the sync ended %s after the restart", o.what, step.name, time.Since(back).Round(time.Millisecond))
		res := checkSync(t, "sync with a "+o.what+" restart "+step.name, s, c, mark, before, want, d)
		t.Logf("%s restart %s: %d triggers, runs ended %v, %d change events checked", o.what, step.name, runs, res.runs, res.changes)
		before = want
	}
	checkStream(t, c)
	checkRuns(t, c)
}

// TestStopServicesDuringFullSync stops each service with SIGTERM in the
// middle of full syncs, several times, and starts it again: every stop
// ends with exit status 0 within 10 seconds, and the sync completes with
// exactly the organisation's records and changes. In-flight messages must
// be finished or handed back, not left to their ack wait: the sync ends
// well before the normalizer's (30 s) would have run out.
func TestStopServicesDuringFullSync(t *testing.T) {
	s := startStack(t, restartOrg(33), zoomtest.Options{}, nil)
	c := collect(t, s)
	slowZoom(s)
	k := newKiller(t, s)
	ctx := context.Background()
	var mark, changes int
	fetched := func(n int) func() bool {
		return func() bool {
			k.mu.Lock()
			defer k.mu.Unlock()
			return s.Sim.TotalRequests()-k.fetcherBase >= n
		}
	}
	published := func(share float64) func() bool {
		return func() bool { return float64(c.mark()-mark) >= share*float64(changes) }
	}
	normalizing := func() bool { return k.ackPending(pipeline.StreamRaw, "normalizer") > 0 }
	type stop struct {
		service string
		when    func() bool
		where   string
	}
	syncs := [][]stop{
		{
			{"fetcher", fetched(40), "mid-listing"},
			{"normalizer", normalizing, "mid-batch"},
			{"webhook", func() bool { return true }, "idle"},
			{"writer", published(0.05), "applying pages"},
			{"normalizer", normalizing, "mid-batch"},
			{"fetcher", fetched(150), "mid-listing"},
			{"writer", published(0.3), "applying pages, relaying"},
			{"writer", published(0.6), "applying pages, relaying"},
		},
		{
			{"fetcher", fetched(100), "mid-listing"},
			{"normalizer", normalizing, "mid-batch"},
			{"writer", k.finalizing, "completing the run"},
		},
	}
	rng := rand.New(rand.NewPCG(33, 33))
	before := map[string]json.RawMessage{}
	stops := map[string]int{}
	var longest time.Duration
	for i, plan := range syncs {
		if i > 0 {
			if _, err := s.Sim.RandomMutations(ctx, rng, 300); err != nil {
				t.Fatal(err)
			}
		}
		want := expected(s)
		mark = c.mark()
		changes = len(implied(before, want))
		k.mu.Lock()
		k.fetcherBase = s.Sim.TotalRequests()
		k.mu.Unlock()
		id := triggerSync(t, s)
		began := time.Now()
		var lastStop time.Time
		for _, st := range plan {
			// A short moment (the run's completion) may come and go
			// between two looks, or the run may end before it: then
			// that stop is skipped, said in the log, and the sync is
			// still checked whole.
			if !awaitUnlessEnded(t, c, id, st.when) {
				t.Logf("the run ended before the %s was %s: that stop skipped", st.service, st.where)
				continue
			}
			p := k.proc(st.service)
			t0 := time.Now()
			err := p.Stop()
			took := time.Since(t0)
			lastStop = time.Now()
			if err != nil {
				t.Errorf("SIGTERM to the %s (%s): %v, want exit status 0 within 10s (log %s)", st.service, st.where, err, p.LogPath())
			}
			stops[st.service]++
			longest = max(longest, took)
			t.Logf("stopped the %s (%s) in %s", st.service, st.where, took.Round(time.Millisecond))
			if err := k.restart(st.service); err != nil {
				t.Fatal(err)
			}
		}
		op, d := c.waitEnd(t, id, 3*time.Minute)
		if op != clarity.OpCompleted {
			t.Fatalf("sync %d with stops: got %s (%s), want completed", i+1, op, d.Error)
		}
		tail := time.Since(lastStop)
		res := checkSync(t, fmt.Sprintf("sync %d with stops", i+1), s, c, mark, before, want, d)
		if len(res.runs) != 1 {
			t.Errorf("sync %d with stops: runs %v; want the one run to complete", i+1, res.runs)
		}
		t.Logf("sync %d: completed in %s (%s after the last stop), %d change events checked",
			i+1, time.Since(began).Round(time.Millisecond), tail.Round(time.Millisecond), res.changes)
		if tail > 25*time.Second {
			t.Errorf("sync %d ended %s after the last stop: in-flight messages seem left to their ack wait instead of being handed back", i+1, tail)
		}
		before = want
	}
	checkStream(t, c)
	checkRuns(t, c)
	t.Logf("stops: %v; the longest took %s", stops, longest.Round(time.Millisecond))
}

// TestCompleteSyncAfterFailedSync is the deterministic form of what an
// outage in the middle of a sync does: the run fails after some of its users
// pages were applied (it deletes nothing), and the next complete run must
// delete what those users lost. Here a user's licence changes, and the sync
// that first sees it fails on the roles listing.
func TestCompleteSyncAfterFailedSync(t *testing.T) {
	org := zoomtest.Generate(5, zoomtest.Size{Users: 200, Groups: 5, Roles: 4})
	s := startStack(t, org, zoomtest.Options{}, map[string]int{"webhook": 0})
	c := collect(t, s)
	ctx := context.Background()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: got %s (%s), want completed", op, d.Error)
	}
	var u zoomtest.User
	for _, x := range s.Sim.Org().Users {
		if x.Status == "active" && x.Type == zoomtest.TypeBasic && x.RoleID != zoomtest.RoleOwner {
			u = x
			break
		}
	}
	before := expected(s)
	if _, err := s.Sim.SetUserType(ctx, u.ID, zoomtest.TypeLicensed); err != nil {
		t.Fatal(err)
	}
	want := expected(s)
	mark := c.mark()
	// The roles listing answers late, so that the users pages are applied
	// before the run fails.
	// (A scope the token lacks: an error, where 403 code 200 would be a
	// plan without roles, which a run completes without.)
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /roles", Status: 400, Code: 4711, Message: "Invalid access token, does not contain scopes.", Latency: 1500 * time.Millisecond})
	if op, _ := sync1(t, s, c); op != clarity.OpFailed {
		t.Fatalf("sync with a failing listing: got %s, want failed", op)
	}
	s.Sim.Faults().Clear()
	op, d := sync1(t, s, c)
	if op != clarity.OpCompleted {
		t.Fatalf("sync after the failed one: got %s (%s), want completed", op, d.Error)
	}
	checkSync(t, "a complete sync after a failed one", s, c, mark, before, want, d)
	checkStream(t, c)
	checkRuns(t, c)
}

// triggerSync publishes a full-sync trigger and returns its request id.
func triggerSync(t *testing.T, s *devstack.Stack) string {
	t.Helper()
	id := cli.NewRequestID()
	cfg := s.Config()
	if err := cli.Trigger(context.Background(), s.JS, cfg.Connector, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// finishSync waits for the end of the sync serving id. A sync that an outage
// made fail is allowed one more trigger, which must complete; it returns
// the completed run and the number of runs.
func finishSync(t *testing.T, s *devstack.Stack, c *collector, id, what string) (clarity.SyncData, int) {
	t.Helper()
	op, d := c.waitEnd(t, id, 3*time.Minute)
	runs := 1
	if op == clarity.OpFailed {
		t.Logf("%s: the sync failed (%s); triggering another", what, d.Error)
		op, d = c.waitEnd(t, triggerSync(t, s), 3*time.Minute)
		runs++
	}
	if op != clarity.OpCompleted {
		t.Fatalf("%s: got %s (%s), want completed", what, op, d.Error)
	}
	return d, runs
}

// running returns the running replica of each service.
func (k *killer) running() []*devstack.Proc {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []*devstack.Proc
	for _, p := range k.procs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// runActive reports whether the connector's run is still being fetched
// (its state in the zoom_runs bucket is active).
func (k *killer) runActive() bool {
	ctx := context.Background()
	kv, err := k.s.JS.KeyValue(ctx, pipeline.RunsBucket)
	if err != nil {
		return true
	}
	cfg := k.s.Config()
	e, err := kv.Get(ctx, cfg.Connector.Key())
	if err != nil {
		return true
	}
	var st struct {
		Active bool `json:"active"`
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return true
	}
	return st.Active
}

// watchReady runs outage while polling GET /readyz of every process every
// 25 ms, and returns how often each answered each status (0: no answer)
// and outage's error.
func watchReady(procs []*devstack.Proc, outage func() error) (map[string]map[int]int, error) {
	seen := map[string]map[int]int{}
	var mu sync.Mutex
	for _, p := range procs {
		seen[p.Name] = map[int]int{}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			for {
				code := readyStatus(p)
				mu.Lock()
				seen[p.Name][code]++
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(25 * time.Millisecond):
				}
			}
		})
	}
	err := outage()
	close(stop)
	wg.Wait()
	return seen, err
}

var readyClient = &http.Client{Timeout: 3 * time.Second}

func readyStatus(p *devstack.Proc) int {
	resp, err := readyClient.Get("http://" + p.Addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReady waits until the process's /readyz answers 200.
func waitReady(t *testing.T, p *devstack.Proc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for readyStatus(p) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Errorf("%s /readyz did not answer 200 within %s after the outage (log %s)", p.Name, timeout, p.LogPath())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitUnlessEnded waits up to a minute, polling every millisecond, for
// cond, and reports whether it held; false, at once, when the sync serving
// requestID ended first. It fails the test after the minute.
func awaitUnlessEnded(t *testing.T, c *collector, requestID string, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if c.ended(requestID) {
			return false
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 1m0s")
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
