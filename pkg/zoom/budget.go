package zoom

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Priority orders the requests that wait for the same rate budget: prompt
// requests (provisioning, the re-read of a user after a webhook) go before
// bulk ones (the pages of a full sync), so that a long sync does not delay a
// single change by minutes.
type Priority int

// The priorities of a request. The zero value is bulk.
const (
	// PriorityBulk is the default: the pages of a full sync.
	PriorityBulk Priority = iota
	// PriorityPrompt is work someone waits for: provisioning, re-reads.
	PriorityPrompt
	// PriorityBackground is work nobody waits for (the enrichment of
	// users): it goes only while no prompt or bulk request waits.
	PriorityBackground
)

// String names the priority for logs and metrics.
func (p Priority) String() string {
	switch p {
	case PriorityPrompt:
		return "prompt"
	case PriorityBackground:
		return "background"
	}
	return "bulk"
}

type priorityKey struct{}

// WithPriority returns a context whose requests have priority p. Every
// request a Client sends under it, retries included, waits for the budget
// with that priority.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf returns the priority WithPriority set on ctx, PriorityBulk when
// none.
func PriorityOf(ctx context.Context) Priority {
	if p, ok := ctx.Value(priorityKey{}).(Priority); ok {
		return p
	}
	return PriorityBulk
}

// Budget is a rate budget a Client draws on instead of pacing by itself:
// typically the budget of the whole Zoom account, shared by every replica
// and every connector that reaches the account (see package ratebudget).
// Its methods are called concurrently.
type Budget interface {
	// Take blocks until one request of category c may go, and returns how
	// long it waited. Prompt requests go before bulk ones.
	Take(ctx context.Context, c Category, p Priority) (time.Duration, error)
	// Limited tells the budget of a 429 Zoom answered for category c: the
	// whole account's requests of that category should hold back until
	// l.Until.
	Limited(c Category, l RateLimited)
}

// RateLimited is what a 429 said about the account's limit.
type RateLimited struct {
	// Until is when Zoom accepts requests of the category again.
	Until time.Time
	// Daily reports a daily limit rather than a per-second one.
	Daily bool
	// Limit is X-RateLimit-Limit when Zoom sent it (0 when not): the
	// account's real per-second limit of the category, which may be lower
	// than the plan's.
	Limit int
}

// maxHeaderLimit bounds what X-RateLimit-Limit is believed to say.
const maxHeaderLimit = 10000

// rateLimitHeaderLimit reads X-RateLimit-Limit of a QPS 429, 0 when absent
// or not a plausible number.
func rateLimitHeaderLimit(h http.Header) int {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Limit")))
	if err != nil || n <= 0 || n > maxHeaderLimit {
		return 0
	}
	return n
}

// HoldError is returned by a Budget's Take (and the client's own pacing)
// instead of waiting when the account's requests of a category are held back
// for longer than the caller would wait: after a daily limit, until midnight
// UTC. The client turns it into a *RateLimitError without sending anything.
type HoldError struct {
	// Until is when the hold ends.
	Until time.Time
	// Daily reports a daily limit rather than a per-second one.
	Daily bool
}

func (e *HoldError) Error() string {
	kind := "per-second"
	if e.Daily {
		kind = "daily"
	}
	return "zoom: the account's " + kind + " rate limit holds requests back until " + e.Until.UTC().Format(time.RFC3339)
}

// nextMidnightUTC is when Zoom's daily limits reset after t.
func nextMidnightUTC(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
