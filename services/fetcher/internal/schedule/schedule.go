// Package schedule triggers each connector's periodic full sync exactly once
// across any number of fetcher replicas. Each connector has its own
// interval; its time is cut into slots of that interval; the replica that
// moves the connector's key in the schedule bucket
// (pipeline.ScheduleBucket) to the new slot with a compare-and-set
// publishes that slot's trigger, and every other replica sees the key
// already there.
package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Entry is a connector on a schedule.
type Entry struct {
	// Connector is the connector to sync.
	Connector pipeline.ConnectorRef
	// Interval is the time between two of its scheduled syncs; positive.
	Interval time.Duration
	// Phase shifts its slots: each begins Phase after a multiple of
	// Interval since the Unix epoch. In [0, Interval).
	Phase time.Duration
}

// Slot returns the number of the connector's slot that t falls in.
func (e Entry) Slot(t time.Time) int64 {
	n := t.UnixNano() - int64(e.Phase)
	slot := n / int64(e.Interval)
	if n < 0 && n%int64(e.Interval) != 0 {
		slot-- // floor, for a time before the first slot began
	}
	return slot
}

// Spread returns the phase of connector c on a schedule of interval, the
// same on every replica: the connectors that share an interval are spread
// over it rather than all synced at its start, which would make a thousand
// connectors hit Zoom, and the fetchers, at once.
func Spread(c pipeline.ConnectorRef, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(c.Key()))
	return time.Duration(h.Sum64() % uint64(interval))
}

// Config configures a Scheduler.
type Config struct {
	// JetStream holds the bucket and takes the triggers.
	JetStream jetstream.JetStream
	// Connectors returns the connectors on a schedule. Run calls it at
	// every tick, so that a connector added, changed or removed is in force
	// at the next one; it must be cheap (a read of memory, no request).
	Connectors func() []Entry
	// Changed, when set, returns a channel closed at the next change of
	// the connectors (the registry's Changed): Run then ticks at once
	// rather than at its next tick, up to maxTick away.
	Changed func() <-chan struct{}
	// Replicas is the replica count of the bucket, default 1.
	Replicas int
	// Log receives the triggers published and the ticks that failed.
	Log zerolog.Logger
}

// Scheduler publishes scheduled triggers.
type Scheduler struct {
	js         jetstream.JetStream
	kv         jetstream.KeyValue
	connectors func() []Entry
	changed    func() <-chan struct{}
	log        zerolog.Logger
	now        func() time.Time

	// seen is, by connector key, the latest slot known to be claimed (by
	// this replica or another) under the schedule it had: a tick within
	// that slot makes no request. Only the goroutine that ticks uses it.
	seen map[string]seenSlot
	// ticks counts Run's rounds; an entry of seen not visited in the last
	// round is of a connector no longer scheduled, and goes.
	ticks uint64
}

// seenSlot is the latest claimed slot of a connector and the schedule it
// was claimed under.
type seenSlot struct {
	slotValue
	tick uint64
}

// Bounds of the time between two ticks: a tenth of the shortest interval,
// at least minTick (a fetcher's own bookkeeping) and at most maxTick (how
// late a slot may be noticed).
const (
	minTick = 100 * time.Millisecond
	maxTick = 30 * time.Second
)

// New opens the bucket.
func New(ctx context.Context, cfg Config) (*Scheduler, error) {
	if cfg.Connectors == nil {
		return nil, errors.New("schedule: no source of connectors")
	}
	kv, err := cfg.JetStream.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      pipeline.ScheduleBucket,
		Description: "the last scheduled full-sync slot of each connector",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, cfg.Replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open schedule bucket: %w", err)
	}
	return &Scheduler{js: cfg.JetStream, kv: kv, connectors: cfg.Connectors, changed: cfg.Changed, log: cfg.Log, now: time.Now,
		seen: map[string]seenSlot{}}, nil
}

// slotValue is a connector's key in the bucket: its last claimed slot and
// the schedule the slot is numbered under. A value without an interval was
// written before schedules were per connector, by a fetcher of the
// environment's connector alone: it is read as numbered under the
// interval the connector has now.
type slotValue struct {
	Slot     int64 `json:"slot"`
	Interval int64 `json:"interval_ns,omitempty"`
	Phase    int64 `json:"phase_ns,omitempty"`
}

func valueOf(e Entry, slot int64) slotValue {
	return slotValue{Slot: slot, Interval: int64(e.Interval), Phase: int64(e.Phase)}
}

