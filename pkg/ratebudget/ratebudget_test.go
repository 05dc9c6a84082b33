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
	cfg.JetStream, cfg.Plan, cfg.Observer, cfg.Log = js, zoom.PlanPro, obs, zerolog.New(zerolog.NewTestWriter(t))
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
// all they may of every second, a prompt request from either still goes
// within the second: bulk requests never take the reserve, and in its own
// replica a prompt request goes before the bulk ones waiting.
func TestPromptRequestsGoFirst(t *testing.T) {
	srv := natstest.Run(t)
	sim := newSim(t)
	replicas := []replica{
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{}),
		newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{}),
	}
	const d = 4 * time.Second
	done := make(chan struct{})
	var prompts []time.Duration
	go func() {
		defer close(done)
		users := sim.Org().Users
		ctx := zoom.WithPriority(context.Background(), zoom.PriorityPrompt)
		for i := 0; i < 12; i++ {
			time.Sleep(d / 16)
			start := time.Now()
			if _, err := replicas[i%2].client.GetUser(ctx, users[i].ID); err != nil {
				t.Errorf("prompt get user: %v", err)
				return
			}
			prompts = append(prompts, time.Since(start))
		}
	}()
	bulk := hammer(d, t, sim, replicas, 6)
	<-done
	slowest := slices.Max(prompts)
	t.Logf("%d bulk reads; prompt reads took %v", bulk, prompts)
	if slowest > 2*time.Second {
		t.Errorf("a prompt read took %s while bulk reads filled the budget, want within the next second or so (the reserve of every second is theirs)", slowest)
	}
	if peak := sim.DefaultAccount().PeakPerSecond()[zoomtest.Light]; peak > budgetLight {
		t.Errorf("peak %d Light requests in one second, want at most the budget %d", peak, budgetLight)
	}
}

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
