package zoom

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Category is a Zoom rate-limit label. Zoom limits each category per account,
// per second (per minute for resource-intensive endpoints).
type Category string

// The rate-limit categories of Zoom's "Rate limits" page.
const (
	CategoryLight             Category = "light"
	CategoryMedium            Category = "medium"
	CategoryHeavy             Category = "heavy"
	CategoryResourceIntensive Category = "resource-intensive"
)

// Plan is the Zoom plan of the account, which sets its rate limits.
type Plan string

// The plans with distinct rate limits. Business also stands for Education,
// Enterprise and Partners, which share its limits.
const (
	PlanFree     Plan = "free"
	PlanPro      Plan = "pro"
	PlanBusiness Plan = "business"
)

// ParsePlan accepts a plan name, case-insensitively, including the plans
// Zoom lists under Business+ ("education", "enterprise", "partner").
func ParsePlan(s string) (Plan, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "free", "basic":
		return PlanFree, nil
	case "pro":
		return PlanPro, nil
	case "business", "business+", "education", "enterprise", "partner", "partners":
		return PlanBusiness, nil
	}
	return "", fmt.Errorf("zoom: unknown plan %q (want free, pro or business)", s)
}

// planLimits holds Zoom's published per-second limits (resource-intensive ones
// are per minute, converted). Daily caps (free plan, heavy endpoints) are not
// paced; a daily 429 fails fast instead, see RateLimitError.
var planLimits = map[Plan]map[Category]rate.Limit{
	PlanFree: {
		CategoryLight: 4, CategoryMedium: 2, CategoryHeavy: 1,
		CategoryResourceIntensive: rate.Limit(10.0 / 60),
	},
	PlanPro: {
		CategoryLight: 30, CategoryMedium: 20, CategoryHeavy: 10,
		CategoryResourceIntensive: rate.Limit(10.0 / 60),
	},
	PlanBusiness: {
		CategoryLight: 80, CategoryMedium: 60, CategoryHeavy: 40,
		CategoryResourceIntensive: rate.Limit(20.0 / 60),
	},
}

// PlanLimit is Zoom's per-second limit for a category on a plan, or 0 when the
// plan or category is unknown.
func PlanLimit(p Plan, c Category) rate.Limit {
	return planLimits[p][c]
}

// endpointCategories maps the endpoints this connector calls, and their
// neighbours, to the labels of Zoom's OpenAPI documents.
var endpointCategories = map[string]Category{
	"GET /users":                                  CategoryMedium,
	"POST /users":                                 CategoryLight,
	"GET /users/{userId}":                         CategoryLight,
	"PATCH /users/{userId}":                       CategoryLight,
	"DELETE /users/{userId}":                      CategoryLight,
	"PUT /users/{userId}/status":                  CategoryLight,
	"GET /groups":                                 CategoryMedium,
	"GET /groups/{groupId}":                       CategoryLight,
	"GET /groups/{groupId}/members":               CategoryMedium,
	"POST /groups/{groupId}/members":              CategoryMedium,
	"DELETE /groups/{groupId}/members/{memberId}": CategoryLight,
	"PATCH /groups/{groupId}/members/{memberId}":  CategoryMedium,
	"GET /groups/{groupId}/admins":                CategoryMedium,
	"POST /groups/{groupId}/admins":               CategoryMedium,
	"DELETE /groups/{groupId}/admins/{userId}":    CategoryLight,
	"GET /roles":                                  CategoryMedium,
	"GET /roles/{roleId}":                         CategoryLight,
	"GET /roles/{roleId}/members":                 CategoryMedium,
	"POST /roles/{roleId}/members":                CategoryMedium,
	"DELETE /roles/{roleId}/members/{memberId}":   CategoryLight,
}

// EndpointCategory returns the rate-limit category of an endpoint given as
// "METHOD /path/{template}". An endpoint not in Zoom's table counts as heavy,
// so that a mistake errs on the side of fewer requests.
func EndpointCategory(endpoint string) Category {
	if c, ok := endpointCategories[endpoint]; ok {
		return c
	}
	return CategoryHeavy
}

// pacer spaces requests per category so that this client uses only its share
// of the account's limit, which every app on the account draws from. After a
// 429 it also holds back the whole category until Zoom's announced reset, so
// that concurrent callers do not spend requests that are bound to fail.
type pacer struct {
	limiters map[Category]*rate.Limiter // nil when pacing is disabled
	// budget, when set, replaces the limiters: the account's budget,
	// shared with other clients.
	budget Budget
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error

	// maxHold is the longest hold wait waits through; a longer one (a
	// daily limit) fails fast with a *HoldError.
	maxHold time.Duration

	mu    sync.Mutex
	hold  map[Category]time.Time
	daily map[Category]bool
}

func newPacer(cfg Config, now func() time.Time, sleep func(context.Context, time.Duration) error) *pacer {
	p := &pacer{now: now, sleep: sleep, maxHold: cfg.MaxRateLimitWait,
		hold: make(map[Category]time.Time), daily: make(map[Category]bool)}
	if cfg.DisablePacing {
		return p
	}
	if cfg.Budget != nil {
		p.budget = cfg.Budget
		return p
	}
	p.limiters = make(map[Category]*rate.Limiter)
	for c, l := range planLimits[cfg.Plan] {
		p.limiters[c] = rate.NewLimiter(l*rate.Limit(cfg.PaceShare), cfg.PaceBurst)
	}
	return p
}

// wait blocks until a request of category c may go, and returns how long it
// waited.
func (p *pacer) wait(ctx context.Context, c Category) (time.Duration, error) {
	var waited time.Duration
	p.mu.Lock()
	until, daily := p.hold[c], p.daily[c]
	p.mu.Unlock()
	if d := until.Sub(p.now()); d > p.maxHold && p.maxHold > 0 {
		return 0, &HoldError{Until: until, Daily: daily}
	} else if d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			return waited, err
		}
		waited += d
	}
	if p.budget != nil {
		d, err := p.budget.Take(ctx, c, PriorityOf(ctx))
		return waited + d, err
	}
	l := p.limiters[c]
	if l == nil {
		return waited, nil
	}
	start := time.Now()
	err := l.Wait(ctx)
	return waited + time.Since(start), err
}

// holdUntil keeps requests of category c back until t, and tells the
// budget, which holds back the account's other clients too.
func (p *pacer) holdUntil(c Category, l RateLimited) {
	p.mu.Lock()
	if l.Until.After(p.hold[c]) {
		p.hold[c], p.daily[c] = l.Until, l.Daily
	}
	p.mu.Unlock()
	if p.budget != nil {
		p.budget.Limited(c, l)
	}
}

// tellBudget tells the budget, when there is one, of a 429 this client does
// not wait for itself (a daily limit): the budget holds the account's
// requests back, this client's included.
func (p *pacer) tellBudget(c Category, l RateLimited) {
	if p.budget != nil {
		p.budget.Limited(c, l)
	}
}