// sameSchedule reports whether v numbers its slot under e's schedule.
func (v slotValue) sameSchedule(e Entry) bool {
	return v.Interval == 0 || v.Interval == int64(e.Interval) && v.Phase == int64(e.Phase)
}

// Run checks every scheduled connector several times per interval until
// ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTimer(maxTick)
	defer t.Stop()
	for {
		var changed <-chan struct{}
		if s.changed != nil {
			// Taken before the connectors are read: a change after the
			// read closes it.
			changed = s.changed()
		}
		s.ticks++
		wait := maxTick
		for _, e := range s.connectors() {
			if e.Interval <= 0 {
				continue
			}
			wait = min(wait, e.Interval/10)
			if _, err := s.Tick(ctx, e); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Str("tenant", e.Connector.Tenant).Str("connector", e.Connector.ID).Msg("scheduled sync")
			}
		}
		for key, v := range s.seen {
			if v.tick != s.ticks {
				delete(s.seen, key)
			}
		}
		t.Reset(max(wait, minTick))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed:
			// Soon, but no more often than minTick however often the
			// connectors change (every token refresh changes one).
			t.Reset(minTick)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}

// Tick triggers the connector's sync if a new slot began and no replica has
// claimed it yet. It reports whether this call published the trigger. The
// first tick ever for a connector, and the first after its schedule
// changed, only record the current slot: the first sync of a new connector
// is triggered when it is saved, not by the clock, and slots numbered under
// another interval say nothing of this one's. Within a slot it knows to be
// claimed, a tick makes no request. Tick is not safe for concurrent use.
func (s *Scheduler) Tick(ctx context.Context, e Entry) (bool, error) {
	if e.Interval <= 0 {
		return false, fmt.Errorf("schedule: interval must be positive, got %s", e.Interval)
	}
	c := e.Connector
	key := c.Key()
	slot := e.Slot(s.now())
	if v, ok := s.seen[key]; ok && v.sameSchedule(e) && v.Slot >= slot {
		v.tick = s.ticks
		s.seen[key] = v
		return false, nil
	}
	remember := func(v slotValue) { s.seen[key] = seenSlot{slotValue: v, tick: s.ticks} }
	b, _ := json.Marshal(valueOf(e, slot))
	got, err := s.kv.Get(ctx, key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if _, err := s.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("record schedule: %w", err)
		}
		remember(valueOf(e, slot))
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read schedule: %w", err)
	default:
		var v slotValue
		if json.Unmarshal(got.Value(), &v) == nil {
			if !v.sameSchedule(e) {
				// Rescheduled: start counting under the new schedule.
				if _, err := s.kv.Update(ctx, key, b, got.Revision()); err != nil &&
					!errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					return false, fmt.Errorf("record schedule: %w", err)
				}
				remember(valueOf(e, slot))
				return false, nil
			}
			if v.Slot >= slot {
				remember(v)
				return false, nil
			}
		}
		rev = got.Revision()
	}
	if _, err := s.kv.Update(ctx, key, b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, nil // another replica claimed this slot
		}
		return false, fmt.Errorf("claim schedule slot: %w", err)
	}
	remember(valueOf(e, slot))
	id := "schedule-" + strconv.FormatInt(slot, 10)
	// The slot is claimed; the message id makes a retried publish harmless.
	msg := pipeline.NewTrigger(c, id, pipeline.ScheduleID(c, slot))
	for attempt := 0; ; attempt++ {
		_, err := s.js.PublishMsg(ctx, msg)
		if err == nil {
			s.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("request_id", id).Msg("scheduled sync triggered")
			return true, nil
		}
		if attempt == 5 || ctx.Err() != nil {
			return false, fmt.Errorf("publish scheduled trigger: %w", err)
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// Registered returns the registered connectors on a schedule: each active
// one whose schedule is an interval (not manual, not unreadable), except
// skip (the environment's connector, which has its own). Each is spread
// over its interval (Spread).
func Registered(entries []connector.Entry, skip pipeline.ConnectorRef) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.State != connector.StateActive || e.Schedule == connector.ScheduleManual {
			continue
		}
		ref := e.Ref()
		if ref == skip {
			continue
		}
		d, err := connector.ParseSchedule(e.Schedule)
		if err != nil || d <= 0 {
			continue
		}
		out = append(out, Entry{Connector: ref, Interval: d, Phase: Spread(ref, d)})
	}
	return out
}
