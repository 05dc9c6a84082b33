package syncer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// bigPageZoom serves one page per listing; the active users' page is big
// bytes of text that does not compress.
type bigPageZoom struct{ big int }

func (z bigPageZoom) Pages(_ context.Context, l zoom.Listing, fn func(p zoom.RawPage) error) error {
	body := []byte(`{"users":[],"groups":[],"roles":[],"admins":[]}`)
	if l.Kind == zoom.ListingUsers && l.Status == zoom.UserStatusActive {
		rng := rand.New(rand.NewPCG(3, 4))
		b := make([]byte, z.big)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		body = []byte(`{"users":[],"junk":"` + string(b) + `"}`)
	}
	return fn(zoom.RawPage{Listing: l, Number: 1, Last: true, Body: body})
}

func (bigPageZoom) Requests() zoom.Stats { return zoom.Stats{} }

// TestPageTooLargeFailsTheFetch: a page larger than a NATS message fails
// the fetch with an error that says so, not with ErrPublish: a resumed run
// would only meet the same refusal.
func TestPageTooLargeFailsTheFetch(t *testing.T) {
	t.Parallel()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	s := syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()})
	run := &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"}
	c := pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	_, err := s.Fetch(context.Background(), c, run, 1, bigPageZoom{big: natstest.MaxPayload + 1000})
	if err == nil {
		t.Fatal("fetch succeeded, want the big page refused")
	}
	if errors.Is(err, syncer.ErrPublish) || !natsx.TooLarge(err) || !syncer.Unpublishable(err) {
		t.Errorf("error %q: ErrPublish %t, too large %t; want a refusal for size, not ErrPublish",
			err, errors.Is(err, syncer.ErrPublish), natsx.TooLarge(err))
	}
	if !strings.Contains(err.Error(), "users/active") || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("error %q, want it to name the listing and the size", err)
	}
}

// TestUnencodableIsUnpublishable: an envelope that cannot be encoded (a
// string that is not UTF-8) is refused before it reaches NATS, as a
// publication no retry can make succeed.
func TestUnencodableIsUnpublishable(t *testing.T) {
	t.Parallel()
	s := syncer.New(syncer.Config{Log: zerolog.Nop()})
	env := &pb.Envelope{Body: &pb.Envelope_RunStarted{RunStarted: &pb.RunStarted{Run: &pb.Run{RunId: "bad \xff"}}}}
	err := s.Publish(context.Background(), pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}, env, "")
	if err == nil || !syncer.Unpublishable(err) {
		t.Errorf("publish got %v, want an error no retry cures", err)
	}
}
