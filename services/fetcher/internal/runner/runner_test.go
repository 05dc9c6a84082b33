package runner_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// conn is the connector the tests' fetcher serves.
var conn = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// TestResumeAfterTheEndWentOut: a fetcher that crashed after its run's end
// went out, and before it closed the run, does not fetch the run again on
// the trigger's redelivery (the writer would ignore that attempt, run
// ended). A trigger that joined in between, which the end did not name,
// gets a run of its own.
func TestResumeAfterTheEndWentOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	runs := openRuns(ctx, t, js)
	_, sim := newSimulator(t, 7, zoomtest.Size{Users: 20, Groups: 2, Roles: 2})
	client := simClient(t, sim)
	r := runner.New(runner.Config{
		Runs:        runs,
		Syncer:      syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()}),
		Clients:     runner.Fixed{conn: client},
		Log:         zerolog.Nop(),
		MaxAttempts: 3,
		AckWait:     30 * time.Second,
	})

	// Trigger a started run 1 and went as far as publishing its end,
	// naming a; then b joined; then the fetcher died.
	first := trigger(t, js, "a")
	d, st, rev, err := runs.Claim(ctx, conn, first, "a", "full")
	if err != nil || d != runstate.Start {
		t.Fatalf("claim: %v %v", d, err)
	}
	st.Ended, st.EndedFor = true, []string{"a"}
	if _, err := runs.Update(ctx, conn, st, rev); err != nil {
		t.Fatal(err)
	}
	second := trigger(t, js, "b")
	if d, _, _, err := runs.Claim(ctx, conn, second, "b", "full"); err != nil || d != runstate.Coalesced {
		t.Fatalf("second trigger: %v %v, want Coalesced", d, err)
	}

	// The first trigger comes back.
	cons, err := js.CreateOrUpdateConsumer(ctx, pipeline.StreamSync, jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no trigger delivered")
	}
	if err := r.HandleTrigger(ctx, msg); err != nil {
		t.Fatalf("handle the redelivered trigger: %v", err)
	}

	var started, ended []*pb.Run
	for _, env := range rawEnvelopes(t, js) {
		switch b := env.Body.(type) {
		case *pb.Envelope_RunStarted:
			started = append(started, b.RunStarted.Run)
		case *pb.Envelope_RunFetched:
			ended = append(ended, b.RunFetched.Run)
		case *pb.Envelope_RunFailed:
			t.Errorf("run %s failed: %s", b.RunFailed.Run.RunId, b.RunFailed.Error)
		}
	}
	if len(started) != 1 || started[0].RunId == st.RunID {
		t.Fatalf("runs started: %v; want one, not run %s again", started, st.RunID)
	}
	if len(ended) != 1 || ended[0].RunId != started[0].RunId || !slices.Equal(ended[0].RequestIds, []string{"b"}) {
		t.Fatalf("runs fetched: %v; want the new run, for b", ended)
	}
	cur, _, err := runs.Current(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Active || cur.RunID != started[0].RunId {
		t.Errorf("run state after: %+v, want the new run closed", cur)
	}

	// The start and the end of the run's first attempt go out under ids
	// that name them, so that a resumed run's repeats are dropped.
	ids := map[string]bool{}
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamRaw) {
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
	}
	for _, want := range []string{started[0].RunId + "/started", started[0].RunId + "/end/1"} {
		if !ids[want] {
			t.Errorf("no message with id %q on the raw stream", want)
		}
	}
}

func trigger(t *testing.T, js jetstream.JetStream, requestID string) uint64 {
	t.Helper()
	ack, err := js.Publish(context.Background(), pipeline.SyncSubject(conn), []byte(`{"mode":"full","request_id":"`+requestID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// rawEnvelopes returns the envelopes published on the raw stream.
func rawEnvelopes(t *testing.T, js jetstream.JetStream) []*pb.Envelope {
	t.Helper()
	var out []*pb.Envelope
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamRaw) {
		var env pb.Envelope
		if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
			t.Fatal(err)
		}
		out = append(out, &env)
	}
	return out
}

// rawReads returns the users read back published on the raw stream, in
// order: alone, or in a bundle of one listing page's users.
func rawReads(t *testing.T, js jetstream.JetStream) []*pb.RawPage {
	t.Helper()
	var out []*pb.RawPage
	for _, env := range rawEnvelopes(t, js) {
		if p := env.GetRawPage(); p != nil {
			out = append(out, p)
		}
		out = append(out, env.GetRawPages().GetPages()...)
	}
	return out
}
