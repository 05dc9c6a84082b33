package counts

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// slow counts nothing, each count moving the clock by took.
type slow struct {
	mu   sync.Mutex
	now  time.Time
	took time.Duration
}

func (s *slow) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *slow) Add(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

func (s *slow) CountRecords(context.Context, pipeline.ConnectorRef) (map[string]int64, error) {
	s.Add(s.took)
	return map[string]int64{}, nil
}

func TestOnlyRecentCountsKept(t *testing.T) {
	t.Parallel()
	s := &slow{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), took: 20 * time.Second}
	r := New(s, Config{Fresh: 30 * time.Second, Now: s.Now})
	a := pipeline.ConnectorRef{Tenant: "acme", ID: "a"}
	b := pipeline.ConnectorRef{Tenant: "acme", ID: "b"}
	c := pipeline.ConnectorRef{Tenant: "acme", ID: "c"}
	r.Answer(context.Background(), pipeline.CountsSubject(a), nil) // 0 s to 20 s
	s.Add(15 * time.Second)
	r.Answer(context.Background(), pipeline.CountsSubject(b), nil) // 35 s to 55 s
	s.Add(20 * time.Second)
	// At 75 s, a ended 55 s ago and b 20 s ago (begun 40 s ago).
	r.Answer(context.Background(), pipeline.CountsSubject(c), nil)
	r.mu.Lock()
	got := slices.SortedFunc(maps.Keys(r.flights), func(x, y pipeline.ConnectorRef) int { return cmpRef(x, y) })
	r.mu.Unlock()
	if want := []pipeline.ConnectorRef{b, c}; !slices.Equal(got, want) {
		t.Errorf("counts kept: %v, want %v", got, want)
	}
}

func cmpRef(x, y pipeline.ConnectorRef) int {
	switch {
	case x.Key() < y.Key():
		return -1
	case x.Key() > y.Key():
		return 1
	}
	return 0
}
