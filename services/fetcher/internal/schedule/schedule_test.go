package schedule

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestOneTriggerPerSlot: replicas that all see a new slot begin publish its
// trigger once, under the slot's message id and request id; the first tick
// ever only records the slot.
func TestOneTriggerPerSlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	c := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	const interval = time.Hour
	e := Entry{Connector: c, Interval: interval}
	clock := time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)
	var replicas []*Scheduler
	for range 3 {
		s, err := New(ctx, Config{JetStream: js, Connectors: none, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return clock }
		replicas = append(replicas, s)
	}
	tick := func() int {
		t.Helper()
		n := 0
		for _, s := range replicas {
			published, err := s.Tick(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if published {
				n++
			}
		}
		return n
	}
	if n := tick(); n != 0 {
		t.Fatalf("first ticks published %d triggers, want none", n)
	}
	clock = clock.Add(interval)
	if n := tick(); n != 1 {
		t.Fatalf("ticks in a new slot published %d triggers, want 1", n)
	}
	if n := tick(); n != 0 {
		t.Fatalf("ticks again in the same slot published %d triggers, want none", n)
	}

	msgs := natstest.StreamMsgs(t, js, pipeline.StreamSync)
	if len(msgs) != 1 {
		t.Fatalf("got %d triggers on the stream, want 1", len(msgs))
	}
	slot := clock.UnixNano() / int64(interval)
	m := msgs[0]
	if m.Subject != "zoom.sync.acme.zoom" {
		t.Errorf("subject got %q, want zoom.sync.acme.zoom", m.Subject)
	}
	if got, want := m.Header.Get(jetstream.MsgIDHeader), "schedule/acme.zoom/"+strconv.FormatInt(slot, 10); got != want {
		t.Errorf("message id got %q, want %q", got, want)
	}
	var trig clarity.Trigger
	if err := json.Unmarshal(m.Data, &trig); err != nil {
		t.Fatal(err)
	}
	if want := (clarity.Trigger{Mode: "full", RequestID: "schedule-" + strconv.FormatInt(slot, 10)}); trig != want {
		t.Errorf("trigger got %+v, want %+v", trig, want)
	}
}

func none() []Entry { return nil }
