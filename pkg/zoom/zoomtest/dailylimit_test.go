package zoomtest

import (
	"net/http"
	"testing"
	"time"
)

// TestDailyLimit: over a label's daily cap the simulator answers as Zoom
// does, 429 code 429 with the daily message, with the rate-limit headers
// (X-RateLimit-Type Daily-limit, Retry-After the next midnight UTC) only
// when they are on; the cap resets at midnight UTC, and a free plan has
// Zoom's free caps without being told.
func TestDailyLimit(t *testing.T) {
	for _, headers := range []bool{false, true} {
		clock := newClock()
		s := NewServer(t, small(t), Options{Now: clock.Now, TokenTTL: 48 * time.Hour, OmitRateLimitHeaders: !headers,
			RateLimits: RateLimits{MediumDaily: 3}})
		tok := requestToken(t, s)
		for i := range 3 {
			if r := api(t, s, tok, "GET", "/users?page_size=1", nil); r.status != http.StatusOK {
				t.Fatalf("headers %v: request %d: got %d %s, want 200", headers, i+1, r.status, r.raw)
			}
		}
		r := api(t, s, tok, "GET", "/groups", nil) // Medium too
		if r.status != http.StatusTooManyRequests || r.num("code") != 429 || r.str("message") != DailyMessage {
			t.Fatalf("headers %v: over the cap: got %d %s, want 429 code 429 with the daily message", headers, r.status, r.raw)
		}
		if got := r.header.Get("X-RateLimit-Type"); (got == "Daily-limit") != headers {
			t.Errorf("headers %v: X-RateLimit-Type %q", headers, got)
		}
		midnight := clock.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339)
		if got := r.header.Get("Retry-After"); (got == midnight) != headers || (!headers && got != "") {
			t.Errorf("headers %v: Retry-After %q, want %q only with headers", headers, got, midnight)
		}
		if r := api(t, s, tok, "GET", "/roles/2", nil); r.status != http.StatusOK && r.status != http.StatusBadRequest {
			t.Errorf("headers %v: a Light request after the Medium cap: got %d %s", headers, r.status, r.raw)
		}
		clock.Advance(24 * time.Hour)
		if r := api(t, s, tok, "GET", "/users?page_size=1", nil); r.status != http.StatusOK {
			t.Errorf("headers %v: the next day: got %d %s, want 200", headers, r.status, r.raw)
		}
	}
	for _, c := range []struct {
		plan Plan
		cat  Category
		want int
	}{{PlanBasic, Light, FreeLightDaily}, {PlanBasic, Medium, FreeMediumDaily}, {PlanBasic, Heavy, FreeHeavyDaily}, {PlanPro, Medium, 0}, {PlanBusiness, Light, 0}} {
		if got := dailyLimit(RateLimits{}, c.plan, c.cat); got != c.want {
			t.Errorf("daily cap of %s %s: got %d, want %d", c.plan, c.cat, got, c.want)
		}
	}
}
