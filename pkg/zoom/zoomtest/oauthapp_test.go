package zoomtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const testRedirect = "https://acme.example.com/application/oauthProcessCode/zoom"

// oauthFixture is a started simulator with one OAuth app on its default
// account and a clock the test moves.
type oauthFixture struct {
	s     *Server
	app   *App
	clock *fakeClock
}

func newOAuthFixture(t *testing.T, appOpts AppOptions) oauthFixture {
	t.Helper()
	clock := newClock()
	s := NewServer(t, small(t), Options{Now: clock.Now})
	if appOpts.RedirectURIs == nil {
		appOpts.RedirectURIs = []string{testRedirect}
	}
	app, err := s.DefaultAccount().AddApp(appOpts)
	if err != nil {
		t.Fatalf("add app: %v", err)
	}
	return oauthFixture{s: s, app: app, clock: clock}
}

// config is the oauth2 configuration a real client of the app would use.
func (f oauthFixture) config(app *App) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     app.ClientID(),
		ClientSecret: app.ClientSecret(),
		Endpoint: oauth2.Endpoint{
			AuthURL: f.s.AuthorizeURL(), TokenURL: f.s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader,
		},
		RedirectURL: testRedirect,
	}
}

// noRedirect returns a client that shows redirects instead of following
// them, as a test of the authorize endpoint needs.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches a URL without following redirects and returns the response
// and its body.
func get(t testing.TB, rawURL string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirect().Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authorizeCode runs the authorize step against an auto-approving app and
// returns the code of the redirect.
func authorizeCode(t testing.TB, authURL, wantState string) string {
	t.Helper()
	resp, body := get(t, authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: got status %d, want 302: %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: bad Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("authorize: redirected to %s, want %s", got, testRedirect)
	}
	if got := loc.Query().Get("state"); got != wantState {
		t.Fatalf("authorize: got state %q, want %q", got, wantState)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("authorize: no code in %s", loc)
	}
	return code
}

// grantError returns the HTTP status and OAuth error code of a failed
// oauth2 call.
func grantError(t testing.TB, err error) (int, string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got error %v, want an OAuth error response", err)
	}
	return re.Response.StatusCode, re.ErrorCode
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	ctx := context.Background()
	f := newOAuthFixture(t, AppOptions{ClientID: "oauth-client", ClientSecret: "oauth-secret"})
	cfg := f.config(f.app)
	verifier := oauth2.GenerateVerifier()
	code := authorizeCode(t, cfg.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), "st-1")

	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		t.Fatalf("got token %+v, want an access token, a refresh token and type bearer", tok)
	}
	if got, want := tok.Extra("scope"), strings.Join(DefaultScopes, " "); got != want {
		t.Errorf("got scope %v, want %q", got, want)
	}
	if got := tok.Extra("api_url"); got != f.s.URL() {
		t.Errorf("got api_url %v, want %s", got, f.s.URL())
	}
	if got := tok.Extra("expires_in"); got != 3600.0 {
		t.Errorf("got expires_in %v, want 3600", got)
	}
	r := api(t, f.s, tok.AccessToken, "GET", "/users?page_size=1", nil)
	if r.status != http.StatusOK || r.num("total_records") != countStatus(f.s.Org(), StatusActive) {
		t.Fatalf("GET /users with the app's token: got %d %s, want 200 and the account's users", r.status, r.raw)
	}
	st := f.s.DefaultAccount().TokenStats()
	if st.Codes != 1 || st.CodeExchanges != 1 || st.AccessTokens != 1 || st.RefreshTokens != 1 {
		t.Errorf("got stats %+v, want one code exchanged for one access and one refresh token", st)
	}
	if !f.app.Authorized() {
		t.Errorf("app not authorized after the exchange")
	}
}

