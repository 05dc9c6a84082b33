package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// The redirect URL registered in the tests' OAuth apps: Clarity's, with a
// test domain. Clarity forwards the redirect to the webhook service, as the
// tests do (browser.callback).
const redirectTemplate = "https://{tenant}.clarity.test/application/oauthProcessCode/{connector}"

// connectorStack is a stack whose services hold a secrets key, so that
// they serve the connectors of the registry.
type connectorStack struct {
	*devstack.Stack
	key string
}

func startConnectorStack(t *testing.T, seed int64, replicas map[string]int, env map[string]string) *connectorStack {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	key := "k1:" + base64.StdEncoding.EncodeToString(raw)
	all := map[string]string{"CONNECTOR_SECRETS_KEY": key, "OAUTH_REDIRECT_URL": redirectTemplate}
	for k, v := range env {
		all[k] = v
	}
	org := zoomtest.Generate(seed, zoomtest.Size{Users: 50, Groups: 3, Roles: 3})
	return &connectorStack{Stack: startStackEnv(t, org, zoomtest.Options{Seed: seed}, replicas, all), key: key}
}

// webhookBase is the webhook service's public base URL.
func (s *connectorStack) webhookBase() string {
	base, _, _ := strings.Cut(s.WebhookURL, "/webhooks/")
	return base
}

// zoomctl runs zoomctl against the stack's NATS.
func (s *connectorStack) zoomctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	args = append(args, "--nats-url", s.NATSURL)
	code := cli.Main(context.Background(), args, &out, &errw)
	return code, out.String(), errw.String()
}

// secretFile writes a secret to a file of the test's.
func secretFile(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// account adds a Zoom account with an OAuth app whose redirect is the
// connector's, and points its webhooks at the connector's route.
func (s *connectorStack) account(t *testing.T, id string, ref pipeline.ConnectorRef, seed int64, users int) (*zoomtest.Account, *zoomtest.App) {
	t.Helper()
	acct, err := s.Sim.AddAccount(id, zoomtest.Generate(seed, zoomtest.Size{Users: users, Groups: 4, Roles: 3}), zoomtest.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := acct.AddApp(zoomtest.AppOptions{RedirectURIs: []string{connector.RedirectURL(redirectTemplate, ref)}})
	if err != nil {
		t.Fatal(err)
	}
	acct.SetWebhookURL(s.webhookBase() + "/webhooks/zoom/" + ref.Tenant + "/" + ref.ID)
	acct.SetWebhookSecret("wh-" + id + "-" + rand.Text())
	return acct, app
}

// addOAuth registers an OAuth connector for app and returns its --json view.
func (s *connectorStack) addOAuth(t *testing.T, ref pipeline.ConnectorRef, app *zoomtest.App, clientSecret string) connector.View {
	t.Helper()
	code, out, errw := s.zoomctl(t, "connector", "add", "--tenant", ref.Tenant, "--connector", ref.ID, "--auth", "oauth",
		"--client-id", app.ClientID(), "--client-secret-file", secretFile(t, clientSecret),
		"--webhook-secret-file", secretFile(t, app.Account().WebhookSecret()), "--schedule", "manual", "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector add %s: exit %d: %s", ref, code, errw)
	}
	var v connector.View
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("connector add --json: %v: %s", err, out)
	}
	return v
}

func (s *connectorStack) show(t *testing.T, ref pipeline.ConnectorRef) connector.View {
	t.Helper()
	code, out, errw := s.zoomctl(t, "connector", "show", "--tenant", ref.Tenant, "--connector", ref.ID, "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector show %s: exit %d: %s", ref, code, errw)
	}
	var v connector.View
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("connector show --json: %v: %s", err, out)
	}
	return v
}

// waitState waits for the connector to be in state.
func (s *connectorStack) waitState(t *testing.T, ref pipeline.ConnectorRef, state string) connector.View {
	t.Helper()
	var v connector.View
	waitFor(t, 10*time.Second, func() bool { v = s.show(t, ref); return v.State == state })
	return v
}

// browser follows an authorize URL as the administrator's browser does: the
// simulator approves at once and redirects to Clarity's redirect URL,
// which Clarity forwards to the webhook service. It returns the callback's
// URL (on the webhook), status and page.
func (s *connectorStack) browser(t *testing.T, authorizeURL string) (string, int, string) {
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
	callback := s.webhookBase() + loc.Path + "?" + loc.RawQuery
	status, page := s.get(t, callback)
	return callback, status, page
}

