package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// chromiumPath finds the headless browser the console tests drive. Without
// one the tests skip, except under CI=true, where that is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: install it (apt-get install -y chromium) to run the admin console's browser tests")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium); set CI=true to make this a failure")
	return ""
}

// screenshotDir is where the console tests write their screenshots:
// $CONSOLE_SCREENSHOTS, or bench-results/screenshots at the repository's
// root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "bench-results", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// consoleStack is a stack in OAuth mode (a secrets key, no connector in
// the services' environment) whose webhook service serves the admin
// console.
func consoleStack(t *testing.T, org *zoomtest.Org) *devstack.Stack {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Config{
		BinDir: binDir(t), DatabaseURL: pgtest.New(t, func(context.Context, string) error { return nil }),
		Dir: t.TempDir(), Org: org, OAuth: true, Env: map[string]string{"TRIGGER_ACK_WAIT": "3s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			dumpLogs(t, s)
		}
	})
	for _, name := range devstack.Services {
		if _, err := s.Run(name); err != nil {
			t.Fatal(err)
		}
	}
	if s.AdminURL == "" || s.AdminToken == "" {
		t.Fatal("the stack serves no admin console")
	}
	return s
}

// browserSession drives one headless chromium: each step's screenshot
// goes to dir, and every page it shows is checked for the secrets.
type browserSession struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	prefix  string
	secrets []string
	shots   []string
}

func newBrowser(t *testing.T, prefix string, secrets []string) *browserSession {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return &browserSession{t: t, ctx: ctx, dir: screenshotDir(t), prefix: prefix, secrets: secrets}
}

// do runs steps, failing the test with what it was doing.
func (b *browserSession) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// text returns the text of the first element sel matches.
func (b *browserSession) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// html returns the page's HTML, checked for secrets.
func (b *browserSession) html() string {
	b.t.Helper()
	h, err := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("read the page: %v", err)
	}
	for _, s := range b.secrets {
		if strings.Contains(h, s) {
			loc, _ := chromedp.Run(b.ctx, chromedp.Location())
			b.t.Errorf("the page at %s holds a secret (%d characters)", loc, len(s))
		}
	}
	return h
}

// location is the page's URL.
func (b *browserSession) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// shot writes a screenshot of the whole page as <prefix>-<n>-<name>.png and checks
// the page for secrets.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.shots = append(b.shots, name)
	p := filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.prefix, len(b.shots), name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Error(err)
	}
	b.html()
}

