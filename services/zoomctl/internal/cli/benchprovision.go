package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// ProvisionBench is what zoomctl bench --provision measures: provisioning
// requests per second through the worker against the simulator under the
// Pro plan's limits, against what those limits allow; and one request's
// latency, publish to reply, while a full sync of the same account runs.
type ProvisionBench struct {
	// Requests deactivate or activate a user each: a read, a write and a
	// read back, all LIGHT endpoints.
	Requests int `json:"requests"`
	// Share is the fetcher's ZOOM_RATE_SHARE.
	Share   float64 `json:"share"`
	Seconds float64 `json:"seconds"`
	// RequestsPerSecond is requests over seconds, first publish to last
	// reply.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// CallsPerRequest is the Zoom API calls the requests made, each.
	CallsPerRequest float64 `json:"calls_per_request"`
	// LimitPerSecond is what the Pro plan's LIGHT limit, times the share,
	// allows of such requests: the target.
	LimitPerSecond float64 `json:"limit_requests_per_second"`
	// OfLimit is RequestsPerSecond over LimitPerSecond.
	OfLimit float64 `json:"of_limit"`
	// RateLimited counts the simulator's 429 answers.
	RateLimited int `json:"rate_limited"`

	// SyncUsers is the size of the account fully synced while single
	// requests' latencies were measured (0: not measured).
	SyncUsers      int     `json:"sync_users,omitempty"`
	SyncSeconds    float64 `json:"sync_seconds,omitempty"`
	LatencySamples int     `json:"latency_samples,omitempty"`
	LatencyP50Ms   float64 `json:"latency_p50_ms,omitempty"`
	LatencyP95Ms   float64 `json:"latency_p95_ms,omitempty"`
	LatencyMaxMs   float64 `json:"latency_max_ms,omitempty"`
}

// runProvisionBench runs both measures and prints them.
func runProvisionBench(ctx context.Context, requests, syncUsers int, share float64, binDir, jsonPath string, out, errw io.Writer) int {
	if requests < 10 || syncUsers < 0 || share <= 0 || share > 1 {
		return fail(errw, ExitUsage, "bench: bad --provision sizes")
	}
	if binDir == "" {
		exe, _ := os.Executable()
		binDir = filepath.Dir(exe)
	}
	dbURL := os.Getenv("DATABASE_URL")
	var r ProvisionBench
	fmt.Fprintf(errw, "bench: %d provisioning requests under the Pro plan's limits…\n", requests)
	if err := benchProvisionRate(ctx, &r, requests, share, binDir, dbURL); err != nil {
		return fail(errw, ExitError, "bench --provision: %v", err)
	}
	if syncUsers > 0 {
		fmt.Fprintf(errw, "bench: provisioning latency during a full sync of %d users…\n", syncUsers)
		if err := benchProvisionLatency(ctx, &r, syncUsers, share, binDir, dbURL); err != nil {
			return fail(errw, ExitError, "bench --provision: %v", err)
		}
	}
	fmt.Fprintf(out, "provisioning: %d requests in %.1fs: %.2f requests/s, limit %.2f/s (Pro LIGHT %d/s × share %.2g ÷ %.1f calls each): %.0f%% of it, %d 429s\n",
		r.Requests, r.Seconds, r.RequestsPerSecond, r.LimitPerSecond,
		int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryLight)), r.Share, r.CallsPerRequest, 100*r.OfLimit, r.RateLimited)
	if r.SyncUsers > 0 {
		fmt.Fprintf(out, "provisioning during a full sync of %d users (%.0fs): %d requests, latency p50 %.0f ms, p95 %.0f ms, max %.0f ms\n",
			r.SyncUsers, r.SyncSeconds, r.LatencySamples, r.LatencyP50Ms, r.LatencyP95Ms, r.LatencyMaxMs)
	}
	if jsonPath != "" {
		_ = os.MkdirAll(filepath.Dir(jsonPath), 0o755)
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		fmt.Fprintf(out, "figures written to %s\n", jsonPath)
	}
	return ExitOK
}

// proLimits are the Pro plan's per-second limits, which the simulator
// enforces in the provisioning bench.
func proLimits() zoomtest.RateLimits {
	return zoomtest.RateLimits{
		Light:  int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryLight)),
		Medium: int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryMedium)),
		Heavy:  int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryHeavy)),
	}
}

// provisionStack starts the services against an organisation under the
// Pro plan's limits, the fetcher using share of them.
func provisionStack(ctx context.Context, org *zoomtest.Org, share float64, binDir, dbURL string) (*devstack.Stack, func(), error) {
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	dir, err := os.MkdirTemp("", "zoom-bench-provision-")
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	var release func()
	if dbURL, release, err = benchDatabase(ctx, dir, dbURL, len(org.Users)); err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, release)
	s, err := devstack.Start(ctx, devstack.Config{BinDir: binDir, DatabaseURL: dbURL, Dir: dir, Org: org, NATSProcess: true,
		Sim: zoomtest.Options{RateLimits: proLimits()},
		Env: map[string]string{"LOG_LEVEL": "warn", "ZOOM_PACING": "true", "ZOOM_PLAN": "pro",
			"ZOOM_RATE_SHARE": strconv.FormatFloat(share, 'f', -1, 64)}})
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, s.Close)
	for _, name := range devstack.Services {
		if name == "webhook" {
			continue // provisioning needs no notifications
		}
		if _, err := s.Run(name); err != nil {
			return nil, cleanup, err
		}
	}
	return s, cleanup, nil
}