func (s *connectorStack) get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET %s: content type %q, want an HTML page", u, ct)
	}
	return resp.StatusCode, string(b)
}

// expectedOf returns the records an organisation implies.
func expectedOf(org *zoomtest.Org) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, r := range zoomtest.Expected(org) {
		b, _ := json.Marshal(r.Data)
		out[r.Kind+"|"+r.Key] = b
	}
	return out
}

// waitSyncEnd waits for the n-th end (completed or failed) of a sync the
// collector sees, counting from 1.
func (c *collector) waitSyncEnd(t *testing.T, n int, timeout time.Duration) (string, clarity.SyncData) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		seen := 0
		for _, ev := range c.events {
			if ev.Type != "clarity.sync.completed" && ev.Type != "clarity.sync.failed" {
				continue
			}
			if seen++; seen == n {
				var d clarity.SyncData
				_ = json.Unmarshal(ev.Data, &d)
				c.mu.Unlock()
				return strings.TrimPrefix(ev.Type, "clarity.sync."), d
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no sync end number %d within %s", n, timeout)
	return "", clarity.SyncData{}
}

func (c *collector) deletions(from int) []string {
	var out []string
	for _, ev := range c.since(from) {
		if strings.HasSuffix(ev.Type, ".deleted") {
			out = append(out, ev.Type+" "+ev.Subject)
		}
	}
	return out
}

// TestOAuthConnector connects Zoom the way Clarity's guide says: an OAuth
// app's Client ID and Secret entered and saved, consent in the browser, the
// redirect, and the first full sync with the account's records. Then Zoom
// refuses the refresh token (revoked), which asks for a new authorization
// and deletes nothing; the authorization restores the connector; and the
// app removed from the account (app_deauthorized) disables it, again
// deleting nothing.
func TestOAuthConnector(t *testing.T) {
	s := startConnectorStack(t, 71, nil, nil)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	acct, app := s.account(t, "acc-acme", ref, 72, 120)
	c := collectRef(t, s.Stack, ref)

	v := s.addOAuth(t, ref, app, app.ClientSecret())
	if v.State != connector.StatePendingAuthorization || v.Auth != connector.AuthOAuth || v.Schedule != "manual" ||
		!strings.HasPrefix(v.AuthorizeURL, s.Sim.URL()+"/oauth/authorize?") {
		t.Fatalf("connector add: %+v", v)
	}
	if v.RedirectURL != "https://acme.clarity.test/application/oauthProcessCode/zoom" {
		t.Errorf("redirect URL %q", v.RedirectURL)
	}
	callback, status, page := s.browser(t, v.AuthorizeURL)
	if status != http.StatusOK || !strings.Contains(page, "Zoom is connected") {
		t.Fatalf("callback: %d %s", status, page)
	}
	op, d := c.waitSyncEnd(t, 1, 2*time.Minute)
	if op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	want := expectedOf(acct.Org())
	requireSame(t, "acme's records after its first sync", c.snapshot(), want)
	v = s.waitState(t, ref, connector.StateActive)
	if v.AccountID != acct.ID() {
		t.Errorf("account id %q, want %q, learnt from Zoom", v.AccountID, acct.ID())
	}
	waitFor(t, 10*time.Second, func() bool { l := s.show(t, ref).LastSync; return l != nil && l.Result == clarity.OpCompleted })

	// The same redirect again: the state was taken.
	if status, page := s.get(t, callback); status != http.StatusBadRequest || !strings.Contains(page, "used already") {
		t.Errorf("replayed callback: %d %s", status, page)
	}

	// Zoom revokes the app's tokens: the next sync finds its access token
	// refused, its refresh token too.
	app.RevokeGrants()
	mark := c.mark()
	id := cli.NewRequestID()
	if err := cli.Trigger(context.Background(), s.JS, ref, id); err != nil {
		t.Fatal(err)
	}
	op, d = c.waitEnd(t, id, 2*time.Minute)
	if op != clarity.OpFailed || !strings.Contains(d.Error, "authorize") {
		t.Fatalf("sync after revocation: %s %q, want failed, saying to authorize again", op, d.Error)
	}
	s.waitState(t, ref, connector.StateNeedsReauthorization)
	if del := c.deletions(mark); len(del) > 0 {
		t.Errorf("a sync refused for its tokens deleted %v", del[:min(5, len(del))])
	}
	requireSame(t, "acme's records after the refused sync", c.snapshot(), want)

	// Authorized again, it syncs.
	code, out, errw := s.zoomctl(t, "connector", "authorize", "--tenant", ref.Tenant, "--connector", ref.ID, "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector authorize: %d %s", code, errw)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.AuthorizeURL == "" {
		t.Fatalf("connector authorize --json: %v %s", err, out)
	}
	if _, status, page := s.browser(t, v.AuthorizeURL); status != http.StatusOK {
		t.Fatalf("re-authorization: %d %s", status, page)
	}
	s.waitState(t, ref, connector.StateActive)
	op, d = c.waitSyncEnd(t, 3, 2*time.Minute)
	if op != clarity.OpCompleted {
		t.Fatalf("sync after re-authorization: %s (%s)", op, d.Error)
	}

	// The app is removed from the Zoom account.
	mark = c.mark()
	if dl := app.Deauthorize(context.Background()); dl.Status != http.StatusOK {
		t.Fatalf("app_deauthorized delivery: status %d", dl.Status)
	}
	s.waitState(t, ref, connector.StateDisabled)
	id = cli.NewRequestID()
	if err := cli.Trigger(context.Background(), s.JS, ref, id); err != nil {
		t.Fatal(err)
	}
	if op, d := c.waitEnd(t, id, time.Minute); op != clarity.OpFailed || !strings.Contains(d.Error, "disabled") {
		t.Errorf("sync of a disabled connector: %s %q, want failed saying it is disabled", op, d.Error)
	}
	if del := c.deletions(mark); len(del) > 0 {
		t.Errorf("disabling the connector deleted %v", del[:min(5, len(del))])
	}

	// Removed with --purge: its records go, each with a deleted event.
	held := len(c.snapshot())
	code, out, errw = s.zoomctl(t, "connector", "remove", "--tenant", ref.Tenant, "--connector", ref.ID, "--purge", "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector remove --purge: %d %s", code, errw)
	}
	var removed struct {
		Deleted int `json:"records_deleted"`
	}
	if err := json.Unmarshal([]byte(out), &removed); err != nil || removed.Deleted != held {
		t.Errorf("remove --purge: %s (%v), want %d records deleted", out, err, held)
	}
	waitFor(t, 30*time.Second, func() bool { return len(c.snapshot()) == 0 })
	if code, _, errw := s.zoomctl(t, "connector", "show", "--tenant", ref.Tenant, "--connector", ref.ID); code != cli.ExitFailed ||
		!strings.Contains(errw, "no such connector") {
		t.Errorf("show after remove: %d %q", code, errw)
	}
	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}

