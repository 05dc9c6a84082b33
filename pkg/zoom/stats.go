package zoom

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// WaitReason says why the client waited before sending a request.
type WaitReason string

// The reasons the client waits.
const (
	// WaitPacing is client-side pacing under the configured share of the
	// plan's limit, including a hold after another request's 429.
	WaitPacing WaitReason = "pacing"
	// WaitRateLimit is a wait after a 429, for as long as Zoom said or, when
	// it did not say, for an exponential backoff.
	WaitRateLimit WaitReason = "rate_limit"
	// WaitBackoff is an exponential backoff after a 5xx or a network failure.
	WaitBackoff WaitReason = "backoff"
)

// Observer is told what the client does, so that a service can feed its
// metrics (Prometheus or other) without this package depending on them. Its
// methods are called from the goroutines that make requests, concurrently,
// and must return quickly.
type Observer interface {
	// RequestDone is called after every HTTP request, token requests
	// included. endpoint is a template such as "GET /groups/{groupId}/admins"
	// or "POST /oauth/token"; status is 0 when no answer came.
	RequestDone(endpoint string, status int, d time.Duration)
	// Waited is called after the client waited d before (re)sending a
	// request to endpoint.
	Waited(endpoint string, reason WaitReason, d time.Duration)
	// TokenRefreshed is called after each attempt to get an access token,
	// with its duration and its error (nil on success).
	TokenRefreshed(d time.Duration, err error)
}

// tokenEndpoint names the token request in counts and errors.
const tokenEndpoint = "POST /oauth/token"

// RequestCount is the number of requests of one endpoint that ended with one
// HTTP status.
type RequestCount struct {
	// Endpoint is a template such as "GET /users" or "POST /oauth/token".
	Endpoint string
	// Status is the HTTP status, 0 for requests that got no answer.
	Status int
	// Count is the number of such requests.
	Count int64
}

// Stats is a snapshot of what a Client has sent since it was created. To
// count what one piece of work cost, subtract the Total of a snapshot taken
// before it from one taken after it.
type Stats struct {
	// Total is every HTTP request sent, token requests included.
	Total int64
	// TokenRequests is the number of requests to the token endpoint.
	TokenRequests int64
	// RateLimited is the number of 429 answers.
	RateLimited int64
	// Retries is the number of requests sent again after a failure.
	Retries int64
	// Restarts is the number of listings started again from their first page
	// because Zoom rejected an expired next_page_token.
	Restarts int64
	// Waited is the total time spent waiting to retry (429s and backoff).
	Waited time.Duration
	// Paced is the total time spent in client-side pacing.
	Paced time.Duration
	// ByEndpoint counts requests by endpoint and status, sorted.
	ByEndpoint []RequestCount
}

// Count returns the number of requests to endpoint, whatever their status.
func (s Stats) Count(endpoint string) int64 {
	var n int64
	for _, rc := range s.ByEndpoint {
		if rc.Endpoint == endpoint {
			n += rc.Count
		}
	}
	return n
}

type countKey struct {
	endpoint string
	status   int
}

// counter keeps the counts behind Stats. A mutex is enough: it is taken once
// per HTTP request, which is nothing next to the request itself.
type counter struct {
	mu       sync.Mutex
	s        Stats
	byStatus map[countKey]int64
}

func newCounter() *counter {
	return &counter{byStatus: make(map[countKey]int64)}
}

func (c *counter) request(endpoint string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.Total++
	if endpoint == tokenEndpoint {
		c.s.TokenRequests++
	}
	if status == 429 {
		c.s.RateLimited++
	}
	c.byStatus[countKey{endpoint, status}]++
}

func (c *counter) add(f func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.s)
}

func (c *counter) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.ByEndpoint = make([]RequestCount, 0, len(c.byStatus))
	for k, n := range c.byStatus {
		s.ByEndpoint = append(s.ByEndpoint, RequestCount{Endpoint: k.endpoint, Status: k.status, Count: n})
	}
	slices.SortFunc(s.ByEndpoint, func(a, b RequestCount) int {
		return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Status, b.Status))
	})
	return s
}

// nopObserver stands in when Config.Observer is nil.
type nopObserver struct{}

func (nopObserver) RequestDone(string, int, time.Duration)   {}
func (nopObserver) Waited(string, WaitReason, time.Duration) {}
func (nopObserver) TokenRefreshed(time.Duration, error)      {}
