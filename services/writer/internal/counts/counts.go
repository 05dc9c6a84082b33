// Package counts answers zoom.counts.<tenant>.<connector>: how many live
// records of each kind the writer stores for a connector, for the admin
// console (which has no database of its own to count in).
//
// A count reads the connector's whole range of the records table, so a
// replica runs at most one count of a connector at a time (requests that
// come while it runs share its answer), reuses a count that ended less than
// Config.Fresh ago, and runs at most Config.MaxCounts counts at once; it
// handles at most Config.MaxRequests requests at once and answers the
// others at once that it is busy.
package counts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Counter counts a connector's live records per kind name.
type Counter interface {
	CountRecords(ctx context.Context, c pipeline.ConnectorRef) (map[string]int64, error)
}

// Config tunes Serve; zero fields take the defaults.
type Config struct {
	// Known reports whether the writer stores records of a connector (the
	// environment's or the registry's); others are refused.
	Known func(context.Context, pipeline.ConnectorRef) (bool, error)
	// Fresh is how long a count is reused once it ended (a large
	// connector's count takes seconds): a request without max_age_ms gets
	// a count that ended less than Fresh ago, if there is one. Default
	// 30 s.
	Fresh time.Duration
	// Timeout bounds one count. Default 30 s.
	Timeout time.Duration
	// MaxCounts is how many counts of different connectors run at once.
	// Default 2.
	MaxCounts int
	// MaxRequests is how many requests are handled at once; a request
	// beyond it is answered at once with CountsUnavailable. Default 64.
	MaxRequests int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log hears the counts that failed (the replies do not say why).
	Log zerolog.Logger
}

// Responder answers count requests.
type Responder struct {
	st  Counter
	cfg Config
	sem chan struct{}

	mu      sync.Mutex
	flights map[pipeline.ConnectorRef]*flight
}

// flight is one count: done closes when out is set. at is when it began
// (what max_age_ms is measured against), end when it ended (what Fresh is
// measured from); both are read only once done is closed.
type flight struct {
	done chan struct{}
	at   time.Time
	end  time.Time
	out  map[string]int64
	err  error
}