// TestTwoTenants runs two tenants' connectors on two Zoom accounts behind
// one simulator, one an OAuth app and one Server-to-Server, synced at once:
// each one's records are its own account's, and no event or log line of
// one names the other's users. Then every table, the JetStream store and
// every log are searched for the secrets and tokens the simulator issued:
// none may be there in plain text.
func TestTwoTenants(t *testing.T) {
	s := startConnectorStack(t, 81, nil, nil)
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	globex := pipeline.ConnectorRef{Tenant: "globex", ID: "zoom-eu"}
	acmeAcct, acmeApp := s.account(t, "acc-acme", acme, 82, 200)
	globexAcct, _ := s.account(t, "acc-globex", globex, 83, 150)
	ca, cg := collectRef(t, s.Stack, acme), collectRef(t, s.Stack, globex)

	v := s.addOAuth(t, acme, acmeApp, acmeApp.ClientSecret())
	if _, status, page := s.browser(t, v.AuthorizeURL); status != http.StatusOK {
		t.Fatalf("acme's authorization: %d %s", status, page)
	}
	code, out, errw := s.zoomctl(t, "connector", "add", "--tenant", globex.Tenant, "--connector", globex.ID, "--auth", "s2s",
		"--client-id", globexAcct.ClientID(), "--client-secret-file", secretFile(t, globexAcct.ClientSecret()),
		"--account-id", globexAcct.ID(), "--webhook-secret-file", secretFile(t, globexAcct.WebhookSecret()), "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector add globex: %d %s", code, errw)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.State != connector.StateActive {
		t.Fatalf("connector add globex --json: %v %s", err, out)
	}
	// Both first syncs run at once (acme's from its authorization, globex's
	// from its add).
	for _, c := range []struct {
		name string
		col  *collector
		acct *zoomtest.Account
	}{{"acme", ca, acmeAcct}, {"globex", cg, globexAcct}} {
		if op, d := c.col.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("%s's first sync: %s (%s)", c.name, op, d.Error)
		}
		requireSame(t, c.name+"'s records", c.col.snapshot(), expectedOf(c.acct.Org()))
	}
	// Changes in each account reach their own connector only.
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(81, 1))
	if _, err := acmeAcct.RandomMutations(ctx, rng, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := globexAcct.RandomMutations(ctx, rng, 5); err != nil {
		t.Fatal(err)
	}
	// Zoom sends no webhook for some changes (roles): a full sync of each,
	// started after them, reads those.
	for _, x := range []struct {
		ref pipeline.ConnectorRef
		col *collector
	}{{acme, ca}, {globex, cg}} {
		id := cli.NewRequestID()
		if err := cli.Trigger(ctx, s.JS, x.ref, id); err != nil {
			t.Fatal(err)
		}
		if op, d := x.col.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("%s's sync after the changes: %s (%s)", x.ref, op, d.Error)
		}
	}
	waitFor(t, time.Minute, func() bool {
		return len(diffRecords(ca.snapshot(), expectedOf(acmeAcct.Org()))) == 0 &&
			len(diffRecords(cg.snapshot(), expectedOf(globexAcct.Org()))) == 0
	})

	// No event of one names a user or group of the other (by id: the
	// generated organisations may share people's names and emails).
	names := func(org *zoomtest.Org) []string {
		var out []string
		for _, u := range org.Users {
			if u.ID != "" {
				out = append(out, strings.ToLower(u.ID))
			}
		}
		for _, g := range org.Groups {
			out = append(out, strings.ToLower(g.ID))
		}
		return out
	}
	for _, c := range []struct {
		name   string
		col    *collector
		others []string
	}{{"acme", ca, names(globexAcct.Org())}, {"globex", cg, names(acmeAcct.Org())}} {
		for _, ev := range c.col.since(0) {
			b, _ := json.Marshal(ev)
			for _, o := range c.others {
				if bytes.Contains(bytes.ToLower(b), []byte(o)) {
					t.Fatalf("an event of %s names %s of the other tenant: %s", c.name, o, b)
				}
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(s.Config().Dir, "logs", "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, `"tenant":"acme"`) && strings.Contains(line, "globex") ||
				strings.Contains(line, `"tenant":"globex"`) && strings.Contains(line, "acme") {
				t.Errorf("a log line of one tenant names the other: %s", line)
			}
		}
	}

	// Secrets at rest: the simulator's client secrets, webhook secret
	// tokens, access and refresh tokens, and the secrets key, nowhere in
	// plain text.
	secrets := append(s.Sim.IssuedTokens(), acmeApp.ClientSecret(), globexAcct.ClientSecret(),
		acmeAcct.WebhookSecret(), globexAcct.WebhookSecret())
	_, keyB64, _ := strings.Cut(s.key, ":")
	secrets = append(secrets, keyB64)
	requireNoSecrets(t, s, acmeApp.ClientID(), secrets, 8)
}

// requireNoSecrets searches every table of the stack's database, every file
// of its NATS store and every log for the secrets.
//
// present is a value stored in plain text (a client id, which is no
// secret): finding it shows that the search reads what is stored.
func requireNoSecrets(t *testing.T, s *connectorStack, present string, secrets []string, atLeast int) {
	t.Helper()
	var hay [][]byte
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.Config().DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		_ = rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	if len(tables) < 5 {
		t.Fatalf("found only the tables %v", tables)
	}
	for _, table := range tables {
		var buf bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY (SELECT * FROM "+table+") TO STDOUT"); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		hay = append(hay, buf.Bytes())
	}
	files := 0
	for _, dir := range []string{filepath.Join(s.Config().Dir, "nats"), filepath.Join(s.Config().Dir, "logs")} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil {
				hay = append(hay, b)
				files++
			}
			return nil
		})
	}
	if files < 10 {
		t.Fatalf("found only %d files in the NATS store and the logs", files)
	}
	found := false
	for _, h := range hay {
		found = found || bytes.Contains(h, []byte(present))
	}
	if !found {
		t.Fatalf("the search did not find %q, stored in plain text: it reads nothing", present)
	}
	checked := 0
	for _, secret := range secrets {
		if len(secret) < 8 {
			continue
		}
		checked++
		for _, h := range hay {
			if bytes.Contains(h, []byte(secret)) {
				t.Errorf("a secret the simulator issued (%d bytes, starting %q) is stored in plain text", len(secret), secret[:4])
				break
			}
		}
	}
	if checked < atLeast {
		t.Errorf("only %d secrets checked, want at least %d", checked, atLeast)
	}
}

