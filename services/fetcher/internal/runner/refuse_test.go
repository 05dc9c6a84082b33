package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// harness is a runner on a real embedded NATS server, serving the given
// connectors, each with a client of its own simulator.
type harness struct {
	js   jetstream.JetStream
	runs *runstate.Store
	r    *runner.Runner
	sims map[pipeline.ConnectorRef]*zoomtest.Server
	cons jetstream.Consumer
}

func newHarness(t testing.TB, connectors ...pipeline.ConnectorRef) *harness {
	t.Helper()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	runs, err := runstate.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{js: js, runs: runs, sims: map[pipeline.ConnectorRef]*zoomtest.Server{}}
	clients := runner.Fixed{}
	for i, c := range connectors {
		org := zoomtest.Generate(int64(7+i), zoomtest.Size{Users: 20, Groups: 2, Roles: 2})
		sim := zoomtest.NewServer(t, org, zoomtest.Options{})
		client, err := zoom.New(zoom.Config{
			APIURL: sim.APIBase(), OAuthURL: sim.URL(),
			AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
			DisablePacing: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		h.sims[c] = sim
		clients[c] = client
	}
	h.r = runner.New(runner.Config{
		Runs:        runs,
		Syncer:      syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()}),
		Clients:     clients,
		Log:         zerolog.Nop(),
		MaxAttempts: 3,
		AckWait:     30 * time.Second,
	})
	h.cons, err = js.CreateOrUpdateConsumer(ctx, pipeline.StreamSync, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// trigger publishes a trigger on subject and returns it as the fetcher's
// consumer delivers it.
func (h *harness) trigger(t testing.TB, subject, body string) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	if _, err := h.js.Publish(ctx, subject, []byte(body)); err != nil {
		t.Fatal(err)
	}
	batch, err := h.cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatalf("trigger on %s not delivered", subject)
	}
	if err := msg.Ack(); err != nil {
		t.Fatal(err)
	}
	return msg
}

// syncEvents returns the events published on the change-event stream.
func syncEvents(t testing.TB, js jetstream.JetStream) ([]clarity.Event, []*jetstream.RawStreamMsg) {
	t.Helper()
	msgs := natstest.StreamMsgs(t, js, clarity.StreamEntitlements)
	out := make([]clarity.Event, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Data, &out[i]); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	return out, msgs
}

// TestUnknownConnectorRefused: a trigger for a connector this fetcher does
// not serve is answered with a sync.failed event on the requester's own
// subject that names no other connector, and nothing goes towards the
// writer, which would otherwise create the connector. A redelivery of the
// trigger publishes the same event id, which JetStream drops.
func TestUnknownConnectorRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, conn, pipeline.ConnectorRef{Tenant: "globex", ID: "secretco"})

	msg := h.trigger(t, clarity.SyncSubject("acme", "zoom"), `{"mode":"full","request_id":"r-1"}`)
	for range 2 { // the second is a redelivery
		if err := h.r.HandleTrigger(ctx, msg); err != nil {
			t.Fatalf("handle the trigger: %v", err)
		}
	}

	if raw := rawEnvelopes(t, h.js); len(raw) != 0 {
		t.Errorf("got %d messages towards the writer, want none: %v", len(raw), raw)
	}
	events, msgs := syncEvents(t, h.js)
	if len(events) != 1 {
		t.Fatalf("got %d events, want one sync.failed", len(events))
	}
	ev, m := events[0], msgs[0]
	if m.Subject != clarity.EventSubject("acme", "zoom", clarity.KindSync) {
		t.Errorf("subject got %q, want the requester's sync subject", m.Subject)
	}
	if ev.Type != "clarity.sync.failed" || ev.Tenant != "acme" || ev.Connector != "zoom" || ev.Sequence != "0" ||
		ev.SpecVersion != "1.0" || ev.Source != "zoom/acme/zoom" {
		t.Errorf("event got %+v, want a clarity.sync.failed of acme/zoom with sequence 0", ev)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); ev.ID == "" || got != ev.ID {
		t.Errorf("Nats-Msg-Id got %q, want the event id %q", got, ev.ID)
	}
	if got := m.Header.Get("Content-Type"); got != clarity.ContentType {
		t.Errorf("Content-Type got %q, want %q", got, clarity.ContentType)
	}
	var d clarity.SyncData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.RequestID != "r-1" || len(d.RequestIDs) != 1 || d.RequestIDs[0] != "r-1" || d.RunID == "" || d.FinishedAt == "" {
		t.Errorf("data got %+v, want the run of request r-1, finished", d)
	}
	if !strings.HasPrefix(d.RunID, "refused-") || ev.ID != "acme/zoom/"+d.RunID {
		t.Errorf("run id %q and event id %q, want refused-<trigger sequence> and acme/zoom/<run id>", d.RunID, ev.ID)
	}
	if want := "unknown connector acme/zoom"; !strings.Contains(d.Error, want) {
		t.Errorf("error got %q, want it to say %q", d.Error, want)
	}
	for _, other := range []string{"default", "globex", "secretco"} {
		if strings.Contains(d.Error, other) {
			t.Errorf("error %q names %q, another connector", d.Error, other)
		}
	}
	if keys := runKeys(t, h.js); len(keys) != 0 {
		t.Errorf("run states got %v, want none", keys)
	}
}

