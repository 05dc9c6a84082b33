// Package follow keeps a local copy of a connector's records: it loads a
// snapshot at a sequence from the writer (clarity.snapshot.<tenant>.<connector>),
// then follows clarity.entitlements.<tenant>.<connector>.> from the next
// stream position with an ordered JetStream consumer, applying exactly the
// events whose sequence is greater than the one applied. Its position and
// records persist through a Store, so that it resumes after its own
// restart; when retention has dropped events it needs, it starts again from
// a snapshot.
//
// It relies on the writer numbering every event of a connector, sync events
// included, one after the other: after sequence n, the next event is n+1.
// An event with a smaller or equal sequence (a redelivery: its id is one
// already applied) is dropped; one with a greater sequence means events in
// between are gone from the stream, and the copy is loaded again.
package follow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/snapshot"
)

const opCreated = clarity.OpCreated

// Config configures a Follower.
type Config struct {
	// Conn is the NATS connection (JetStream on it).
	Conn *nats.Conn
	// Connector is the connector whose records are followed.
	Connector pipeline.ConnectorRef
	// Store keeps the copy across restarts.
	Store Store
	// Apply, when set, is called with each change once Store has committed
	// it, in sequence order; a change committed is never applied again,
	// also after a restart. A process that dies between the commit and
	// Apply does not see that change in Apply (its record is in Store).
	Apply func(Change)
	// Loaded, when set, is called after a snapshot was loaded and saved,
	// with its position and record count.
	Loaded func(pos Position, records int)
	// Resumed, when set, is called once Run has loaded a saved copy, with
	// its position and record count.
	Resumed func(pos Position, records int)
	// Batch bounds the events one commit holds. Default 500.
	Batch int
	// BatchBytes bounds the event bytes one commit holds: a batch closes
	// once its events reach it (so it holds less than BatchBytes plus one
	// event). Default and at most MaxBatchBytes.
	BatchBytes int
	// ChunkLimit bounds the records of one snapshot chunk (0: the
	// writer's default).
	ChunkLimit int
	// MaxRecords bounds the copy. Default 20,000,000.
	MaxRecords int
	// Log receives what the follower does (snapshots, gaps).
	Log zerolog.Logger
}

// Bounds of what is read.
const (
	// maxEvent is the largest event read: NATS's largest payload.
	maxEvent = 1 << 20
	// MaxBatchBytes is the most event bytes one commit holds (less one
	// event): a Store's line of one commit is bounded by it.
	MaxBatchBytes = 64 << 20
	// maxKey bounds a record's key.
	maxKey = 4 << 10
	// drainWait is how long a batch waits for one more event.
	drainWait = 20 * time.Millisecond
)

// ErrGap reports that events after the applied sequence are gone from the
// stream (retention dropped them): the copy must be loaded again.
var ErrGap = errors.New("events needed were dropped from the stream")

// recKey names a record in the copy; kind is one of clarity.Kinds.
type recKey struct {
	kind, key string
}

// Follower keeps the copy. Its methods other than Run may be called from
// any goroutine while Run runs.
type Follower struct {
	cfg Config
	js  jetstream.JetStream

	mu      sync.RWMutex
	records map[recKey]json.RawMessage
	counts  map[string]int
	pos     Position
	loads   int
}

// New returns a follower; Run does the work.
func New(cfg Config) (*Follower, error) {
	if cfg.Conn == nil || cfg.Store == nil || cfg.Connector.IsZero() {
		return nil, errors.New("follow: Conn, Connector and Store are required")
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.BatchBytes <= 0 || cfg.BatchBytes > MaxBatchBytes {
		cfg.BatchBytes = MaxBatchBytes
	}
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = 20_000_000
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, err
	}
	return &Follower{cfg: cfg, js: js, records: map[recKey]json.RawMessage{}, counts: map[string]int{}}, nil
}

// Position returns how far the copy goes.
func (f *Follower) Position() Position {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.pos
}

// Len returns the number of records.
func (f *Follower) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.records)
}

// Counts returns the number of records of each kind.
func (f *Follower) Counts() map[string]int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[string]int, len(f.counts))
	for k, n := range f.counts {
		out[k] = n
	}
	return out
}

// Get returns the data of one record.
func (f *Follower) Get(kind, key string) (json.RawMessage, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	d, ok := f.records[recKey{kind, key}]
	return d, ok
}

