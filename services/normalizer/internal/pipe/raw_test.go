package pipe

import (
	"context"
	"errors"
	"slices"
	"strconv"
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

func adminPage(run *pb.Run, group, body string) *pb.RawPage {
	return &pb.RawPage{
		Run:         run,
		Ref:         &pb.PageRef{Listing: pb.Listing_LISTING_GROUP_ADMINS, ListingKey: group, Page: 1, Last: true},
		FetchedAtMs: 1764331200000,
		Body:        []byte(body),
	}
}

// handleBundle publishes a bundle of pages on the raw stream of cons and
// hands it to handleRaw, returning what that returns.
func handleBundle(t *testing.T, js jetstream.JetStream, cons jetstream.Consumer, handleRaw natsx.Handler, pages ...*pb.RawPage) error {
	t.Helper()
	ctx := context.Background()
	data, err := proto.Marshal(&pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID,
		Body: &pb.Envelope_RawPages{RawPages: &pb.RawPages{Pages: pages}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, pipeline.RawSubject(ref), data); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		defer func() { _ = m.Ack() }()
		return handleRaw(ctx, m)
	}
	t.Fatalf("no message fetched: %v", batch.Error())
	return nil
}

// TestHandleRawBundle: a bundle of raw pages goes on as one message with one
// record batch per page, in order; a bundle with a page that cannot be read
// is refused for good and publishes nothing.
func TestHandleRawBundle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cons := setup(t, pipeline.StreamRaw)
	handleRaw := New(Config{Publisher: js, Log: zerolog.Nop()}).Raw()
	run := &pb.Run{RunId: "r1", StartedAtMs: 1764331100000, Mode: "full"}

	handle := func(t *testing.T, pages ...*pb.RawPage) error {
		t.Helper()
		return handleBundle(t, js, cons, handleRaw, pages...)
	}
	records := func(t *testing.T) uint64 {
		t.Helper()
		s, err := js.Stream(ctx, pipeline.StreamRecords)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}

	if err := handle(t,
		adminPage(run, "g1", `{"page_size":30,"total_records":1,"admins":[{"email":"Alice@Example.com","name":"Alice"}]}`),
		adminPage(run, "g2", `{"page_size":30,"total_records":2,"admins":[{"email":"bob@example.com"},{"email":"carol@example.com"}]}`),
	); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	s, err := js.Stream(ctx, pipeline.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, records(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get(jetstream.MsgIDHeader), pipeline.StreamRaw+"/1"; got != want {
		t.Errorf("record batches' message id got %q, want the raw message's own, %q", got, want)
	}
	var env pb.Envelope
	if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
		t.Fatal(err)
	}
	bs := env.GetRecordBatches().GetBatches()
	if env.Tenant != ref.Tenant || env.Connector != ref.ID || len(bs) != 2 {
		t.Fatalf("got envelope %v, want two record batches for %s", &env, ref)
	}
	want := []struct {
		group  string
		emails []string
	}{{"g1", []string{"alice@example.com"}}, {"g2", []string{"bob@example.com", "carol@example.com"}}}
	for i, b := range bs {
		ga := b.GetGroupAdmins()
		if ga.GetGroupId() != want[i].group || !slices.Equal(ga.GetEmails(), want[i].emails) ||
			b.GetRef().GetListingKey() != want[i].group || b.GetRun().GetRunId() != "r1" || b.VersionMs != 1764331200000 {
			t.Errorf("batch %d: got %v, want the admins %v of %s", i, b, want[i].emails, want[i].group)
		}
	}

	before := records(t)
	err = handle(t,
		adminPage(run, "g3", `{"admins":[{"email":"dan@example.com"}]}`),
		adminPage(run, "g4", `{"admins":`))
	if !errors.Is(err, natsx.ErrPermanent) {
		t.Errorf("bundle with a broken page: got %v, want a permanent error", err)
	}
	if err := handle(t); !errors.Is(err, natsx.ErrPermanent) {
		t.Errorf("empty bundle: got %v, want a permanent error", err)
	}
	if after := records(t); after != before {
		t.Errorf("refused bundles published %d messages, want none", after-before)
	}

	// Users read back: one message of changes, each replacing its user;
	// a user that cannot be read is left out, the others go on.
	read := func(id, body string) *pb.RawPage {
		return &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true},
			UserId: id, VersionMs: 1764331300000, FetchedAtMs: 1764331200000, Body: []byte(body)}
	}
	if err := handle(t,
		read("u1", `{"id":"u1","email":"alice@example.com","status":"active","type":1}`),
		read("u2", `{"first_name":"Nobody"}`),
		read("u3", `{"id":"u3","email":"carol@example.com","status":"inactive","type":1}`),
	); err != nil {
		t.Fatalf("bundle of reads: %v", err)
	}
	m, err = s.GetMsg(ctx, records(t))
	if err != nil {
		t.Fatal(err)
	}
	env.Reset()
	if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
		t.Fatal(err)
	}
	var replaced []string
	for _, b := range env.GetRecordBatches().GetBatches() {
		if b.GetRun() != nil || b.VersionMs != 1764331300000 {
			t.Errorf("read batch %v: want a change at the hint's version", b)
		}
		replaced = append(replaced, b.GetReplaceUser())
	}
	if !slices.Equal(replaced, []string{"u1", "u3"}) {
		t.Errorf("bundle of reads: got users %v replaced, want u1 and u3", replaced)
	}
	before = records(t)
	if err := handle(t, read("u4", `{"first_name":"Nobody"}`)); !errors.Is(err, natsx.ErrPermanent) {
		t.Errorf("bundle of reads none of which can be read: got %v, want a permanent error", err)
	}
	if err := handle(t, read("u1", `{"id":"u1","email":"alice@example.com"}`),
		adminPage(run, "g1", `{"admins":[]}`)); !errors.Is(err, natsx.ErrPermanent) {
		t.Errorf("bundle of a read and a run's page: got %v, want a permanent error", err)
	}
	if after := records(t); after != before {
		t.Errorf("refused bundles of reads published %d messages, want none", after-before)
	}
}

