package pipe

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// maxWebhookBody is the largest notification body the webhook service
// accepts (its receiver.MaxBody): 1 MiB less 64 KiB, so that the stored
// notification fits in a NATS message.
const maxWebhookBody = 1<<20 - 64<<10

// deliver stores data on the connector's webhook subject, as the webhook
// service does, and returns it as the normalizer's consumer receives it.
func deliver(t *testing.T, js jetstream.JetStream, cons jetstream.Consumer, data []byte) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	if _, err := js.Publish(ctx, pipeline.WebhookSubject(ref), data); err != nil {
		t.Fatalf("store notification: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		t.Cleanup(func() { _ = m.Ack() })
		return m
	}
	t.Fatalf("no message fetched: %v", batch.Error())
	return nil
}

// notificationEnvelope is what the webhook service stores for body.
func notificationEnvelope(tb testing.TB, event string, eventTS, received int64, body string) []byte {
	tb.Helper()
	b, err := proto.Marshal(&pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID, Body: &pb.Envelope_Webhook{Webhook: &pb.WebhookEvent{
		Event: event, EventTsMs: eventTS, Body: []byte(body), ReceivedAtMs: received,
	}}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// recordBatches returns the batches of the messages the records stream holds
// after its first skip ones, with their message ids, decoded as the writer
// decodes them. Every message of 4 KiB or more must be compressed.
func recordBatches(t *testing.T, js jetstream.JetStream, skip int) ([]*pb.RecordBatch, []string) {
	t.Helper()
	msgs := natstest.StreamMsgs(t, js, pipeline.StreamRecords)
	var (
		out []*pb.RecordBatch
		ids []string
	)
	for _, m := range msgs[min(skip, len(msgs)):] {
		if len(m.Data) >= 4<<10 && m.Header.Get(pipeline.HeaderEncoding) != pipeline.EncodingS2 {
			t.Errorf("message %d of %d bytes: encoding %q, want %q", m.Sequence, len(m.Data), m.Header.Get(pipeline.HeaderEncoding), pipeline.EncodingS2)
		}
		var env pb.Envelope
		if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
			t.Fatalf("message %d: %v", m.Sequence, err)
		}
		if env.Tenant != ref.Tenant || env.Connector != ref.ID || env.GetRecords() == nil {
			t.Fatalf("message %d: got %v, want a record batch of %s", m.Sequence, &env, ref)
		}
		out = append(out, env.GetRecords())
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return out, ids
}

// members builds the body of a group event naming as many distinct members
// (or admins) as fit in the largest body the webhook service accepts, each
// written by item from its number; it returns the body and the members'
// ids (or emails).
func members(event, field string, item func(i int) (json, id string)) (string, []string) {
	head := fmt.Sprintf(`{"event":%q,"event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","object":{"id":"abcD3ojfdbjfg","%s":[`, event, field)
	tail := `]},"time_stamp":1626230691572}}`
	var sb strings.Builder
	sb.WriteString(head)
	var ids []string
	for i := 0; ; i++ {
		js, id := item(i)
		if sb.Len()+len(js)+1+len(tail) > maxWebhookBody {
			break
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(js)
		ids = append(ids, id)
	}
	sb.WriteString(tail)
	return sb.String(), ids
}

// zoomID is a 22-character id shaped like Zoom's (URL-safe base64 of random
// bits, which compresses poorly), distinct for each i.
func zoomID(i int) string {
	h := sha256.Sum256([]byte(strconv.Itoa(i)))
	return base64.RawURLEncoding.EncodeToString(h[:])[:22]
}

// shortID is the shortest distinct id for i.
func shortID(i int) string { return strconv.FormatInt(int64(i), 36) }

// TestWebhookBatchesFit: the largest group events the webhook service
// accepts become record batches that are compressed and, when still too
// large for one NATS message, split into several, all of which JetStream
// stores, that together carry every change, with message ids derived from
// the notification's stream position so that a redelivered notification
// stores nothing twice.
func TestWebhookBatchesFit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cons := setup(t, pipeline.StreamWebhook)
	p := New(Config{Publisher: js, Log: zerolog.Nop()})

	tests := []struct {
		name  string
		event string
		field string
		item  func(i int) (string, string)
		// got lists what a batch changes, in the form the ids have.
		got func(b *pb.RecordBatch) []string
	}{
		{
			name: "member_added, Zoom's ids", event: "group.member_added", field: "members",
			item: func(i int) (string, string) { return `{"id":"` + zoomID(i) + `"}`, zoomID(i) },
			got:  grantedUsers,
		},
		{
			name: "member_added, with emails", event: "group.member_added", field: "members",
			item: func(i int) (string, string) {
				return `{"id":"` + zoomID(i) + `","email":"user.` + strconv.Itoa(i) + `@example.com"}`, zoomID(i)
			},
			// Each member is granted under its id and under the invitee
			// key of its email (the writer keeps the one whose user
			// exists): the ids are what is counted here.
			got: func(b *pb.RecordBatch) []string {
				var out []string
				for _, u := range grantedUsers(b) {
					if !strings.HasPrefix(u, "pending:") {
						out = append(out, u)
					}
				}
				return out
			},
		},
		{
			name: "member_added, shortest ids", event: "group.member_added", field: "members",
			item: func(i int) (string, string) { return `{"id":"` + shortID(i) + `"}`, shortID(i) },
			got:  grantedUsers,
		},
		{
			name: "members_deleted, shortest ids", event: "group.members_deleted", field: "members",
			item: func(i int) (string, string) { return `{"id":"` + shortID(i) + `"}`, shortID(i) },
			got: func(b *pb.RecordBatch) []string {
				var out []string
				for _, d := range b.GetDeletes() {
					out = append(out, strings.TrimSuffix(d.GetKey(), "|group:abcD3ojfdbjfg"))
				}
				return out
			},
		},
		{
			name: "admin_added, shortest emails", event: "group.admin_added", field: "admins",
			item: func(i int) (string, string) { return `{"email":"` + shortID(i) + `@x"}`, shortID(i) + "@x" },
			got: func(b *pb.RecordBatch) []string {
				var out []string
				for _, ga := range b.GetAdminsAdded() {
					if ga.GetGroupId() == "abcD3ojfdbjfg" {
						out = append(out, ga.GetEmails()...)
					}
				}
				return out
			},
		},
	}
	stored := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, ids := members(tt.event, tt.field, tt.item)
			t.Logf("%d bytes naming %d", len(body), len(ids))
			msg := deliver(t, js, cons, notificationEnvelope(t, tt.event, 1626230691572, 1764331200000, body))
			md, err := msg.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			// The second call stands for a redelivery: it must store
			// nothing new.
			for attempt := range 2 {
				if err := p.HandleWebhook(ctx, msg); err != nil {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
			}
			batches, msgIDs := recordBatches(t, js, stored)
			stored += len(batches)
			t.Logf("%d messages", len(batches))

			stem := pipeline.StreamWebhook + "/" + strconv.FormatUint(md.Sequence.Stream, 10) + "/records"
			want := map[string]bool{}
			for _, id := range ids {
				want[id] = true
			}
			got := map[string]bool{}
			for i, b := range batches {
				wantID := stem
				if i > 0 {
					wantID += "/" + strconv.Itoa(i)
				}
				if msgIDs[i] != wantID {
					t.Errorf("message %d: id got %q, want %q", i, msgIDs[i], wantID)
				}
				if b.GetVersionMs() != 1626230691572 || b.GetSource() != "webhook" || b.GetRun() != nil {
					t.Errorf("message %d: version %d, source %q, run %v; want 1626230691572, webhook, none",
						i, b.GetVersionMs(), b.GetSource(), b.GetRun())
				}
				for _, id := range tt.got(b) {
					if got[id] {
						t.Errorf("message %d: %s again", i, id)
					}
					got[id] = true
				}
			}
			if len(got) != len(want) {
				t.Errorf("batches carry %d changes, want %d", len(got), len(want))
			}
			for id := range want {
				if !got[id] {
					t.Errorf("%s missing", id)
					break
				}
			}
		})
	}
}

