package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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
	// records counts each kind's records: created less deleted, over the
	// events the stream still held when the console read them.
	records map[string]int64
	updated time.Time
}

// Activity follows every connector's change events in
// CLARITY_ENTITLEMENTS, from the oldest the stream holds, and keeps each
// one's running sync, its last runs and its records per kind.
type Activity struct {
	mu   sync.RWMutex
	conn map[pipeline.ConnectorRef]*history
	// partial is set when the stream no longer held its first events
	// (they aged out): record counts then miss what they said.
	partial bool
	caught  chan struct{}
	once    sync.Once
}

// NewActivity returns an empty Activity; Follow fills it.
func NewActivity() *Activity {
	return &Activity{conn: map[pipeline.ConnectorRef]*history{}, caught: make(chan struct{})}
}

// CaughtUp is closed once Follow has read the events the stream held when
// it started.
func (a *Activity) CaughtUp() <-chan struct{} { return a.caught }

// Follow reads the events until ctx ends.
func (a *Activity) Follow(ctx context.Context, js jetstream.JetStream, log zerolog.Logger) error {
	stream, err := js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return fmt.Errorf("console: open %s: %w", clarity.StreamEntitlements, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("console: read %s: %w", clarity.StreamEntitlements, err)
	}
	last := info.State.LastSeq
	a.mu.Lock()
	a.partial = info.State.FirstSeq > 1
	a.mu.Unlock()
	if last == 0 {
		a.once.Do(func() { close(a.caught) })
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"clarity.entitlements.>"}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("console: follow %s: %w", clarity.StreamEntitlements, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("console: follow %s: %w", clarity.StreamEntitlements, err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			log.Warn().Err(err).Msg("console: reading the change events")
			continue
		}
		a.apply(m.Subject(), m.Data())
		if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= last {
			a.once.Do(func() { close(a.caught) })
		}
	}
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
		h = &history{records: map[string]int64{}}
		a.conn[ref] = h
	}
	h.updated = ev.Time
	if kind != clarity.KindSync {
		switch op {
		case clarity.OpCreated:
			h.records[kind]++
		case clarity.OpDeleted:
			h.records[kind]--
		}
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

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Snapshot is a copy of one connector's activity.
type Snapshot struct {
	Current *Run
	// Runs are the finished runs, newest first.
	Runs    []Run
	Records map[string]int64
	// Partial is set when the stream had dropped older events: Records
	// then counts only what the events it still holds say.
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
	out := Snapshot{Records: map[string]int64{}, Partial: a.partial}
	h := a.conn[ref]
	if h == nil {
		return out
	}
	if h.current != nil {
		c := *h.current
		c.Changes = copyCounts(c.Changes)
		out.Current = &c
	}
	for i := len(h.runs) - 1; i >= 0; i-- {
		r := h.runs[i]
		r.Changes = copyCounts(r.Changes)
		out.Runs = append(out.Runs, r)
	}
	out.Records = copyCounts(h.records)
	return out
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
