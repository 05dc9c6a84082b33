package zoomtest

import (
	"maps"
	"sync"
	"time"
)

// perSecond counts an account's API requests in each wall-clock second, by
// rate-limit label, as Zoom counts them against its per-second limits: every
// request that reached the limit check, answered 429 or not.
type perSecond struct {
	mu   sync.Mutex
	cur  map[Category]second
	peak map[Category]int
	hist map[Category]map[int64]int
}

type second struct {
	unix int64
	n    int
}

// maxSecondsKept bounds the per-second history of one label.
const maxSecondsKept = 3600

func (p *perSecond) add(cat Category, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.cur, p.peak, p.hist = map[Category]second{}, map[Category]int{}, map[Category]map[int64]int{}
	}
	sec := now.Unix()
	c := p.cur[cat]
	if c.unix != sec {
		c = second{unix: sec}
	}
	c.n++
	p.cur[cat] = c
	p.peak[cat] = max(p.peak[cat], c.n)
	h := p.hist[cat]
	if h == nil {
		h = map[int64]int{}
		p.hist[cat] = h
	}
	if _, ok := h[sec]; !ok && len(h) >= maxSecondsKept {
		for k := range h {
			if k < sec-maxSecondsKept {
				delete(h, k)
			}
		}
	}
	h[sec] = c.n
}

func (p *perSecond) reset() {
	p.mu.Lock()
	p.cur, p.peak, p.hist = nil, nil, nil
	p.mu.Unlock()
}

// PeakPerSecond returns, for each rate-limit label, the most requests the
// account received in any one wall-clock second since it was created or
// since ResetPerSecond: what a per-second limit is measured against.
func (a *Account) PeakPerSecond() map[Category]int {
	a.limits.seconds.mu.Lock()
	defer a.limits.seconds.mu.Unlock()
	return maps.Clone(a.limits.seconds.peak)
}

// PerSecond returns the account's requests of one label in each second of
// the last hour, keyed by unix second.
func (a *Account) PerSecond(cat Category) map[int64]int {
	a.limits.seconds.mu.Lock()
	defer a.limits.seconds.mu.Unlock()
	return maps.Clone(a.limits.seconds.hist[cat])
}

// ResetPerSecond forgets the account's per-second counts.
func (a *Account) ResetPerSecond() { a.limits.seconds.reset() }

// PeakPerSecond is the default account's Account.PeakPerSecond.
func (s *Server) PeakPerSecond() map[Category]int { return s.def.PeakPerSecond() }
