package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// faultRun is what one full sync under injected faults did.
type faultRun struct {
	op   string
	data clarity.SyncData
	// requests counts the simulator's answers during the run, by route and
	// status ("GET /users 429").
	requests map[string]int
	// waits counts the fetcher's waits during the run, by reason
	// (rate_limit, backoff, pacing), from its metrics.
	waits map[string]float64
	// log is what the fetchers logged during the run.
	log  string
	took time.Duration
	// mark is the number of change events before the run.
	mark int
}

// status sums the answers with the given HTTP status, on any route.
func (r faultRun) status(code int) int {
	n := 0
	for k, v := range r.requests {
		if strings.HasSuffix(k, " "+strconv.Itoa(code)) {
			n += v
		}
	}
	return n
}

// faultSync runs one full sync after inject has set faults up, with during
// running beside it (it may not call t.Fatal), then lifts every fault and
// restores the simulator's normal limits.
func faultSync(t *testing.T, s *devstack.Stack, c *collector, inject func(), during func()) faultRun {
	t.Helper()
	before := s.Sim.RequestsByStatus()
	waits := fetcherWaits(t, s)
	logs := fetcherLogSizes(s)
	r := faultRun{mark: c.mark()}
	if inject != nil {
		inject()
	}
	defer func() {
		s.Sim.Faults().Clear()
		s.Sim.SetRateLimits(zoomtest.RateLimits{})
		s.Sim.SetRateLimitHeaders(true)
	}()
	id := cli.NewRequestID()
	cfg := s.Config()
	start := time.Now()
	if err := cli.Trigger(context.Background(), s.JS, cfg.Connector, id); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if during != nil {
			during()
		}
	}()
	r.op, r.data = c.waitEnd(t, id, 2*time.Minute)
	r.took = time.Since(start)
	<-done
	r.requests = countDelta(before, s.Sim.RequestsByStatus())
	r.waits = map[string]float64{}
	for k, v := range fetcherWaits(t, s) {
		if d := v - waits[k]; d > 0 {
			r.waits[k] = d
		}
	}
	r.log = fetcherLogSince(t, logs)
	t.Logf("%s in %s: %d requests answered (%d 429, %d 5xx, %d 401, %d 400), waits %v, api_requests %d",
		r.op, r.took.Round(time.Millisecond), sumCounts(r.requests), r.status(429),
		r.status(500)+r.status(502)+r.status(503)+r.status(504), r.status(401), r.status(400), r.waits, r.data.Stats.APIRequests)
	return r
}

// requireCompleted checks that the run completed and that the records, both
// rebuilt from the change events and in zoomctl snapshot, are exactly the
// organisation's.
func requireCompleted(t *testing.T, s *devstack.Stack, c *collector, r faultRun) {
	t.Helper()
	if r.op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", r.op, r.data.Error)
	}
	want := expected(s)
	requireSame(t, "records rebuilt from the events", c.snapshot(), want)
	requireSame(t, "zoomctl snapshot", snapshot(t, s), want)
	checkAPIRequests(t, r)
}

// checkAPIRequests checks that the run's stats count every request it made,
// failed ones included, token requests included: the simulator answered
// nothing else while it ran.
func checkAPIRequests(t *testing.T, r faultRun) {
	t.Helper()
	// A failing run cancels its other listings: requests already sent then
	// count, though the simulator never answered them.
	answered := int64(sumCounts(r.requests))
	got, slack := r.data.Stats.APIRequests, int64(0)
	if r.op == "failed" {
		slack = 4 // FETCH_CONCURRENCY
	}
	if got < answered || got > answered+slack {
		t.Errorf("sync.%s stats: api_requests %d, the simulator answered %d requests", r.op, got, answered)
	}
}

// requireNothingDeleted checks that no change event since the run's start
// deleted anything, and that every record of before is still there.
func requireNothingDeleted(t *testing.T, s *devstack.Stack, c *collector, r faultRun, before map[string]json.RawMessage) {
	t.Helper()
	for _, ev := range c.since(r.mark) {
		if strings.HasSuffix(ev.Type, ".deleted") {
			t.Errorf("a sync that did not complete deleted %s %s", ev.Type, ev.Subject)
		}
	}
	now := snapshot(t, s)
	lost := 0
	for k := range before {
		if _, ok := now[k]; !ok {
			if lost < 10 {
				t.Errorf("record %s is gone after a sync that did not complete", k)
			}
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d records gone after a sync that did not complete", lost, len(before))
	}
}

func countDelta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// fetcherWaits reads zoom_api_waits_total of every running fetcher, by
// reason.
func fetcherWaits(t *testing.T, s *devstack.Stack) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, p := range s.Procs() {
		if p.Name != "fetcher" || p.Exited() {
			continue
		}
		resp, err := http.Get("http://" + p.Addr + "/metrics")
		if err != nil {
			t.Errorf("fetcher metrics: %v", err)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			rest, ok := strings.CutPrefix(line, `zoom_api_waits_total{reason="`)
			if !ok {
				continue
			}
			reason, val, ok := strings.Cut(rest, `"} `)
			if !ok {
				continue
			}
			v, err := strconv.ParseFloat(val, 64)
			if err == nil {
				out[reason] += v
			}
		}
		resp.Body.Close()
	}
	return out
}

