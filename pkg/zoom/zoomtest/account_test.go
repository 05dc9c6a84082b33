package zoomtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// twoAccounts serves the default account and acct-b, different
// organisations, each with an OAuth app.
type twoAccountsFixture struct {
	s          *Server
	a, b       *Account
	appA, appB *App
	clock      *fakeClock
}

func twoAccounts(t *testing.T) twoAccountsFixture {
	t.Helper()
	clock := newClock()
	s := NewServer(t, small(t), Options{Now: clock.Now})
	b, err := s.AddAccount("acct-b", Generate(99, Size{Users: 80, Groups: 4, Roles: 4}), AccountOptions{})
	if err != nil {
		t.Fatalf("add account: %v", err)
	}
	f := twoAccountsFixture{s: s, a: s.DefaultAccount(), b: b, clock: clock}
	if f.appA, err = f.a.AddApp(AppOptions{ClientID: "app-a", RedirectURIs: []string{testRedirect}}); err != nil {
		t.Fatal(err)
	}
	if f.appB, err = b.AddApp(AppOptions{ClientID: "app-b", RedirectURIs: []string{testRedirect}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// oauthToken authorizes an app and returns its access token.
func (f twoAccountsFixture) oauthToken(t *testing.T, app *App) string {
	t.Helper()
	return oauthFixture{s: f.s, app: app, clock: f.clock}.exchange(t).AccessToken
}

// s2sToken gets an account's Server-to-Server token.
func s2sToken(t *testing.T, s *Server, a *Account) string {
	t.Helper()
	cfg := oauth2.Config{ClientID: a.ClientID(), ClientSecret: a.ClientSecret(),
		Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := cfg.Exchange(context.Background(), "", oauth2.SetAuthURLParam("grant_type", "account_credentials"),
		oauth2.SetAuthURLParam("account_id", a.ID()))
	if err != nil {
		t.Fatalf("account_credentials for %s: %v", a.ID(), err)
	}
	return tok.AccessToken
}

// emails lists every active user's email a token sees.
func emails(t *testing.T, s *Server, token string) []string {
	t.Helper()
	items, _ := listAll(t, s, token, "/users?page_size=300", "users")
	var out []string
	for _, it := range items {
		out = append(out, it["email"].(string))
	}
	slices.Sort(out)
	return out
}

func activeEmails(org *Org) []string {
	var out []string
	for _, u := range org.Users {
		if u.Status == StatusActive {
			out = append(out, u.Email)
		}
	}
	slices.Sort(out)
	return out
}

func TestTwoAccountsServeTheirOwnData(t *testing.T) {
	f := twoAccounts(t)
	wantA, wantB := activeEmails(f.a.Org()), activeEmails(f.b.Org())
	if slices.Equal(wantA, wantB) {
		t.Fatal("the two organisations are the same; the test proves nothing")
	}
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  []string
	}{
		{"default account, server-to-server", func(t *testing.T) string { return s2sToken(t, f.s, f.a) }, wantA},
		{"default account, OAuth app", func(t *testing.T) string { return f.oauthToken(t, f.appA) }, wantA},
		{"second account, server-to-server", func(t *testing.T) string { return s2sToken(t, f.s, f.b) }, wantB},
		{"second account, OAuth app", func(t *testing.T) string { return f.oauthToken(t, f.appB) }, wantB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := emails(t, f.s, tt.token(t)); !slices.Equal(got, tt.want) {
				t.Errorf("got %d users, want the account's %d", len(got), len(tt.want))
			}
		})
	}

	t.Run("get user of the other account", func(t *testing.T) {
		if r := api(t, f.s, f.oauthToken(t, f.appB), "GET", "/users/"+f.a.Org().Users[0].ID, nil); r.status != 404 || r.code() != 1001 {
			t.Errorf("got %d %s, want 404 code 1001", r.status, r.raw)
		}
	})
	t.Run("user detail names its account", func(t *testing.T) {
		r := api(t, f.s, f.oauthToken(t, f.appB), "GET", "/users/"+f.b.Org().Users[0].ID, nil)
		if r.status != 200 || r.str("account_id") != "acct-b" {
			t.Errorf("got %d account_id %q, want 200 acct-b", r.status, r.str("account_id"))
		}
	})
	t.Run("page token of the other account", func(t *testing.T) {
		first := api(t, f.s, s2sToken(t, f.s, f.a), "GET", "/users?page_size=1", nil)
		next := first.str("next_page_token")
		r := api(t, f.s, s2sToken(t, f.s, f.b), "GET", "/users?page_size=1&next_page_token="+url.QueryEscape(next), nil)
		if r.status != 400 || r.code() != 300 {
			t.Errorf("got %d %s, want 400 code 300", r.status, r.raw)
		}
	})
	t.Run("credentials of one account for another", func(t *testing.T) {
		req, _ := http.NewRequest("POST", f.s.TokenURL()+"?grant_type=account_credentials&account_id="+f.a.ID(), nil)
		req.SetBasicAuth(f.b.ClientID(), f.b.ClientSecret())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("got %d, want 400 (invalid account)", resp.StatusCode)
		}
	})
}

func TestAccountMutationsAndWebhooks(t *testing.T) {
	f := twoAccounts(t)
	rcA, rcB := newReceiver(t), newReceiver(t)
	f.s.SetWebhookURL(rcA.URL)
	f.a.SetWebhookSecret(testSecret)
	f.b.SetWebhookURL(rcB.URL)
	f.b.SetWebhookSecret("secret-of-b")

	id, d, err := f.b.AddUser(context.Background(), User{Email: "new.person@b.example.com"})
	if err != nil || !d.Sent() || d.Account != "acct-b" {
		t.Fatalf("add user to acct-b: %v, delivery %+v", err, d)
	}
	got := rcB.all()
	if len(got) != 1 || len(rcA.all()) != 0 {
		t.Fatalf("got %d notifications at B and %d at A, want 1 and 0", len(got), len(rcA.all()))
	}
	if !verify("secret-of-b", got[0]) || got[0].payload["account_id"] != "acct-b" {
		t.Errorf("got %s, want a notification signed with B's secret for acct-b", got[0].raw)
	}
	if r := api(t, f.s, f.oauthToken(t, f.appB), "GET", "/users/"+id, nil); r.status != 200 {
		t.Errorf("B's token: got %d, want the new user", r.status)
	}
	if r := api(t, f.s, f.oauthToken(t, f.appA), "GET", "/users/"+id, nil); r.status != 404 {
		t.Errorf("A's token: got %d, want 404", r.status)
	}
	if evs := f.b.Events(); len(evs) != 1 || len(f.a.Events()) != 0 || len(f.s.Events()) != 1 {
		t.Errorf("got events B %d, A %d, all %d; want 1, 0, 1", len(evs), len(f.a.Events()), len(f.s.Events()))
	}

	// A REST write with B's token changes B, and notifies B.
	r := api(t, f.s, f.oauthToken(t, f.appB), "POST", "/groups", map[string]any{"name": "Only In B"})
	if r.status != 201 {
		t.Fatalf("POST /groups: got %d %s", r.status, r.raw)
	}
	rcB.wait(t, 1)
	if !slices.ContainsFunc(f.b.Org().Groups, func(g Group) bool { return g.Name == "Only In B" }) ||
		slices.ContainsFunc(f.a.Org().Groups, func(g Group) bool { return g.Name == "Only In B" }) {
		t.Errorf("the group was not created in B alone")
	}
}

func TestAccountsHaveTheirOwnLimitsTokensAndFaults(t *testing.T) {
	t.Run("rate limits", func(t *testing.T) {
		f := twoAccounts(t) // the frozen clock never refills a bucket
		f.s.SetRateLimits(RateLimits{Medium: 1})
		tokA, tokB := s2sToken(t, f.s, f.a), s2sToken(t, f.s, f.b)
		api(t, f.s, tokA, "GET", "/users", nil)
		if r := api(t, f.s, tokA, "GET", "/users", nil); r.status != 429 {
			t.Fatalf("A's second request: got %d, want 429", r.status)
		}
		for i := range 3 {
			if r := api(t, f.s, tokB, "GET", "/users", nil); r.status != 200 {
				t.Fatalf("B's request %d: got %d, want 200", i, r.status)
			}
		}
	})
	t.Run("expired tokens", func(t *testing.T) {
		f := twoAccounts(t)
		tokA, tokB := s2sToken(t, f.s, f.a), f.oauthToken(t, f.appB)
		f.b.ExpireTokens()
		if r := api(t, f.s, tokB, "GET", "/users", nil); r.status != 401 || r.code() != 124 {
			t.Errorf("B: got %d %s, want 401 code 124", r.status, r.raw)
		}
		if r := api(t, f.s, tokA, "GET", "/users", nil); r.status != 200 {
			t.Errorf("A: got %d, want 200", r.status)
		}
	})
	t.Run("revoked credentials", func(t *testing.T) {
		f := twoAccounts(t)
		f.b.Faults().RevokeCredentials()
		if f.s.Faults().CredentialsRevoked() || !f.b.Faults().CredentialsRevoked() {
			t.Fatalf("the switch did not act on B alone")
		}
		s2sToken(t, f.s, f.a)
		req, _ := http.NewRequest("POST", f.s.TokenURL()+"?grant_type=account_credentials&account_id=acct-b", nil)
		req.SetBasicAuth(f.b.ClientID(), f.b.ClientSecret())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("B's credentials: got %d, want 401", resp.StatusCode)
		}
		f.s.Faults().Clear() // clears every account's faults
		s2sToken(t, f.s, f.b)
	})
	t.Run("fault rules", func(t *testing.T) {
		f := twoAccounts(t)
		tokA, tokB := s2sToken(t, f.s, f.a), f.oauthToken(t, f.appB)
		f.b.Faults().Add(Fault{Route: "GET /users", Status: 503})
		if r := api(t, f.s, tokB, "GET", "/users", nil); r.status != 503 {
			t.Errorf("B: got %d, want 503", r.status)
		}
		if r := api(t, f.s, tokA, "GET", "/users", nil); r.status != 200 {
			t.Errorf("A: got %d, want 200", r.status)
		}
		if n := len(f.b.Faults().List()); n != 1 || len(f.s.Faults().List()) != 1 {
			t.Errorf("got %d rules for B and %d in all, want 1 and 1", n, len(f.s.Faults().List()))
		}
		f.a.Faults().Clear() // A's view has none of B's rules to clear
		if r := api(t, f.s, tokB, "GET", "/users", nil); r.status != 503 {
			t.Errorf("after clearing A's faults, B: got %d, want 503", r.status)
		}
		f.b.Faults().Add(Fault{Route: TokenRoute, Status: 503})
		s2sToken(t, f.s, f.a)
		if _, err := (oauthFixture{s: f.s, app: f.appB}).refresh("anything"); err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("B's token request: got %v, want 503", err)
		}
	})
	t.Run("request counts", func(t *testing.T) {
		f := twoAccounts(t)
		tokB := f.oauthToken(t, f.appB)
		f.s.ResetRequests()
		api(t, f.s, tokB, "GET", "/users", nil)
		api(t, f.s, tokB, "GET", "/groups", nil)
		api(t, f.s, s2sToken(t, f.s, f.a), "GET", "/roles", nil)
		if got := f.b.Requests(); got["GET /users"] != 1 || got["GET /groups"] != 1 || f.b.TotalRequests() != 2 {
			t.Errorf("B: got %v, want one GET /users and one GET /groups", got)
		}
		if got := f.a.RequestsByStatus(); got["GET /roles 200"] != 1 || got["POST /oauth/token 200"] != 1 || f.a.TotalRequests() != 2 {
			t.Errorf("A: got %v, want a token and GET /roles", got)
		}
		if f.s.TotalRequests() != 4 {
			t.Errorf("server: got %d requests, want 4", f.s.TotalRequests())
		}
	})
}

