package runner_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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

// pageOfUsers is an account whose active users fit on one listing page
// and that has no inactive users; GetUser counts its calls.
type pageOfUsers struct {
	body  []byte
	n     int
	reads *atomic.Int64
}

func (a *pageOfUsers) Pages(_ context.Context, l zoom.Listing, fn func(zoom.RawPage) error) error {
	if l.Status != zoom.UserStatusActive {
		return fn(zoom.RawPage{Listing: l, Number: 1, Last: true, Body: []byte(`{"users":[]}`), RequestedAt: time.Now()})
	}
	return fn(zoom.RawPage{Listing: l, Number: 1, Last: true, TotalRecords: a.n, Items: a.n, Body: a.body, RequestedAt: time.Now()})
}
func (*pageOfUsers) Requests() zoom.Stats { return zoom.Stats{} }
func (a *pageOfUsers) GetUser(context.Context, string) ([]byte, error) {
	a.reads.Add(1)
	return nil, errors.New("not expected: every user is on the listing")
}

// TestListedUsersTooManyForOneMessage: the users one listing page serves
// go as one message; when the raw stream refuses that message for its
// size, they go one by one, each served, none re-read.
func TestListedUsersTooManyForOneMessage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	streams := pipeline.Streams(1)
	for i := range streams {
		if streams[i].Name == pipeline.StreamRaw {
			streams[i].MaxMsgSize = 4 << 10
		}
	}
	js := natstest.JetStream(t, streams...)
	type item struct {
		ID     string `json:"id"`
		Email  string `json:"email"`
		Status string `json:"status"`
		Notes  string `json:"last_name"`
	}
	var list struct {
		Users []item `json:"users"`
	}
	const n = 40
	for i := range n {
		id := "u" + strconv.Itoa(i)
		// Incompressible: the bundle exceeds the limit, each user alone not.
		notes := make([]byte, 150)
		_, _ = rand.Read(notes)
		list.Users = append(list.Users, item{ID: id, Email: id + "@example.com", Status: "active", Notes: hex.EncodeToString(notes)})
	}
	body, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	reads := &atomic.Int64{}
	r := runner.New(runner.Config{
		Runs:      openRuns(ctx, t, js),
		Syncer:    syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
		Clients:   runner.Fixed{conn: &pageOfUsers{body: body, n: n, reads: reads}},
		Log:       zerolog.Nop(),
		HintQuiet: 300 * time.Millisecond,
	})
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- r.HandleHint(ctx, msgOf{m: hintMsg(t, "u"+strconv.Itoa(i), int64(1000+i))}) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("hint: %v", err)
		}
	}
	if got := reads.Load(); got != 0 {
		t.Errorf("%d users re-read, want none: the listing showed them all", got)
	}
	served := servedVersions(t, js)
	for i := range n {
		if id := "u" + strconv.Itoa(i); served[id] != int64(1000+i) {
			t.Errorf("user %s: version %d published, want %d", id, served[id], 1000+i)
		}
	}
	for _, env := range rawEnvelopes(t, js) {
		if env.GetRawPages() != nil {
			t.Errorf("a bundle of %d users stored, over the stream's limit", len(env.GetRawPages().GetPages()))
		}
	}
}