// benchProvisionRate publishes requests at once and measures the rate at
// which their replies come.
func benchProvisionRate(ctx context.Context, r *ProvisionBench, requests int, share float64, binDir, dbURL string) error {
	org := zoomtest.Generate(7, zoomtest.Size{Users: 300, Groups: 4, Roles: 4})
	s, cleanup, err := provisionStack(ctx, org, share, binDir, dbURL)
	defer cleanup()
	if err != nil {
		return err
	}
	var users []string
	for _, u := range org.Users {
		if u.Status == zoomtest.StatusActive && u.RoleID != zoomtest.RoleOwner && u.ID != "" {
			users = append(users, u.ID)
		}
	}
	if len(users) < 50 {
		return fmt.Errorf("%d active users, want 50", len(users))
	}
	// The first request of each user deactivates it, the next activates
	// it again, and so on: every request changes Zoom.
	replies, stop, inbox, err := collectReplies(s.NC)
	if err != nil {
		return err
	}
	defer stop()
	ref := s.Config().Connector
	before := s.Sim.TotalRequests()
	start := time.Now()
	for i := range requests {
		action := clarity.ActionDeactivateUser
		if (i/len(users))%2 == 1 {
			action = clarity.ActionActivateUser
		}
		body, _ := json.Marshal(clarity.ProvisionRequest{RequestID: fmt.Sprintf("bench-%d", i), Action: action, User: users[i%len(users)]})
		if err := PublishProvision(ctx, s.JS, ref, body, inbox, nil); err != nil {
			return err
		}
	}
	got := map[string]bool{}
	deadline := time.After(time.Duration(requests) * time.Second)
	for len(got) < requests {
		select {
		case res := <-replies:
			if res.Result != clarity.ResultSucceeded {
				return fmt.Errorf("request %s: %s: %s", res.RequestID, res.Result, res.Error)
			}
			got[res.RequestID] = true
		case <-deadline:
			return fmt.Errorf("%d of %d requests answered in time", len(got), requests)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	d := time.Since(start)
	calls := s.Sim.TotalRequests() - before
	r.Requests, r.Share, r.Seconds = requests, share, d.Seconds()
	r.RequestsPerSecond = float64(requests) / d.Seconds()
	r.CallsPerRequest = float64(calls) / float64(requests)
	r.LimitPerSecond = float64(proLimits().Light) * share / 3 // a read, a write, a read back
	r.OfLimit = r.RequestsPerSecond / r.LimitPerSecond
	for k, n := range s.Sim.RequestsByStatus() {
		if strings.HasSuffix(k, " 429") {
			r.RateLimited += n
		}
	}
	return nil
}

// benchProvisionLatency measures single requests, one after the other,
// while a full sync of an account of users runs.
func benchProvisionLatency(ctx context.Context, r *ProvisionBench, users int, share float64, binDir, dbURL string) error {
	org := zoomtest.Generate(int64(users), zoomtest.Size{Users: users, Groups: max(1, users/50), Roles: 20})
	s, cleanup, err := provisionStack(ctx, org, share, binDir, dbURL)
	defer cleanup()
	if err != nil {
		return err
	}
	var targets []string
	for _, u := range org.Users {
		if u.Status == zoomtest.StatusActive && u.RoleID != zoomtest.RoleOwner && u.ID != "" && len(targets) < 1000 {
			targets = append(targets, u.ID)
		}
	}
	ref := s.Config().Connector
	w, err := NewSyncWatcher(ctx, s.JS, ref)
	if err != nil {
		return err
	}
	defer w.Stop()
	id := NewRequestID()
	start := time.Now()
	if err := Trigger(ctx, s.JS, ref, id); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		res, err := w.Wait(ctx, id, nil)
		if err == nil && res.Op != clarity.OpCompleted {
			err = fmt.Errorf("full sync %s: %s", res.Op, res.Data.Error)
		}
		done <- err
	}()
	// The sync is under way once it lists users.
	for s.Sim.Requests()["GET /users"] < 2 {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	var lat []time.Duration
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			r.SyncUsers, r.SyncSeconds = users, time.Since(start).Seconds()
			return latencies(r, lat)
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		t0 := time.Now()
		res, err := Provision(rctx, s.NC, s.JS, ref, clarity.ProvisionRequest{
			RequestID: fmt.Sprintf("latency-%d", i), Action: clarity.ActionDeactivateUser, User: targets[i%len(targets)],
		}, nil)
		cancel()
		if err != nil {
			return err
		}
		if res.Result == clarity.ResultFailed {
			return fmt.Errorf("request %s: %s", res.RequestID, res.Error)
		}
		lat = append(lat, time.Since(t0))
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

func latencies(r *ProvisionBench, lat []time.Duration) error {
	if len(lat) == 0 {
		return fmt.Errorf("the sync ended before a request was measured")
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r.LatencySamples = len(lat)
	r.LatencyP50Ms = ms(lat[len(lat)/2])
	r.LatencyP95Ms = ms(lat[min(len(lat)-1, len(lat)*95/100)])
	r.LatencyMaxMs = ms(lat[len(lat)-1])
	return nil
}

// collectReplies subscribes to a new inbox and hands over the results
// published to it.
func collectReplies(nc *nats.Conn) (<-chan clarity.ProvisionResult, func(), string, error) {
	inbox := nc.NewRespInbox()
	ch := make(chan clarity.ProvisionResult, 1<<16)
	var once sync.Once
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		var res clarity.ProvisionResult
		if json.Unmarshal(m.Data, &res) == nil {
			ch <- res
		}
	})
	if err != nil {
		return nil, nil, "", err
	}
	return ch, func() { once.Do(func() { sub.Unsubscribe() }) }, inbox, nil //nolint:errcheck
}
