package zoom

import (
	"net/http"
	"testing"
	"time"
)

func TestRateLimitReset(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 2, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Time
		wantOK  bool
	}{
		{"none", nil, time.Time{}, false},
		{"Retry-After seconds", map[string]string{"Retry-After": "7"}, now.Add(7 * time.Second), true},
		{"Retry-After fractional", map[string]string{"Retry-After": "0.5"}, now.Add(500 * time.Millisecond), true},
		{"Retry-After ISO-8601", map[string]string{"Retry-After": "2026-02-08T00:00:00Z"}, time.Date(2026, 2, 8, 0, 0, 0, 0, time.UTC), true},
		{"Retry-After with offset", map[string]string{"Retry-After": "2026-02-08T01:00:00+01:00"}, time.Date(2026, 2, 8, 0, 0, 0, 0, time.UTC), true},
		{"Retry-After without zone", map[string]string{"Retry-After": "2026-02-08T00:00:00"}, time.Date(2026, 2, 8, 0, 0, 0, 0, time.UTC), true},
		{"Retry-After HTTP-date", map[string]string{"Retry-After": "Sun, 08 Feb 2026 00:00:00 GMT"}, time.Date(2026, 2, 8, 0, 0, 0, 0, time.UTC), true},
		{"X-RateLimit-Reset unix seconds", map[string]string{"X-RateLimit-Reset": "1770465605"}, time.Unix(1770465605, 0), true},
		{"X-RateLimit-Reset unix milliseconds", map[string]string{"X-RateLimit-Reset": "1770465605500"}, time.UnixMilli(1770465605500), true},
		{"X-RateLimit-Reset relative seconds", map[string]string{"X-RateLimit-Reset": "3"}, now.Add(3 * time.Second), true},
		{"garbage", map[string]string{"Retry-After": "later", "X-RateLimit-Reset": "soon"}, time.Time{}, false},
		{"negative", map[string]string{"Retry-After": "-4"}, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			got, ok := rateLimitReset(h, now)
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("rateLimitReset(%v) = %s, %t, want %s, %t", tt.headers, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestIsDailyLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		message string
		want    bool
	}{
		{"type header", "Daily-limit", "", true},
		{"QPS header wins over message", "QPS", "daily", false},
		{"message only", "", "You have reached the maximum daily rate limit for this API.", true},
		{"per-second message", "", "You have reached the maximum per-second rate limit for this API.", false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("X-RateLimit-Type", tt.header)
		}
		if got := isDailyLimit(h, tt.message); got != tt.want {
			t.Errorf("%s: isDailyLimit = %t, want %t", tt.name, got, tt.want)
		}
	}
}
