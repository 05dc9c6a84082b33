package runner_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// users is a Zoom account of one user, u1, for hints; it has no listings.
type users struct{}

func (users) Pages(context.Context, zoom.Listing, func(zoom.RawPage) error) error { return nil }
func (users) Requests() zoom.Stats                                                { return zoom.Stats{} }

func (users) GetUser(_ context.Context, id string) ([]byte, error) {
	if id == "u1" {
		return []byte(`{"id":"u1","email":"u1@example.com","type":1}`), nil
	}
	return nil, &zoom.APIError{StatusCode: http.StatusNotFound, Code: zoom.CodeUserNotFound,
		Method: http.MethodGet, Endpoint: "/users/{userId}"}
}

// msgOf is a message as a handler gets it without the consume loop: its
// data still encoded, its header saying so.
type msgOf struct {
	jetstream.Msg
	m *nats.Msg
}

func (m msgOf) Subject() string      { return m.m.Subject }
func (m msgOf) Data() []byte         { return m.m.Data }
func (m msgOf) Headers() nats.Header { return m.m.Header }

// TestHintDecodedOrNot: a hint is read whether the consume loop decoded it
// already or not, compressed or not, and a user Zoom no longer has is
// passed on as not found.
func TestHintDecodedOrNot(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	runs := openRuns(ctx, t, js)
	r := runner.New(runner.Config{
		Runs:    runs,
		Syncer:  syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
		Clients: runner.Fixed{conn: users{}},
		Log:     zerolog.Nop(),
	})
	// A user id of kilobytes makes a hint large enough to be compressed.
	long := strings.Repeat("gone-", 2000)
	hints := []*pb.FetchUser{
		{Tenant: conn.Tenant, Connector: conn.ID, UserId: "u1", VersionMs: 7},
		{Tenant: conn.Tenant, Connector: conn.ID, UserId: long, VersionMs: 8},
	}
	for _, h := range hints {
		m, err := pipeline.NewMsg(pipeline.HintSubject(conn), h, "")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Header.Get(pipeline.HeaderEncoding) != "", h.UserId == long; got != want {
			t.Fatalf("hint for %.10s…: compressed %t, want %t", h.UserId, got, want)
		}
		// Handled as it was published, and through the consume loop.
		if err := r.HandleHint(ctx, msgOf{m: m}); err != nil {
			t.Fatalf("handle the hint for %.10s… undecoded: %v", h.UserId, err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	loop := make(chan error, 1)
	go func() {
		loop <- natsx.Consumer{Stream: pipeline.StreamHint, Durable: "fetcher-hints", Log: zerolog.Nop()}.Run(ctx, js, r.HandleHint)
	}()
	var pages []*pb.RawPage
	for len(pages) < 2*len(hints) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		pages = pages[:0]
		pages = append(pages, rawReads(t, js)...)
	}
	cancel()
	<-loop
	if len(pages) != 2*len(hints) {
		t.Fatalf("got %d pages, want %d", len(pages), 2*len(hints))
	}
	for i, p := range pages {
		h := hints[i%len(hints)]
		if p.GetUserId() != h.UserId || p.VersionMs != h.VersionMs || p.NotFound != (h.UserId == long) ||
			(len(p.Body) > 0) != (h.UserId == "u1") {
			t.Errorf("page %d: user %.10s…, version %d, not found %t, body %q; want the answer for %.10s…",
				i, p.GetUserId(), p.VersionMs, p.NotFound, p.Body, h.UserId)
		}
	}
}
