package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/ingest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// calls records what the handler asked of the store, one line a call:
// "<method> <connector> <run or version>". A change at Zoom time badTime is
// refused as a bad batch.
type calls struct {
	mu    sync.Mutex
	lines []string
}

const badTime = 666

func (c *calls) add(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, fmt.Sprintf(format, args...))
}

func (c *calls) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

func (c *calls) StartRun(_ context.Context, ref pipeline.ConnectorRef, run *pb.Run) error {
	c.add("StartRun %s %s", ref, run.RunId)
	return nil
}

func (c *calls) ApplyPage(_ context.Context, ref pipeline.ConnectorRef, b *pb.RecordBatch) error {
	c.add("ApplyPage %s %s", ref, b.Run.RunId)
	return nil
}

func (c *calls) ApplyPages(_ context.Context, ref pipeline.ConnectorRef, bs []*pb.RecordBatch) error {
	c.add("ApplyPages %s %d", ref, len(bs))
	return nil
}

func (c *calls) ApplyChange(_ context.Context, ref pipeline.ConnectorRef, b *pb.RecordBatch) error {
	c.add("ApplyChange %s %d", ref, b.VersionMs)
	if b.VersionMs == badTime {
		return fmt.Errorf("%w: refused", store.ErrBadBatch)
	}
	return nil
}

func (c *calls) ApplyChanges(_ context.Context, ref pipeline.ConnectorRef, bs []*pb.RecordBatch) error {
	c.add("ApplyChanges %s %d", ref, len(bs))
	return nil
}

func (c *calls) Fetched(_ context.Context, ref pipeline.ConnectorRef, f *pb.RunFetched) error {
	c.add("Fetched %s %s", ref, f.Run.RunId)
	return nil
}

func (c *calls) Fail(_ context.Context, ref pipeline.ConnectorRef, f *pb.RunFailed) error {
	c.add("Fail %s %s", ref, f.Run.RunId)
	return nil
}

func (c *calls) Finalize(_ context.Context, ref pipeline.ConnectorRef, runID string) (bool, error) {
	c.add("Finalize %s %s", ref, runID)
	return true, nil
}

// TestHandler runs the handler in the real consume loop: each message goes
// to the store's method for it, with the subject's connector; a message
// that is no envelope of its subject's connector, or that the store finds
// bad, is dead-lettered at its first delivery.
func TestHandler(t *testing.T) {
	t.Parallel()
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &calls{}
	done := make(chan error, 1)
	go func() {
		done <- natsx.Consumer{
			Stream: pipeline.StreamRecords, Durable: "writer", MaxDeliver: 5,
			DeadLetter: pipeline.DeadLetterSubject(pipeline.StreamRecords), Log: zerolog.Nop(),
		}.Run(ctx, js, ingest.Handler(st, func(_ context.Context, c pipeline.ConnectorRef) (bool, error) {
			return c == acme, nil
		}))
	}()

	run := &pb.Run{RunId: "r1", StartedAtMs: 1}
	env := func(c pipeline.ConnectorRef, body any) *pb.Envelope {
		e := &pb.Envelope{Tenant: c.Tenant, Connector: c.ID}
		switch b := body.(type) {
		case *pb.RunStarted:
			e.Body = &pb.Envelope_RunStarted{RunStarted: b}
		case *pb.RecordBatch:
			e.Body = &pb.Envelope_Records{Records: b}
		case *pb.RecordBatches:
			e.Body = &pb.Envelope_RecordBatches{RecordBatches: b}
		case *pb.RunFetched:
			e.Body = &pb.Envelope_RunFetched{RunFetched: b}
		case *pb.RunFailed:
			e.Body = &pb.Envelope_RunFailed{RunFailed: b}
		}
		return e
	}
	publish := func(subject string, e *pb.Envelope) {
		t.Helper()
		m, err := pipeline.NewMsg(subject, e, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	subject := pipeline.RecordsSubject(acme)
	// One at a time, so that the calls come in order.
	for _, tc := range []struct {
		body any
		want []string
	}{
		{&pb.RunStarted{Run: run}, []string{"StartRun acme/zoom r1"}},
		{&pb.RecordBatch{Run: run}, []string{"ApplyPage acme/zoom r1"}},
		{&pb.RecordBatches{Batches: []*pb.RecordBatch{{Run: run}, {Run: run}}}, []string{"ApplyPages acme/zoom 2"}},
		{&pb.RecordBatches{Batches: []*pb.RecordBatch{{VersionMs: 5}, {VersionMs: 6}, {VersionMs: 7}}}, []string{"ApplyChanges acme/zoom 3"}},
		{&pb.RecordBatch{VersionMs: 42}, []string{"ApplyChange acme/zoom 42"}},
		{&pb.RunFetched{Run: run}, []string{"Fetched acme/zoom r1", "Finalize acme/zoom r1"}},
		{&pb.RunFailed{Run: run}, []string{"Fail acme/zoom r1"}},
	} {
		before := len(st.get())
		publish(subject, env(acme, tc.body))
		want := append(st.get()[:before:before], tc.want...)
		waitFor(t, func() bool { return len(st.get()) >= len(want) })
		if got := st.get(); !slices.Equal(got, want) {
			t.Errorf("%T: got calls %q, want %q", tc.body, got, want)
		}
	}

	// Refused: an envelope of another connector than its subject's, data
	// that is no envelope, and a batch the store finds bad.
	made := len(st.get())
	publish(subject, env(pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}, &pb.RecordBatch{VersionMs: 1}))
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("not protobuf \xff")}); err != nil {
		t.Fatal(err)
	}
	publish(subject, env(acme, &pb.RecordBatch{VersionMs: badTime}))
	// A connector the deployment does not serve: nothing stored for it.
	initech := pipeline.ConnectorRef{Tenant: "initech", ID: "zoom"}
	publish(pipeline.RecordsSubject(initech), env(initech, &pb.RunStarted{Run: run}))
	var dead []*jetstream.RawStreamMsg
	waitFor(t, func() bool {
		dead = natstest.StreamMsgs(t, js, pipeline.StreamDeadLetter)
		return len(dead) >= 4
	})
	for i, want := range []string{"another connector", "invalid envelope", "invalid batch", "unknown connector initech/zoom"} {
		if reason := dead[i].Header.Get(natsx.HeaderDLQReason); !strings.Contains(reason, want) {
			t.Errorf("dead letter %d: got reason %q, want one saying %q", i, reason, want)
		}
		if n := dead[i].Header.Get(natsx.HeaderDLQAttempts); n != "1" {
			t.Errorf("dead letter %d: got %s deliveries, want 1: no retry helps", i, n)
		}
	}
	if got := st.get()[made:]; !slices.Equal(got, []string{fmt.Sprintf("ApplyChange acme/zoom %d", badTime)}) {
		t.Errorf("refused messages: got calls %q, want only the bad batch's", got)
	}
	cancel()
	<-done
}

// waitFor waits up to 10 s for ok.
func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