func TestCodeExchangeParametersInTheQuery(t *testing.T) {
	// Zoom's own examples send the exchange's parameters in the query
	// string, with no body.
	f := newOAuthFixture(t, AppOptions{})
	code := authorizeCode(t, f.app.AuthorizeURL(testRedirect, "", ""), "")
	q := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}
	req, _ := http.NewRequest("POST", f.s.TokenURL()+"?"+q.Encode(), nil)
	req.SetBasicAuth(f.app.ClientID(), f.app.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != http.StatusOK || got["refresh_token"] == nil || got["token_type"] != "bearer" {
		t.Fatalf("got %d %v, want 200 with tokens", resp.StatusCode, got)
	}
}

func TestCodeExchangeErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// run authorizes and exchanges; it returns the exchange's error.
		run        func(f oauthFixture, cfg *oauth2.Config) error
		wantStatus int
		wantError  string
	}{
		{"wrong verifier", func(f oauthFixture, cfg *oauth2.Config) error {
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "s")
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}, 400, "invalid_grant"},
		{"no verifier for a challenge", func(f oauthFixture, cfg *oauth2.Config) error {
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), "s")
			_, err := cfg.Exchange(ctx, code)
			return err
		}, 400, "invalid_grant"},
		{"wrong redirect uri", func(f oauthFixture, cfg *oauth2.Config) error {
			v := oauth2.GenerateVerifier()
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "s")
			other := *cfg
			other.RedirectURL = testRedirect + "/"
			_, err := other.Exchange(ctx, code, oauth2.VerifierOption(v))
			return err
		}, 400, "invalid_grant"},
		{"reused code", func(f oauthFixture, cfg *oauth2.Config) error {
			v := oauth2.GenerateVerifier()
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "s")
			if _, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
			if got := f.s.DefaultAccount().TokenStats().CodeReuses; got != 1 {
				t.Errorf("got %d code reuses, want 1", got)
			}
			return err
		}, 400, "invalid_grant"},
		{"code spent by a failed exchange", func(f oauthFixture, cfg *oauth2.Config) error {
			v := oauth2.GenerateVerifier()
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "s")
			_, _ = cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
			return err
		}, 400, "invalid_grant"},
		{"expired code", func(f oauthFixture, cfg *oauth2.Config) error {
			v := oauth2.GenerateVerifier()
			code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "s")
			f.clock.Advance(5 * time.Minute)
			_, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(v))
			return err
		}, 400, "invalid_grant"},
		{"unknown code", func(f oauthFixture, cfg *oauth2.Config) error {
			_, err := cfg.Exchange(ctx, "bm90LWEtY29kZQ")
			return err
		}, 400, "invalid_grant"},
		{"another app's code", func(f oauthFixture, cfg *oauth2.Config) error {
			other, err := f.s.DefaultAccount().AddApp(AppOptions{RedirectURIs: []string{testRedirect}})
			if err != nil {
				t.Fatal(err)
			}
			code := authorizeCode(t, other.AuthorizeURL(testRedirect, "s", ""), "s")
			_, err = cfg.Exchange(ctx, code)
			return err
		}, 400, "invalid_grant"},
		{"wrong client secret", func(f oauthFixture, cfg *oauth2.Config) error {
			code := authorizeCode(t, cfg.AuthCodeURL("s"), "s")
			bad := *cfg
			bad.ClientSecret = "nope"
			_, err := bad.Exchange(ctx, code)
			return err
		}, 401, "invalid_client"},
		{"server-to-server credentials", func(f oauthFixture, cfg *oauth2.Config) error {
			code := authorizeCode(t, cfg.AuthCodeURL("s"), "s")
			s2s := *cfg
			s2s.ClientID, s2s.ClientSecret = f.s.ClientID(), f.s.ClientSecret()
			_, err := s2s.Exchange(ctx, code)
			return err
		}, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAuthFixture(t, AppOptions{})
			err := tt.run(f, f.config(f.app))
			if err == nil {
				t.Fatalf("exchange succeeded, want %d %s", tt.wantStatus, tt.wantError)
			}
			status, code := grantError(t, err)
			if status != tt.wantStatus || code != tt.wantError {
				t.Errorf("got %d %s, want %d %s", status, code, tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestCodeLifetimeIsConfigurable(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{CodeTTL: 10 * time.Minute})
	cfg := f.config(f.app)
	code := authorizeCode(t, cfg.AuthCodeURL("s"), "s")
	f.clock.Advance(9 * time.Minute)
	if _, err := cfg.Exchange(context.Background(), code); err != nil {
		t.Fatalf("exchange after 9 of 10 minutes: %v", err)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	tests := []struct {
		name string
		// query changes a valid authorization request.
		query      func(q url.Values)
		wantStatus int
		wantError  string // the error= of the redirect; "" for an error page
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }, 400, ""},
		{"server-to-server client", func(q url.Values) { q.Set("client_id", DefaultClientID) }, 400, ""},
		{"unregistered redirect uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/cb") }, 400, ""},
		{"redirect uri with a trailing slash", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/") }, 400, ""},
		{"no redirect uri", func(q url.Values) { q.Del("redirect_uri") }, 400, ""},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, 302, "unsupported_response_type"},
		{"plain challenge", func(q url.Values) { q.Set("code_challenge_method", "plain") }, 302, "invalid_request"},
		{"challenge without method", func(q url.Values) { q.Del("code_challenge_method") }, 302, "invalid_request"},
		{"short challenge", func(q url.Values) { q.Set("code_challenge", "abc") }, 302, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAuthFixture(t, AppOptions{})
			u, _ := url.Parse(f.app.AuthorizeURL(testRedirect, "st", oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())))
			q := u.Query()
			tt.query(q)
			u.RawQuery = q.Encode()
			resp, body := get(t, u.String())
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			loc := resp.Header.Get("Location")
			if tt.wantError == "" {
				if loc != "" || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("got Location %q and type %q, want an HTML error page and no redirect", loc, resp.Header.Get("Content-Type"))
				}
				return
			}
			lu, _ := url.Parse(loc)
			if !strings.HasPrefix(loc, testRedirect+"?") || lu.Query().Get("error") != tt.wantError || lu.Query().Get("state") != "st" || lu.Query().Get("code") != "" {
				t.Errorf("got Location %q, want %s?error=%s&state=st", loc, testRedirect, tt.wantError)
			}
		})
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// submitConsent reads the consent page's form as a browser would and
// submits it with the decision.
func submitConsent(t *testing.T, s *Server, page, decision string) *http.Response {
	t.Helper()
	form := url.Values{"decision": {decision}}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, err := noRedirect().PostForm(s.AuthorizeURL(), form)
	if err != nil {
		t.Fatalf("submit consent: %v", err)
	}
	_ = resp.Body.Close()
	return resp
}