func TestAddAccountErrors(t *testing.T) {
	s := NewServer(t, nil, Options{})
	if _, err := s.AddAccount("acct-2", nil, AccountOptions{}); err != nil {
		t.Fatalf("add: %v", err)
	}
	tests := []struct {
		name string
		id   string
		opts AccountOptions
		want error
	}{
		{"same id", "acct-2", AccountOptions{ClientID: "fresh"}, ErrAccountExists},
		{"default id", DefaultAccountID, AccountOptions{ClientID: "fresh"}, ErrAccountExists},
		{"client id taken", "acct-3", AccountOptions{ClientID: DefaultClientID}, ErrConflict},
		{"empty id", "", AccountOptions{}, ErrInvalid},
		{"odd characters", "a/b", AccountOptions{}, ErrInvalid},
		{"too long", strings.Repeat("x", 65), AccountOptions{}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddAccount(tt.id, nil, tt.opts); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	if got := len(s.Accounts()); got != 2 {
		t.Errorf("got %d accounts, want 2", got)
	}
	if _, err := s.DefaultAccount().AddApp(AppOptions{ClientID: "sim-client-acct-2", RedirectURIs: []string{testRedirect}}); !errors.Is(err, ErrConflict) {
		t.Errorf("app with an account's client id: got %v, want ErrConflict", err)
	}
	if _, err := s.DefaultAccount().AddApp(AppOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("app without redirect uri: got %v, want ErrInvalid", err)
	}
}

// admin calls the admin API and decodes its JSON answer.
func admin(t *testing.T, base, method, path string, body any) response {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	return do(t, method, base+path, "", rd)
}

func TestAdminAccountsAndApps(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	adm := httptest.NewServer(s.AdminHandler())
	t.Cleanup(adm.Close)
	rc := newReceiver(t)

	r := admin(t, adm.URL, "POST", "/_sim/accounts", AccountRequest{ID: "acme", Seed: 3, Users: 40, Groups: 2, WebhookURL: rc.URL, WebhookSecret: testSecret})
	if r.status != 201 || r.str("client_id") != "sim-client-acme" || r.num("users") != 40 {
		t.Fatalf("create account: got %d %s", r.status, r.raw)
	}
	if r := admin(t, adm.URL, "POST", "/_sim/accounts", AccountRequest{ID: "acme"}); r.status != 409 {
		t.Errorf("duplicate account: got %d, want 409", r.status)
	}
	if r := admin(t, adm.URL, "POST", "/_sim/accounts", AccountRequest{ID: "x", Users: maxAdminUsers + 1}); r.status != 400 {
		t.Errorf("oversized account: got %d, want 400", r.status)
	}
	r = admin(t, adm.URL, "GET", "/_sim/accounts", nil)
	accts := r.items("accounts")
	if len(accts) != 2 || accts[0]["default"] != true || accts[1]["id"] != "acme" {
		t.Errorf("list accounts: got %s", r.raw)
	}
	if r := admin(t, adm.URL, "GET", "/_sim/accounts/nope", nil); r.status != 404 {
		t.Errorf("unknown account: got %d, want 404", r.status)
	}

	r = admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps", AppRequest{ClientID: "acme-app", RedirectURIs: []string{testRedirect}, TokenTTL: "45s"})
	if r.status != 201 || r.str("client_secret") == "" || r.str("token_ttl") != "45s" || r.str("code_ttl") != "5m0s" {
		t.Fatalf("create app: got %d %s", r.status, r.raw)
	}
	if r := admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps", AppRequest{RedirectURIs: []string{"not a url"}}); r.status != 400 {
		t.Errorf("bad redirect uri: got %d, want 400", r.status)
	}
	if r := admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps", AppRequest{RedirectURIs: []string{testRedirect}, CodeTTL: "soon"}); r.status != 400 {
		t.Errorf("bad duration: got %d, want 400", r.status)
	}

	app := s.Account("acme").App("acme-app")
	f := oauthFixture{s: s, app: app}
	tok := f.exchange(t)
	if got := emails(t, s, tok.AccessToken); !slices.Equal(got, activeEmails(s.Account("acme").Org())) {
		t.Errorf("the app's token lists %d users, not acme's", len(got))
	}
	if r := admin(t, adm.URL, "GET", "/_sim/accounts/acme/tokens", nil); r.num("access_tokens") != 1 || r.num("code_exchanges") != 1 {
		t.Errorf("token stats: got %s", r.raw)
	}
	if r := admin(t, adm.URL, "GET", "/_sim/accounts/acme/apps/acme-app", nil); r.body["authorized"] != true {
		t.Errorf("app info: got %s, want authorized", r.raw)
	}

	if r := admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps/acme-app/revoke", nil); r.num("revoked") != 1 {
		t.Errorf("revoke: got %s, want 1 grant revoked", r.raw)
	}
	wantRevoked(t, f, tok)

	tok = f.exchange(t)
	r = admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps/acme-app/deauthorize", nil)
	d, _ := r.body["delivery"].(map[string]any)
	if d["event"] != "app_deauthorized" || d["status"] != 200.0 || d["account"] != "acme" {
		t.Errorf("deauthorize: got %s", r.raw)
	}
	wantRevoked(t, f, tok)
	if got := rc.all(); len(got) != 1 || !got[0].signed || got[0].payload["client_id"] != "acme-app" {
		t.Errorf("got notifications %v, want one signed app_deauthorized", got)
	}
	if r := admin(t, adm.URL, "POST", "/_sim/accounts/acme/apps/nope/revoke", nil); r.status != 404 {
		t.Errorf("unknown app: got %d, want 404", r.status)
	}

	// The per-account faults route limits its rules to the account.
	r = admin(t, adm.URL, "POST", "/_sim/accounts/acme/faults", FaultsRequest{Add: []Fault{{Route: "GET /users", Status: 502}}})
	if faults := r.items("faults"); len(faults) != 1 || faults[0]["account"] != "acme" {
		t.Fatalf("add fault: got %s", r.raw)
	}
	tok = f.exchange(t)
	if r := api(t, s, tok.AccessToken, "GET", "/users", nil); r.status != 502 {
		t.Errorf("acme: got %d, want 502", r.status)
	}
	if r := api(t, s, requestToken(t, s), "GET", "/users", nil); r.status != 200 {
		t.Errorf("default account: got %d, want 200", r.status)
	}
	if r := admin(t, adm.URL, "GET", "/_sim/accounts/acme/requests", nil); r.num("total") == 0 {
		t.Errorf("requests: got %s, want acme's counts", r.raw)
	}
	if r := admin(t, adm.URL, "PUT", "/_sim/accounts/acme/webhook", map[string]string{"url": ""}); r.status != 204 || s.Account("acme").WebhookURL() != "" || s.Account("acme").WebhookSecret() != testSecret {
		t.Errorf("webhook: got %d, url %q; want 204, no url and the secret kept", r.status, s.Account("acme").WebhookURL())
	}
}
