package clients_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/clients"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

const redirectTemplate = "https://{tenant}.clarity.test/application/oauthProcessCode/{connector}"

// The connectors of the tests: an OAuth one on the simulator's default
// account, a Server-to-Server one on account "acct-b".
var (
	oauthRef = pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	s2sRef   = pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}
)

// world is a simulator of two accounts, a registry on a real NATS server,
// and the keyring and authorizer of the fetcher's replicas.
type world struct {
	sim      *zoomtest.Server
	acctA    *zoomtest.Account // the OAuth connector's
	acctB    *zoomtest.Account // the Server-to-Server connector's
	app      *zoomtest.App
	js       jetstream.JetStream
	keys     *connector.Keyring
	reg      *connector.Registry
	auth     *connector.Authorizer
	cons     jetstream.Consumer
	consOnce sync.Once
}

func newWorld(t testing.TB, tokenTTL time.Duration) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{}
	w.sim = zoomtest.NewServer(t, zoomtest.Generate(11, zoomtest.Size{Users: 30, Groups: 3, Roles: 3}), zoomtest.Options{})
	w.acctA = w.sim.DefaultAccount()
	var err error
	w.acctB, err = w.sim.AddAccount("acct-b", zoomtest.Generate(22, zoomtest.Size{Users: 25, Groups: 2, Roles: 3}), zoomtest.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.app, err = w.acctA.AddApp(zoomtest.AppOptions{
		RedirectURIs: []string{connector.RedirectURL(redirectTemplate, oauthRef)}, TokenTTL: tokenTTL})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	w.keys, err = connector.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	w.js = natstest.JetStream(t, pipeline.Streams(1)...)
	w.reg = openRegistry(t, w.js)
	w.auth, err = connector.NewAuthorizer(ctx, w.js, w.keys, connector.AuthorizerConfig{OAuthURL: w.sim.URL(), RedirectTemplate: redirectTemplate})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// openRegistry opens the registry and watches it until the test ends, as
// a replica of the fetcher does.
func openRegistry(t testing.TB, js jetstream.JetStream) *connector.Registry {
	t.Helper()
	reg, err := connector.Open(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry watch: %v", err)
		}
	})
	select {
	case <-reg.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("registry not read within 5s")
	}
	return reg
}

