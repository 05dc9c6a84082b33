package schedule

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// countingKV counts the requests a scheduler makes of its bucket.
type countingKV struct {
	jetstream.KeyValue
	n *atomic.Int64
}

func (k countingKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	k.n.Add(1)
	return k.KeyValue.Get(ctx, key)
}

func (k countingKV) Create(ctx context.Context, key string, v []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	k.n.Add(1)
	return k.KeyValue.Create(ctx, key, v, opts...)
}

func (k countingKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	k.n.Add(1)
	return k.KeyValue.Update(ctx, key, v, rev)
}

// newSchedulers returns n replicas sharing one bucket, on the clock *clock.
func newSchedulers(t *testing.T, js jetstream.JetStream, n int, clock *time.Time) []*Scheduler {
	t.Helper()
	var out []*Scheduler
	for range n {
		s, err := New(context.Background(), Config{JetStream: js, Connectors: none, Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return *clock }
		out = append(out, s)
	}
	return out
}

// triggers returns the request ids of the triggers on the sync stream, by
// connector key.
func triggers(t *testing.T, js jetstream.JetStream) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamSync) {
		ref, err := pipeline.FromSubject(m.Subject)
		if err != nil {
			t.Fatal(err)
		}
		var trig clarity.Trigger
		if err := json.Unmarshal(m.Data, &trig); err != nil {
			t.Fatal(err)
		}
		out[ref.Key()] = append(out[ref.Key()], trig.RequestID)
	}
	return out
}

// TestPerConnectorSchedules: connectors on schedules of their own, ticked
// every 10 seconds of a simulated clock by two replicas for two hours: each
// is triggered once per slot of its own interval, at its own phase.
func TestPerConnectorSchedules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	replicas := newSchedulers(t, js, 2, &clock)
	minute := Entry{Connector: pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}, Interval: time.Minute}
	minute.Phase = Spread(minute.Connector, minute.Interval)
	hour := Entry{Connector: pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}, Interval: time.Hour}
	hour.Phase = Spread(hour.Connector, hour.Interval)
	published := map[string]int{}
	var firedAt []time.Time
	for end := clock.Add(2 * time.Hour); clock.Before(end); clock = clock.Add(10 * time.Second) {
		for _, s := range replicas {
			for _, e := range []Entry{minute, hour} {
				ok, err := s.Tick(ctx, e)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					published[e.Connector.Key()]++
					if e == minute {
						firedAt = append(firedAt, clock)
					}
				}
			}
		}
	}
	// The first tick only records the slot; one trigger per slot after.
	if got := published["acme.zoom"]; got < 119 || got > 120 {
		t.Errorf("1m connector: %d triggers in 2 hours, want 119 or 120", got)
	}
	if got := published["globex.zoom"]; got != 2 {
		t.Errorf("1h connector: %d triggers in 2 hours, want 2", got)
	}
	// Each trigger of the 1m connector comes in the first tick of its
	// slot, which begins at its phase past the minute.
	for _, at := range firedAt {
		into := time.Duration(at.UnixNano()-int64(minute.Phase)) % time.Minute
		if into >= 10*time.Second {
			t.Errorf("triggered %s into its slot, want within the first tick (10s)", into)
			break
		}
	}
	got := triggers(t, js)
	for key, n := range published {
		ids := got[key]
		if len(ids) != n {
			t.Errorf("%s: %d triggers on the stream, want %d", key, len(ids), n)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] || !strings.HasPrefix(id, "schedule-") {
				t.Errorf("%s: request id %q twice or not a slot's", key, id)
			}
			seen[id] = true
		}
	}
}

// TestRescheduled: a connector whose interval changes starts counting
// slots under the new one at once, whichever way it changes: its slots'
// numbers under the old one say nothing of the new.
func TestRescheduled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	clock := time.Date(2026, 11, 28, 12, 0, 30, 0, time.UTC)
	s := newSchedulers(t, js, 1, &clock)[0]
	c := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	tick := func(e Entry) bool {
		t.Helper()
		ok, err := s.Tick(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	minute := Entry{Connector: c, Interval: time.Minute}
	day := Entry{Connector: c, Interval: 24 * time.Hour}
	tick(minute)
	clock = clock.Add(time.Minute)
	if !tick(minute) {
		t.Fatal("1m: no trigger a minute later")
	}
	// From a minute to a day: the slot numbers of minutes are far larger
	// than those of days; read as days, the next would be decades away.
	if tick(day) {
		t.Error("rescheduled to 24h: triggered at once, want the change only recorded")
	}
	clock = clock.Add(24 * time.Hour)
	if !tick(day) {
		t.Error("24h: no trigger a day after the change")
	}
	// And back: the first tick under the new schedule records, the next
	// slot triggers.
	if tick(minute) {
		t.Error("rescheduled to 1m: triggered at once, want the change only recorded")
	}
	clock = clock.Add(time.Minute)
	if !tick(minute) {
		t.Error("1m: no trigger a minute after the change")
	}
}

// TestSlotBeforeSchedulesPerConnector: a slot recorded by a fetcher from
// before schedules were per connector (no interval with it) is read under
// the environment connector's interval, as that fetcher numbered it: no
// extra sync, none missed.
func TestSlotBeforeSchedulesPerConnector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	clock := time.Date(2026, 11, 28, 12, 30, 0, 0, time.UTC)
	s := newSchedulers(t, js, 1, &clock)[0]
	e := Entry{Connector: pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}, Interval: time.Hour}
	legacy, _ := json.Marshal(map[string]int64{"slot": e.Slot(clock)})
	if _, err := s.kv.Put(ctx, e.Connector.Key(), legacy); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Tick(ctx, e); ok || err != nil {
		t.Fatalf("tick in the recorded slot: %t %v, want no trigger", ok, err)
	}
	clock = clock.Add(time.Hour)
	if ok, err := s.Tick(ctx, e); !ok || err != nil {
		t.Fatalf("tick in the next slot: %t %v, want a trigger", ok, err)
	}
}

