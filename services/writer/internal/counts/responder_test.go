package counts_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/counts"
)

// clock is a clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fake counts without a database: each count answers how many counts
// began so far, moves clock (if any) by took, and waits for gate (if
// any) to open.
type fake struct {
	clock *clock
	took  time.Duration
	gate  chan struct{}
	err   error

	running, most, calls atomic.Int32
}

func (f *fake) CountRecords(ctx context.Context, _ pipeline.ConnectorRef) (map[string]int64, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
	call := f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.clock != nil {
		f.clock.Add(f.took)
	}
	return map[string]int64{clarity.KindServiceUser: int64(call)}, f.err
}

// waitFor waits up to 5 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func maxAge(ms int64) []byte {
	b, _ := json.Marshal(pipeline.CountsRequest{MaxAgeMS: ms})
	return b
}

func TestSlowCountReusedFromItsEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subject := pipeline.CountsSubject(ref)
	clk := newClock()
	f := &fake{clock: clk, took: 8 * time.Second} // longer than Fresh
	r := counts.New(f, counts.Config{Fresh: 5 * time.Second, Now: clk.Now})

	first := r.Answer(ctx, subject, nil)
	if first.Error != "" || f.calls.Load() != 1 {
		t.Fatalf("first request: got %+v after %d counts", first, f.calls.Load())
	}
	// Begun 12 s ago, ended 4 s ago: reused.
	clk.Add(4 * time.Second)
	if got := r.Answer(ctx, subject, nil); !got.CountedAt.Equal(first.CountedAt) || f.calls.Load() != 1 {
		t.Errorf("4 s after a count of 8 s ended: got %+v after %d counts, want the count of %v reused", got, f.calls.Load(), first.CountedAt)
	}
	// Ended 6 s ago: counted again.
	clk.Add(2 * time.Second)
	if got := r.Answer(ctx, subject, nil); got.Error != "" || f.calls.Load() != 2 {
		t.Errorf("6 s after a count ended: got %+v after %d counts, want a new count", got, f.calls.Load())
	}
}

func TestFreshDefaultsTo30s(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subject := pipeline.CountsSubject(ref)
	clk := newClock()
	f := &fake{clock: clk, took: time.Second}
	r := counts.New(f, counts.Config{Now: clk.Now})
	r.Answer(ctx, subject, nil)
	clk.Add(29 * time.Second)
	r.Answer(ctx, subject, nil)
	if got := f.calls.Load(); got != 1 {
		t.Errorf("29 s after a count ended: %d counts, want it reused", got)
	}
	clk.Add(2 * time.Second)
	r.Answer(ctx, subject, nil)
	if got := f.calls.Load(); got != 2 {
		t.Errorf("31 s after a count ended: %d counts, want a new one", got)
	}
}

func TestMaxAgeFromTheCountsBeginning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subject := pipeline.CountsSubject(ref)
	clk := newClock()
	f := &fake{clock: clk, took: 8 * time.Second}
	r := counts.New(f, counts.Config{Now: clk.Now})
	began := clk.Now()
	r.Answer(ctx, subject, nil)
	clk.Add(time.Second) // begun 9 s ago, ended 1 s ago
	if got := r.Answer(ctx, subject, maxAge(10_000)); !got.CountedAt.Equal(began) || f.calls.Load() != 1 {
		t.Errorf("max_age_ms 10000: got %+v after %d counts, want the count begun 9 s ago", got, f.calls.Load())
	}
	asked := clk.Now()
	if got := r.Answer(ctx, subject, maxAge(5_000)); got.Error != "" || got.CountedAt.Before(asked.Add(-5*time.Second)) || f.calls.Load() != 2 {
		t.Errorf("max_age_ms 5000: got %+v after %d counts, want a new count", got, f.calls.Load())
	}
}

func TestMaxCountsAtOnce(t *testing.T) {
	t.Parallel()
	f := &fake{gate: make(chan struct{})}
	r := counts.New(f, counts.Config{MaxCounts: 3})
	const n = 6
	replies := make([]pipeline.RecordCounts, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom" + string(rune('a'+i))}
			replies[i] = r.Answer(context.Background(), pipeline.CountsSubject(c), nil)
		}()
	}
	waitFor(t, "3 counts", func() bool { return f.calls.Load() == 3 })
	time.Sleep(200 * time.Millisecond)
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d counts of different connectors began at once, want at most 3", got)
	}
	close(f.gate)
	wg.Wait()
	for i, rc := range replies {
		if rc.Error != "" || len(rc.Records) != 1 {
			t.Errorf("reply %d: %+v", i, rc)
		}
	}
	if got, most := f.calls.Load(), f.most.Load(); got != n || most != 3 {
		t.Errorf("%d counts, at most %d at once; want %d, at most 3", got, most, n)
	}
}

