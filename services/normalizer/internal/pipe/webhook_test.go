package pipe

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// ref is the connector of every test message.
var ref = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// observer records what the pipe counts.
type observer struct {
	mu      sync.Mutex
	records map[pb.Kind]int
	ignored map[string]int
}

func (o *observer) Records(kind pb.Kind, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.records[kind] += n
}

func (o *observer) Skipped(int) {}

func (o *observer) Page(pb.Listing) {}

func (o *observer) WebhookIgnored(event string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ignored[event]++
}

// output is one message the pipe published.
type output struct {
	id   string
	data []byte
}

// setup starts NATS with the connector's streams and returns a consumer of
// stream.
func setup(t *testing.T, stream string) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	ctx := context.Background()
	srv := natstest.Run(t)
	nc, js, err := natsx.Connect(ctx, srv.ClientURL(), "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := natsx.EnsureStreams(ctx, js, pipeline.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

// webhookEnvelope is what the webhook service stores for body, except that
// the envelope names tenant, which may be another than its subject's.
func webhookEnvelope(tb testing.TB, tenant, event, body string) []byte {
	tb.Helper()
	b, err := proto.Marshal(&pb.Envelope{Tenant: tenant, Connector: ref.ID, Body: &pb.Envelope_Webhook{Webhook: &pb.WebhookEvent{
		Event: event, EventTsMs: 1626230691572, Body: []byte(body), ReceivedAtMs: 1764331200000,
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestHandleWebhook(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cons := setup(t, pipeline.StreamWebhook)
	obs := &observer{records: map[pb.Kind]int{}, ignored: map[string]int{}}
	p := New(Config{Publisher: js, Log: zerolog.Nop(), Observer: obs})

	// readNew returns the messages of a stream after sequence after.
	readNew := func(t *testing.T, stream string, after uint64) ([]output, uint64) {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []output
		for seq := after + 1; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, output{id: m.Header.Get(jetstream.MsgIDHeader), data: m.Data})
		}
		return out, info.State.LastSeq
	}

	tests := []struct {
		name      string
		data      []byte
		permanent bool
		// wantDeletes are the keys the records batch deletes; nil when no
		// batch is wanted.
		wantDeletes []string
		wantRecords int
		wantHints   []string
		wantIgnored string
	}{
		{
			name: "invitation accepted: delete and hint",
			data: webhookEnvelope(t, ref.Tenant, "user.invitation_accepted",
				`{"event":"user.invitation_accepted","event_ts":1626230691572,"payload":{"account_id":"A","object":{"id":"u1","email":"Jill@Example.com","type":1}}}`),
			wantDeletes: []string{"pending:jill@example.com"},
			wantHints:   []string{"u1"},
		},
		{
			name: "group deleted: batch only",
			data: webhookEnvelope(t, ref.Tenant, "group.deleted",
				`{"event":"group.deleted","event_ts":1626230691572,"payload":{"object":{"id":"g1","name":"G"}}}`),
			wantDeletes: []string{"group:g1", "group_admin:g1"},
		},
		{
			name: "group created: records",
			data: webhookEnvelope(t, ref.Tenant, "group.created",
				`{"event":"group.created","event_ts":1626230691572,"payload":{"object":{"id":"g2","name":"G"}}}`),
			wantDeletes: []string{},
			wantRecords: 2,
		},
		{
			name: "user updated: hint only",
			data: webhookEnvelope(t, ref.Tenant, "user.updated",
				`{"event":"user.updated","event_ts":1626230691572,"payload":{"object":{"id":"u2","dept":"x"}}}`),
			wantHints: []string{"u2"},
		},
		{
			name: "signed in: ignored",
			data: webhookEnvelope(t, ref.Tenant, "user.signed_in",
				`{"event":"user.signed_in","event_ts":1626230691572,"payload":{"object":{"id":"u2"}}}`),
			wantIgnored: "user.signed_in",
		},
		{name: "not an envelope", data: []byte{0xff, 0xff, 0xff}, permanent: true},
		{name: "bad tenant", data: webhookEnvelope(t, "a.b", "group.deleted", `{}`), permanent: true},
		{name: "another tenant than its subject's", data: webhookEnvelope(t, "globex", "group.deleted",
			`{"event":"group.deleted","event_ts":1626230691572,"payload":{"object":{"id":"g1","name":"G"}}}`), permanent: true},
		{name: "no webhook body", data: func() []byte {
			b, _ := proto.Marshal(&pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID, Body: &pb.Envelope_RawPage{RawPage: &pb.RawPage{}}})
			return b
		}(), permanent: true},
		{name: "body not JSON", data: webhookEnvelope(t, ref.Tenant, "user.deleted", `{"event":`), permanent: true},
		{name: "user without id", data: webhookEnvelope(t, ref.Tenant, "user.deleted", `{"event":"user.deleted","payload":{"object":{}}}`), permanent: true},
	}
	var recSeq, hintSeq uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack, err := js.Publish(ctx, pipeline.WebhookSubject(ref), tt.data)
			if err != nil {
				t.Fatal(err)
			}
			batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			var msg jetstream.Msg
			for m := range batch.Messages() {
				msg = m
			}
			if msg == nil {
				t.Fatalf("no message fetched: %v", batch.Error())
			}
			defer func() { _ = msg.Ack() }()
			stem := pipeline.StreamWebhook + "/" + strconv.FormatUint(ack.Sequence, 10)

			// The second call stands for a redelivery: it must publish
			// nothing new.
			for attempt := range 2 {
				err = p.HandleWebhook(ctx, msg)
				if got := errors.Is(err, natsx.ErrPermanent); got != tt.permanent || (err != nil && !tt.permanent) {
					t.Fatalf("attempt %d: error got %v, want permanent %v", attempt, err, tt.permanent)
				}
			}

			recs, last := readNew(t, pipeline.StreamRecords, recSeq)
			recSeq = last
			hints, last := readNew(t, pipeline.StreamHint, hintSeq)
			hintSeq = last

			switch {
			case tt.wantDeletes == nil && len(recs) != 0:
				t.Errorf("records got %d messages, want none", len(recs))
			case tt.wantDeletes != nil && len(recs) != 1:
				t.Errorf("records got %d messages, want 1", len(recs))
			case tt.wantDeletes != nil:
				if want := stem + "/records"; recs[0].id != want {
					t.Errorf("records message id got %q, want %q", recs[0].id, want)
				}
				var env pb.Envelope
				if err := proto.Unmarshal(recs[0].data, &env); err != nil {
					t.Fatal(err)
				}
				b := env.GetRecords()
				if env.Tenant != ref.Tenant || env.Connector != ref.ID || b == nil {
					t.Fatalf("records envelope got %v, want a batch for %s", &env, ref)
				}
				var keys []string
				for _, d := range b.Deletes {
					keys = append(keys, d.Key)
				}
				if !slices.Equal(keys, tt.wantDeletes) {
					t.Errorf("deletes got %v, want %v", keys, tt.wantDeletes)
				}
				if len(b.Records) != tt.wantRecords || b.Source != "webhook" || b.VersionMs != 1626230691572 {
					t.Errorf("batch got %d records, source %q, version %d; want %d, webhook, 1626230691572",
						len(b.Records), b.Source, b.VersionMs, tt.wantRecords)
				}
			}

			if len(hints) != len(tt.wantHints) {
				t.Fatalf("hints got %d messages, want %d", len(hints), len(tt.wantHints))
			}
			for i, h := range hints {
				if want := stem + "/hint/" + strconv.Itoa(i); h.id != want {
					t.Errorf("hint message id got %q, want %q", h.id, want)
				}
				var got pb.FetchUser
				if err := proto.Unmarshal(h.data, &got); err != nil {
					t.Fatal(err)
				}
				want := &pb.FetchUser{Tenant: ref.Tenant, Connector: ref.ID, UserId: tt.wantHints[i], VersionMs: 1626230691572}
				if !proto.Equal(&got, want) {
					t.Errorf("hint got %v, want %v", &got, want)
				}
			}

			if tt.wantIgnored != "" {
				obs.mu.Lock()
				n := obs.ignored[tt.wantIgnored]
				obs.mu.Unlock()
				if n != 2 {
					t.Errorf("ignored %s counted %d times, want 2 (one per call)", tt.wantIgnored, n)
				}
			}
		})
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	// group.created yields 2 entitlements, counted once per call.
	if got := obs.records[pb.Kind_KIND_ENTITLEMENT]; got != 4 {
		t.Errorf("entitlement records counted %d, want 4", got)
	}
}