// runKeys returns the connectors that have a run state.
func runKeys(t testing.TB, js jetstream.JetStream) []string {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), pipeline.RunsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestInvalidNamesRefused: a trigger whose tenant or connector is not 1 to
// 63 of a-z, 0-9, '_' and '-', starting with a letter or digit, is refused
// with an error that says so, and reaches neither the writer nor the run
// state.
func TestInvalidNamesRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, conn)
	for _, tc := range []struct {
		tenant, connector, want string // want: what the refusal names
	}{
		{"ACME", "zoom", "tenant"},
		{"-acme", "zoom", "tenant"},
		{"acme", "zoom!", "connector"},
		{"acme", "_zoom", "connector"},
		{strings.Repeat("a", 64), "zoom", "tenant"},
		{"default", "Zoom", "connector"},
	} {
		bad := tc.tenant
		if tc.want == "connector" {
			bad = tc.connector
		}
		want := tc.want + " " + strconv.Quote(bad) + " must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit"
		msg := h.trigger(t, clarity.SyncSubject(tc.tenant, tc.connector), `{"request_id":"r-`+tc.tenant+`"}`)
		err := h.r.HandleTrigger(ctx, msg)
		var reason string
		if err != nil {
			reason = err.Error()
		}
		for _, ev := range mustSyncEvents(t, h.js) {
			if ev.Tenant == tc.tenant && ev.Connector == tc.connector {
				if ev.Type != "clarity.sync.failed" {
					t.Errorf("%s/%s: event %s, want clarity.sync.failed", tc.tenant, tc.connector, ev.Type)
				}
				var d clarity.SyncData
				if err := json.Unmarshal(ev.Data, &d); err != nil {
					t.Fatal(err)
				}
				reason += d.Error
			}
		}
		if !strings.Contains(reason, want) {
			t.Errorf("%s/%s: refusal got %q, want it to say %q", tc.tenant, tc.connector, reason, want)
		}
	}
	if keys := runKeys(t, h.js); len(keys) != 0 {
		t.Errorf("run states got %v, want none", keys)
	}
	if raw := rawEnvelopes(t, h.js); len(raw) != 0 {
		t.Errorf("got %d messages towards the writer, want none", len(raw))
	}
}

func mustSyncEvents(t testing.TB, js jetstream.JetStream) []clarity.Event {
	t.Helper()
	events, _ := syncEvents(t, js)
	return events
}