// TestConnectorBadInput: every wrong input of the connection journey gets a
// clear error and stores nothing.
func TestConnectorBadInput(t *testing.T) {
	s := startConnectorStack(t, 91, nil, nil)
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	_, app := s.account(t, "acc-acme", acme, 92, 30)

	// Malformed names and missing flags: usage errors, nothing stored.
	for _, args := range [][]string{
		{"--tenant", "Acme", "--connector", "zoom"},
		{"--tenant", "acme", "--connector", "zo.om"},
		{"--tenant", "acme", "--connector", strings.Repeat("z", 64)},
		{"--tenant", "acme", "--connector", "zoom", "--auth", "basic"},
		{"--tenant", "acme", "--connector", "zoom", "--auth", "s2s"},
	} {
		full := append([]string{"connector", "add", "--client-id", "cid", "--client-secret-file", secretFile(t, "x"), "--auth", "oauth"}, args...)
		if code, _, errw := s.zoomctl(t, full...); code != cli.ExitUsage || errw == "" {
			t.Errorf("connector add %v: exit %d %q, want a usage error", args, code, errw)
		}
	}
	if code, _, errw := s.zoomctl(t, "connector", "add", "--tenant", "acme", "--connector", "zoom", "--auth", "oauth",
		"--client-id", "cid"); code != cli.ExitUsage || !strings.Contains(errw, "--client-secret-file") {
		t.Errorf("connector add without a secret file: %d %q", code, errw)
	}
	if code, out, _ := s.zoomctl(t, "connector", "list", "--json"); code != cli.ExitOK || strings.TrimSpace(out) != "" {
		t.Fatalf("connectors after refused adds: %d %q, want none", code, out)
	}

	// A wrong client secret: Zoom refuses the code exchange; the page
	// says what to do, and the connector stays pending.
	v := s.addOAuth(t, acme, app, "not-the-secret")
	_, status, page := s.browser(t, v.AuthorizeURL)
	if status != http.StatusBadRequest || !strings.Contains(page, "Client Secret") {
		t.Errorf("callback with a wrong client secret: %d %s", status, page)
	}
	if got := s.show(t, acme); got.State != connector.StatePendingAuthorization {
		t.Errorf("state after a refused exchange: %s", got.State)
	}
	if strings.Contains(page, "not-the-secret") || strings.Contains(page, app.ClientSecret()) {
		t.Error("the error page shows a secret")
	}

	// Denied consent, forged, replayed and expired states, an unknown
	// connector on the redirect.
	code, out, _ := s.zoomctl(t, "connector", "authorize", "--tenant", "acme", "--connector", "zoom", "--json")
	if code != cli.ExitOK {
		t.Fatal("connector authorize failed")
	}
	_ = json.Unmarshal([]byte(out), &v)
	au, _ := url.Parse(v.AuthorizeURL)
	state := au.Query().Get("state")
	base := s.webhookBase() + "/application/oauthProcessCode/"
	for _, tc := range []struct {
		name, path string
		status     int
		says       string
	}{
		{"denied consent", "zoom?error=access_denied&state=" + url.QueryEscape(state), http.StatusBadRequest, "declined"},
		{"the same state again", "zoom?code=abc&state=" + url.QueryEscape(state), http.StatusBadRequest, "used already"},
		{"forged state", "zoom?code=abc&state=" + url.QueryEscape(state[:len(state)-3]+"AAA"), http.StatusBadRequest, "not valid"},
		{"no state", "zoom?code=abc", http.StatusBadRequest, "no state"},
		{"unknown connector", "Bad.Name?code=abc&state=x", http.StatusNotFound, "no connector"},
	} {
		status, page := s.get(t, base+tc.path)
		if status != tc.status || !strings.Contains(page, tc.says) {
			t.Errorf("%s: %d, page %q; want %d saying %q", tc.name, status, page, tc.status, tc.says)
		}
	}
	if got := s.show(t, acme); got.State != connector.StatePendingAuthorization {
		t.Errorf("state after refused redirects: %s", got.State)
	}
	requireNoSecrets(t, s, app.ClientID(), append(s.Sim.IssuedTokens(), app.ClientSecret(), app.Account().WebhookSecret()), 2)
}

