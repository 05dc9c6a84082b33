package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// MaxRuns is how many finished runs the console keeps of each connector.
const MaxRuns = 20

// maxConnectors bounds the connectors whose activity is kept: events of
// more (a stream shared with far more connectors than one console shows)
// are not followed.
const maxConnectors = 10000

// Run is one full sync as the change events show it.
type Run struct {
	RunID     string
	RequestID string
	// Result is "running", clarity.OpCompleted or clarity.OpFailed.
	Result   string
	Started  time.Time
	Finished time.Time
	Stats    clarity.SyncStats
	Error    string
	// Changes counts the change events of each record kind published
	// while the run was the connector's running one.
	Changes map[string]int64
	// Deletions is "held" when the accidental-deletion guard held them.
	Deletions   string
	Unavailable []string
	// Pages counts the Zoom pages the fetcher published, and PagesBy
	// each listing's; RateLimited the 429 answers and Waited the time
	// waited after them and after failures: from the fetcher's progress
	// messages, so zero when the console did not hear them.
	Pages       int
	PagesBy     map[string]int
	RateLimited int64
	Waited      time.Duration
}

// Duration is how long the run took, or has taken so far.
func (r Run) Duration(now time.Time) time.Duration {
	if r.Finished.IsZero() {
		return now.Sub(r.Started)
	}
	return r.Finished.Sub(r.Started)
}

// ResultRunning is the Result of a run not yet ended.
const ResultRunning = "running"

// history is what the console knows of one connector's activity.
type history struct {
	current *Run
	runs    []Run // oldest first, at most MaxRuns
	// progress is what the fetcher said since the last run ended.
	progress runProgress
}

// Bounds of what one connector's progress keeps.
const (
	maxListings = 64
	maxFetchers = 64
)

// counters are a fetcher process's Zoom client counters for a connector.
type counters struct{ requests, rateLimited, waitedMS int64 }

// runProgress adds up the progress messages of the running sync.
type runProgress struct {
	pages map[string]int // listing → the highest page number heard
	// base are each fetcher's counters when the run began (the last heard
	// before it), latest the last heard.
	base, latest map[string]counters
}

func newRunProgress(base map[string]counters) runProgress {
	if base == nil {
		base = map[string]counters{}
	}
	return runProgress{pages: map[string]int{}, base: base, latest: map[string]counters{}}
}

// fill writes the progress into a run.
func (p runProgress) fill(r *Run) {
	r.PagesBy, r.Pages = map[string]int{}, 0
	for l, n := range p.pages {
		r.PagesBy[l] = n
		r.Pages += n
	}
	r.RateLimited, r.Waited = 0, 0
	for f, c := range p.latest {
		b := p.base[f]
		if c.requests < b.requests { // a new client since: its counters started over
			b = counters{}
		}
		r.RateLimited += c.rateLimited - b.rateLimited
		r.Waited += time.Duration(c.waitedMS-b.waitedMS) * time.Millisecond
	}
}

// ended starts the progress of the next run from where this one ended.
func (p runProgress) ended() runProgress {
	base := make(map[string]counters, len(p.base)+len(p.latest))
	for f, c := range p.base {
		base[f] = c
	}
	for f, c := range p.latest {
		base[f] = c
	}
	return newRunProgress(base)
}

// Activity follows every connector's sync events in CLARITY_ENTITLEMENTS,
// from the oldest the stream holds, and the record events from the
// console's start on, and keeps each connector's running sync (with the
// records it changed per kind), and its last runs. The records a
// connector holds are the writer's to count (counts.go): the stream's
// record events are not read from their start, which would cost as much as
// the stream holds at every start.
type Activity struct {
	mu   sync.RWMutex
	conn map[pipeline.ConnectorRef]*history
	// partial is set when the stream no longer held its first events
	// (they aged out): the oldest runs may then be missing.
	partial bool
	// delivered counts the events read.
	delivered atomic.Int64
	// err is why the events could not be read, until they are again.
	err    error
	caught chan struct{}
	once   sync.Once
}

// NewActivity returns an empty Activity; Follow fills it.
func NewActivity() *Activity {
	return &Activity{conn: map[pipeline.ConnectorRef]*history{}, caught: make(chan struct{})}
}

// CaughtUp is closed once Follow has read the sync events the stream held
// when it started.
func (a *Activity) CaughtUp() <-chan struct{} { return a.caught }

// retryFollow is how long Follow waits before it reads the events again
// after a failure.
const retryFollow = 10 * time.Second