// TestOversizedZoomErrorFailsTheRun: Zoom answers an error whose message
// is 2 MiB of text that does not compress, more than a NATS message may
// hold. The run fails with an error of bounded size, its end reaches the
// stream, the run is closed, and the next trigger starts a new run.
func TestOversizedZoomErrorFailsTheRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, conn)
	sim := h.sims[conn]
	huge := incompressible(2 << 20)
	sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Status: 400, Code: 4700, Message: huge})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msg := h.trigger(t, pipeline.SyncSubject(conn), `{"request_id":"first"}`)
	if err := h.r.HandleTrigger(ctx, msg); err != nil {
		t.Fatalf("handle the trigger: %v (the run's end could not be published)", err)
	}
	var failed *pb.RunFailed
	for _, env := range rawEnvelopes(t, h.js) {
		if f := env.GetRunFailed(); f != nil {
			failed = f
		}
		if env.GetRunFetched() != nil {
			t.Errorf("run fetched, want it failed")
		}
	}
	if failed == nil {
		t.Fatal("no RunFailed on the stream")
	}
	const bound = 4 << 10
	if n := len(failed.Error); n > bound || !utf8.ValidString(failed.Error) {
		t.Errorf("RunFailed error of %d bytes (valid UTF-8: %t), want at most %d", n, utf8.ValidString(failed.Error), bound)
	}
	if !strings.Contains(failed.Error, "zoom: GET /users: 400 code 4700: "+huge[:100]) || !strings.Contains(failed.Error, "truncated") {
		t.Errorf("RunFailed error %.300q…, want Zoom's answer, its message cut short and marked", failed.Error)
	}
	if len(failed.Run.GetRequestIds()) != 1 || failed.Run.RequestIds[0] != "first" {
		t.Errorf("RunFailed request ids got %v, want [first]", failed.Run.GetRequestIds())
	}
	st, _, err := h.runs.Current(context.Background(), conn)
	if err != nil || st.Active {
		t.Fatalf("run state after the failure: %+v (%v), want the run closed", st, err)
	}

	// Zoom is fine again: the next trigger gets a run of its own.
	sim.Faults().Clear()
	msg = h.trigger(t, pipeline.SyncSubject(conn), `{"request_id":"second"}`)
	if err := h.r.HandleTrigger(ctx, msg); err != nil {
		t.Fatalf("handle the next trigger: %v", err)
	}
	var fetched *pb.Run
	for _, env := range rawEnvelopes(t, h.js) {
		if f := env.GetRunFetched(); f != nil {
			fetched = f.Run
		}
	}
	if fetched == nil || fetched.RunId == failed.Run.RunId || len(fetched.RequestIds) != 1 || fetched.RequestIds[0] != "second" {
		t.Fatalf("next run fetched: %v, want a new run for the second trigger", fetched)
	}
}

// incompressible returns n bytes of random letters: S2 finds no repeats in
// them, so they stay as large on the wire.
func incompressible(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// TestOversizedTriggerFieldsRefused: a request id longer than the bound,
// or a mode of a megabyte, is refused with a failure of bounded size.
func TestOversizedTriggerFieldsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, conn)
	for _, body := range []string{
		`{"request_id":"` + strings.Repeat("r", 300) + `"}`,
		`{"mode":"` + incompressible(1<<20-100) + `"}`,
	} {
		msg := h.trigger(t, pipeline.SyncSubject(conn), body)
		if err := h.r.HandleTrigger(ctx, msg); err != nil {
			t.Fatalf("handle the trigger: %v", err)
		}
	}
	var errs []string
	for _, env := range rawEnvelopes(t, h.js) {
		f := env.GetRunFailed()
		if f == nil {
			t.Fatalf("got %v, want only failures", env)
		}
		if len(f.Error) > 4<<10 || len(f.Run.RequestIds) != 0 {
			t.Errorf("failure of %d bytes naming %d request ids, want a short one naming none", len(f.Error), len(f.Run.RequestIds))
		}
		errs = append(errs, f.Error)
	}
	if len(errs) != 2 || !strings.Contains(errs[0], "request_id is 300 bytes long") || !strings.Contains(errs[1], "unsupported sync mode") {
		t.Errorf("failures %.200q, want the long request id and the unsupported mode refused", errs)
	}
	if keys := runKeys(t, h.js); len(keys) != 0 {
		t.Errorf("run states got %v, want none", keys)
	}
}
