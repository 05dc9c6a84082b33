package pipe

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

func adminPage(run *pb.Run, group, body string) *pb.RawPage {
	return &pb.RawPage{
		Run:         run,
		Ref:         &pb.PageRef{Listing: pb.Listing_LISTING_GROUP_ADMINS, ListingKey: group, Page: 1, Last: true},
		FetchedAtMs: 1764331200000,
		Body:        []byte(body),
	}
}

// TestHandleRawBundle: a bundle of raw pages goes on as one message with one
// record batch per page, in order; a bundle with a page that cannot be read
// is refused for good and publishes nothing.
func TestHandleRawBundle(t *testing.T) {
	ctx := context.Background()
	js, cons := setup(t, clarity.StreamRaw)
	p := New(js, zerolog.Nop(), nil)
	run := &pb.Run{RunId: "r1", StartedAtMs: 1764331100000, Mode: "full"}

	handle := func(t *testing.T, pages ...*pb.RawPage) error {
		t.Helper()
		data, err := proto.Marshal(&pb.Envelope{Tenant: tenant, Connector: connector,
			Body: &pb.Envelope_RawPages{RawPages: &pb.RawPages{Pages: pages}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, clarity.RawSubject(tenant, connector), data); err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			defer func() { _ = m.Ack() }()
			return p.HandleRaw(ctx, m)
		}
		t.Fatalf("no message fetched: %v", batch.Error())
		return nil
	}
	records := func(t *testing.T) uint64 {
		t.Helper()
		s, err := js.Stream(ctx, clarity.StreamRecords)
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
	s, err := js.Stream(ctx, clarity.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, records(t))
	if err != nil {
		t.Fatal(err)
	}
	data, err := natsx.Decode(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var env pb.Envelope
	if err := proto.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	bs := env.GetRecordBatches().GetBatches()
	if env.Tenant != tenant || env.Connector != connector || len(bs) != 2 {
		t.Fatalf("got envelope %v, want two record batches for %s/%s", &env, tenant, connector)
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
}
