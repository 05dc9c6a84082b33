package ratebudget_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// proLimits are the Pro plan's limits, which the simulator enforces.
var proLimits = zoomtest.RateLimits{Light: 30, Medium: 20, Heavy: 10}

// replica is one fetcher replica's view of Zoom: its own NATS connection,
// budget and client.
type replica struct {
	budget *ratebudget.Budget
	client *zoom.Client
	obs    *countObserver
}

type countObserver struct {
	shared, local atomic.Int64
}

func (o *countObserver) Granted(_ zoom.Category, p zoom.Priority, waited time.Duration, shared bool) {
	if shared {
		o.shared.Add(1)
	} else {
		o.local.Add(1)
	}
}
func (o *countObserver) Coordinated(bool) {}

func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func newReplica(t testing.TB, sim *zoomtest.Server, js jetstream.JetStream, cfg ratebudget.Config) replica {
	t.Helper()
	obs := &countObserver{}
	if cfg.Observer == nil {
		cfg.Observer = obs
	}
	cfg.JetStream, cfg.Plan, cfg.Log = js, zoom.PlanPro, zerolog.New(zerolog.NewTestWriter(t))
	b, err := ratebudget.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.DefaultAccount().ID(), ClientID: zoomtest.DefaultClientID, ClientSecret: zoomtest.DefaultClientSecret,
		Plan:   zoom.PlanPro,
		Budget: b.Account(ratebudget.AccountKey(sim.DefaultAccount().ID(), "")),
	})
	if err != nil {
		t.Fatal(err)
	}
	return replica{budget: b, client: c, obs: obs}
}

// hammer re-reads users from every replica with several workers each until
// ctx ends, and returns how many reads succeeded.
func hammer(d time.Duration, t testing.TB, sim *zoomtest.Server, replicas []replica, workers int) int64 {
	t.Helper()
	users := sim.Org().Users
	end := time.Now().Add(d)
	var ok atomic.Int64
	var wg sync.WaitGroup
	for ri, r := range replicas {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := ri*workers + w; time.Now().Before(end); i += len(replicas) * workers {
					if _, err := r.client.GetUser(context.Background(), users[i%len(users)].ID); err != nil {
						t.Errorf("get user: %v", err)
						return
					}
					ok.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return ok.Load()
}

func newSim(t testing.TB) *zoomtest.Server {
	t.Helper()
	sim := zoomtest.NewServer(t, zoomtest.Generate(7, zoomtest.Size{Users: 200, Groups: 3, Roles: 4}),
		zoomtest.Options{RateLimits: proLimits})
	return sim
}

// budgetLight is the Light budget at the default share: half of Pro's 30.
const budgetLight = 15

func TestTwoReplicasNeverExceedTheAccountBudget(t *testing.T) {
	srv := natstest.Run(t)
	sim := newSim(t)
	replicas := []replica{
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{}),
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{}),
	}
	n := hammer(4*time.Second, t, sim, replicas, 6)

	peak := sim.DefaultAccount().PeakPerSecond()[zoomtest.Light]
	t.Logf("%d reads, peak %d Light requests in one second (budget %d)", n, peak, budgetLight)
	if peak > budgetLight {
		t.Errorf("peak %d Light requests in one second, want at most the budget %d", peak, budgetLight)
	}
	if n <= budgetLight {
		t.Errorf("%d reads in 4 s: the budget was never filled, the test shows nothing", n)
	}
	if got := sim.RequestsByStatus()["GET /users/{userId} 429"]; got != 0 {
		t.Errorf("%d 429s, want 0", got)
	}
	for i, r := range replicas {
		if r.obs.shared.Load() == 0 || r.obs.local.Load() != 0 {
			t.Errorf("replica %d: %d grants from the shared budget, %d from its local share; want all shared",
				i, r.obs.shared.Load(), r.obs.local.Load())
		}
	}
}