// Records yields every record (in no order), holding the copy still
// meanwhile: Run waits until the loop ends.
func (f *Follower) Records() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		f.mu.RLock()
		defer f.mu.RUnlock()
		for k, d := range f.records {
			if !yield(Record{Kind: k.kind, Key: k.key, Data: d}) {
				return
			}
		}
	}
}

// Loads returns how many snapshots were loaded since New.
func (f *Follower) Loads() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.loads
}

// Run loads the saved copy, then follows the events until ctx ends (it
// returns ctx's error) or an error it cannot get past. It loads a snapshot
// when nothing was saved, and again whenever events it needs are gone.
//
// An error of NATS or JetStream (a server restarting, a snapshot request
// timing out) is logged and tried again after a pause (1s, doubling to
// 30s, back to 1s once the copy moves on); Run returns on anything else:
// an event or record it cannot apply, or the store failing.
func (f *Follower) Run(ctx context.Context) error {
	if err := f.load(ctx); err != nil {
		return err
	}
	pause := time.Second
	for {
		before := f.Position()
		err := f.round(ctx)
		var te *transientError
		if !errors.As(err, &te) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if f.Position() != before {
			pause = time.Second
		}
		f.cfg.Log.Warn().Err(err).Dur("retry_in", pause).Msg("follow: trying again")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// round loads a snapshot if the copy needs one, then follows the events
// until an error, loading a snapshot again at each gap.
func (f *Follower) round(ctx context.Context) error {
	pos := f.Position()
	fresh := pos.Next == 0
	if !fresh {
		dropped, err := f.droppedSince(ctx, pos)
		if err != nil {
			return err
		}
		fresh = dropped
	}
	if fresh {
		if err := f.reload(ctx); err != nil {
			return err
		}
	}
	for {
		err := f.follow(ctx)
		if !errors.Is(err, ErrGap) {
			return err
		}
		f.cfg.Log.Warn().Err(err).Int64("sequence", f.Position().Sequence).Msg("loading a snapshot again")
		if err := f.reload(ctx); err != nil {
			return err
		}
	}
}

// transientError is an error of NATS or JetStream that Run tries again.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err} }

// load reads the store into the copy.
func (f *Follower) load(ctx context.Context) error {
	records := map[recKey]json.RawMessage{}
	counts := map[string]int{}
	pos, err := f.cfg.Store.Load(ctx, func(c Change) error {
		_, err := apply(records, counts, c, f.cfg.MaxRecords)
		return err
	})
	if err != nil {
		return fmt.Errorf("load saved copy: %w", err)
	}
	f.mu.Lock()
	f.records, f.counts, f.pos = records, counts, pos
	f.mu.Unlock()
	if pos.Next > 0 && f.cfg.Resumed != nil {
		f.cfg.Resumed(pos, len(records))
	}
	return nil
}

// droppedSince reports whether retention may have dropped events after pos
// that the copy needs: the stream starts after pos.Next and holds no event
// of the connector at all. (When it holds some, the first one read shows
// whether any is missing: its sequence is then not the next.)
func (f *Follower) droppedSince(ctx context.Context, pos Position) (bool, error) {
	st, err := f.js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return false, transient(fmt.Errorf("stream %s: %w", clarity.StreamEntitlements, err))
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(f.subject()))
	if err != nil {
		return false, transient(fmt.Errorf("stream %s: %w", clarity.StreamEntitlements, err))
	}
	if info.State.LastSeq+1 < pos.Next {
		return true, nil // not the stream the copy was read from (made again)
	}
	if info.State.FirstSeq <= pos.Next {
		return false, nil
	}
	return len(info.State.Subjects) == 0, nil
}

func (f *Follower) subject() string { return pipeline.EventSubject(f.cfg.Connector, ">") }

// reload loads a snapshot: it notes the stream's last sequence first, so
// that every event the snapshot does not reflect comes after it (such an
// event commits after the snapshot began, and is published after it
// commits), then reads the snapshot and saves it with the position.
func (f *Follower) reload(ctx context.Context) error {
	st, err := f.js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return transient(fmt.Errorf("stream %s: %w", clarity.StreamEntitlements, err))
	}
	delay := 500 * time.Millisecond
	for {
		info, err := st.Info(ctx)
		if err != nil {
			return transient(fmt.Errorf("stream %s: %w", clarity.StreamEntitlements, err))
		}
		last := info.State.LastSeq
		records := map[recKey]json.RawMessage{}
		counts := map[string]int{}
		var seq int64
		var bad error // a record that cannot be applied: not worth asking again
		err = snapshot.Request(ctx, f.cfg.Conn, f.cfg.Connector, f.cfg.ChunkLimit, func(n int64) error {
			seq = n
			return nil
		}, func(r snapshot.Record) error {
			_, bad = apply(records, counts, Change{Kind: r.Kind, Op: opCreated, Key: r.Key, Data: r.Data}, f.cfg.MaxRecords)
			return bad
		})
		if errors.Is(err, snapshot.ErrBusy) || errors.Is(err, snapshot.ErrExpired) {
			f.cfg.Log.Info().Err(err).Dur("retry_in", delay).Msg("snapshot: trying again")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
			continue
		}
		if err != nil {
			if bad == nil && ctx.Err() == nil {
				err = transient(err)
			}
			return fmt.Errorf("load snapshot: %w", err)
		}
		pos := Position{Sequence: seq, Next: last + 1}
		all := func(yield func(Record) bool) {
			for k, d := range records {
				if !yield(Record{Kind: k.kind, Key: k.key, Data: d}) {
					return
				}
			}
		}
		if err := f.cfg.Store.Reset(ctx, pos, all); err != nil {
			return fmt.Errorf("save snapshot: %w", err)
		}
		f.mu.Lock()
		f.records, f.counts, f.pos = records, counts, pos
		f.loads++
		f.mu.Unlock()
		f.cfg.Log.Info().Int64("sequence", seq).Uint64("next", pos.Next).Int("records", len(records)).Msg("snapshot loaded")
		if f.cfg.Loaded != nil {
			f.cfg.Loaded(pos, len(records))
		}
		return nil
	}
}

