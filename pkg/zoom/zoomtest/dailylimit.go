package zoomtest

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Zoom's daily limits: a free account may make 6,000 Light, 2,000 Medium
// and 1,000 Heavy requests a day; paid plans have no daily cap for these
// labels. The day is
// Zoom's, in UTC: the limits reset at midnight UTC.
const (
	FreeLightDaily  = 6000
	FreeMediumDaily = 2000
	FreeHeavyDaily  = 1000
)

// DailyMessage is the message of Zoom's 429 for a daily limit.
const DailyMessage = "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request."

// daily counts one account's requests of each label in the current UTC
// day.
type daily struct {
	mu    sync.Mutex
	day   string
	count map[Category]int
}

// dailyLimit is the account's daily cap of a label: what RateLimits sets,
// else on a free plan Zoom's free caps, else none (0).
func dailyLimit(rl RateLimits, plan Plan, cat Category) int {
	set := map[Category]int{Light: rl.LightDaily, Medium: rl.MediumDaily, Heavy: rl.HeavyDaily}[cat]
	if set > 0 || plan.paid() {
		return set
	}
	return map[Category]int{Light: FreeLightDaily, Medium: FreeMediumDaily, Heavy: FreeHeavyDaily}[cat]
}

// take counts one request of cat at now against limit (0: none), and
// reports whether it is within it.
func (d *daily) take(cat Category, now time.Time, limit int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	day := now.UTC().Format(time.DateOnly)
	if day != d.day || d.count == nil {
		d.day, d.count = day, map[Category]int{}
	}
	d.count[cat]++
	return limit <= 0 || d.count[cat] <= limit
}

// writeDailyLimited answers a request over a daily limit as Zoom does: 429
// code 429 with DailyMessage, with no headers or with X-RateLimit-Type
// Daily-limit and a Retry-After that is the datetime of the reset (Zoom
// has answered both ways). With headers off (see
// Server.SetRateLimitHeaders) there are none, and the client must know the
// limit from the message.
func writeDailyLimited(w http.ResponseWriter, cat Category, limit int, now time.Time, headers bool) {
	if headers {
		h := w.Header()
		h.Set("X-RateLimit-Category", string(cat))
		h.Set("X-RateLimit-Type", "Daily-limit")
		h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
		h.Set("X-RateLimit-Remaining", "0")
		reset := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		h.Set("Retry-After", reset.Format(time.RFC3339))
	}
	writeError(w, http.StatusTooManyRequests, 429, DailyMessage)
}
