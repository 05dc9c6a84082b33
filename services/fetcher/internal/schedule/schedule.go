// Package schedule triggers each connector's periodic full sync exactly once
// across any number of fetcher replicas. Time is cut into slots of one
// interval; the replica that moves the connector's key in the zoom_schedule
// bucket to the new slot with a compare-and-set publishes that slot's
// trigger, and every other replica sees the key already there.
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
)

// Bucket is the key-value bucket holding the last scheduled slot of each
// connector.
const Bucket = "zoom_schedule"

// Scheduler publishes scheduled triggers.
type Scheduler struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	interval time.Duration
	log      zerolog.Logger
	now      func() time.Time
}

// New opens the bucket. interval must be positive.
func New(ctx context.Context, js jetstream.JetStream, interval time.Duration, replicas int, log zerolog.Logger) (*Scheduler, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("schedule: interval must be positive, got %s", interval)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "the last scheduled full-sync slot of each connector",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open schedule bucket: %w", err)
	}
	return &Scheduler{js: js, kv: kv, interval: interval, log: log, now: time.Now}, nil
}

type slotValue struct {
	Slot int64 `json:"slot"`
}

// Run checks every connector several times per interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context, connectors [][2]string) error {
	tick := min(max(s.interval/10, 100*time.Millisecond), 30*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		for _, c := range connectors {
			if _, err := s.Tick(ctx, c[0], c[1]); err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Str("tenant", c[0]).Str("connector", c[1]).Msg("scheduled sync")
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
func (s *Scheduler) Tick(ctx context.Context, tenant, connector string) (bool, error) {
	key := tenant + "." + connector
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
	msg := nats.NewMsg(clarity.SyncSubject(tenant, connector))
	msg.Data = body
	// The slot is claimed; the message id makes a retried publish harmless.
	msg.Header.Set(jetstream.MsgIDHeader, "schedule/"+key+"/"+strconv.FormatInt(slot, 10))
	for attempt := 0; ; attempt++ {
		_, err := s.js.PublishMsg(ctx, msg)
		if err == nil {
			s.log.Info().Str("tenant", tenant).Str("connector", connector).Str("request_id", id).Msg("scheduled sync triggered")
			return true, nil
		}
		if attempt == 5 || ctx.Err() != nil {
			return false, fmt.Errorf("publish scheduled trigger: %w", err)
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}