// follow reads the events from the position on, committing them a batch at
// a time, until ctx ends, an error, or ErrGap.
func (f *Follower) follow(ctx context.Context) error {
	pos := f.Position()
	cons, err := f.js.OrderedConsumer(ctx, clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{f.subject()},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    pos.Next,
	})
	if err != nil {
		return transient(fmt.Errorf("consumer: %w", err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * f.cfg.Batch))
	if err != nil {
		return transient(fmt.Errorf("consumer: %w", err))
	}
	defer it.Stop()
	for {
		// The first event waits as long as ctx; the ones after it are
		// taken while they come at once, up to a batch (Batch events, or
		// BatchBytes of them).
		var changes []Change
		next := pos
		size := 0
		for n := 0; n < f.cfg.Batch && size < f.cfg.BatchBytes; n++ {
			var m jetstream.Msg
			if n == 0 {
				m, err = it.Next(jetstream.NextContext(ctx))
			} else {
				m, err = it.Next(jetstream.NextMaxWait(drainWait))
			}
			if errors.Is(err, nats.ErrTimeout) {
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return transient(fmt.Errorf("read events: %w", err))
			}
			c, err := decode(m.Subject(), m.Data(), f.cfg.Connector)
			if err != nil {
				return err
			}
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("event %s: %w", c.ID, err)
			}
			switch {
			case c.Sequence <= next.Sequence:
				// A redelivery of a change already applied (its id is one
				// applied): dropped.
			case c.Sequence > next.Sequence+1:
				return fmt.Errorf("%w: sequence %d follows %d", ErrGap, c.Sequence, next.Sequence)
			default:
				changes = append(changes, c)
				next.Sequence = c.Sequence
				size += len(m.Data())
			}
			next.Next = meta.Sequence.Stream + 1
		}
		if len(changes) == 0 {
			continue // only repeats: their position needs no commit
		}
		if err := f.commit(ctx, next, changes); err != nil {
			return err
		}
		pos = next
	}
}

// commit applies changes to the copy, commits them, then tells Apply; no
// cancellation point lies between the commit and Apply.
func (f *Follower) commit(ctx context.Context, pos Position, changes []Change) error {
	f.mu.Lock()
	for _, c := range changes {
		if _, err := apply(f.records, f.counts, c, f.cfg.MaxRecords); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	f.pos = pos
	f.mu.Unlock()
	if err := f.cfg.Store.Commit(ctx, pos, changes); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if f.cfg.Apply != nil {
		for _, c := range changes {
			f.cfg.Apply(c)
		}
	}
	if sc, ok := f.cfg.Store.(Compactor); ok && sc.ShouldCompact() {
		f.mu.RLock()
		err := f.cfg.Store.Reset(ctx, pos, f.all())
		f.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("compact: %w", err)
		}
	}
	return nil
}

// all yields the records; the caller holds the lock.
func (f *Follower) all() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for k, d := range f.records {
			if !yield(Record{Kind: k.kind, Key: k.key, Data: d}) {
				return
			}
		}
	}
}

