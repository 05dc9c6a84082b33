package syncer_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// TestAttemptsNumberTheirPassesApart: the writer counts a run's pages by
// listing, pass and number. A run resumed after a crash must publish pages
// that no page of the earlier attempt, already applied, can stand in for:
// each attempt numbers its passes apart, in its pages and in the manifest.
func TestAttemptsNumberTheirPassesApart(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t, clarity.Streams()...)
	org := zoomtest.Generate(3, zoomtest.Size{Users: 40, Groups: 3, Roles: 2})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	z, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true, PageSize: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := syncer.New(js, 2, zerolog.Nop(), nil)
	run := &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"}

	for _, tt := range []struct {
		attempt int
		pass    int32
	}{{1, 0}, {2, 1000}, {3, 2000}} {
		res, err := s.Fetch(ctx, "default", "zoom", run, tt.attempt, z)
		if err != nil {
			t.Fatalf("attempt %d: %v", tt.attempt, err)
		}
		if len(res.Listings) == 0 {
			t.Fatalf("attempt %d: no listings", tt.attempt)
		}
		for _, l := range res.Listings {
			if l.Pass != tt.pass {
				t.Errorf("attempt %d: manifest of %v %q has pass %d, want %d", tt.attempt, l.Listing, l.ListingKey, l.Pass, tt.pass)
			}
		}
		pages := rawPages(t, js)
		if len(pages) == 0 {
			t.Fatalf("attempt %d: no pages published", tt.attempt)
		}
		for _, p := range pages {
			if p.Ref.Pass != tt.pass {
				t.Errorf("attempt %d: page %v %q %d has pass %d, want %d", tt.attempt, p.Ref.Listing, p.Ref.ListingKey, p.Ref.Page, p.Ref.Pass, tt.pass)
			}
		}
	}
}

// rawPages takes every page published on the raw stream, bundles opened.
func rawPages(t *testing.T, js jetstream.JetStream) []*pb.RawPage {
	t.Helper()
	var out []*pb.RawPage
	for _, m := range natstest.StreamMsgs(t, js, clarity.StreamRaw) {
		data, err := natsx.Decode(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		var env pb.Envelope
		if err := proto.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		switch b := env.Body.(type) {
		case *pb.Envelope_RawPage:
			out = append(out, b.RawPage)
		case *pb.Envelope_RawPages:
			out = append(out, b.RawPages.Pages...)
		}
	}
	st, err := js.Stream(context.Background(), clarity.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}
