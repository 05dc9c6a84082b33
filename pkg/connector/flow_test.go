package connector

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// flow is an OAuth connector registered against the simulator's OAuth app.
type flow struct {
	sim  *zoomtest.Server
	app  *zoomtest.App
	keys *Keyring
	reg  *Registry
	auth *Authorizer
	ref  pipeline.ConnectorRef
}

const redirectTemplate = "https://{tenant}.clarity.test/application/oauthProcessCode/{connector}"

func newFlow(t *testing.T, tokenTTL time.Duration) *flow {
	t.Helper()
	ctx := context.Background()
	sim := zoomtest.NewServer(t, zoomtest.Generate(5, zoomtest.Size{Users: 10, Groups: 2, Roles: 3}), zoomtest.Options{})
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	app, err := sim.DefaultAccount().AddApp(zoomtest.AppOptions{
		RedirectURIs: []string{RedirectURL(redirectTemplate, ref)}, TokenTTL: tokenTTL})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseKeyring(newKey(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	js := natstest.JetStream(t)
	reg, err := Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = reg.Watch(wctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-reg.Synced()
	auth, err := NewAuthorizer(ctx, js, keys, AuthorizerConfig{OAuthURL: sim.URL(), RedirectTemplate: redirectTemplate})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keys.Seal(app.ClientSecret(), SecretAD(ref, FieldClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: AuthOAuth, ClientID: app.ClientID(),
		ClientSecret: secret, Schedule: ScheduleManual, State: StatePendingAuthorization}); err != nil {
		t.Fatal(err)
	}
	return &flow{sim: sim, app: app, keys: keys, reg: reg, auth: auth, ref: ref}
}

// consent follows an authorize URL as a browser would, the simulator
// approving at once, and returns the redirect's query.
func consent(t *testing.T, authorizeURL string) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

// authorize runs the whole flow and stores the tokens, as the callback does.
func (f *flow) authorize(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	e, err := f.reg.Get(ctx, f.ref)
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.auth.AuthorizeURL(ctx, e.Record)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"code_challenge_method=S256", "code_challenge=", "response_type=code", "client_id=" + f.app.ClientID()} {
		if !strings.Contains(u, want) {
			t.Errorf("authorize URL %s lacks %s", u, want)
		}
	}
	q := consent(t, u)
	v, err := f.auth.TakeState(ctx, q.Get("state"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Ref != f.ref {
		t.Fatalf("state names %v, want %v", v.Ref, f.ref)
	}
	g, err := f.auth.Exchange(ctx, v, f.app.ClientSecret(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	ts := f.reg.TokenSource(f.keys, f.auth, f.ref, "test")
	tokens, err := ts.seal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Modify(ctx, f.ref, func(r *Record) error {
		r.State, r.Reason, r.Tokens = StateActive, "", tokens
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestAuthorizationStates(t *testing.T) {
	f := newFlow(t, time.Hour)
	ctx := context.Background()
	e, _ := f.reg.Get(ctx, f.ref)
	u, err := f.auth.AuthorizeURL(ctx, e.Record)
	if err != nil {
		t.Fatal(err)
	}
	q := consent(t, u)
	state := q.Get("state")

	forged := state[:len(state)-2] + "xx"
	if _, err := f.auth.TakeState(ctx, forged); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("forged state: got %v, want ErrStateInvalid", err)
	}
	if _, err := f.auth.TakeState(ctx, "garbage"); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("garbage state: got %v, want ErrStateInvalid", err)
	}
	// Another deployment's key signs states this one refuses.
	otherKeys, _ := ParseKeyring(newKey(t, "k1"))
	other := *f.auth
	other.keys = otherKeys
	if _, err := other.TakeState(ctx, state); !errors.Is(err, ErrStateInvalid) {
		t.Errorf("state of another key: got %v, want ErrStateInvalid", err)
	}
	late := *f.auth
	late.now = func() time.Time { return time.Now().Add(StateTTL + time.Minute) }
	if _, err := late.TakeState(ctx, state); !errors.Is(err, ErrStateExpired) {
		t.Errorf("state after 16 minutes: got %v, want ErrStateExpired", err)
	}
	v, err := f.auth.TakeState(ctx, state)
	if err != nil {
		t.Fatalf("good state: %v", err)
	}
	if _, err := f.auth.TakeState(ctx, state); !errors.Is(err, ErrStateReplayed) {
		t.Errorf("state taken twice: got %v, want ErrStateReplayed", err)
	}
	if _, err := f.auth.Exchange(ctx, v, "wrong secret", q.Get("code")); !errors.Is(err, ErrInvalidClient) {
		t.Errorf("exchange with a wrong client secret: got %v, want ErrInvalidClient", err)
	}
	if _, err := f.auth.Exchange(ctx, v, f.app.ClientSecret(), "not-a-code"); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("exchange of an unknown code: got %v, want ErrInvalidGrant", err)
	}
	g, err := f.auth.Exchange(ctx, v, f.app.ClientSecret(), q.Get("code"))
	if err != nil || g.Access == "" || g.Refresh == "" {
		t.Fatalf("exchange: %+v, %v", g.Expiry, err)
	}
	if _, err := f.auth.Exchange(ctx, v, f.app.ClientSecret(), q.Get("code")); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("a code exchanged twice: got %v, want ErrInvalidGrant", err)
	}
	for _, err := range []error{ErrInvalidClient, ErrInvalidGrant} {
		if strings.Contains(err.Error(), f.app.ClientSecret()) || strings.Contains(err.Error(), q.Get("code")) {
			t.Errorf("error %q names a secret", err)
		}
	}
}

// TestRefreshRotationAcrossReplicas has two replicas use one connector's
// tokens while they expire every 2 seconds: each expiry is refreshed once,
// no rotated refresh token is ever presented again, and the tokens stored
// are sealed.
func TestRefreshRotationAcrossReplicas(t *testing.T) {
	f := newFlow(t, 2*time.Second)
	f.authorize(t)
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for _, holder := range []string{"replica-1", "replica-2"} {
		for range 3 {
			wg.Go(func() {
				ts := f.reg.TokenSource(f.keys, f.auth, f.ref, holder)
				for ctx.Err() == nil {
					access, _, err := ts.Access(ctx)
					if err != nil {
						if ctx.Err() == nil {
							errs <- err
						}
						return
					}
					if access == "" {
						errs <- errors.New("empty access token")
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := f.app.Account().TokenStats()
	if st.Reuses != 0 || st.MaxRefreshUses > 1 || st.RefreshRejected != 0 {
		t.Errorf("token stats %+v: a refresh token was presented more than once", st)
	}
	// 9 s of 2-second tokens, each refreshed in the last quarter of its
	// life: one rotation every 1.5 s or so, not one per call.
	if st.Rotations < 3 || st.Rotations > 9 {
		t.Errorf("%d rotations in 9 s of 2-second tokens", st.Rotations)
	}
	e, _ := f.reg.Get(context.Background(), f.ref)
	if e.State != StateActive || e.Tokens.Lease != nil && e.Tokens.Lease.Until.After(time.Now().Add(leaseFor)) {
		t.Errorf("connector after the refreshes: state %s lease %+v", e.State, e.Tokens.Lease)
	}
}

func TestInvalidGrantNeedsReauthorization(t *testing.T) {
	f := newFlow(t, time.Hour)
	f.authorize(t)
	ctx := context.Background()
	ts := f.reg.TokenSource(f.keys, f.auth, f.ref, "r1")
	access, _, err := ts.Access(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.app.RevokeGrants()
	ts.Invalidate(access) // Zoom answered 401 code 124 to the access token
	before := f.app.Account().TokenStats().RefreshRejected
	_, _, err = ts.Access(ctx)
	if !errors.Is(err, ErrNotActive) || !strings.Contains(err.Error(), "authorized again") {
		t.Fatalf("after revocation: got %v, want a needs-reauthorization error", err)
	}
	e, _ := f.reg.Get(ctx, f.ref)
	if e.State != StateNeedsReauthorization || e.Tokens.Refresh != "" || e.Tokens.Access != "" {
		t.Errorf("connector: state %s, tokens kept %v", e.State, e.Tokens.Refresh != "")
	}
	// Never retried in a loop: later calls fail at once, without Zoom.
	for range 5 {
		if _, _, err := ts.Access(ctx); !errors.Is(err, ErrNotActive) {
			t.Fatalf("got %v, want ErrNotActive", err)
		}
	}
	if got := f.app.Account().TokenStats().RefreshRejected - before; got != 1 {
		t.Errorf("%d refreshes refused after the revocation, want 1", got)
	}
	// Authorized again, it is active.
	f.authorize(t)
	if _, _, err := ts.Access(ctx); err != nil {
		t.Errorf("after re-authorization: %v", err)
	}
}

// access returns the access token the connector holds now.
func (f *flow) access(t *testing.T) string {
	t.Helper()
	e, err := f.reg.Get(context.Background(), f.ref)
	if err != nil {
		t.Fatal(err)
	}
	access, err := f.keys.Open(e.Tokens.Access, SecretAD(f.ref, FieldAccessToken))
	if err != nil {
		t.Fatal(err)
	}
	return access
}

// A replica told that Zoom refused a token another replica has replaced
// meanwhile keeps the replacement: no second refresh, no rotation wasted.
func TestInvalidateDropsOnlyTheRefusedToken(t *testing.T) {
	f := newFlow(t, time.Hour)
	f.authorize(t)
	ctx := context.Background()
	a := f.reg.TokenSource(f.keys, f.auth, f.ref, "r1")
	b := f.reg.TokenSource(f.keys, f.auth, f.ref, "r2")
	first, _, err := a.Access(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Replica r2 is refused the token first and refreshes.
	b.Invalidate(first)
	second, _, err := b.Access(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("r2 kept the refused token")
	}
	rotations := f.app.Account().TokenStats().Rotations
	// r1's request with the old token is refused too, later.
	a.Invalidate(first)
	got, _, err := a.Access(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != second {
		t.Errorf("r1 got another token than r2's refresh")
	}
	if n := f.app.Account().TokenStats().Rotations - rotations; n != 0 {
		t.Errorf("%d more refreshes after r2's; the refused token was already replaced", n)
	}
}
