package syncer_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// TestAttemptsNumberTheirPassesApart: the writer counts a run's pages by
// listing, pass and number. A run resumed after a crash must publish pages
// that no page of the earlier attempt, already applied, can stand in for:
// each attempt numbers its passes apart, in its pages and in the manifest.
func TestAttemptsNumberTheirPassesApart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
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
	s := syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()})
	run := &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"}

	for _, tt := range []struct {
		attempt int
		pass    int32
	}{{1, 0}, {2, 1000}, {3, 2000}} {
		res, err := s.Fetch(ctx, pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}, run, tt.attempt, z)
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
		pages := rawPages(t, js, tt.attempt)
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

// rawPages takes every page published on the raw stream, bundles opened,
// and checks the message id of each: run/attempt/listing/pass/page for a
// page, its first page's id and "+<pages>" for a bundle.
func rawPages(t *testing.T, js jetstream.JetStream, attempt int) []*pb.RawPage {
	t.Helper()
	var out []*pb.RawPage
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamRaw) {
		var env pb.Envelope
		if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
			t.Fatal(err)
		}
		var want string
		switch b := env.Body.(type) {
		case *pb.Envelope_RawPage:
			out = append(out, b.RawPage)
			want = pageID(b.RawPage, attempt)
		case *pb.Envelope_RawPages:
			out = append(out, b.RawPages.Pages...)
			want = pageID(b.RawPages.Pages[0], attempt) + "+" + strconv.Itoa(len(b.RawPages.Pages))
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != want {
			t.Errorf("attempt %d: message id got %q, want %q", attempt, got, want)
		}
	}
	st, err := js.Stream(context.Background(), pipeline.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

// pageID is the message id a page of run-1 has when published alone.
func pageID(p *pb.RawPage, attempt int) string {
	listing := map[pb.Listing]string{
		pb.Listing_LISTING_USERS_ACTIVE:   "users/active",
		pb.Listing_LISTING_USERS_INACTIVE: "users/inactive",
		pb.Listing_LISTING_USERS_PENDING:  "users/pending",
		pb.Listing_LISTING_GROUPS:         "groups",
		pb.Listing_LISTING_GROUP_ADMINS:   "groups/" + p.Ref.ListingKey + "/admins",
		pb.Listing_LISTING_ROLES:          "roles",
	}[p.Ref.Listing]
	if p.Ref.Listing == pb.Listing_LISTING_ROLES && p.Ref.ListingKey != "" {
		listing += "/" + p.Ref.ListingKey // the roles of one type: roles/iq
	}
	return "run-1/" + strconv.Itoa(attempt) + "/" + listing + "/" + strconv.Itoa(int(p.Ref.Pass)) + "/" + strconv.Itoa(int(p.Ref.Page))
}