// Follow reads the events, and hears the fetchers' progress, until ctx
// ends. A failure (the stream unreadable, the permission to read it
// missing) is logged and shown on the pages (Err), and the events are read
// again from the start a little later: the console never stops the
// service.
func (a *Activity) Follow(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log zerolog.Logger) error {
	for {
		err := a.follow(ctx, nc, js, log)
		if ctx.Err() != nil {
			return nil
		}
		log.Error().Err(err).Msg("console: the change events cannot be read; trying again")
		a.mu.Lock()
		a.err = err
		a.conn = map[pipeline.ConnectorRef]*history{}
		a.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retryFollow):
		}
	}
}

// Reading reports whether the sync events the stream held when the
// console started are still being read: until then the runs are
// incomplete.
func (a *Activity) Reading() bool {
	select {
	case <-a.caught:
		return false
	default:
		return true
	}
}

// Err is why the events cannot be read, or nil.
func (a *Activity) Err() error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.err
}

// syncEvents are the subjects of every connector's sync events.
var syncEvents = pipeline.EventsOfKind(clarity.KindSync)

// follow reads, first, the sync events the stream holds (few: two a run),
// then every event from the console's start on, in the stream's order, so
// that each record event counts in the run it is part of.
func (a *Activity) follow(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log zerolog.Logger) error {
	sub, err := nc.Subscribe(pipeline.ProgressFilter, func(m *nats.Msg) { a.progress(m.Subject, m.Data) })
	if err != nil {
		return fmt.Errorf("console: hear the fetchers' progress: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	stream, err := js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", clarity.StreamEntitlements, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("console: read %s: %w", clarity.StreamEntitlements, err)
	}
	// start is the console's start in the stream: every event after it is
	// read, record events included.
	start := info.State.LastSeq
	a.mu.Lock()
	a.partial = info.State.FirstSeq > 1
	a.mu.Unlock()
	if err := a.readSyncEvents(ctx, stream, start); err != nil {
		return err
	}
	a.once.Do(func() { close(a.caught) })
	// A consumer that cannot be made (no permission, the stream gone) is
	// an error after a few attempts, not a wait for ever.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"clarity.entitlements.>"}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: start + 1, MaxResetAttempts: 3})
	if err != nil {
		return fmt.Errorf("console: follow %s: %w", clarity.StreamEntitlements, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("console: follow %s: %w", clarity.StreamEntitlements, err)
	}
	a.mu.Lock()
	a.err = nil // the consumer is made: the events are read again
	a.mu.Unlock()
	// Next waits for ever: ctx's end stops it, from a goroutine that ends
	// with this call.
	defer it.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
		case <-done:
		}
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("console: read %s: %w", clarity.StreamEntitlements, err)
		}
		a.delivered.Add(1)
		a.apply(m.Subject(), m.Data())
	}
}

// syncBatch is how many sync events one pull of the first read asks for.
const syncBatch = 256