// TestIdleConnectorsCostNoRequests: a scheduler over a thousand connectors
// reads the bucket once per connector and slot; the ticks within a slot
// make no request.
func TestIdleConnectorsCostNoRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	var entries []Entry
	for i := range 1000 {
		c := pipeline.ConnectorRef{Tenant: fmt.Sprintf("t%d", i), ID: "zoom"}
		entries = append(entries, Entry{Connector: c, Interval: 24 * time.Hour, Phase: Spread(c, 24*time.Hour)})
	}
	clock := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s := newSchedulers(t, js, 1, &clock)[0]
	var requests atomic.Int64
	s.kv = countingKV{KeyValue: s.kv, n: &requests}
	round := func() {
		t.Helper()
		for _, e := range entries {
			if _, err := s.Tick(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	round()
	first := requests.Load()
	if first != 2000 {
		t.Errorf("first round: %d requests, want two per connector (read, record)", first)
	}
	start := time.Now()
	for range 5 {
		clock = clock.Add(time.Second)
		round()
	}
	took := time.Since(start)
	if got := requests.Load() - first; got != 0 {
		t.Errorf("five more rounds in the same slots: %d requests, want none", got)
	}
	t.Logf("5 rounds over 1000 connectors within their slots: %s", took)
	if n := len(triggers(t, js)); n != 0 {
		t.Errorf("%d connectors triggered, want none (first ticks only record)", n)
	}
}

// TestRunFollowsTheConnectors: Run reads the connectors at every tick, and
// at once when they change (no connector: the next tick is 30 s away): one
// added is scheduled, one removed is no longer triggered and forgotten.
func TestRunFollowsTheConnectors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	c := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	var on atomic.Bool
	var mu sync.Mutex
	changed := make(chan struct{})
	toggle := func(v bool) {
		mu.Lock()
		defer mu.Unlock()
		on.Store(v)
		close(changed)
		changed = make(chan struct{})
	}
	s, err := New(ctx, Config{JetStream: js, Log: zerolog.Nop(),
		Connectors: func() []Entry {
			if !on.Load() {
				return nil
			}
			return []Entry{{Connector: c, Interval: 300 * time.Millisecond}}
		},
		Changed: func() <-chan struct{} {
			mu.Lock()
			defer mu.Unlock()
			return changed
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	count := func() int { return len(triggers(t, js)["acme.zoom"]) }
	time.Sleep(500 * time.Millisecond)
	if n := count(); n != 0 {
		t.Fatalf("%d triggers before the connector was scheduled", n)
	}
	toggle(true)
	deadline := time.Now().Add(10 * time.Second)
	for count() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(); n < 2 {
		t.Fatalf("%d triggers after the connector was scheduled, want at least 2", n)
	}
	toggle(false)
	time.Sleep(200 * time.Millisecond) // a tick in flight may still trigger
	before := count()
	time.Sleep(time.Second)
	if n := count(); n != before {
		t.Errorf("%d triggers after the connector was unscheduled, want none", n-before)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(s.seen) != 0 {
		t.Errorf("scheduler still remembers %d connectors, want none", len(s.seen))
	}
}

// TestRegistered: only active connectors with an interval are scheduled,
// the environment's excepted, each at a phase within its interval that
// every replica computes alike; a thousand connectors of one interval are
// spread over it.
func TestRegistered(t *testing.T) {
	t.Parallel()
	rec := func(tenant, state, sched string) connector.Entry {
		return connector.Entry{Record: connector.Record{Tenant: tenant, Connector: "zoom", Auth: connector.AuthS2S,
			State: state, Schedule: sched}}
	}
	env := pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	got := Registered([]connector.Entry{
		rec("a", connector.StateActive, "1m"),
		rec("b", connector.StateActive, connector.ScheduleManual),
		rec("c", connector.StatePendingAuthorization, "1h"),
		rec("d", connector.StateNeedsReauthorization, "1h"),
		rec("e", connector.StateDisabled, "1h"),
		rec("f", connector.StateActive, "soon"),
		rec("default", connector.StateActive, "1h"),
		rec("g", connector.StateActive, "24h"),
	}, env)
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Connector.Key())
		if e.Phase < 0 || e.Phase >= e.Interval || e.Phase != Spread(e.Connector, e.Interval) {
			t.Errorf("%s: phase %s, want Spread's, within [0, %s)", e.Connector, e.Phase, e.Interval)
		}
	}
	if strings.Join(keys, " ") != "a.zoom g.zoom" {
		t.Errorf("scheduled %v, want the active ones with an interval, not the environment's", keys)
	}
	if got[0].Interval != time.Minute || got[1].Interval != 24*time.Hour {
		t.Errorf("intervals %s and %s, want 1m and 24h", got[0].Interval, got[1].Interval)
	}
	hours := map[time.Duration]int{}
	for i := range 1000 {
		c := pipeline.ConnectorRef{Tenant: fmt.Sprintf("t%d", i), ID: "zoom"}
		hours[Spread(c, 24*time.Hour)/time.Hour]++
	}
	for h, n := range hours {
		if n > 100 {
			t.Errorf("%d of 1000 connectors start their day in hour %d, want them spread", n, h)
		}
	}
	if len(hours) != 24 {
		t.Errorf("1000 connectors start their day in %d of 24 hours, want all", len(hours))
	}
}
