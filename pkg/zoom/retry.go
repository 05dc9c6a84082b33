package zoom

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryAfterLayouts are the datetime forms a Retry-After header may take:
// Zoom sends an ISO-8601 datetime such as 2020-05-31T00:00:00Z for daily
// limits; HTTP itself allows an HTTP-date.
var retryAfterLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05", // no zone: Zoom's daily limits reset in UTC
	time.RFC1123,
	time.RFC1123Z,
	time.RFC850,
	time.ANSIC,
}

// rateLimitReset reads when a 429 ends from its headers: Retry-After (seconds,
// or a datetime) first, then X-RateLimit-Reset. It reports false when neither
// header says anything usable, and the caller backs off instead. Zoom's own
// documents disagree on these headers, so every plausible form is read.
func rateLimitReset(h http.Header, now time.Time) (time.Time, bool) {
	t, ok := readReset(h, now)
	if !ok {
		return t, false
	}
	// Absurd values (a reset centuries away, or an overflow into the past)
	// are clamped so that the caller fails fast instead of retrying at once.
	if limit := now.Add(maxReset); t.After(limit) || t.Year() < 2000 {
		return limit, true
	}
	return t, true
}

// maxReset bounds how far in the future a rate-limit reset is believed.
const maxReset = 7 * 24 * time.Hour

func readReset(h http.Header, now time.Time) (time.Time, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && !math.IsInf(secs, 0) {
			if secs > maxReset.Seconds() {
				return now.Add(maxReset), true
			}
			return now.Add(time.Duration(secs * float64(time.Second))), true
		}
		for _, layout := range retryAfterLayouts {
			if t, err := time.Parse(layout, v); err == nil {
				return t, true
			}
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && !math.IsInf(n, 0) {
			switch {
			case n > 1e15: // beyond any plausible reset, in seconds or milliseconds
				return now.Add(maxReset), true
			case n > 1e12: // unix milliseconds
				return time.UnixMilli(int64(n)), true
			case n > 1e9: // unix seconds, as Zoom's references describe it
				return time.Unix(int64(n), int64((n-math.Floor(n))*1e9)), true
			default: // a small number can only be seconds from now
				return now.Add(time.Duration(n * float64(time.Second))), true
			}
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isDailyLimit reports whether a 429 is for a daily limit, from
// X-RateLimit-Type ("Daily-limit") or, when that header is missing, from
// Zoom's message ("maximum daily rate limit").
func isDailyLimit(h http.Header, message string) bool {
	if t := h.Get("X-RateLimit-Type"); t != "" {
		return strings.Contains(strings.ToLower(t), "daily")
	}
	return strings.Contains(strings.ToLower(message), "daily")
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