// readSyncEvents reads the sync events the stream held at the console's
// start (up to stream sequence start), from the oldest, through a
// consumer of its own that is deleted after. The events after start, sync
// events included, are the ordered consumer's to read in the stream's
// order, so that a record event counts in the run it is part of.
func (a *Activity) readSyncEvents(ctx context.Context, stream jetstream.Stream, start uint64) error {
	if start == 0 {
		return nil
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Name: "console_" + nats.NewInbox()[len(nats.InboxPrefix):], FilterSubject: syncEvents,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute, MemoryStorage: true, Replicas: 1})
	if err != nil {
		return fmt.Errorf("console: read the sync events of %s: %w", clarity.StreamEntitlements, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, syncBatch)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("console: read the sync events of %s: %w", clarity.StreamEntitlements, err)
		}
		n, past := 0, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil || past {
				continue
			}
			if md.Sequence.Stream > start {
				past = true // the ordered consumer reads it
				continue
			}
			a.delivered.Add(1)
			a.apply(m.Subject(), m.Data())
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("console: read the sync events of %s: %w", clarity.StreamEntitlements, err)
		}
		if past {
			return nil
		}
		if n == 0 {
			return fmt.Errorf("console: read the sync events of %s: none came of the %d pending", clarity.StreamEntitlements, pending)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// eventHead is what the console reads of every event.
type eventHead struct {
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// apply takes one event into the connector's history.
func (a *Activity) apply(subject string, data []byte) {
	ref, err := pipeline.FromSubject(subject)
	if err != nil {
		return
	}
	kind := subject[strings.LastIndexByte(subject, '.')+1:]
	var ev eventHead
	if len(data) > 1<<20 || json.Unmarshal(data, &ev) != nil {
		return
	}
	op := ev.Type[strings.LastIndexByte(ev.Type, '.')+1:]
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.conn[ref]
	if h == nil {
		if len(a.conn) >= maxConnectors {
			return
		}
		h = &history{progress: newRunProgress(nil)}
		a.conn[ref] = h
	}
	if kind != clarity.KindSync {
		if h.current != nil {
			h.current.Changes[kind]++
		}
		return
	}
	var d clarity.SyncData
	if json.Unmarshal(ev.Data, &d) != nil {
		return
	}
	switch op {
	case clarity.OpStarted:
		h.current = &Run{RunID: bound(d.RunID, 128), RequestID: bound(d.RequestID, 128), Result: ResultRunning,
			Started: parseTime(d.StartedAt, ev.Time), Changes: map[string]int64{}}
	case clarity.OpCompleted, clarity.OpFailed:
		r := Run{Changes: map[string]int64{}}
		if h.current != nil && (h.current.RunID == d.RunID || d.RunID == "") {
			r = *h.current
		}
		h.current = nil
		r.RunID, r.Result = bound(d.RunID, 128), op
		if r.RequestID == "" {
			r.RequestID = bound(d.RequestID, 128)
		}
		r.Started = parseTime(d.StartedAt, r.Started)
		r.Finished = parseTime(d.FinishedAt, ev.Time)
		if r.Started.IsZero() {
			r.Started = r.Finished
		}
		h.progress.fill(&r)
		h.progress = h.progress.ended()
		r.Stats, r.Error, r.Deletions = d.Stats, bound(d.Error, 512), bound(d.Deletions, 32)
		for _, u := range d.Unavailable {
			if len(r.Unavailable) < 4 {
				r.Unavailable = append(r.Unavailable, bound(u, 32))
			}
		}
		h.runs = append(h.runs, r)
		if len(h.runs) > MaxRuns {
			h.runs = h.runs[len(h.runs)-MaxRuns:]
		}
	}
}

func parseTime(s string, def time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return def
}

// bound shortens a string from outside for a page, at a character
// boundary.
func bound(s string, n int) string { return pipeline.Bound(s, n) }

// Snapshot is a copy of one connector's activity.
type Snapshot struct {
	Current *Run
	// Runs are the finished runs, newest first.
	Runs []Run
	// Partial is set when the stream had dropped older events: the oldest
	// runs may be missing.
	Partial bool
}

// Last returns the newest finished run, if any.
func (s Snapshot) Last() (Run, bool) {
	if len(s.Runs) == 0 {
		return Run{}, false
	}
	return s.Runs[0], true
}

// Of returns a copy of the connector's activity.
func (a *Activity) Of(ref pipeline.ConnectorRef) Snapshot {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := Snapshot{Partial: a.partial}
	h := a.conn[ref]
	if h == nil {
		return out
	}
	if h.current != nil {
		c := *h.current
		c.Changes = copyCounts(c.Changes)
		h.progress.fill(&c)
		out.Current = &c
	}
	for i := len(h.runs) - 1; i >= 0; i-- {
		r := h.runs[i]
		r.Changes = copyCounts(r.Changes)
		r.PagesBy = maps.Clone(r.PagesBy)
		out.Runs = append(out.Runs, r)
	}
	return out
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// progress takes one progress message of the fetcher's.
func (a *Activity) progress(subject string, data []byte) {
	ref, err := pipeline.ProgressConnector(subject)
	if err != nil || len(data) > pipeline.MaxProgress {
		return
	}
	var p pipeline.Progress
	if json.Unmarshal(data, &p) != nil || p.Page < 1 || len(p.Listing) > 128 || len(p.Fetcher) > 64 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.conn[ref]
	if h == nil {
		if len(a.conn) >= maxConnectors {
			return
		}
		h = &history{progress: newRunProgress(nil)}
		a.conn[ref] = h
	}
	pr := h.progress
	if _, ok := pr.pages[p.Listing]; ok || len(pr.pages) < maxListings {
		pr.pages[p.Listing] = max(pr.pages[p.Listing], p.Page)
	}
	if _, ok := pr.latest[p.Fetcher]; ok || len(pr.latest) < maxFetchers {
		pr.latest[p.Fetcher] = counters{requests: p.Requests, rateLimited: p.RateLimited, waitedMS: p.WaitedMS}
	}
}