func grantedUsers(b *pb.RecordBatch) []string {
	var out []string
	for _, r := range b.GetRecords() {
		if r.GetEntitlementKey() == "group:abcD3ojfdbjfg" {
			out = append(out, r.GetUserKey())
		}
	}
	return out
}

// TestWebhookFutureEvents: an event dated after its receipt, the time
// JetStream stored it, is taken at most MaxEventSkew after that time; one
// dated more than MaxEventAhead after it is refused for good, whatever time
// of receipt the webhook service wrote in it.
func TestWebhookFutureEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cons := setup(t, pipeline.StreamWebhook)
	p := New(Config{Publisher: js, Log: zerolog.Nop()})
	const day = 24 * time.Hour

	tests := []struct {
		name string
		// ahead is how far after the test's start event_ts lies; the
		// webhook service's time of receipt lies receiverAhead after it.
		ahead, receiverAhead time.Duration
		// want is the version, from the time JetStream stored the
		// notification: the event's own when clamp is false.
		clamp, refused bool
	}{
		{name: "a day ago", ahead: -day},
		{name: "30s ahead", ahead: 30 * time.Second},
		{name: "10 minutes ahead", ahead: 10 * time.Minute, clamp: true},
		{name: "23 hours ahead", ahead: 23 * time.Hour, clamp: true},
		{name: "a year ahead", ahead: 365 * day, refused: true},
		{name: "a year ahead, from a receiver a year ahead", ahead: 365 * day, receiverAhead: 365 * day, refused: true},
	}
	stored := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ts := start.Add(tt.ahead).UnixMilli()
			body := fmt.Sprintf(`{"event":"group.deleted","event_ts":%d,"payload":{"object":{"id":"g1"}}}`, ts)
			msg := deliver(t, js, cons, notificationEnvelope(t, "group.deleted", ts, start.Add(tt.receiverAhead).UnixMilli(), body))
			md, err := msg.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			err = p.HandleWebhook(ctx, msg)
			batches, _ := recordBatches(t, js, stored)
			stored += len(batches)
			if tt.refused {
				if !errors.Is(err, natsx.ErrPermanent) {
					t.Errorf("error got %v, want a permanent one", err)
				}
				if len(batches) != 0 {
					t.Errorf("got %d record batches, want none", len(batches))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(batches) != 1 {
				t.Fatalf("got %d record batches, want 1", len(batches))
			}
			want := ts
			if tt.clamp {
				want = md.Timestamp.Add(time.Minute).UnixMilli()
			}
			if got := batches[0].GetVersionMs(); got != want {
				t.Errorf("version got %d, want %d (event_ts %d, stored at %d)", got, want, ts, md.Timestamp.UnixMilli())
			}
		})
	}
}