func TestConsentPage(t *testing.T) {
	ctx := context.Background()
	f := newOAuthFixture(t, AppOptions{Consent: true})
	cfg := f.config(f.app)
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("st&<x>", oauth2.S256ChallengeOption(verifier))

	resp, page := get(t, authURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="authorize"`) || !strings.Contains(page, `value="deny"`) {
		t.Fatalf("got %d, want a consent page with Authorize and Deny: %s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "user:read:admin") {
		t.Errorf("the consent page does not list the app's scopes: %s", page)
	}

	t.Run("deny", func(t *testing.T) {
		resp := submitConsent(t, f.s, page, "deny")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st&<x>" || loc.Query().Get("code") != "" {
			t.Errorf("got %d Location %s, want 302 to the redirect URI with error=access_denied and the state", resp.StatusCode, loc)
		}
	})
	t.Run("authorize", func(t *testing.T) {
		resp := submitConsent(t, f.s, page, "authorize")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("state") != "st&<x>" {
			t.Fatalf("got %d Location %s, want 302 with the state", resp.StatusCode, loc)
		}
		if _, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Errorf("exchange of the approved code: %v", err)
		}
	})
	t.Run("tampered redirect", func(t *testing.T) {
		tampered := strings.ReplaceAll(page, html.EscapeString(testRedirect), "https://evil.example.com/cb")
		resp := submitConsent(t, f.s, tampered, "authorize")
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("got %d Location %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

// exchange authorizes the fixture's app and returns its first tokens.
func (f oauthFixture) exchange(t *testing.T) *oauth2.Token {
	t.Helper()
	cfg := f.config(f.app)
	v := oauth2.GenerateVerifier()
	code := authorizeCode(t, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), "s")
	tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// refresh refreshes with the oauth2 package, as a client does when its
// access token is gone.
func (f oauthFixture) refresh(refreshToken string) (*oauth2.Token, error) {
	return f.config(f.app).TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

// rawRefresh posts a refresh_token grant with the token in the query or in
// the form body and returns the status and body.
func rawRefresh(t *testing.T, s *Server, app *App, refreshToken string, inQuery bool) (int, map[string]any) {
	t.Helper()
	q := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	u, body := s.TokenURL(), io.Reader(nil)
	if inQuery {
		u += "?" + q.Encode()
	} else {
		body = strings.NewReader(q.Encode())
	}
	req, _ := http.NewRequest("POST", u, body)
	if !inQuery {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(app.ClientID(), app.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return resp.StatusCode, got
}

func TestRefreshRotation(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{})
	first := f.exchange(t)

	second, err := f.refresh(first.RefreshToken)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatalf("got refresh token %q and a new access token %v, want new ones", second.RefreshToken, second.AccessToken != first.AccessToken)
	}
	if r := api(t, f.s, second.AccessToken, "GET", "/users?page_size=1", nil); r.status != http.StatusOK {
		t.Errorf("new access token: got %d %s, want 200", r.status, r.raw)
	}
	// The access token issued before the refresh lives out its hour.
	if r := api(t, f.s, first.AccessToken, "GET", "/users?page_size=1", nil); r.status != http.StatusOK {
		t.Errorf("earlier access token: got %d %s, want 200", r.status, r.raw)
	}

	// The rotated refresh token is dead at once, with Zoom's exact body.
	status, body := rawRefresh(t, f.s, f.app, first.RefreshToken, false)
	if status != http.StatusBadRequest || len(body) != 2 || body["error"] != "invalid_grant" || body["reason"] != "Invalid Token!" {
		t.Errorf("reused refresh token: got %d %v, want 400 {reason: Invalid Token!, error: invalid_grant}", status, body)
	}
	// The new one works once more, here from the query string.
	status, body = rawRefresh(t, f.s, f.app, second.RefreshToken, true)
	if status != http.StatusOK || body["refresh_token"] == second.RefreshToken {
		t.Fatalf("second refresh: got %d %v, want 200 with another refresh token", status, body)
	}
	if _, err := f.refresh(second.RefreshToken); err == nil {
		t.Errorf("a refresh token rotated by a query-string refresh still works")
	}

	st := f.s.DefaultAccount().TokenStats()
	want := TokenStats{
		AccessTokens: 3, RefreshTokens: 3, Codes: 1, CodeExchanges: 1,
		Rotations: 2, Reuses: 2, RefreshRejected: 2, MaxRefreshUses: 2,
	}
	if st != want {
		t.Errorf("got stats %+v, want %+v", st, want)
	}
	if got := f.s.RefreshTokenUses(first.RefreshToken); got != 2 {
		t.Errorf("first refresh token: got %d uses, want 2", got)
	}
	if got := f.s.RefreshTokenUses(body["refresh_token"].(string)); got != 0 {
		t.Errorf("latest refresh token: got %d uses, want 0", got)
	}
}

func TestRefreshErrors(t *testing.T) {
	tests := []struct {
		name       string
		run        func(f oauthFixture, rt string) error
		wantStatus int
		wantError  string
	}{
		{"expired refresh token", func(f oauthFixture, rt string) error {
			f.clock.Advance(90 * 24 * time.Hour)
			_, err := f.refresh(rt)
			return err
		}, 400, "invalid_grant"},
		{"unknown refresh token", func(f oauthFixture, rt string) error {
			_, err := f.refresh("eyJub3QiOiJhIHRva2VuIn0")
			return err
		}, 400, "invalid_grant"},
		{"another app's credentials", func(f oauthFixture, rt string) error {
			other, err := f.s.DefaultAccount().AddApp(AppOptions{RedirectURIs: []string{testRedirect}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = oauthFixture{s: f.s, app: other}.refresh(rt)
			return err
		}, 400, "invalid_grant"},
		{"server-to-server credentials", func(f oauthFixture, rt string) error {
			cfg := f.config(f.app)
			cfg.ClientID, cfg.ClientSecret = f.s.ClientID(), f.s.ClientSecret()
			_, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
			return err
		}, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAuthFixture(t, AppOptions{})
			err := tt.run(f, f.exchange(t).RefreshToken)
			if err == nil {
				t.Fatalf("refresh succeeded, want %d %s", tt.wantStatus, tt.wantError)
			}
			if status, code := grantError(t, err); status != tt.wantStatus || code != tt.wantError {
				t.Errorf("got %d %s, want %d %s", status, code, tt.wantStatus, tt.wantError)
			}
		})
	}
}

func TestTokenLifetimes(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{TokenTTL: 30 * time.Second, RefreshTokenTTL: time.Hour})
	tok := f.exchange(t)
	if got := tok.Extra("expires_in"); got != 30.0 {
		t.Errorf("got expires_in %v, want 30", got)
	}
	f.clock.Advance(30 * time.Second)
	if r := api(t, f.s, tok.AccessToken, "GET", "/users", nil); r.status != 401 || r.code() != 124 || r.message() != "Access token is expired." {
		t.Errorf("after 30 s: got %d %s, want 401 code 124 expired", r.status, r.raw)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.refresh(tok.RefreshToken); err == nil {
		t.Errorf("refresh token still works past its hour")
	}
}

func TestExpireTokensForcesARefresh(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{})
	tok := f.exchange(t)
	f.s.Faults().ExpireTokens()
	if r := api(t, f.s, tok.AccessToken, "GET", "/users", nil); r.status != 401 || r.code() != 124 {
		t.Fatalf("got %d %s, want 401 code 124", r.status, r.raw)
	}
	next, err := f.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after ExpireTokens: %v", err)
	}
	if r := api(t, f.s, next.AccessToken, "GET", "/users", nil); r.status != 200 {
		t.Errorf("refreshed token: got %d %s, want 200", r.status, r.raw)
	}
}

// wantRevoked checks that a grant's tokens are dead: 401 code 124 for the
// access token, invalid_grant for the refresh token.
func wantRevoked(t *testing.T, f oauthFixture, tok *oauth2.Token) {
	t.Helper()
	if r := api(t, f.s, tok.AccessToken, "GET", "/users", nil); r.status != 401 || r.code() != 124 || r.message() != "Invalid access token." {
		t.Errorf("revoked access token: got %d %s, want 401 code 124 Invalid access token.", r.status, r.raw)
	}
	_, err := f.refresh(tok.RefreshToken)
	if err == nil {
		t.Fatalf("revoked refresh token still works")
	}
	if status, code := grantError(t, err); status != 400 || code != "invalid_grant" {
		t.Errorf("revoked refresh token: got %d %s, want 400 invalid_grant", status, code)
	}
}

func TestRevocation(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(t *testing.T, f oauthFixture, tok *oauth2.Token)
	}{
		{"RevokeGrants", func(t *testing.T, f oauthFixture, tok *oauth2.Token) {
			if n := f.app.RevokeGrants(); n != 1 {
				t.Errorf("got %d grants revoked, want 1", n)
			}
		}},
		{"POST /oauth/revoke with the access token", func(t *testing.T, f oauthFixture, tok *oauth2.Token) {
			revokeToken(t, f, tok.AccessToken, false)
		}},
		{"POST /oauth/revoke with the refresh token in the query", func(t *testing.T, f oauthFixture, tok *oauth2.Token) {
			revokeToken(t, f, tok.RefreshToken, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newOAuthFixture(t, AppOptions{})
			tok := f.exchange(t)
			tt.revoke(t, f, tok)
			wantRevoked(t, f, tok)
			if f.app.Authorized() {
				t.Errorf("app still authorized")
			}
			if got := f.s.DefaultAccount().TokenStats().Revocations; got != 1 {
				t.Errorf("got %d revocations, want 1", got)
			}
			// Authorizing again starts afresh.
			again := f.exchange(t)
			if r := api(t, f.s, again.AccessToken, "GET", "/users", nil); r.status != 200 {
				t.Errorf("after a new authorization: got %d %s, want 200", r.status, r.raw)
			}
		})
	}
}

func revokeToken(t *testing.T, f oauthFixture, token string, inQuery bool) {
	t.Helper()
	q := url.Values{"token": {token}}
	u, body := f.s.RevokeURL(), io.Reader(nil)
	if inQuery {
		u += "?" + q.Encode()
	} else {
		body = strings.NewReader(q.Encode())
	}
	req, _ := http.NewRequest("POST", u, body)
	if !inQuery {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(f.app.ClientID(), f.app.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got["status"] != "success" {
		t.Fatalf("revoke: got %d %v, want 200 {status: success}", resp.StatusCode, got)
	}
}

func TestRevokeRefusesAnotherClientsToken(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{})
	tok := f.exchange(t)
	other, err := f.s.DefaultAccount().AddApp(AppOptions{RedirectURIs: []string{testRedirect}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", f.s.RevokeURL()+"?token="+url.QueryEscape(tok.AccessToken), nil)
	req.SetBasicAuth(other.ClientID(), other.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got %d, want 400", resp.StatusCode)
	}
	if r := api(t, f.s, tok.AccessToken, "GET", "/users", nil); r.status != 200 {
		t.Errorf("the token was revoked by another client: got %d", r.status)
	}
}

// verify checks a notification's signature under another secret token
// than the receiver's: HMAC-SHA256 of "v0:{timestamp}:{body}", hex, after
// "v0=".
func verify(secret string, h received) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + h.header.Get("x-zm-request-timestamp") + ":"))
	m.Write(h.raw)
	return hmac.Equal([]byte("v0="+hex.EncodeToString(m.Sum(nil))), []byte(h.header.Get("x-zm-signature")))
}

func TestDeauthorize(t *testing.T) {
	f := newOAuthFixture(t, AppOptions{ClientID: "deauth-client"})
	rc := newReceiver(t)
	acct := f.s.DefaultAccount()
	acct.SetWebhookURL(rc.URL)
	acct.SetWebhookSecret(testSecret)
	tok := f.exchange(t)

	d := f.app.Deauthorize(context.Background())
	if !d.Sent() || d.Event != "app_deauthorized" || d.Account != acct.ID() {
		t.Fatalf("got delivery %+v, want app_deauthorized sent for %s", d, acct.ID())
	}
	wantRevoked(t, f, tok)

	got := rc.all()
	if len(got) != 1 {
		t.Fatalf("got %d notifications, want 1", len(got))
	}
	if !got[0].signed {
		t.Errorf("the notification's signature does not verify with the account's secret token")
	}
	var body struct {
		Event   string `json:"event"`
		EventTS int64  `json:"event_ts"`
		Payload struct {
			AccountID           string `json:"account_id"`
			UserID              string `json:"user_id"`
			Signature           string `json:"signature"`
			DeauthorizationTime string `json:"deauthorization_time"`
			ClientID            string `json:"client_id"`
			EventTS             int64  `json:"event_ts"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(got[0].raw, &body); err != nil {
		t.Fatalf("decode: %v: %s", err, got[0].raw)
	}
	owner, _ := f.s.Org().Owner()
	p := body.Payload
	now := f.clock.Now()
	if body.Event != "app_deauthorized" || body.EventTS != now.UnixMilli() || p.EventTS != now.UnixMilli() ||
		p.AccountID != acct.ID() || p.ClientID != "deauth-client" || p.UserID != owner.ID || len(p.Signature) != 64 {
		t.Errorf("got %s, want app_deauthorized for the account, the client and the owner", got[0].raw)
	}
	if at, err := time.Parse(time.RFC3339, p.DeauthorizationTime); err != nil || !at.Equal(now) {
		t.Errorf("got deauthorization_time %q, want %s", p.DeauthorizationTime, now.Format(time.RFC3339Nano))
	}
}