// TestTokenRotationAcrossFetchers has two fetcher replicas sync an OAuth
// connector whose access tokens live 2 seconds, again and again, while
// webhooks make them re-read users: every sync completes, each refresh
// token is presented once, and a rotation happens about once per expiry.
func TestTokenRotationAcrossFetchers(t *testing.T) {
	s := startConnectorStack(t, 101, map[string]int{"fetcher": 2}, nil)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	acct, err := s.Sim.AddAccount("acc-acme", zoomtest.Generate(102, zoomtest.Size{Users: 400, Groups: 5, Roles: 3}), zoomtest.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app, err := acct.AddApp(zoomtest.AppOptions{RedirectURIs: []string{connector.RedirectURL(redirectTemplate, ref)}, TokenTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	acct.SetWebhookURL(s.webhookBase() + "/webhooks/zoom/acme/zoom")
	acct.SetWebhookSecret("wh-acme-rotation")
	// Slow pages, so that each sync outlives a few tokens.
	acct.Faults().Add(zoomtest.Fault{Route: "GET /groups/{groupId}/admins", Latency: 150 * time.Millisecond})
	c := collectRef(t, s.Stack, ref)
	v := s.addOAuth(t, ref, app, app.ClientSecret())
	if _, status, page := s.browser(t, v.AuthorizeURL); status != http.StatusOK {
		t.Fatalf("authorization: %d %s", status, page)
	}
	if op, d := c.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	start := time.Now()
	rng := mrand.New(mrand.NewPCG(101, 2))
	ctx := context.Background()
	// Syncs back to back for 8 seconds: four token lives at least.
	for i := 0; i < 3 || time.Since(start) < 8*time.Second; i++ {
		id := cli.NewRequestID()
		if err := cli.Trigger(ctx, s.JS, ref, id); err != nil {
			t.Fatal(err)
		}
		if _, err := acct.RandomMutations(ctx, rng, 10); err != nil {
			t.Fatal(err)
		}
		if op, d := c.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("sync %d: %s (%s)", i+2, op, d.Error)
		}
	}
	// A last sync with no change after it: Zoom sends no webhook for some
	// changes (roles), which only a full sync that starts after them reads.
	id := cli.NewRequestID()
	if err := cli.Trigger(ctx, s.JS, ref, id); err != nil {
		t.Fatal(err)
	}
	if op, d := c.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("last sync: %s (%s)", op, d.Error)
	}
	waitFor(t, time.Minute, func() bool { return len(diffRecords(c.snapshot(), expectedOf(acct.Org()))) == 0 })
	elapsed := time.Since(start)
	st := acct.TokenStats()
	if st.Reuses != 0 || st.MaxRefreshUses > 1 || st.RefreshRejected != 0 {
		t.Errorf("token stats %+v: a refresh token was presented more than once", st)
	}
	// Refreshed in the last quarter of each 2-second life: at most one
	// rotation per 1.5 s, and some.
	if most := int(elapsed/(1500*time.Millisecond)) + 2; st.Rotations == 0 || st.Rotations > most {
		t.Errorf("%d rotations in %s of 2-second tokens, want 1 to %d", st.Rotations, elapsed.Round(time.Millisecond), most)
	}
	t.Logf("%d rotations in %s; stats %+v", st.Rotations, elapsed.Round(time.Millisecond), st)
}
