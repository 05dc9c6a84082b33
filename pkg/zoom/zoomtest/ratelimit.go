package zoomtest

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimits are requests per second for each Zoom rate-limit label, shared
// by every endpoint of the label as Zoom's per-account limits are. Zero means
// unlimited. Zoom's plans: Pro 30/20/10, Business+ 80/60/40 (requests per second by rate category, as Zoom documents them).
type RateLimits struct {
	Light  int `json:"light"`
	Medium int `json:"medium"`
	Heavy  int `json:"heavy"`
	// LightDaily, MediumDaily and HeavyDaily cap the requests of a label
	// per UTC day (dailylimit.go); zero is Zoom's cap for the account's
	// plan: FreeLightDaily and the others on a free plan, none on a paid
	// one.
	LightDaily  int `json:"light_daily,omitempty"`
	MediumDaily int `json:"medium_daily,omitempty"`
	HeavyDaily  int `json:"heavy_daily,omitempty"`
}

type limiter struct {
	mu     sync.Mutex
	now    func() time.Time
	limits RateLimits
	byCat  map[Category]*rate.Limiter
	// seconds counts the requests of each second, limited or not.
	seconds perSecond
	// day counts the requests of the UTC day against the daily caps, of
	// the plan that plan reports (nil: a paid one).
	day  daily
	plan func() Plan
}

func newLimiter(l RateLimits, now func() time.Time) *limiter {
	lim := &limiter{now: now}
	lim.set(l)
	return lim
}

func (l *limiter) set(rl RateLimits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = rl
	l.byCat = map[Category]*rate.Limiter{}
	for cat, n := range map[Category]int{Light: rl.Light, Medium: rl.Medium, Heavy: rl.Heavy} {
		if n > 0 {
			// A burst of one second's worth: a client may spend a second's
			// quota at once, as a per-second counter would allow.
			l.byCat[cat] = rate.NewLimiter(rate.Limit(n), n)
		}
	}
}

// allow takes one request from the label's budget, or answers 429 as Zoom
// does for the per-second limit.
func (l *limiter) allow(w http.ResponseWriter, cat Category, headers bool) bool {
	l.mu.Lock()
	lim, rl, planOf := l.byCat[cat], l.limits, l.plan
	l.mu.Unlock()
	now := l.now()
	l.seconds.add(cat, now)
	plan := PlanPro
	if planOf != nil {
		plan = planOf()
	}
	if limit := dailyLimit(rl, plan, cat); !l.day.take(cat, now, limit) {
		writeDailyLimited(w, cat, limit, now, headers)
		return false
	}
	if lim == nil {
		return true
	}
	ok := lim.AllowN(now, 1)
	if headers {
		h := w.Header()
		h.Set("X-RateLimit-Category", string(cat))
		h.Set("X-RateLimit-Type", "QPS")
		h.Set("X-RateLimit-Limit", strconv.Itoa(lim.Burst()))
		remaining := int(math.Max(0, math.Floor(lim.TokensAt(now))))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		if !ok {
			wait := (1 - lim.TokensAt(now)) / float64(lim.Limit())
			h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait)))))
		}
	}
	if !ok {
		writeError(w, http.StatusTooManyRequests, 429, "You have reached the maximum per-second rate limit for this API. Try again later.")
	}
	return ok
}
