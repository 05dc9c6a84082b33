package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

const testToken = "admin-token-0123456789"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func testKeys(t *testing.T) *connector.Keyring {
	t.Helper()
	k, err := connector.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// browser is an HTTP client with cookies that does not follow redirects.
type browser struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newConsole(t *testing.T, cfg Config) (*browser, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cfg.Token = testToken
	cfg.Now = clk.now
	cfg.RedirectTemplate = "https://{tenant}.clarity.test/application/oauthProcessCode/{connector}"
	if cfg.Keys == nil {
		cfg.Keys = testKeys(t)
	}
	if cfg.Registry == nil {
		srv := natstest.Run(t)
		nc, js, err := natsx.Connect(context.Background(), srv.ClientURL(), "console-test", zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		reg, err := connector.Open(context.Background(), js, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Registry, cfg.NC, cfg.JS = reg, nc, js
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}, clk
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfIn(t *testing.T, page string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page: %.300s", page)
	}
	return m[1]
}

// signIn signs in and returns the session's CSRF token.
func (b *browser) signIn() string {
	b.t.Helper()
	_, page := b.get("/signin")
	resp, _ := b.post("/signin", url.Values{"csrf": {csrfIn(b.t, page)}, "token": {testToken}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("sign in: status %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = b.get("/connect")
	return csrfIn(b.t, page)
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie set", CookieName)
	return nil
}

func TestSignIn(t *testing.T) {
	b, _ := newConsole(t, Config{})
	resp, _ := b.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("GET / without a session: %d to %q, want a redirect to /signin", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The redirect starts a session that has not signed in.
	anon := sessionCookie(t, resp)
	resp, page := b.get("/signin")
	if !anon.HttpOnly || anon.SameSite != http.SameSiteStrictMode || anon.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", anon)
	}
	csrf := csrfIn(t, page)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}

	// The right token without the form's CSRF token: refused.
	if resp, _ := b.post("/signin", url.Values{"token": {testToken}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without CSRF: status %d, want 403", resp.StatusCode)
	}
	// A wrong token: refused, and named as the admin token.
	resp, page = b.post("/signin", url.Values{"csrf": {csrf}, "token": {"admin-token-0123456780"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "not the admin token") {
		t.Errorf("a wrong token: status %d", resp.StatusCode)
	}
	if strings.Contains(page, testToken) || strings.Contains(page, "admin-token-0123456780") {
		t.Error("the sign-in page shows a token")
	}
	// An over-long token is refused like a wrong one.
	if resp, _ := b.post("/signin", url.Values{"csrf": {csrf}, "token": {strings.Repeat(testToken, 100)}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an over-long token: status %d, want 401", resp.StatusCode)
	}
	// The right one: a new session id, signed in.
	resp, _ = b.post("/signin", url.Values{"csrf": {csrf}, "token": {" " + testToken + "\n"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: status %d", resp.StatusCode)
	}
	if c := sessionCookie(t, resp); c.Value == anon.Value || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Errorf("signed-in cookie %+v: want a new id, HttpOnly, SameSite=Strict", c)
	}
	if resp, page := b.get("/"); resp.StatusCode != http.StatusOK || !strings.Contains(page, "<h1>Connectors</h1>") {
		t.Errorf("GET / signed in: %d", resp.StatusCode)
	}
	// Signing out ends the session.
	_, page = b.get("/connect")
	if resp, _ := b.post("/signout", url.Values{"csrf": {csrfIn(t, page)}}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign out: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after signing out: %d, want a redirect", resp.StatusCode)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	b, _ := newConsole(t, Config{SecureCookies: true})
	resp, _ := b.get("/signin")
	if c := sessionCookie(t, resp); !c.Secure {
		t.Errorf("cookie %+v is not Secure with SecureCookies", c)
	}
}

func TestSessionExpires(t *testing.T) {
	b, clk := newConsole(t, Config{})
	b.signIn()
	clk.add(SessionIdle - time.Minute)
	if resp, _ := b.get("/connect"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a session used within its idle time: %d", resp.StatusCode)
	}
	clk.add(SessionIdle + time.Second)
	if resp, _ := b.get("/connect"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a session idle for longer than %s: %d, want a redirect to sign in", SessionIdle, resp.StatusCode)
	}
}

func TestFormsNeedTheirSessionsCSRFToken(t *testing.T) {
	b, _ := newConsole(t, Config{})
	csrf := b.signIn()
	other, _ := newConsole(t, Config{})
	otherCSRF := other.signIn()
	form := url.Values{"tenant": {"acme"}, "connector": {"zoom"}, "auth": {"oauth"}, "client_id": {"cid"}, "action": {"validate"}}
	for name, token := range map[string]string{"none": "", "another session's": otherCSRF, "altered": csrf[:len(csrf)-1] + "x"} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if token != "" {
			f.Set(CSRFField, token)
		}
		for _, path := range []string{"/connect", "/connectors/acme/zoom/sync", "/connectors/acme/zoom/remove", "/signout"} {
			if resp, page := b.post(path, f); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "security token") {
				t.Errorf("POST %s with %s CSRF token: status %d, want 403", path, name, resp.StatusCode)
			}
		}
	}
	// Not signed in: refused too.
	anon, _ := newConsole(t, Config{})
	if resp, _ := anon.post("/connect", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /connect without a session: %d, want 403", resp.StatusCode)
	}
}

func TestConnectFormKeepsSecretsSealed(t *testing.T) {
	b, _ := newConsole(t, Config{})
	csrf := b.signIn()
	const secret, webhook = "client-secret-value-1", "webhook-secret-value-2"
	resp, page := b.post("/connect", url.Values{CSRFField: {csrf}, "tenant": {"acme"}, "connector": {"zoom"}, "auth": {"oauth"},
		"client_id": {"cid-1"}, "client_secret": {secret}, "webhook_secret": {webhook}, "schedule": {"manual"}, "action": {"validate"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("validate: %d: %s", resp.StatusCode, page)
	}
	if strings.Contains(page, secret) || strings.Contains(page, webhook) {
		t.Fatal("the Connect page renders a secret back")
	}
	if n := strings.Count(page, `<span class="set">set</span>`); n != 2 {
		t.Errorf("the page shows %d secrets as set, want 2", n)
	}
	for _, want := range []string{"https://acme.clarity.test/application/oauthProcessCode/zoom", "role:write:admin", `value="cid-1"`, "Zoom checks an OAuth app"} {
		if !strings.Contains(page, want) {
			t.Errorf("the Connect page lacks %q", want)
		}
	}
	// Validate again without typing the secret: it is kept.
	_, page = b.post("/connect", url.Values{CSRFField: {csrf}, "tenant": {"acme"}, "connector": {"zoom"}, "auth": {"oauth"},
		"client_id": {"cid-1"}, "action": {"validate"}})
	if strings.Contains(page, "Enter the Client") || !strings.Contains(page, `<span class="set">set</span>`) {
		t.Errorf("the kept secret was lost: %.400s", page)
	}
	// Another connector does not get this one's secrets.
	_, page = b.post("/connect", url.Values{CSRFField: {csrf}, "tenant": {"acme"}, "connector": {"other"}, "auth": {"oauth"},
		"client_id": {"cid-1"}, "action": {"validate"}})
	if !strings.Contains(page, "Enter the Client Secret first") {
		t.Errorf("another connector's validation used the kept secret")
	}
}

func TestConnectFormBoundsFields(t *testing.T) {
	b, _ := newConsole(t, Config{})
	csrf := b.signIn()
	base := url.Values{CSRFField: {csrf}, "tenant": {"acme"}, "connector": {"zoom"}, "auth": {"oauth"}, "client_id": {"cid"},
		"schedule": {"24h"}, "action": {"validate"}}
	tests := []struct{ field, value, want string }{
		{"tenant", "Acme!", "lower-case letters"},
		{"connector", strings.Repeat("z", 64), "lower-case letters"},
		{"auth", "password", "Choose the kind of Zoom app"},
		{"client_id", strings.Repeat("c", 257), "at most 256 characters"},
		{"client_id", "a b", "without spaces"},
		{"account_id", strings.Repeat("a", 257), "Account ID is at most 256"},
		{"client_secret", strings.Repeat("s", 1025), "at most 1024 characters"},
		{"schedule", "10s", "at least 1m"},
		{"schedule", strings.Repeat("9", 100), "at least 1m"},
	}
	for _, tt := range tests {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		f.Set(tt.field, tt.value)
		resp, page := b.post("/connect", f)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, tt.want) {
			t.Errorf("%s=%.20q: status %d, want 422 saying %q", tt.field, tt.value, resp.StatusCode, tt.want)
		}
		if len(tt.value) > 100 && strings.Contains(page, tt.value) {
			t.Errorf("%s: the over-long value is rendered back whole", tt.field)
		}
	}
	// A body over the form's bound is refused before it is read whole.
	f := url.Values{CSRFField: {csrf}, "pad": {strings.Repeat("x", maxForm)}}
	if resp, _ := b.post("/connect", f); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an over-long form: %d, want 400", resp.StatusCode)
	}
}

func event(t *testing.T, ref pipeline.ConnectorRef, seq int64, kind, op string, at time.Time, data any) []byte {
	t.Helper()
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		raw = b
	}
	b, err := json.Marshal(clarity.NewEvent(ref.Tenant, ref.ID, seq, kind, op, "s", at, raw))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestActivityFollowsRuns(t *testing.T) {
	a := NewActivity()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	other := pipeline.ConnectorRef{Tenant: "acme", ID: "other"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subj := func(r pipeline.ConnectorRef, kind string) string { return pipeline.EventSubject(r, kind) }
	a.apply(subj(ref, clarity.KindSync), event(t, ref, 1, clarity.KindSync, clarity.OpStarted, t0, clarity.SyncData{RunID: "r1", StartedAt: t0.Format(time.RFC3339Nano)}))
	for i := range 3 {
		a.apply(subj(ref, clarity.KindServiceUser), event(t, ref, int64(2+i), clarity.KindServiceUser, clarity.OpCreated, t0, map[string]int{"i": i}))
	}
	a.apply(subj(ref, clarity.KindEntitlement), event(t, ref, 5, clarity.KindEntitlement, clarity.OpCreated, t0, nil))
	a.apply(subj(other, clarity.KindServiceUser), event(t, other, 1, clarity.KindServiceUser, clarity.OpCreated, t0, nil))
	if s := a.Of(ref); s.Current == nil || s.Current.Changes[clarity.KindServiceUser] != 3 || len(s.Runs) != 0 {
		t.Fatalf("during the run: %+v", s)
	}
	end := t0.Add(1500 * time.Millisecond)
	a.apply(subj(ref, clarity.KindSync), event(t, ref, 6, clarity.KindSync, clarity.OpCompleted, end,
		clarity.SyncData{RunID: "r1", StartedAt: t0.Format(time.RFC3339Nano), FinishedAt: end.Format(time.RFC3339Nano), Stats: clarity.SyncStats{Created: 4, APIRequests: 7}}))
	a.apply(subj(ref, clarity.KindServiceUser), event(t, ref, 7, clarity.KindServiceUser, clarity.OpDeleted, end, nil))
	s := a.Of(ref)
	if s.Current != nil || len(s.Runs) != 1 {
		t.Fatalf("after the run: %+v", s)
	}
	r := s.Runs[0]
	if r.Result != clarity.OpCompleted || r.Duration(end) != 1500*time.Millisecond || r.Stats.APIRequests != 7 ||
		r.Changes[clarity.KindServiceUser] != 3 || r.Changes[clarity.KindEntitlement] != 1 {
		t.Errorf("run %+v", r)
	}
	if o := a.Of(other); o.Current != nil || len(o.Runs) != 0 {
		t.Errorf("the other connector's activity: %+v", o)
	}
	// Garbage and foreign subjects change nothing.
	a.apply("clarity.entitlements.acme", []byte("{"))
	a.apply(subj(ref, clarity.KindSync), []byte("not json"))
	if got := a.Of(ref); len(got.Runs) != 1 || got.Runs[0].Changes[clarity.KindServiceUser] != 3 {
		t.Errorf("after garbage: %+v", got)
	}
	// At most MaxRuns are kept, newest first.
	for i := range MaxRuns + 5 {
		at := end.Add(time.Duration(i+1) * time.Minute)
		a.apply(subj(ref, clarity.KindSync), event(t, ref, int64(100+i), clarity.KindSync, clarity.OpFailed, at,
			clarity.SyncData{RunID: "f", FinishedAt: at.Format(time.RFC3339Nano), Error: strings.Repeat("e", 2000)}))
	}
	got := a.Of(ref)
	if len(got.Runs) != MaxRuns || !got.Runs[0].Finished.After(got.Runs[1].Finished) || len(got.Runs[0].Error) > 520 {
		t.Errorf("%d runs kept, newest %s, error of %d bytes", len(got.Runs), got.Runs[0].Finished, len(got.Runs[0].Error))
	}
}

func TestChartsAreWellFormedSVG(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	runs := []Run{
		{RunID: `<script>alert(1)</script>`, Result: clarity.OpFailed, Started: t0.Add(time.Hour), Finished: t0.Add(time.Hour + 2*time.Second), Changes: map[string]int64{}},
		{RunID: "r1", Result: clarity.OpCompleted, Started: t0, Finished: t0.Add(3 * time.Second),
			Changes: map[string]int64{clarity.KindServiceUser: 60, clarity.KindEntitlement: 9, clarity.KindServiceUserEntitlement: 120, clarity.KindServiceUserAttribute: 300}},
	}
	for name, svg := range map[string]string{"runs": string(runsChart(runs)), "durations": string(durationChart(runs))} {
		if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
			t.Errorf("%s chart is not well-formed: %v", name, err)
		}
		if strings.Contains(svg, "<script") {
			t.Errorf("%s chart holds markup from a run id", name)
		}
	}
	if n := strings.Count(string(runsChart(runs)), "<rect"); n != 4 {
		t.Errorf("runs chart has %d bars, want 4 (the kinds of the one run that changed records)", n)
	}
	if n := strings.Count(string(durationChart(runs)), "<rect"); n != 2 {
		t.Errorf("duration chart has %d bars, want 2", n)
	}
	if runsChart(nil) != "" {
		t.Error("a chart of no runs is drawn")
	}
}

func TestActivityProgress(t *testing.T) {
	a := NewActivity()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prog := func(fetcher, listing string, page int, requests, limited, waited int64) {
		b, _ := json.Marshal(pipeline.Progress{Fetcher: fetcher, Listing: listing, Page: page, Requests: requests, RateLimited: limited, WaitedMS: waited})
		a.progress(pipeline.ProgressSubject(ref), b)
	}
	sync := func(seq int64, op string, at time.Time) {
		a.apply(pipeline.EventSubject(ref, clarity.KindSync), event(t, ref, seq, clarity.KindSync, op, at,
			clarity.SyncData{RunID: fmt.Sprint("r", seq), StartedAt: t0.Format(time.RFC3339Nano), FinishedAt: at.Format(time.RFC3339Nano)}))
	}
	// A run before: its counters are the next run's base.
	sync(1, clarity.OpStarted, t0)
	prog("f1", "users", 1, 3, 1, 1000)
	sync(2, clarity.OpCompleted, t0.Add(time.Second))
	if r := a.Of(ref).Runs[0]; r.Pages != 1 || r.RateLimited != 1 || r.Waited != time.Second {
		t.Fatalf("first run: %+v", r)
	}
	// Pages heard before the run's start event count for it.
	prog("f1", "users", 1, 4, 1, 1000)
	sync(3, clarity.OpStarted, t0.Add(time.Minute))
	prog("f1", "users", 2, 5, 3, 4000)
	prog("f1", "groups", 1, 6, 3, 4000)
	cur := a.Of(ref).Current
	if cur == nil || cur.Pages != 3 || cur.PagesBy["users"] != 2 || cur.RateLimited != 2 || cur.Waited != 3*time.Second {
		t.Fatalf("running: %+v", cur)
	}
	// A fetcher whose client was made anew counts from zero.
	prog("f1", "roles", 1, 1, 1, 500)
	sync(4, clarity.OpCompleted, t0.Add(2*time.Minute))
	if r := a.Of(ref).Runs[0]; r.Pages != 4 || r.RateLimited != 1 || r.Waited != 500*time.Millisecond {
		t.Errorf("second run: %+v", r)
	}
	// Garbage and over-long messages change nothing.
	a.progress(pipeline.ProgressSubject(ref), []byte("{"))
	a.progress(pipeline.ProgressSubject(ref), []byte(`{"fetcher":"f","listing":"`+strings.Repeat("l", 2000)+`","page":1}`))
	a.progress("zoom.raw.acme.zoom", []byte(`{"fetcher":"f","listing":"users","page":9}`))
	if cur := a.Of(ref).Current; cur != nil {
		t.Errorf("a run appeared from garbage: %+v", cur)
	}
}

func TestSignInReturnsToThePageAskedFor(t *testing.T) {
	b, _ := newConsole(t, Config{})
	resp, _ := b.get("/connect?tenant=demo&connector=zoom")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("GET /connect without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := b.get("/signin")
	resp, _ = b.post("/signin", url.Values{"csrf": {csrfIn(t, page)}, "token": {testToken}})
	if got := resp.Header.Get("Location"); got != "/connect?tenant=demo&connector=zoom" {
		t.Errorf("after signing in: sent to %q, want the page asked for", got)
	}
	for p, want := range map[string]bool{"/": true, "/connectors/a/b": true, "//evil.example/": false, "/\\evil.example": false,
		"https://evil.example/": false, "": false, "/x\r\nSet-Cookie: a=b": false, "/" + strings.Repeat("a", 600): false} {
		if localPath(p) != want {
			t.Errorf("localPath(%q) = %t", p, !want)
		}
	}
}

// activeConnector starts a NATS server with a registry holding one active
// Server-to-Server connector, acme/zoom, and returns what a console of it
// is configured with.
func activeConnector(t *testing.T) (Config, pipeline.ConnectorRef) {
	t.Helper()
	srv := natstest.Run(t)
	nc, js, err := natsx.Connect(context.Background(), srv.ClientURL(), "console-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	reg, err := connector.Open(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys(t)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	sealed, err := keys.Seal("the-client-secret", connector.SecretAD(ref, connector.FieldClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(context.Background(), connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: connector.AuthS2S,
		ClientID: "cid", AccountID: "acct", ClientSecret: sealed, Schedule: "24h", State: connector.StateActive}); err != nil {
		t.Fatal(err)
	}
	return Config{Registry: reg, NC: nc, JS: js, Keys: keys}, ref
}

func TestConnectorActions(t *testing.T) {
	cfg, ref := activeConnector(t)
	reg := cfg.Registry
	b, _ := newConsole(t, cfg)
	csrf := b.signIn()
	state := func() string {
		e, err := reg.Get(context.Background(), ref)
		if err != nil {
			return "gone"
		}
		return e.State
	}
	_, page := b.get("/connectors/acme/zoom")
	if strings.Contains(page, "the-client-secret") || !strings.Contains(page, `<span class="set">set</span>`) {
		t.Error("the connector's page shows its secret, or not that it is set")
	}
	if resp, _ := b.post("/connectors/acme/zoom/disable", url.Values{CSRFField: {csrf}}); resp.StatusCode != http.StatusSeeOther || state() != connector.StateDisabled {
		t.Errorf("disable: %d, state %s", resp.StatusCode, state())
	}
	if resp, _ := b.post("/connectors/acme/zoom/enable", url.Values{CSRFField: {csrf}}); resp.StatusCode != http.StatusSeeOther || state() != connector.StateActive {
		t.Errorf("enable: %d, state %s", resp.StatusCode, state())
	}
	// Remove without its box ticked removes nothing, and says why.
	b.post("/connectors/acme/zoom/remove", url.Values{CSRFField: {csrf}})
	if _, page := b.get("/connectors/acme/zoom"); state() != connector.StateActive || !strings.Contains(page, "Tick the box") {
		t.Errorf("remove without confirming: state %s", state())
	}
	if resp, page := b.post("/connectors/acme/zoom/nonsense", url.Values{CSRFField: {csrf}}); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "no such action") {
		t.Errorf("an unknown action: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/connectors/acme/other"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown connector's page: %d", resp.StatusCode)
	}
	if resp, _ := b.get("/connectors/Bad!/zoom"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a malformed connector's page: %d", resp.StatusCode)
	}
}