func (w *world) seal(t testing.TB, ref pipeline.ConnectorRef, field, secret string) connector.Sealed {
	t.Helper()
	s, err := w.keys.Seal(secret, connector.SecretAD(ref, field))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addS2S registers the Server-to-Server connector of account B, active.
func (w *world) addS2S(t testing.TB) {
	t.Helper()
	if _, err := w.reg.Create(context.Background(), connector.Record{
		Tenant: s2sRef.Tenant, Connector: s2sRef.ID, Auth: connector.AuthS2S,
		ClientID: w.acctB.ClientID(), AccountID: w.acctB.ID(),
		ClientSecret: w.seal(t, s2sRef, connector.FieldClientSecret, w.acctB.ClientSecret()),
		Schedule:     "1m", State: connector.StateActive,
	}); err != nil {
		t.Fatal(err)
	}
}

// addOAuth registers the OAuth connector of account A, pending its
// authorization.
func (w *world) addOAuth(t testing.TB) {
	t.Helper()
	if _, err := w.reg.Create(context.Background(), connector.Record{
		Tenant: oauthRef.Tenant, Connector: oauthRef.ID, Auth: connector.AuthOAuth, ClientID: w.app.ClientID(),
		ClientSecret: w.seal(t, oauthRef, connector.FieldClientSecret, w.app.ClientSecret()),
		Schedule:     connector.ScheduleManual, State: connector.StatePendingAuthorization,
	}); err != nil {
		t.Fatal(err)
	}
}

// authorize runs the authorization-code flow of the OAuth connector as a
// browser and the webhook's callback would, and stores its tokens.
func (w *world) authorize(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	e, err := w.reg.Get(ctx, oauthRef)
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.auth.AuthorizeURL(ctx, e.Record)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, location error %v", resp.StatusCode, err)
	}
	v, err := w.auth.TakeState(ctx, loc.Query().Get("state"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := w.auth.Exchange(ctx, v, w.app.ClientSecret(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := w.reg.Seal(w.keys, oauthRef, g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.reg.Modify(ctx, oauthRef, func(r *connector.Record) error {
		r.State, r.Reason, r.Tokens = connector.StateActive, "", tokens
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// replica is one fetcher replica: its registry copy, clients and runner.
type replica struct {
	set *clients.Set
	r   *runner.Runner
}

func (w *world) replica(t testing.TB, holder string, reg *connector.Registry, keys *connector.Keyring) *replica {
	t.Helper()
	return w.replicaWith(t, clients.Config{Registry: reg, Keys: keys, Holder: holder})
}

// replicaWith is a replica whose clients are configured by cfg, with the
// world's authorizer and the simulator's URLs.
func (w *world) replicaWith(t testing.TB, cfg clients.Config) *replica {
	t.Helper()
	runs, err := runstate.Open(context.Background(), w.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Authorizer = w.auth
	cfg.Zoom = zoom.Config{APIURL: w.sim.APIBase(), OAuthURL: w.sim.URL(), DisablePacing: true}
	cfg.Log = zerolog.Nop()
	set := clients.New(cfg)
	r := runner.New(runner.Config{
		Runs:        runs,
		Syncer:      syncer.New(syncer.Config{JetStream: w.js, Concurrency: 2, Log: zerolog.Nop()}),
		Clients:     set,
		Log:         zerolog.Nop(),
		MaxAttempts: 3,
		AckWait:     30 * time.Second,
	})
	return &replica{set: set, r: r}
}

// trigger publishes a trigger for ref and returns it as the fetcher's
// consumer delivers it. It is not acknowledged: a trigger leaves the stream
// (a work queue) when its handler is done, and until then it says that its
// run has a driver.
func (w *world) trigger(t testing.TB, ref pipeline.ConnectorRef, requestID string) jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	w.consOnce.Do(func() {
		var err error
		w.cons, err = w.js.CreateOrUpdateConsumer(ctx, pipeline.StreamSync, jetstream.ConsumerConfig{
			Durable: "test", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if _, err := w.js.Publish(ctx, pipeline.SyncSubject(ref), []byte(`{"mode":"full","request_id":"`+requestID+`"}`)); err != nil {
		t.Fatal(err)
	}
	batch, err := w.cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatalf("trigger for %s not delivered", ref)
	}
	return msg
}

// hint is a hint to re-read user id of ref, as the consume loop hands it.
func hint(t testing.TB, ref pipeline.ConnectorRef, id string) jetstream.Msg {
	t.Helper()
	m, err := pipeline.NewMsg(pipeline.HintSubject(ref), &pb.FetchUser{Tenant: ref.Tenant, Connector: ref.ID, UserId: id}, "")
	if err != nil {
		t.Fatal(err)
	}
	return msgOf{m: m}
}

// msgOf is a NATS message as a handler gets it without the consume loop.
type msgOf struct {
	jetstream.Msg
	m *nats.Msg
}

func (m msgOf) Subject() string      { return m.m.Subject }
func (m msgOf) Data() []byte         { return m.m.Data }
func (m msgOf) Headers() nats.Header { return m.m.Header }

// published is what the runner sent towards the writer for one connector.
type published struct {
	started, fetched []*pb.Run
	failed           []*pb.RunFailed
	emails           map[string]bool // of every users page and user read
	userPages        int
}

// rawOf reads the raw stream, by connector.
func rawOf(t testing.TB, js jetstream.JetStream) map[pipeline.ConnectorRef]*published {
	t.Helper()
	out := map[pipeline.ConnectorRef]*published{}
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamRaw) {
		ref, err := pipeline.FromSubject(m.Subject)
		if err != nil {
			t.Fatal(err)
		}
		var env pb.Envelope
		if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
			t.Fatal(err)
		}
		if env.Tenant != ref.Tenant || env.Connector != ref.ID {
			t.Errorf("envelope of %s/%s on %s's subject", env.Tenant, env.Connector, ref)
		}
		p := out[ref]
		if p == nil {
			p = &published{emails: map[string]bool{}}
			out[ref] = p
		}
		pages := env.GetRawPages().GetPages()
		if rp := env.GetRawPage(); rp != nil {
			pages = append(pages, rp)
		}
		for _, page := range pages {
			switch page.GetRef().GetListing() {
			case pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE, pb.Listing_LISTING_USERS_PENDING:
				p.userPages++
				var body struct {
					Users []struct {
						Email string `json:"email"`
					} `json:"users"`
				}
				if err := json.Unmarshal(page.Body, &body); err != nil {
					t.Fatal(err)
				}
				for _, u := range body.Users {
					p.emails[u.Email] = true
				}
			case pb.Listing_LISTING_USER:
				var u struct {
					Email string `json:"email"`
				}
				if len(page.Body) > 0 {
					if err := json.Unmarshal(page.Body, &u); err != nil {
						t.Fatal(err)
					}
					p.emails[u.Email] = true
				}
			}
		}
		switch b := env.Body.(type) {
		case *pb.Envelope_RunStarted:
			p.started = append(p.started, b.RunStarted.Run)
		case *pb.Envelope_RunFetched:
			p.fetched = append(p.fetched, b.RunFetched.Run)
		case *pb.Envelope_RunFailed:
			p.failed = append(p.failed, b.RunFailed)
		}
	}
	return out
}

// refusals returns the error of each sync.failed event published for ref
// directly (the refusals), in order.
func refusals(t testing.TB, js jetstream.JetStream, ref pipeline.ConnectorRef) []string {
	t.Helper()
	var out []string
	for _, m := range natstest.StreamMsgs(t, js, clarity.StreamEntitlements) {
		var ev clarity.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Tenant != ref.Tenant || ev.Connector != ref.ID {
			continue
		}
		if m.Subject != clarity.EventSubject(ref.Tenant, ref.ID, clarity.KindSync) || ev.Type != "clarity.sync.failed" {
			t.Errorf("event %s on %s, want only sync.failed on %s's sync subject", ev.Type, m.Subject, ref)
		}
		var d clarity.SyncData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Error)
	}
	return out
}

// emailsOf returns the emails of an account's users.
func emailsOf(a *zoomtest.Account) map[string]bool {
	out := map[string]bool{}
	for _, u := range a.Org().Users {
		out[u.Email] = true
	}
	return out
}

// waitUntil polls cond until it holds, at most within.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