// kindOf returns the shared constant of an event kind (a record kind,
// sync or provisioning), and false for anything else.
func kindOf(s string) (string, bool) {
	for _, k := range clarity.Kinds {
		if s == k {
			return k, true
		}
	}
	switch s {
	case clarity.KindSync:
		return clarity.KindSync, true
	case clarity.KindProvisioning:
		return clarity.KindProvisioning, true
	}
	return "", false
}

// validOp reports whether op is an operation of kind.
func validOp(kind, op string) bool {
	switch kind {
	case clarity.KindSync:
		return op == clarity.OpStarted || op == clarity.OpCompleted || op == clarity.OpFailed
	case clarity.KindProvisioning:
		return op == clarity.ResultSucceeded || op == clarity.ResultAlreadyInEffect || op == clarity.ResultFailed
	}
	return op == clarity.OpCreated || op == clarity.OpUpdated || op == clarity.OpDeleted
}

// apply applies one change to records; it reports whether a record
// changed.
func apply(records map[recKey]json.RawMessage, counts map[string]int, c Change, maxRecords int) (bool, error) {
	kind, ok := kindOf(c.Kind)
	if !ok {
		return false, fmt.Errorf("record of unknown kind %q", bound(c.Kind))
	}
	if !c.IsRecord() {
		return false, nil // a sync or provisioning event: no record
	}
	if c.Key == "" || len(c.Key) > maxKey {
		return false, fmt.Errorf("%s record: key of %d bytes: must be 1 to %d", kind, len(c.Key), maxKey)
	}
	k := recKey{kind, c.Key}
	switch c.Op {
	case clarity.OpCreated, clarity.OpUpdated:
		if len(c.Data) == 0 || c.Data[0] != '{' {
			return false, fmt.Errorf("%s %s: data is not an object", kind, bound(c.Key))
		}
		if _, had := records[k]; !had {
			if len(records) >= maxRecords {
				return false, fmt.Errorf("more than %d records", maxRecords)
			}
			counts[kind]++
		}
		records[k] = c.Data
	case clarity.OpDeleted:
		if _, had := records[k]; had {
			counts[kind]--
			delete(records, k)
		}
	default:
		return false, fmt.Errorf("%s %s: unknown operation %q", kind, bound(c.Key), bound(c.Op))
	}
	return true, nil
}

// event is a change event as read: the CloudEvent with the removal
// extension.
type event struct {
	clarity.Event
	Removal string `json:"removal,omitempty"`
}

// decode reads one message of the stream (its subject and data) as a
// change.
func decode(subject string, data []byte, ref pipeline.ConnectorRef) (Change, error) {
	if len(data) > maxEvent {
		return Change{}, fmt.Errorf("event on %s of %d bytes: at most %d", bound(subject), len(data), maxEvent)
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Change{}, fmt.Errorf("event on %s: %w", bound(subject), err)
	}
	if ev.Tenant != ref.Tenant || ev.Connector != ref.ID {
		return Change{}, fmt.Errorf("event %s: of %s/%s, not %s", bound(ev.ID), bound(ev.Tenant), bound(ev.Connector), ref)
	}
	parts := strings.Split(ev.Type, ".")
	if len(parts) != 3 || parts[0] != "clarity" {
		return Change{}, fmt.Errorf("event %s: type %q is not clarity.<kind>.<op>", bound(ev.ID), bound(ev.Type))
	}
	kind, ok := kindOf(parts[1])
	if !ok {
		return Change{}, fmt.Errorf("event %s: unknown kind in type %q", bound(ev.ID), bound(ev.Type))
	}
	if !validOp(kind, parts[2]) {
		return Change{}, fmt.Errorf("event %s: unknown operation in type %q", bound(ev.ID), bound(ev.Type))
	}
	// A sync event of a trigger the fetcher refused, and the provisioning
	// result of a connector the deployment does not serve, carry sequence
	// 0 (nothing committed): never greater than the applied one, they are
	// dropped as repeats are.
	seq, err := strconv.ParseInt(ev.Sequence, 10, 64)
	if err != nil || seq < 0 {
		return Change{}, fmt.Errorf("event %s: sequence %q is not a decimal sequence", bound(ev.ID), bound(ev.Sequence))
	}
	return Change{ID: ev.ID, Sequence: seq, Kind: kind, Op: parts[2], Key: ev.Subject, Time: ev.Time, Data: ev.Data, Removal: ev.Removal}, nil
}

// bound shortens a string read from outside for an error message.
func bound(s string) string { return pipeline.Bound(s, 200) }