// TestPerProcessPacingExceedsTheBudget shows what the shared budget
// replaces: two replicas each pacing by themselves under the same share
// spend twice the budget.
func TestPerProcessPacingExceedsTheBudget(t *testing.T) {
	sim := newSim(t)
	var replicas []replica
	for range 2 {
		c, err := zoom.New(zoom.Config{
			APIURL: sim.APIBase(), OAuthURL: sim.URL(),
			AccountID: sim.DefaultAccount().ID(), ClientID: zoomtest.DefaultClientID, ClientSecret: zoomtest.DefaultClientSecret,
			Plan: zoom.PlanPro,
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, replica{client: c})
	}
	hammer(3*time.Second, t, sim, replicas, 6)
	if peak := sim.DefaultAccount().PeakPerSecond()[zoomtest.Light]; peak <= budgetLight {
		t.Errorf("peak %d Light requests in one second with per-process pacing, want above the budget %d", peak, budgetLight)
	}
}

func TestCoordinatorAwayConservativeShareAndBack(t *testing.T) {
	dir := t.TempDir()
	srv, err := natstest.Start(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	defer func() { srv.Shutdown() }()
	sim := newSim(t)
	const expected = 3
	r := newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{
		ExpectedReplicas: expected, Retry: 300 * time.Millisecond, OpTimeout: 200 * time.Millisecond,
	})
	run := func(d time.Duration) { hammer(d, t, sim, []replica{r}, 4) }

	run(1500 * time.Millisecond)
	if r.obs.shared.Load() == 0 || r.obs.local.Load() != 0 || !r.budget.Coordinated() {
		t.Fatalf("with NATS up: %d shared grants, %d local, coordinated %t; want shared only",
			r.obs.shared.Load(), r.obs.local.Load(), r.budget.Coordinated())
	}

	srv.Shutdown()
	srv.WaitForShutdown()
	sim.DefaultAccount().ResetPerSecond()
	run(3 * time.Second)
	if r.obs.local.Load() == 0 || r.budget.Coordinated() {
		t.Errorf("with NATS away: %d local grants, coordinated %t; want the local share", r.obs.local.Load(), r.budget.Coordinated())
	}
	// The local share is the budget split among the expected replicas:
	// 15/3 = 5 a second, and the one request a token bucket holds.
	if peak, want := sim.DefaultAccount().PeakPerSecond()[zoomtest.Light], budgetLight/expected+1; peak > want {
		t.Errorf("with NATS away: peak %d Light requests in one second, want at most %d", peak, want)
	}

	srv, err = natstest.Start(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	shared := r.obs.shared.Load()
	deadline := time.Now().Add(10 * time.Second)
	for r.obs.shared.Load() == shared && time.Now().Before(deadline) {
		run(500 * time.Millisecond)
	}
	if r.obs.shared.Load() == shared || !r.budget.Coordinated() {
		t.Errorf("with NATS back: no new shared grant (coordinated %t); want the shared budget again", r.budget.Coordinated())
	}
	if got := sim.RequestsByStatus()["GET /users/{userId} 429"]; got != 0 {
		t.Errorf("%d 429s, want 0", got)
	}
}

// TestPromptRequestsGoFirst: while bulk requests from two replicas take
// all they may of every second, a prompt request from either goes before
// the bulk requests of its replica that come after it: between its start
// and its grant, its replica grants at most the bulk requests already
// waiting when it started (those being granted then), none that started
// after it. The check is on the order of grants, not on time.
func TestPromptRequestsGoFirst(t *testing.T) {
	srv := natstest.Run(t)
	sim := newSim(t)
	log := &grantLog{}
	replicas := []replica{
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{Observer: log.of(0)}),
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{Observer: log.of(1)}),
	}
	const workers = 6
	users := sim.Org().Users
	end := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	var bulk atomic.Int64
	for ri, r := range replicas {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := ri*workers + w; time.Now().Before(end); i += len(replicas) * workers {
					log.add(ri, bulkStart)
					if _, err := r.client.GetUser(context.Background(), users[i%len(users)].ID); err != nil {
						t.Errorf("get user: %v", err)
						return
					}
					bulk.Add(1)
				}
			}()
		}
	}
	ctx := zoom.WithPriority(context.Background(), zoom.PriorityPrompt)
	for i := 0; i < 12; i++ {
		time.Sleep(250 * time.Millisecond)
		// One prompt request at a time: its start and grant bracket
		// the grants that went before it.
		log.add(i%2, promptStart)
		if _, err := replicas[i%2].client.GetUser(ctx, users[i].ID); err != nil {
			t.Fatalf("prompt get user: %v", err)
		}
	}
	wg.Wait()
	t.Logf("%d bulk reads, 12 prompt reads", bulk.Load())
	prompts := 0
	for ri := range replicas {
		// Bulk requests waiting; bulk ones granted since the prompt
		// started; how many were waiting when it started.
		var waiting, before, bound int
		inPrompt := false
		for _, e := range log.events(ri) {
			switch e {
			case bulkStart:
				waiting++
			case bulkGranted:
				waiting--
				if inPrompt {
					before++
				}
			case promptStart:
				inPrompt, before = true, 0
				// The most that may go before it: the bulk requests
				// waiting now, some of which may be being granted.
				bound = waiting
			case promptGranted:
				prompts++
				inPrompt = false
				if before > bound {
					t.Errorf("replica %d: %d bulk requests granted before a prompt one, of which %d started after it (%d were waiting when it started)",
						ri, before, before-bound, bound)
				}
			}
		}
	}
	if prompts != 12 {
		t.Errorf("%d prompt grants seen, want 12", prompts)
	}
	if bulk.Load() <= budgetLight {
		t.Errorf("%d bulk reads in 4 s: the budget was never filled, the test shows nothing", bulk.Load())
	}
	if peak := sim.DefaultAccount().PeakPerSecond()[zoomtest.Light]; peak > budgetLight {
		t.Errorf("peak %d Light requests in one second, want at most the budget %d", peak, budgetLight)
	}
}