// TestHandleRaw: a raw page becomes one record batch and run control goes
// on unchanged, each under the raw message's own id, once however often the
// raw message is handled; a message that is no envelope of its subject's
// connector is refused for good, as an invalid envelope, and
// publishes nothing.
func TestHandleRaw(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, cons := setup(t, pipeline.StreamRaw)
	handleRaw := New(Config{Publisher: js, Log: zerolog.Nop()}).Raw()
	run := &pb.Run{RunId: "r1", StartedAtMs: 1764331100000, Mode: "full"}
	encode := func(env *pb.Envelope) []byte {
		b, err := proto.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	started := &pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID, Body: &pb.Envelope_RunStarted{RunStarted: &pb.RunStarted{Run: run}}}

	tests := []struct {
		name string
		data []byte
		// want checks the one envelope published; nil when the message is
		// refused and publishes nothing.
		want func(t *testing.T, env *pb.Envelope)
	}{
		{
			name: "a page",
			data: encode(&pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID, Body: &pb.Envelope_RawPage{
				RawPage: adminPage(run, "g1", `{"admins":[{"email":"Alice@Example.com"}]}`)}}),
			want: func(t *testing.T, env *pb.Envelope) {
				ga := env.GetRecords().GetGroupAdmins()
				if ga.GetGroupId() != "g1" || !slices.Equal(ga.GetEmails(), []string{"alice@example.com"}) {
					t.Errorf("got %v, want the admin alice@example.com of g1", env)
				}
			},
		},
		{
			name: "run control",
			data: encode(started),
			want: func(t *testing.T, env *pb.Envelope) {
				if !proto.Equal(env, started) {
					t.Errorf("got %v, want %v unchanged", env, started)
				}
			},
		},
		{name: "not an envelope", data: []byte("not a protobuf \xff\xfe")},
		{name: "another tenant than its subject's", data: encode(&pb.Envelope{Tenant: "globex", Connector: ref.ID,
			Body: &pb.Envelope_RunStarted{RunStarted: &pb.RunStarted{Run: run}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := natstest.StreamMsgs(t, js, pipeline.StreamRecords)
			ack, err := js.Publish(ctx, pipeline.RawSubject(ref), tt.data)
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
			// The second call stands for a redelivery: it must publish
			// nothing new.
			for attempt := range 2 {
				err := handleRaw(ctx, msg)
				switch {
				case tt.want == nil && (!errors.Is(err, natsx.ErrPermanent) || !errors.Is(err, pipeline.ErrBadEnvelope)):
					t.Fatalf("attempt %d: error got %v, want a permanent invalid envelope", attempt, err)
				case tt.want != nil && err != nil:
					t.Fatalf("attempt %d: %v", attempt, err)
				}
			}
			out := natstest.StreamMsgs(t, js, pipeline.StreamRecords)[len(before):]
			if tt.want == nil {
				if len(out) != 0 {
					t.Errorf("got %d messages, want none", len(out))
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("got %d messages, want 1", len(out))
			}
			if got, want := out[0].Subject, pipeline.RecordsSubject(ref); got != want {
				t.Errorf("subject got %q, want %q", got, want)
			}
			if got, want := out[0].Header.Get(jetstream.MsgIDHeader), pipeline.StreamRaw+"/"+strconv.FormatUint(ack.Sequence, 10); got != want {
				t.Errorf("message id got %q, want the raw message's own, %q", got, want)
			}
			var env pb.Envelope
			if err := pipeline.Unmarshal(out[0].Header, out[0].Data, &env); err != nil {
				t.Fatal(err)
			}
			if env.Tenant != ref.Tenant || env.Connector != ref.ID {
				t.Errorf("envelope names %s/%s, want %s", env.Tenant, env.Connector, ref)
			}
			tt.want(t, &env)
		})
	}
}