// setValue sets a form field's value as typing it over would.
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(function(e){e.value=%s;return true})(document.querySelector(%s))`, strconv.Quote(v), strconv.Quote(sel))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](js)(ctx, t)
		return chromedp.Void{}, err
	}
}

// waitJS waits until a JavaScript expression is true on the page; a page
// being replaced meanwhile (its context gone) is tried again.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		deadline := time.Now().Add(90 * time.Second)
		for {
			ok, err := chromedp.Evaluate[bool](expr)(ctx, t)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			if time.Now().After(deadline) {
				return chromedp.Void{}, fmt.Errorf("%s still false after 90s (last error: %v)", expr, err)
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// expectedCounts counts the records an organisation implies, per kind.
func expectedCounts(org *zoomtest.Org) map[string]int {
	out := map[string]int{}
	for _, r := range zoomtest.Expected(org) {
		out[r.Kind]++
	}
	return out
}

// TestConsoleConnectJourney connects Zoom in a real browser the way an
// administrator does: sign in with the admin token, Connect Zoom, Validate
// a Server-to-Server app that lacks a scope (the page names it), then an
// OAuth app's credentials, Save, the simulated Zoom's consent page,
// Authorize, the redirect's page, and the connector's page showing the
// first sync completed with the account's record counts. A form posted
// without its CSRF token is refused; Deny at consent stores no tokens; no
// page ever holds a secret. Screenshots of each step go to
// $CONSOLE_SCREENSHOTS (default bench-results/screenshots).
func TestConsoleConnectJourney(t *testing.T) {
	chromiumPath(t)
	// As a deployment runs: NATS authorization on, each service on its own
	// credentials; zoomctl on the operator's.
	s := startSecuredStack(t, zoomtest.Generate(170, zoomtest.Size{Users: 10, Groups: 1, Roles: 2}), true)
	if s.AdminURL == "" || s.AdminToken == "" {
		t.Fatal("the stack serves no admin console")
	}
	t.Setenv("NATS_CREDS", s.CredsFile(natsauth.RoleOperator))
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	declined := pipeline.ConnectorRef{Tenant: "acme", ID: "declined"}

	// The account to connect, with an OAuth app showing a consent page.
	org := zoomtest.Generate(171, zoomtest.Size{Users: 60, Groups: 4, Roles: 3})
	acct, err := s.Sim.AddAccount("acme-zoom", org, zoomtest.AccountOptions{WebhookSecret: "wh-acme-" + strconv.FormatInt(time.Now().UnixNano(), 36)})
	if err != nil {
		t.Fatal(err)
	}
	app, err := acct.AddApp(zoomtest.AppOptions{Consent: true, RedirectURIs: []string{connector.RedirectURL(s.RedirectTemplate(), ref)}})
	if err != nil {
		t.Fatal(err)
	}
	// A Server-to-Server app whose tokens lack role:write:admin.
	lacking, err := s.Sim.AddAccount("lacking", zoomtest.Generate(172, zoomtest.Size{Users: 3, Groups: 1, Roles: 1}),
		zoomtest.AccountOptions{Scopes: slices.DeleteFunc(slices.Clone(zoomtest.DefaultScopes), func(sc string) bool { return sc == "role:write:admin" })})
	if err != nil {
		t.Fatal(err)
	}
	// An app whose authorization the administrator declines.
	other, err := s.Sim.AddAccount("declining", zoomtest.Generate(173, zoomtest.Size{Users: 3, Groups: 1, Roles: 1}), zoomtest.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	otherApp, err := other.AddApp(zoomtest.AppOptions{Consent: true, RedirectURIs: []string{connector.RedirectURL(s.RedirectTemplate(), declined)}})
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, "journey", []string{app.ClientSecret(), lacking.ClientSecret(), otherApp.ClientSecret(),
		acct.WebhookSecret(), s.AdminToken})
	admin := s.AdminURL

	// Sign in.
	b.do("open the console", chromedp.Navigate(admin), chromedp.WaitVisible(chromedp.CSS("#token")))
	if !strings.HasSuffix(b.location(), "/signin") {
		t.Fatalf("the console at %s did not ask to sign in", b.location())
	}
	b.shot("signin")
	b.do("sign in with a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-the-admin-token"),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("p.flash.bad")))
	if got := b.text("p.flash.bad"); !strings.Contains(got, "not the admin token") {
		t.Errorf("a wrong token says %q", got)
	}
	b.do("sign in", chromedp.SendKeys(chromedp.CSS("#token"), s.AdminToken),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("header nav")))
	if got := b.text("main h1"); got != "Connectors" {
		t.Fatalf("after signing in the page is %q", got)
	}
	if ran, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.hasAttribute("data-script")`)); err != nil || !ran {
		t.Errorf("the console's script did not run (%v)", err)
	}
	b.shot("connectors-empty")

	// Connect Zoom: the redirect URL of the connector typed.
	b.do("open Connect Zoom", chromedp.Click(chromedp.CSS(`header nav a[href="/connect"]`)), chromedp.WaitVisible(chromedp.CSS("#redirect-url")))
	b.do("name the connector", setValue("input[name=tenant]", ref.Tenant),
		setValue(`form[method=get] input[name=connector]`, ref.ID),
		chromedp.Click(chromedp.CSS("form[method=get] button")), waitJS(`location.search.indexOf("tenant=acme") >= 0 && document.readyState === "complete"`))
	if got, want := b.text("#redirect-url"), connector.RedirectURL(s.RedirectTemplate(), ref); got != want {
		t.Errorf("redirect URL shown %q, want %q", got, want)
	}
	page := b.html()
	for _, sc := range zoomtest.DefaultScopes {
		if !strings.Contains(page, ">"+sc+"</code>") {
			t.Errorf("the Connect page does not list scope %s", sc)
		}
	}
	b.shot("connect")

	// Validate a Server-to-Server app that lacks a scope: the page names it.
	b.do("validate the app that lacks a scope", chromedp.Click(chromedp.CSS("input[name=auth][value=s2s]")),
		chromedp.SendKeys(chromedp.CSS("#account_id"), lacking.ID()), chromedp.SendKeys(chromedp.CSS("#client_id"), lacking.ClientID()),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), lacking.ClientSecret()),
		chromedp.Click(chromedp.CSS("button[value=validate]")), chromedp.WaitVisible(chromedp.CSS("#validation")))
	verdict := b.text("#validation .verdict")
	if !strings.Contains(verdict, "Missing scopes: role:write:admin") {
		t.Errorf("validation of an app without role:write:admin says %q", verdict)
	}
	if rows := b.text("#validation table"); !strings.Contains(rows, "missing") || !strings.Contains(rows, "role:write:admin") {
		t.Errorf("the validation's checks do not name the missing scope: %q", rows)
	}
	if got := b.text(`label[for=client_secret]`); !strings.Contains(got, "set") {
		t.Errorf("the kept Client Secret is not shown as set: %q", got)
	}
	b.shot("validate-missing-scope")

	// The OAuth app's credentials, Save: on to Zoom's consent page.
	b.do("enter the OAuth app", chromedp.Click(chromedp.CSS("input[name=auth][value=oauth]")),
		setValue("#account_id", ""), setValue("#client_id", app.ClientID()),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), app.ClientSecret()),
		chromedp.SendKeys(chromedp.CSS("#webhook_secret"), acct.WebhookSecret()),
		setValue("#schedule", "manual"),
		chromedp.Click(chromedp.CSS("button[value=save]")), chromedp.WaitVisible(chromedp.CSS("button[value=authorize]")))
	if loc := b.location(); !strings.HasPrefix(loc, s.Sim.URL()+"/oauth/authorize") {
		t.Fatalf("Save went to %s, not the simulator's authorize page", loc)
	}
	consent := b.text("body")
	for _, want := range append([]string{app.ClientID(), "Authorize", "Deny"}, app.Scopes()...) {
		if !strings.Contains(consent, want) {
			t.Errorf("the consent page does not show %q: %q", want, consent)
		}
	}
	b.shot("consent")
	if v := (&connectorStack{Stack: s}).show(t, ref); v.State != connector.StatePendingAuthorization {
		t.Errorf("a saved OAuth connector is %s before its authorization, want %s", v.State, connector.StatePendingAuthorization)
	}

	// The first sync is held up on Zoom's roles listing for a few
	// seconds, so that its progress can be seen while it runs, and Zoom
	// answers its groups listing once with 429: one rate-limit wait.
	acct.Faults().Add(zoomtest.Fault{Route: "GET /roles", Latency: 6 * time.Second, Times: 1})
	acct.Faults().Add(zoomtest.Fault{Route: "GET /groups", Status: 429, Times: 1})

	// Authorize: the redirect's page, which links back to the console.
	b.do("authorize", chromedp.Click(chromedp.CSS("button[value=authorize]")), chromedp.WaitVisible(chromedp.CSS("h1.ok, h1.err")))
	if got := b.text("h1"); got != "Zoom is connected" {
		t.Fatalf("the redirect's page says %q", got)
	}
	if !strings.Contains(b.location(), "/application/oauthProcessCode/"+ref.ID) {
		t.Errorf("the redirect's page is at %s", b.location())
	}
	b.shot("callback")
	b.do("back to the console", chromedp.Click(chromedp.CSS(`a[href="`+admin+`"]`)), chromedp.WaitVisible(chromedp.CSS("table.list")))
	connectorPath := "/connectors/" + ref.Tenant + "/" + ref.ID

	// The connector's page: the first sync completes with the account's
	// records.
	b.do("open the connector", chromedp.Navigate(admin+connectorPath), chromedp.WaitVisible(chromedp.CSS("#live")))
	// The page shows the run while it runs, refreshing by itself.
	if err := chromedp.Do(b.ctx, waitJS(`document.querySelector("#live .state.running") !== null`)); err != nil {
		b.shot("failed-running-sync")
		t.Fatalf("the connector's page did not show the running sync: %v", err)
	}
	if got := b.text("#live"); !strings.Contains(got, "running since") || !strings.Contains(got, "Records changed so far") {
		t.Errorf("the running sync's part says %q", got)
	}
	if err := chromedp.Do(b.ctx, waitJS(`/Zoom pages so far: [1-9]/.test(document.querySelector("#progress").textContent)`)); err != nil {
		t.Errorf("the running sync shows no Zoom pages: %v", err)
	}
	b.shot("connector-running")
	if err := chromedp.Do(b.ctx, waitJS(`document.querySelector("#last-sync .state.completed") !== null`)); err != nil {
		b.shot("failed-first-sync")
		t.Fatalf("the connector's page did not show a completed sync: %v", err)
	}
	want := expectedCounts(org)
	for _, kind := range clarity.Kinds {
		got := b.text(`#records td[data-kind="` + kind + `"]`)
		if got != strconv.Itoa(want[kind]) {
			t.Errorf("the connector's page shows %s %s, want %d", got, kind, want[kind])
		}
	}
	if got := b.text("dl"); !strings.Contains(got, "active") || !strings.Contains(got, "set") {
		t.Errorf("the connector's settings: %q", got)
	}
	if strings.Contains(b.html(), "missing: add") {
		t.Error("the connector's page says a granted scope is missing")
	}
	// The run's pages (every listing's, one page each at this size) and
	// its one rate-limit wait.
	if got := b.text("#runs tbody tr:last-child td.waits"); !strings.HasPrefix(got, "1 (") {
		t.Errorf("the first run shows rate-limit waits %q, want 1 and the time waited", got)
	}
	if got, _ := strconv.Atoi(b.text("#runs tbody tr:last-child td.pages")); got < 5 {
		t.Errorf("the first run shows %d Zoom pages, want one per listing at least", got)
	}
	if n := strings.Count(b.html(), `<svg class="chart"`); n != 2 {
		t.Errorf("the connector's page has %d charts, want 2", n)
	}
	b.shot("connector-synced")

	// Sync now, from the connector's page: a second run, in the charts.
	b.do("sync now", chromedp.Click(chromedp.CSS(`form[action$="/sync"] button`)), chromedp.WaitVisible(chromedp.CSS("p.flash.good")))
	if got := b.text("p.flash.good"); !strings.Contains(got, "Full sync requested") {
		t.Errorf("Sync now says %q", got)
	}
	if err := chromedp.Do(b.ctx, waitJS(`document.querySelectorAll("#runs tbody tr").length >= 2 && document.querySelector("#last-sync .state.completed") !== null`)); err != nil {
		b.shot("failed-second-sync")
		t.Fatalf("the second sync did not show on the connector's page: %v", err)
	}
	b.shot("connector-two-runs")
	b.do("the connectors", chromedp.Navigate(admin+"/"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	if row := b.text("table.list tbody"); !strings.Contains(row, ref.ID) || !strings.Contains(row, "completed") ||
		!strings.Contains(row, strconv.Itoa(want[clarity.KindServiceUser])) {
		t.Errorf("the connectors list shows %q", row)
	}
	if strings.Contains(b.html(), `class="flash bad"`) {
		t.Errorf("the connectors page shows an error: %q", b.text("p.flash.bad"))
	}
	b.shot("connectors")

	// A form posted without its CSRF token is refused, and does nothing.
	runs := s.Sim.TotalRequests()
	b.do("post Sync now without the CSRF token", chromedp.Navigate(admin+connectorPath), chromedp.WaitVisible(chromedp.CSS(`form[action$="/sync"]`)))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('form[action$="/sync"] input[name=csrf]').remove(), true`)); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(`form[action$="/sync"] button`)))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 403 {
		t.Errorf("a form without its CSRF token got status %d, want 403", resp.Status)
	}
	if got := b.text("main h1"); got != "Refused" {
		t.Errorf("a form without its CSRF token shows %q", got)
	}
	b.shot("csrf-refused")
	time.Sleep(2 * time.Second)
	if n := s.Sim.TotalRequests(); n != runs {
		t.Errorf("a refused Sync now still made %d Zoom requests", n-runs)
	}

	// Deny at Zoom's consent page: a clear page, no tokens stored.
	b.do("connect the other app", chromedp.Navigate(admin+"/connect?tenant="+url.QueryEscape(declined.Tenant)+"&connector="+url.QueryEscape(declined.ID)),
		chromedp.WaitVisible(chromedp.CSS("#client_id")), chromedp.Click(chromedp.CSS("input[name=auth][value=oauth]")),
		chromedp.SendKeys(chromedp.CSS("#client_id"), otherApp.ClientID()), chromedp.SendKeys(chromedp.CSS("#client_secret"), otherApp.ClientSecret()),
		chromedp.Click(chromedp.CSS("button[value=save]")), chromedp.WaitVisible(chromedp.CSS("button[value=deny]")))
	b.do("deny", chromedp.Click(chromedp.CSS("button[value=deny]")), chromedp.WaitVisible(chromedp.CSS("h1.ok, h1.err")))
	if got := b.text("h1"); got != "Zoom was not connected" {
		t.Errorf("after Deny the page says %q", got)
	}
	if got := b.text("body"); !strings.Contains(got, "declined") {
		t.Errorf("after Deny the page does not say the authorization was declined: %q", got)
	}
	b.shot("denied")
	if v := (&connectorStack{Stack: s}).show(t, declined); v.State != connector.StatePendingAuthorization {
		t.Errorf("after Deny the connector is %s, want %s", v.State, connector.StatePendingAuthorization)
	}
	if otherApp.Authorized() || other.TokenStats().Codes != 0 || other.TokenStats().AccessTokens != 0 {
		t.Errorf("after Deny Zoom issued codes or tokens: %+v", other.TokenStats())
	}
	code, out, errw := (&connectorStack{Stack: s}).zoomctl(t, "connector", "show", "--tenant", declined.Tenant, "--connector", declined.ID, "--json")
	if code != cli.ExitOK || strings.Contains(out, "last_sync") {
		t.Errorf("after Deny: connector show exit %d: %s %s", code, out, errw)
	}
	// Re-authorize from the connector's page: Zoom's consent page again,
	// and this time Authorize.
	b.do("re-authorize", chromedp.Navigate(admin+"/connectors/"+declined.Tenant+"/"+declined.ID),
		chromedp.Click(chromedp.CSS(`form[action$="/authorize"] button`)), chromedp.WaitVisible(chromedp.CSS("button[value=authorize]")),
		chromedp.Click(chromedp.CSS("button[value=authorize]")), chromedp.WaitVisible(chromedp.CSS("h1.ok, h1.err")))
	if got := b.text("h1"); got != "Zoom is connected" {
		t.Errorf("after Re-authorize the page says %q", got)
	}
	(&connectorStack{Stack: s}).waitState(t, declined, connector.StateActive)
	if refused := refusedInLogs(t, s); len(refused) > 0 {
		t.Errorf("NATS refused a service something:\n%s", strings.Join(refused, "\n"))
	}
	t.Logf("screenshots: %s (%s)", b.dir, strings.Join(b.shots, ", "))
}

// TestConsoleWithoutJavaScript uses the console in a browser that runs no
// script: sign in, connect a Server-to-Server app (Save starts its first
// sync), then disable, enable and remove it, all as plain forms and
// redirects.
func TestConsoleWithoutJavaScript(t *testing.T) {
	chromiumPath(t)
	org := zoomtest.Generate(180, zoomtest.Size{Users: 25, Groups: 2, Roles: 2})
	s := consoleStack(t, org)
	ref := pipeline.ConnectorRef{Tenant: "nojs", ID: "zoom-s2s"}
	b := newBrowser(t, "nojs", []string{s.Sim.ClientSecret(), s.AdminToken})
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	admin := s.AdminURL
	b.do("sign in", chromedp.Navigate(admin+"/signin"), chromedp.SendKeys(chromedp.CSS("#token"), s.AdminToken),
		chromedp.Click(chromedp.CSS("form button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("header nav")))
	b.do("connect a Server-to-Server app", chromedp.Navigate(admin+"/connect?tenant="+ref.Tenant+"&connector="+ref.ID),
		chromedp.WaitVisible(chromedp.CSS("#client_id")), chromedp.Click(chromedp.CSS("input[name=auth][value=s2s]")),
		chromedp.SendKeys(chromedp.CSS("#account_id"), s.Sim.AccountID()), chromedp.SendKeys(chromedp.CSS("#client_id"), s.Sim.ClientID()),
		chromedp.SendKeys(chromedp.CSS("#client_secret"), s.Sim.ClientSecret()),
		chromedp.Click(chromedp.CSS("button[value=validate]")), chromedp.WaitVisible(chromedp.CSS("#validation")))
	if ran, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.documentElement.hasAttribute("data-script")`)); err != nil || ran {
		t.Fatalf("the console's script ran in a browser with scripts disabled (%v)", err)
	}
	if got := b.text("#validation .verdict"); got != "All checks passed: Save to connect." {
		t.Errorf("validation of the simulator's own app says %q", got)
	}
	b.shot("validated")
	b.do("save", chromedp.Click(chromedp.CSS("button[value=save]")), chromedp.WaitVisible(chromedp.CSS("p.flash.good")))
	if got := b.text("p.flash.good"); !strings.Contains(got, "first full sync has started") {
		t.Errorf("Save of a Server-to-Server app says %q", got)
	}
	connectorPath := "/connectors/" + ref.Tenant + "/" + ref.ID
	if loc := b.location(); loc != admin+connectorPath {
		t.Errorf("Save went to %s, want the connector's page", loc)
	}
	// Without the script the page does not refresh: reloading it shows the
	// first sync's end and records.
	want := expectedCounts(org)
	deadline := time.Now().Add(90 * time.Second)
	for {
		b.do("reload the connector's page", chromedp.Navigate(admin+connectorPath), chromedp.WaitVisible(chromedp.CSS("#live")))
		if got := b.text("#live"); strings.Contains(got, "Last sync completed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed sync on the connector's page after 90s: %q", b.text("#live"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := b.text(`#records td[data-kind="service_user"]`); got != strconv.Itoa(want[clarity.KindServiceUser]) {
		t.Errorf("the page shows %s users, want %d", got, want[clarity.KindServiceUser])
	}
	b.shot("connector")
	b.do("disable", chromedp.Click(chromedp.CSS(`form[action$="/disable"] button`)), chromedp.WaitVisible(chromedp.CSS(`form[action$="/enable"]`)))
	if v := (&connectorStack{Stack: s}).show(t, ref); v.State != connector.StateDisabled {
		t.Errorf("after Disable the connector is %s", v.State)
	}
	b.do("enable", chromedp.Click(chromedp.CSS(`form[action$="/enable"] button`)), chromedp.WaitVisible(chromedp.CSS(`form[action$="/disable"]`)))
	if v := (&connectorStack{Stack: s}).show(t, ref); v.State != connector.StateActive {
		t.Errorf("after Enable the connector is %s", v.State)
	}
	// Save on a registered connector updates it: here only its schedule;
	// the secrets stay as they were.
	b.do("change the schedule", chromedp.Navigate(admin+"/connect?tenant="+ref.Tenant+"&connector="+ref.ID),
		chromedp.WaitVisible(chromedp.CSS("#schedule")), chromedp.Click(chromedp.CSS("input[name=auth][value=s2s]")),
		setValue("#schedule", "6h"), chromedp.Click(chromedp.CSS("button[value=save]")), chromedp.WaitVisible(chromedp.CSS("p.flash.good")))
	if got := b.text("p.flash.good"); !strings.Contains(got, "saved") {
		t.Errorf("Save of a registered connector says %q", got)
	}
	if v := (&connectorStack{Stack: s}).show(t, ref); v.Schedule != "6h" || v.State != connector.StateActive || v.ClientID != s.Sim.ClientID() {
		t.Errorf("after the update: %+v", v)
	}
	// Remove needs its box ticked; the browser insists (required), and so
	// does the console.
	b.do("remove", chromedp.Click(chromedp.CSS(`form[action$="/remove"] input[name=confirm]`)),
		chromedp.Click(chromedp.CSS(`form[action$="/remove"] button`)), waitJS(`location.pathname === "/" && document.querySelector("p.flash.good") !== null`))
	if got := b.text("p.flash.good"); !strings.Contains(got, "removed") || b.location() != admin+"/" {
		t.Errorf("Remove says %q at %s", got, b.location())
	}
	b.shot("removed")
	code, _, _ := (&connectorStack{Stack: s}).zoomctl(t, "connector", "show", "--tenant", ref.Tenant, "--connector", ref.ID)
	if code == cli.ExitOK {
		t.Error("the removed connector is still registered")
	}
}
