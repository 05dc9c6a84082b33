// Package schedule triggers each connector's periodic full sync exactly once
// across any number of fetcher replicas. Time is cut into slots of one
// interval; the replica that moves the connector's key in the schedule
// bucket (pipeline.ScheduleBucket) to the new slot with a compare-and-set
// publishes that slot's trigger, and every other replica sees the key
// already there.
package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Config configures a Scheduler.
type Config struct {
	// JetStream holds the bucket and takes the triggers.
	JetStream jetstream.JetStream
	// Interval is the time between two scheduled syncs of a connector; it
	// must be positive.
	Interval time.Duration
	// Replicas is the replica count of the bucket, default 1.
	Replicas int
	// Log receives the triggers published and the ticks that failed.
	Log zerolog.Logger
}

// Scheduler publishes scheduled triggers.
type Scheduler struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	interval time.Duration
	log      zerolog.Logger
	now      func() time.Time
}

// New opens the bucket.
func New(ctx context.Context, cfg Config) (*Scheduler, error) {
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("schedule: interval must be positive, got %s", cfg.Interval)
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
	return &Scheduler{js: cfg.JetStream, kv: kv, interval: cfg.Interval, log: cfg.Log, now: time.Now}, nil
}

type slotValue struct {
	Slot int64 `json:"slot"`
}

// Run checks every connector several times per interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context, connectors []pipeline.ConnectorRef) error {
	tick := min(max(s.interval/10, 100*time.Millisecond), 30*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		for _, c := range connectors {
			if _, err := s.Tick(ctx, c); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Str("tenant", c.Tenant).Str("connector", c.ID).Msg("scheduled sync")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick triggers the connector's sync if a new slot began and no replica has
// claimed it yet. It reports whether this call published the trigger. The
// first tick ever for a connector only records the current slot: the first
// sync of a new connector is triggered when it is saved, not by the clock.
func (s *Scheduler) Tick(ctx context.Context, c pipeline.ConnectorRef) (bool, error) {
	key := c.Key()
	slot := s.now().UnixNano() / int64(s.interval)
	e, err := s.kv.Get(ctx, key)
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		b, _ := json.Marshal(slotValue{Slot: slot})
		if _, err := s.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return false, fmt.Errorf("record schedule: %w", err)
		}
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read schedule: %w", err)
	default:
		var v slotValue
		if json.Unmarshal(e.Value(), &v) == nil && v.Slot >= slot {
			return false, nil
		}
		rev = e.Revision()
	}
	b, _ := json.Marshal(slotValue{Slot: slot})
	if _, err := s.kv.Update(ctx, key, b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, nil // another replica claimed this slot
		}
		return false, fmt.Errorf("claim schedule slot: %w", err)
	}
	id := "schedule-" + strconv.FormatInt(slot, 10)
	body, _ := json.Marshal(clarity.Trigger{Mode: "full", RequestID: id})
	// The trigger is the public JSON one that Clarity sends too, not an
	// internal envelope: it is made here rather than by pipeline.NewMsg.
	msg := nats.NewMsg(pipeline.SyncSubject(c))
	msg.Data = body
	// The slot is claimed; the message id makes a retried publish harmless.
	msg.Header.Set(jetstream.MsgIDHeader, pipeline.ScheduleID(c, slot))
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