func fetcherLogSizes(s *devstack.Stack) map[string]int64 {
	out := map[string]int64{}
	files, _ := filepath.Glob(filepath.Join(s.Config().Dir, "logs", "fetcher-*.log"))
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			out[f] = fi.Size()
		} else {
			out[f] = 0
		}
	}
	return out
}

// fetcherLogSince returns what the fetchers logged after the sizes given.
func fetcherLogSince(t *testing.T, sizes map[string]int64) string {
	t.Helper()
	var b strings.Builder
	for f, n := range sizes {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("read %s: %v", f, err)
			continue
		}
		if int64(len(data)) > n {
			b.Write(data[n:])
		}
	}
	return b.String()
}

// activeUser returns an active user other than the owner and admins.
func activeUser(t *testing.T, sim *zoomtest.Server, n int) zoomtest.User {
	t.Helper()
	for _, u := range sim.Org().Users {
		if u.Status == "active" && u.RoleID != "0" && u.RoleID != "1" {
			if n == 0 {
				return u
			}
			n--
		}
	}
	t.Fatal("no active user left")
	return zoomtest.User{}
}

// TestZoomFaults runs full syncs while the simulated Zoom misbehaves the
// ways Zoom does: 429 storms with and without rate-limit headers, 5xx, slow
// answers, page tokens that expire mid-listing, access tokens that expire
// mid-run, revoked credentials. Before each sync the organisation changes a
// little, so that every sync has creations, updates and deletions to get
// right. A sync that Zoom lets finish must end in sync.completed with exactly
// the organisation's records; one that cannot must fail, saying why, and
// delete nothing.
func TestZoomFaults(t *testing.T) {
	// 700 users: the active users take three pages of 300, so that a listing
	// can lose its page token half-way.
	org := zoomtest.Generate(41, zoomtest.Size{Users: 700, Groups: 10, Roles: 6})
	s := startStack(t, org, zoomtest.Options{Seed: 41}, map[string]int{"webhook": 0})
	c := collect(t, s)
	ctx := context.Background()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: got %s (%s), want completed", op, d.Error)
	}
	requireSame(t, "records after the first sync", c.snapshot(), expected(s))
	rng := rand.New(rand.NewPCG(41, 7))
	change := func(t *testing.T) {
		t.Helper()
		if _, err := s.Sim.RandomMutations(ctx, rng, 6); err != nil {
			t.Fatal(err)
		}
	}
	admins := "GET /groups/{groupId}/admins"

	t.Run("429 storm with rate-limit headers", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.SetRateLimits(zoomtest.RateLimits{Light: 5, Medium: 3, Heavy: 2})
		}, nil)
		requireCompleted(t, s, c, r)
		if r.status(429) == 0 {
			t.Errorf("no 429 answered; the storm did not happen")
		}
		if r.waits["rate_limit"] == 0 {
			t.Errorf("the fetcher never waited for a rate limit (waits %v)", r.waits)
		}
		// Honouring Retry-After and holding the whole category keeps the
		// 429s to a fraction of the requests, not a retry loop.
		if ok := sumCounts(r.requests) - r.status(429); r.status(429) > 2*ok {
			t.Errorf("%d 429s for %d answered requests: the client hammers instead of waiting", r.status(429), ok)
		}
	})

	t.Run("429 storm without rate-limit headers", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.SetRateLimitHeaders(false)
			s.Sim.SetRateLimits(zoomtest.RateLimits{Light: 5, Medium: 3, Heavy: 2})
		}, nil)
		requireCompleted(t, s, c, r)
		if r.status(429) == 0 {
			t.Errorf("no 429 answered; the storm did not happen")
		}
		if r.waits["rate_limit"] == 0 {
			t.Errorf("the fetcher never backed off after a 429 without headers (waits %v)", r.waits)
		}
	})

	t.Run("5xx on 30% of requests", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Status: http.StatusBadGateway, Fraction: 0.3})
		}, nil)
		requireCompleted(t, s, c, r)
		if r.status(502) == 0 {
			t.Errorf("no 502 answered; the fault did not happen")
		}
		if r.waits["backoff"] == 0 {
			t.Errorf("the fetcher never backed off after a 5xx (waits %v)", r.waits)
		}
	})

	t.Run("5xx burst", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Status: http.StatusServiceUnavailable, Times: 4})
			s.Sim.Faults().Add(zoomtest.Fault{Route: admins, Status: http.StatusInternalServerError, Times: 3})
		}, nil)
		requireCompleted(t, s, c, r)
		if got := r.requests["GET /users 503"]; got != 4 {
			t.Errorf("GET /users answered 503 %d times, want 4", got)
		}
		if got := r.requests[admins+" 500"]; got != 3 {
			t.Errorf("%s answered 500 %d times, want 3", admins, got)
		}
	})

	t.Run("slow responses", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Latency: 100 * time.Millisecond})
			s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "active"}, AfterPage: 1,
				Latency: 2 * time.Second, Times: 1})
		}, nil)
		requireCompleted(t, s, c, r)
		if r.took < 2*time.Second {
			t.Errorf("the sync took %s, less than the 2s one answer was held back: the latency was not injected", r.took)
		}
	})

	t.Run("page token expires mid-listing", func(t *testing.T) {
		change(t)
		var rule int
		r := faultSync(t, s, c, func() {
			// Page 2 of the active users is held back; while it is, every
			// page token Zoom gave out expires, as after 15 minutes.
			rule = s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "active"},
				AfterPage: 1, Latency: 500 * time.Millisecond, Times: 1})
		}, func() {
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				held := false
				for _, f := range s.Sim.Faults().List() {
					held = held || f.ID == rule
				}
				if !held { // fired: the request for page 2 is being held
					s.Sim.Faults().ExpirePageTokens()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Errorf("page 2 of the active users was never requested")
		})
		requireCompleted(t, s, c, r)
		if r.requests["GET /users 400"] == 0 {
			t.Errorf("no page token was refused (requests %v)", r.requests)
		}
		if !strings.Contains(r.log, "restarting the listing") {
			t.Errorf("the fetcher did not log a listing restart")
		}
	})

	t.Run("page tokens refused for good", func(t *testing.T) {
		u := activeUser(t, s.Sim, 3)
		if _, err := s.Sim.RemoveUser(ctx, u.ID, "delete"); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "active"}, AfterPage: 1,
				Status: http.StatusBadRequest, Code: 300, Message: "The next page token is invalid or expired."})
		}, nil)
		if r.op != clarity.OpFailed {
			t.Fatalf("sync with page tokens always refused: got %s, want failed", r.op)
		}
		if !strings.Contains(r.data.Error, "page token") {
			t.Errorf("sync.failed error %q does not say the page token was refused", r.data.Error)
		}
		// Three restarts, then the run gives up: four refusals.
		if got := r.requests["GET /users 400"]; got != 4 {
			t.Errorf("GET /users answered 400 %d times, want 4 (the first pass and 3 restarts)", got)
		}
		requireNothingDeleted(t, s, c, r, before)
		checkAPIRequests(t, r)
		if _, ok := snapshot(t, s)["service_user|"+u.ID]; !ok {
			t.Errorf("user %s, removed from Zoom, was deleted by a sync that failed", u.ID)
		}
	})

	t.Run("access token expires mid-run", func(t *testing.T) {
		change(t)
		issued := len(s.Sim.IssuedTokens())
		start := s.Sim.Requests()[admins]
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Route: admins, Latency: 150 * time.Millisecond})
		}, func() {
			deadline := time.Now().Add(time.Minute)
			for s.Sim.Requests()[admins]-start < 2 {
				if time.Now().After(deadline) {
					t.Errorf("the group admins were never listed")
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			s.Sim.Faults().ExpireTokens()
		})
		requireCompleted(t, s, c, r)
		if r.status(401) == 0 {
			t.Errorf("no request was refused for an expired token (requests %v)", r.requests)
		}
		if got := r.requests["POST /oauth/token 200"]; got < 1 {
			t.Errorf("no new token was fetched after the expiry")
		}
		if got := len(s.Sim.IssuedTokens()); got <= issued {
			t.Errorf("tokens issued: got %d, want more than the %d before the run", got, issued)
		}
		if got := s.Sim.Requests()["POST /oauth/token"]; got < 2 {
			t.Errorf("token requests since the start: got %d, want at least 2", got)
		}
	})

	t.Run("token endpoint fails while refreshing", func(t *testing.T) {
		change(t)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().ExpireTokens()
			s.Sim.Faults().Add(zoomtest.Fault{Route: zoomtest.TokenRoute, Status: http.StatusServiceUnavailable, Times: 2})
		}, nil)
		requireCompleted(t, s, c, r)
		if got := r.requests["POST /oauth/token 503"]; got != 2 {
			t.Errorf("the token endpoint answered 503 %d times, want 2", got)
		}
		if got := r.requests["POST /oauth/token 200"]; got < 1 {
			t.Errorf("no token was issued after the token endpoint recovered")
		}
	})

	t.Run("revoked credentials", func(t *testing.T) {
		u := activeUser(t, s.Sim, 5)
		if _, err := s.Sim.RemoveUser(ctx, u.ID, "delete"); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s)
		r := faultSync(t, s, c, func() {
			// The app is deactivated: its credentials are refused and the
			// tokens it holds stop working.
			s.Sim.Faults().RevokeCredentials()
			s.Sim.Faults().ExpireTokens()
		}, nil)
		if r.op != clarity.OpFailed {
			t.Fatalf("sync with revoked credentials: got %s, want failed", r.op)
		}
		t.Logf("sync.failed error: %s", r.data.Error)
		for _, want := range []string{"oauth/token", "401", "Client ID", "Client secret", "Server-to-Server OAuth app"} {
			if !strings.Contains(r.data.Error, want) {
				t.Errorf("sync.failed error %q does not say %q", r.data.Error, want)
			}
		}
		if strings.Contains(r.data.Error, s.Sim.ClientSecret()) {
			t.Errorf("sync.failed error shows the client secret")
		}
		if r.took > 30*time.Second {
			t.Errorf("the sync took %s to fail on refused credentials, want it to fail fast", r.took)
		}
		for _, ev := range c.since(r.mark) {
			if !strings.HasPrefix(ev.Type, "clarity.sync.") {
				t.Errorf("a sync with revoked credentials emitted %s %s", ev.Type, ev.Subject)
			}
		}
		requireSame(t, "snapshot after a sync with revoked credentials", snapshot(t, s), before)
		checkAPIRequests(t, r)

		// The credentials work again: the next sync catches up.
		r = faultSync(t, s, c, nil, nil)
		requireCompleted(t, s, c, r)
		if _, ok := snapshot(t, s)["service_user|"+u.ID]; ok {
			t.Errorf("user %s removed from Zoom is still there after a completed sync", u.ID)
		}
	})

	t.Run("200 answer that is not a page", func(t *testing.T) {
		// A front end answers 200 with a body that is no users page (here
		// Zoom's error shape, {"code":200,"message":"OK"}). Either the sync
		// retries and completes, or it fails; an empty listing must not be
		// read into it, since that would delete every inactive user.
		before := snapshot(t, s)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "inactive"},
				Status: http.StatusOK, Code: 200, Message: "OK", Times: 1})
		}, nil)
		switch r.op {
		case clarity.OpFailed:
			requireNothingDeleted(t, s, c, r, before)
		default:
			deleted := 0
			for _, ev := range c.since(r.mark) {
				if strings.HasSuffix(ev.Type, ".deleted") {
					deleted++
				}
			}
			if deleted > 0 {
				t.Errorf("a 200 answer without users was read as an empty listing: the sync deleted %d records", deleted)
			}
			requireCompleted(t, s, c, r)
		}
		// Whatever happened, a clean sync restores the organisation.
		requireCompleted(t, s, c, faultSync(t, s, c, nil, nil))
	})

	t.Run("users listing cut short mid-sync", func(t *testing.T) {
		// Zoom ends the active users' listing on its second page: no
		// next_page_token, no users, but a total that says hundreds are
		// missing. Read as complete, the run would delete every active
		// user it did not reach, and their deletions drive
		// deprovisioning downstream.
		u := activeUser(t, s.Sim, 5)
		if _, err := s.Sim.RemoveUser(ctx, u.ID, "delete"); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, s)
		r := faultSync(t, s, c, func() {
			s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "active"}, AfterPage: 1,
				Body: `{"page_size":300,"total_records":699,"next_page_token":"","users":[]}`})
		}, nil)
		if r.op != clarity.OpFailed {
			t.Fatalf("sync of a listing cut short: got %s, want failed", r.op)
		}
		if !strings.Contains(r.data.Error, "users/active") || !strings.Contains(r.data.Error, "ended before all of its records were listed") {
			t.Errorf("sync.failed error %q does not say which listing ended early", r.data.Error)
		}
		requireNothingDeleted(t, s, c, r, before)
		if _, ok := snapshot(t, s)["service_user|"+u.ID]; !ok {
			t.Errorf("user %s, removed from Zoom, was deleted by a sync that failed", u.ID)
		}
		// The listing whole again, the next sync deletes the user.
		requireCompleted(t, s, c, faultSync(t, s, c, nil, nil))
	})

	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}
