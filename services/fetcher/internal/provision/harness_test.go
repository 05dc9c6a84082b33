package provision

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// testConnector is the connector the harness serves.
var testConnector = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// simClients serves testConnector with a client of the simulator.
type simClients struct{ z *zoom.Client }

func (s simClients) Client(_ context.Context, c pipeline.ConnectorRef) (runner.Client, error) {
	if c != testConnector {
		return nil, runner.Unknown(c)
	}
	return s.z, nil
}

// harness is a provisioning worker on a real NATS server, against the
// Zoom simulator.
type harness struct {
	js  jetstream.JetStream
	nc  *nats.Conn
	sim *zoomtest.Server
	z   *zoom.Client
	org *zoomtest.Org
	w   *Worker
}

func newHarness(t *testing.T, grace time.Duration) *harness {
	t.Helper()
	streams := append(pipeline.Streams(1), pipeline.ProvisionStreams(time.Hour)...)
	js := natstest.JetStream(t, streams...)
	org := zoomtest.Generate(7, zoomtest.Size{Users: 12, Groups: 3, Roles: 2})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	z, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(context.Background(), Config{
		JetStream: js, Conn: js.Conn(), Clients: simClients{z}, Grace: grace, Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{js: js, nc: js.Conn(), sim: sim, z: z, org: org, w: w}
}

// run runs the worker until the test ends.
func (h *harness) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// activeUser returns an active user of the simulator's account, not in
// group gid, other than skip.
func (h *harness) activeUser(t *testing.T, gid string, skip ...string) zoomtest.User {
	t.Helper()
next:
	for _, u := range h.org.Users {
		if u.Status != "active" || u.Type == 0 {
			continue
		}
		for _, g := range u.GroupIDs {
			if g == gid {
				continue next
			}
		}
		for _, s := range skip {
			if s == u.ID {
				continue next
			}
		}
		return u
	}
	t.Fatal("no such user in the simulator's account")
	return zoomtest.User{}
}

// request publishes a request with a reply subject, and returns the
// subscription its replies come on.
func (h *harness) request(t *testing.T, req clarity.ProvisionRequest, reply string) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(pipeline.ProvisionSubject(testConnector))
	m.Data = body
	if reply != "" {
		m.Header.Set(clarity.ReplyToHeader, reply)
	}
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// results reads n results from sub.
func results(t *testing.T, sub *nats.Subscription, n int) []clarity.ProvisionResult {
	t.Helper()
	var out []clarity.ProvisionResult
	for range n {
		m, err := sub.NextMsg(time.Minute)
		if err != nil {
			t.Fatalf("result %d of %d: %v", len(out)+1, n, err)
		}
		var r clarity.ProvisionResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// inGroup reports whether Zoom shows user id in group gid.
func (h *harness) inGroup(t *testing.T, id, gid string) bool {
	t.Helper()
	body, err := h.z.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var u zoom.User
	if err := zoom.Decode(body, &u); err != nil {
		t.Fatal(err)
	}
	for _, g := range u.GroupIDs {
		if g == gid {
			return true
		}
	}
	return false
}