// The events of grantLog.
const (
	bulkStart = iota
	bulkGranted
	promptStart
	promptGranted
)

// grantLog records, per replica, when requests start waiting and when the
// budget grants them, in the order they happen.
type grantLog struct {
	mu  sync.Mutex
	log [2][]int
}

func (l *grantLog) add(replica, event int) {
	l.mu.Lock()
	l.log[replica] = append(l.log[replica], event)
	l.mu.Unlock()
}

func (l *grantLog) events(replica int) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log[replica])
}

func (l *grantLog) of(replica int) ratebudget.Observer { return grantObserver{l: l, replica: replica} }

type grantObserver struct {
	l       *grantLog
	replica int
}

func (o grantObserver) Granted(_ zoom.Category, p zoom.Priority, _ time.Duration, _ bool) {
	if p == zoom.PriorityPrompt {
		o.l.add(o.replica, promptGranted)
	} else {
		o.l.add(o.replica, bulkGranted)
	}
}
func (o grantObserver) Coordinated(bool) {}

// TestDailyLimitHoldsEveryReplica: once Zoom answers one replica that the
// account's daily limit is reached, the other replica's requests of that
// category fail at once, saying until when, without being sent; other
// categories go on.
func TestDailyLimitHoldsEveryReplica(t *testing.T) {
	srv := natstest.Run(t)
	sim := newSim(t)
	a := newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{})
	b := newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{})
	sim.Faults().Add(zoomtest.Fault{Route: "GET /users/{userId}", Status: 429, Code: 429, Times: 1,
		Message: "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request."})
	ctx := context.Background()
	users := sim.Org().Users
	_, err := a.client.GetUser(ctx, users[0].ID)
	var rl *zoom.RateLimitError
	if !errors.As(err, &rl) || !rl.Daily {
		t.Fatalf("first replica: %v, want a daily *zoom.RateLimitError", err)
	}
	sent := sim.Requests()["GET /users/{userId}"]
	_, err = b.client.GetUser(ctx, users[1].ID)
	if !errors.As(err, &rl) || !rl.Daily || rl.RetryAt.UTC().Hour() != 0 || !rl.RetryAt.After(time.Now()) {
		t.Fatalf("second replica: %v, want a daily *zoom.RateLimitError until midnight UTC", err)
	}
	if got := sim.Requests()["GET /users/{userId}"]; got != sent {
		t.Errorf("the second replica sent %d requests during the hold, want none", got-sent)
	}
	if !strings.Contains(err.Error(), "daily rate limit") || !strings.Contains(err.Error(), "T00:00:00Z") {
		t.Errorf("error %q does not say the daily limit holds until midnight UTC", err)
	}
	if err := b.client.Pages(ctx, zoom.UsersListing("active"), func(zoom.RawPage) error { return nil }); err != nil {
		t.Errorf("a listing (another category) during the hold: %v", err)
	}
}