// New returns a Responder counting in st.
func New(st Counter, cfg Config) *Responder {
	if cfg.Fresh <= 0 {
		cfg.Fresh = 30 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxCounts <= 0 {
		cfg.MaxCounts = 2
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Known == nil {
		cfg.Known = func(context.Context, pipeline.ConnectorRef) (bool, error) { return true, nil }
	}
	return &Responder{st: st, cfg: cfg, sem: make(chan struct{}, cfg.MaxCounts), flights: map[pipeline.ConnectorRef]*flight{}}
}

// drainWait bounds how long Serve waits, once ctx ended, for the requests
// already delivered to it.
const drainWait = 10 * time.Second

// Serve answers requests on nc until ctx ends; replicas share them (a
// queue group). Each request is answered from a goroutine of its own, so
// that a long count delays no other connector's; beyond Config.MaxRequests
// of them, a request is answered at once that the writer is busy. Once ctx
// ended, Serve drains the subscription (the requests already delivered are
// answered), then returns when every request's goroutine has ended; none
// starts after.
func (r *Responder) Serve(ctx context.Context, nc *nats.Conn) error {
	log := r.cfg.Log
	var (
		mu      sync.Mutex
		stopped bool
		wg      sync.WaitGroup
	)
	handlers := make(chan struct{}, r.cfg.MaxRequests)
	sub, err := nc.QueueSubscribe(pipeline.CountsFilter, "writer", func(m *nats.Msg) {
		mu.Lock()
		if stopped {
			mu.Unlock()
			r.respond(m, pipeline.RecordCounts{Error: "the writer is stopping: ask again later", Code: pipeline.CountsUnavailable})
			return
		}
		select {
		case handlers <- struct{}{}:
		default:
			mu.Unlock()
			r.respond(m, pipeline.RecordCounts{Error: fmt.Sprintf("the writer is busy (%d count requests at once): ask again later", r.cfg.MaxRequests), Code: pipeline.CountsUnavailable})
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-handlers }()
			reply := r.Answer(ctx, m.Subject, m.Data)
			if reply.Error != "" && reply.Code != pipeline.CountsUnknownConnector {
				log.Warn().Str("subject", pipeline.Bound(m.Subject, 128)).Str("error", reply.Error).Msg("count request refused")
			}
			r.respond(m, reply)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", pipeline.CountsFilter, err)
	}
	// Asked before the drain, so that its end is not missed.
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	<-ctx.Done()
	if err := sub.Drain(); err == nil {
		t := time.NewTimer(drainWait)
		select {
		case <-closed:
		case <-t.C:
			log.Warn().Dur("waited", drainWait).Msg("count requests not drained")
		}
		t.Stop()
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	wg.Wait()
	return nil
}

// respond sends reply to m's requester.
func (r *Responder) respond(m *nats.Msg, reply pipeline.RecordCounts) {
	b, err := json.Marshal(reply)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		r.cfg.Log.Warn().Err(err).Msg("count reply")
	}
}

// Answer is the reply to a request on subject with body.
func (r *Responder) Answer(ctx context.Context, subject string, body []byte) pipeline.RecordCounts {
	c, err := pipeline.CountsConnector(subject)
	if err != nil {
		return pipeline.RecordCounts{Error: err.Error(), Code: pipeline.CountsBadSubject}
	}
	var req pipeline.CountsRequest
	if len(body) > pipeline.MaxCountsRequest {
		return pipeline.RecordCounts{Error: fmt.Sprintf("request of %d bytes: at most %d", len(body), pipeline.MaxCountsRequest), Code: pipeline.CountsBadRequest}
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil || req.MaxAgeMS < 0 {
			return pipeline.RecordCounts{Error: `request must be empty or {"max_age_ms":N} with N at least 0`, Code: pipeline.CountsBadRequest}
		}
	}
	var maxAge time.Duration // none: any count fresh enough
	if req.MaxAgeMS > 0 {
		maxAge = time.Duration(min(req.MaxAgeMS, int64(time.Hour/time.Millisecond))) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	known, err := r.cfg.Known(ctx, c)
	if err != nil {
		return pipeline.RecordCounts{Error: "look up connector " + c.String() + ": unavailable", Code: pipeline.CountsUnavailable}
	}
	if !known {
		return pipeline.RecordCounts{Error: "no connector " + c.String(), Code: pipeline.CountsUnknownConnector}
	}
	f, err := r.count(ctx, c, maxAge)
	if err != nil {
		return pipeline.RecordCounts{Error: "count records of " + c.String() + ": timed out", Code: pipeline.CountsUnavailable}
	}
	if f.err != nil {
		// The store's error may quote SQL: the reply says only what failed.
		return pipeline.RecordCounts{Error: "count records of " + c.String() + ": the database did not answer", Code: pipeline.CountsUnavailable}
	}
	return pipeline.RecordCounts{Records: f.out, CountedAt: f.at}
}

// count returns, once it ended, a count of the connector: the running
// one, or the last if it ended less than Fresh ago, or a new one. With
// maxAge, the count began at most maxAge before the request: a running one
// begun earlier is waited for, then a new one started.
func (r *Responder) count(ctx context.Context, c pipeline.ConnectorRef, maxAge time.Duration) (*flight, error) {
	var since time.Time
	if maxAge > 0 {
		since = r.cfg.Now().Add(-maxAge)
	}
	for {
		f, mine := r.flightOf(c, since)
		select {
		case <-f.done:
			if mine || !f.at.Before(since) {
				return f, nil
			}
			// A count begun too early ended: start one now.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// flightOf returns the connector's running count (the caller waits for
// it, and asks again if it began before since), or its last count if that
// succeeded, ended less than Fresh ago and began at or after since, or
// starts one (mine).
func (r *Responder) flightOf(c pipeline.ConnectorRef, since time.Time) (f *flight, mine bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	if f := r.flights[c]; f != nil {
		select {
		case <-f.done:
			if f.err == nil && now.Sub(f.end) < r.cfg.Fresh && !f.at.Before(since) {
				return f, false
			}
		default:
			return f, false // running: share it, or wait for it to end
		}
	}
	// Forget the counts that ended Fresh ago or more, so that the map
	// holds only recent ones.
	for k, f := range r.flights {
		select {
		case <-f.done:
			if now.Sub(f.end) >= r.cfg.Fresh {
				delete(r.flights, k)
			}
		default:
		}
	}
	f = &flight{done: make(chan struct{}), at: now}
	r.flights[c] = f
	// The count runs on its own context: requests that share it may
	// outlive the one that started it.
	go func() {
		defer func() {
			f.end = r.cfg.Now()
			close(f.done)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
		defer cancel()
		select {
		case r.sem <- struct{}{}:
			defer func() { <-r.sem }()
		case <-ctx.Done():
			f.err = ctx.Err()
			return
		}
		start := r.cfg.Now()
		out, err := r.st.CountRecords(ctx, c)
		f.out, f.err, f.at = out, err, start
		if err != nil {
			r.cfg.Log.Warn().Err(err).Str("connector", c.String()).Msg("count records")
		} else {
			r.cfg.Log.Debug().Str("connector", c.String()).Dur("took", r.cfg.Now().Sub(start)).Msg("records counted")
		}
	}()
	return f, true
}
