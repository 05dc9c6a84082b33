package zoom

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestPlanLimitsAndCategories(t *testing.T) {
	t.Parallel()
	limits := []struct {
		plan Plan
		cat  Category
		want rate.Limit
	}{
		{PlanFree, CategoryLight, 4},
		{PlanFree, CategoryMedium, 2},
		{PlanFree, CategoryHeavy, 1},
		{PlanPro, CategoryLight, 30},
		{PlanPro, CategoryMedium, 20},
		{PlanPro, CategoryHeavy, 10},
		{PlanBusiness, CategoryLight, 80},
		{PlanBusiness, CategoryMedium, 60},
		{PlanBusiness, CategoryHeavy, 40},
		{PlanBusiness, CategoryResourceIntensive, rate.Limit(20.0 / 60)},
	}
	for _, tt := range limits {
		if got := PlanLimit(tt.plan, tt.cat); got != tt.want {
			t.Errorf("PlanLimit(%s, %s) = %v, want %v", tt.plan, tt.cat, got, tt.want)
		}
	}
	categories := []struct {
		endpoint string
		want     Category
	}{
		{"GET /users", CategoryMedium},
		{"GET /users/{userId}", CategoryLight},
		{"GET /groups", CategoryMedium},
		{"GET /groups/{groupId}/admins", CategoryMedium},
		{"GET /roles", CategoryMedium},
		{"GET /somewhere/new", CategoryHeavy},
		{UsersListing("active").Endpoint(), CategoryMedium},
		{GroupAdminsListing("g").Endpoint(), CategoryMedium},
	}
	for _, tt := range categories {
		if got := EndpointCategory(tt.endpoint); got != tt.want {
			t.Errorf("EndpointCategory(%q) = %s, want %s", tt.endpoint, got, tt.want)
		}
	}
	plans := []struct {
		in   string
		want Plan
	}{{"free", PlanFree}, {"Pro", PlanPro}, {"business", PlanBusiness}, {"education", PlanBusiness}, {"enterprise", PlanBusiness}}
	for _, tt := range plans {
		if got, err := ParsePlan(tt.in); err != nil || got != tt.want {
			t.Errorf("ParsePlan(%q) = %s, %v, want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestPacingSpreadsRequests fires many requests at once for a short window
// and counts how many reached the server: with pacing, about rate × window;
// without, all of them. Bounds are loose so that a slow machine passes. It
// runs alone, not in parallel: it counts under the real clock, which other
// tests' work on the same cores would slow.
func TestPacingSpreadsRequests(t *testing.T) {
	const callers = 60
	const window = 400 * time.Millisecond
	tests := []struct {
		name     string
		mod      func(*Config)
		min, max int64
	}{
		// Pro light limit is 30/s; at a share of 1, 400 ms lets 1 + 12 through.
		{"pro light at full share", func(c *Config) { c.DisablePacing = false; c.PaceShare = 1 }, 4, 15},
		// At the default share of 0.5: 15/s, so 1 + 6.
		{"pro light at default share", func(c *Config) { c.DisablePacing = false }, 2, 9},
		// Free light limit is 4/s: 1 + 1.6.
		{"free plan", func(c *Config) { c.DisablePacing = false; c.Plan = PlanFree; c.PaceShare = 1 }, 1, 4},
		{"pacing disabled", func(c *Config) { c.DisablePacing = true }, callers, callers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int64
			env := newTestEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeJSON(w, 200, userBody)
			}), tt.mod)
			ctx, cancel := context.WithTimeout(context.Background(), window)
			defer cancel()
			// Fetch the token first so that its round trip does not eat into
			// the window.
			if _, err := env.c.TokenSource().Token(); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() { _, _ = env.c.GetUser(ctx, "u1") })
			}
			wg.Wait()
			if got := hits.Load(); got < tt.min || got > tt.max {
				t.Errorf("requests in %s = %d, want within [%d, %d]", window, got, tt.min, tt.max)
			}
			if tt.min < callers && env.c.Requests().Paced == 0 {
				t.Error("Stats.Paced = 0, want the pacing wait counted")
			}
		})
	}
}

func TestRateLimitHoldsTheCategory(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := newPacer(Config{DisablePacing: true}, clock.now, clock.sleep)
	p.holdUntil(CategoryMedium, RateLimited{Until: clock.now().Add(3 * time.Second)})
	p.holdUntil(CategoryMedium, RateLimited{Until: clock.now().Add(time.Second)}) // an earlier end does not shorten the hold
	if d, err := p.wait(context.Background(), CategoryLight); err != nil || d != 0 {
		t.Errorf("light wait = %s, %v, want none", d, err)
	}
	if d, err := p.wait(context.Background(), CategoryMedium); err != nil || d != 3*time.Second {
		t.Errorf("medium wait = %s, %v, want 3s", d, err)
	}
	if d, err := p.wait(context.Background(), CategoryMedium); err != nil || d != 0 {
		t.Errorf("medium wait after the hold = %s, %v, want none", d, err)
	}
}
