package zoomtest

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// counter counts requests by route template and by route and status.
type counter struct {
	seq      atomic.Int64 // numbers requests as they start, for fault rules
	mu       sync.Mutex
	byRoute  map[string]int
	byStatus map[string]int
	total    int
}

func (c *counter) reset() {
	c.mu.Lock()
	c.byRoute = map[string]int{}
	c.byStatus = map[string]int{}
	c.total = 0
	c.seq.Store(0)
	c.mu.Unlock()
}

func (c *counter) start() int64 { return c.seq.Add(1) }

// done counts a finished request and returns its route-and-status key.
func (c *counter) done(template string, status int) string {
	if status == 0 {
		status = http.StatusOK
	}
	key := template + " " + strconv.Itoa(status)
	c.mu.Lock()
	c.byRoute[template]++
	c.byStatus[key]++
	c.total++
	c.mu.Unlock()
	return key
}

// Requests returns how many requests each route template received since the
// start or the last ResetRequests, whatever their status. Keys are route
// templates without the /v2 prefix, such as "GET /users",
// "GET /groups/{groupId}/admins" and "POST /oauth/token"; requests to no
// known route count as "<METHOD> (unknown)".
func (s *Server) Requests() map[string]int {
	s.counter.mu.Lock()
	defer s.counter.mu.Unlock()
	return maps.Clone(s.counter.byRoute)
}

// RequestsByStatus returns the counts by route template and HTTP status,
// keyed like "GET /users 200" or "GET /users 429".
func (s *Server) RequestsByStatus() map[string]int {
	s.counter.mu.Lock()
	defer s.counter.mu.Unlock()
	return maps.Clone(s.counter.byStatus)
}

// TotalRequests returns the number of requests answered since the start or
// the last ResetRequests.
func (s *Server) TotalRequests() int {
	s.counter.mu.Lock()
	defer s.counter.mu.Unlock()
	return s.counter.total
}

// ResetRequests zeroes the counts, every account's included, and restarts
// request numbering, so that a fault rule's Request number counts from the
// reset.
func (s *Server) ResetRequests() {
	s.counter.reset()
	for _, a := range s.Accounts() {
		a.counter.reset()
	}
}