func TestFailuresQuoteNoSQL(t *testing.T) {
	t.Parallel()
	sqlErr := errors.New(`ERROR: canceling statement due to statement timeout: SELECT kind, count(*) FROM records WHERE tenant = $1 (SQLSTATE 57014)`)
	for name, r := range map[string]*counts.Responder{
		"known": counts.New(&fake{}, counts.Config{Known: func(context.Context, pipeline.ConnectorRef) (bool, error) { return false, sqlErr }}),
		"count": counts.New(&fake{err: sqlErr}, counts.Config{}),
	} {
		got := r.Answer(context.Background(), pipeline.CountsSubject(ref), nil)
		if got.Code != pipeline.CountsUnavailable || got.Records != nil || !strings.Contains(got.Error, ref.String()) {
			t.Errorf("%s failed: got %+v, want code %s naming the connector", name, got, pipeline.CountsUnavailable)
		}
		for _, s := range []string{"SELECT", "SQLSTATE", "statement", "timeout"} {
			if strings.Contains(got.Error, s) {
				t.Errorf("%s failed: error %q quotes the database's (%q)", name, got.Error, s)
			}
		}
	}
}

func TestMaxAgeWaitsForACountBegunTooEarly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	subject := pipeline.CountsSubject(ref)
	clk := newClock()
	f := &fake{clock: clk, gate: make(chan struct{})}
	r := counts.New(f, counts.Config{Now: clk.Now})
	began := clk.Now()
	early := make(chan pipeline.RecordCounts, 1)
	go func() { early <- r.Answer(ctx, subject, nil) }()
	waitFor(t, "the first count", func() bool { return f.calls.Load() == 1 })

	clk.Add(10 * time.Second)
	asked := clk.Now()
	late := make(chan pipeline.RecordCounts, 1)
	go func() { late <- r.Answer(ctx, subject, maxAge(1000)) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case got := <-late:
		t.Fatalf("answered %+v while the count begun 10 s before the request ran", got)
	default:
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("%d counts of one connector at once, want 1", got)
	}
	close(f.gate)
	if got := <-early; got.Error != "" || !got.CountedAt.Equal(began) || got.Records[clarity.KindServiceUser] != 1 {
		t.Errorf("request without max_age: got %+v, want the first count", got)
	}
	got := <-late
	if got.Error != "" || got.CountedAt.Before(asked) || got.Records[clarity.KindServiceUser] != 2 {
		t.Errorf("request with max_age_ms 1000: got %+v, want a second count begun at or after %v", got, asked)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("%d counts, want 2", got)
	}
}

func TestBusyBeyondMaxRequests(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	var in atomic.Int32
	known := func(ctx context.Context, _ pipeline.ConnectorRef) (bool, error) {
		in.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return true, nil
	}
	nc := serve(t, counts.New(&fake{}, counts.Config{Known: known}))
	subject := pipeline.CountsSubject(ref)
	const limit = 64 // the default
	replies, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	for range limit {
		if err := nc.PublishRequest(subject, replies.Subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "64 requests in", func() bool { return in.Load() == limit })

	start := time.Now()
	m, err := nc.Request(subject, nil, 2*time.Second)
	if err != nil {
		t.Fatalf("request beyond %d in flight: %v, want an answer at once", limit, err)
	}
	var busy pipeline.RecordCounts
	if err := json.Unmarshal(m.Data, &busy); err != nil {
		t.Fatal(err)
	}
	if busy.Code != pipeline.CountsUnavailable || !strings.Contains(busy.Error, "busy") || busy.Records != nil || time.Since(start) > time.Second {
		t.Errorf("request beyond %d in flight: got %+v after %v, want %s saying busy at once", limit, busy, time.Since(start), pipeline.CountsUnavailable)
	}
	if got := in.Load(); got != limit {
		t.Errorf("%d requests looked up their connector, want %d", got, limit)
	}

	close(gate)
	for i := range limit {
		m, err := replies.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		var rc pipeline.RecordCounts
		if err := json.Unmarshal(m.Data, &rc); err != nil || rc.Error != "" {
			t.Errorf("reply %d: %s", i, m.Data)
		}
	}
	if got := ask(t, nc, subject); got.Error != "" {
		t.Errorf("after the requests ended: got %+v", got)
	}
}

func TestServeReturnsAfterItsHandlers(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	wnc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	var returned atomic.Bool
	var in, late atomic.Int32
	known := func(context.Context, pipeline.ConnectorRef) (bool, error) {
		in.Add(1)
		if returned.Load() {
			late.Add(1)
		}
		return true, nil
	}
	r := counts.New(&fake{}, counts.Config{Known: known, Fresh: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		err := r.Serve(ctx, wnc)
		returned.Store(true)
		close(stopped)
		done <- err
	}()
	subject := pipeline.CountsSubject(ref)
	waitFor(t, "the responder", func() bool {
		_, err := nc.Request(subject, nil, 100*time.Millisecond)
		return err == nil
	})

	// Requests keep coming while Serve stops.
	inbox := nats.NewInbox()
	sub, err := nc.Subscribe(inbox, func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	asking := make(chan struct{})
	go func() {
		defer close(asking)
		stop := time.After(30 * time.Second)
		for {
			select {
			case <-stop:
				return
			case <-stopped:
				return
			default:
			}
			for range 10 {
				_ = nc.PublishRequest(subject, inbox, nil)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	waitFor(t, "requests handled", func() bool { return in.Load() > 1000 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return")
	}
	<-asking
	time.Sleep(500 * time.Millisecond)
	if n := late.Load(); n > 0 {
		t.Errorf("%d requests were handled after Serve returned (of %d)", n, in.Load())
	}
}
