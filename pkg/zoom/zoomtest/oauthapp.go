package zoomtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// OAuth apps: an account-level app (authorization code, with PKCE when the
// client sends a challenge) registered on one account. The flow, as Zoom
// runs it:
//
//	GET  /oauth/authorize?response_type=code&client_id&redirect_uri&state[&code_challenge&code_challenge_method=S256]
//	     → 302 redirect_uri?code=…&state=… (or a consent page first)
//	POST /oauth/token grant_type=authorization_code&code&redirect_uri[&code_verifier]
//	     → {access_token, token_type, refresh_token, expires_in, scope, api_url}
//	POST /oauth/token grant_type=refresh_token&refresh_token
//	     → a new access token and a new refresh token; the old one is dead
//	POST /oauth/revoke token=…
//
// Each authorization starts a grant: a chain of refresh tokens, each
// replaced by the next on refresh (rotation), and the access tokens issued
// along it. Revoking the app (RevokeGrants, /oauth/revoke, Deauthorize)
// ends its grants: their access tokens get 401 code 124 and their refresh
// tokens invalid_grant.

type appKind int

const (
	appS2S appKind = iota
	appOAuth
)

// App is an OAuth app registered on an account with AddApp. Its methods are
// safe for concurrent use.
type App struct {
	acct         *Account
	kind         appKind
	clientID     string
	clientSecret string
	redirectURIs []string
	scopes       []string
	consent      bool
	tokenTTL     time.Duration
	refreshTTL   time.Duration
	codeTTL      time.Duration

	// Guarded by Server.tokens.mu.
	revoked bool     // Server-to-Server credentials refused (Faults.RevokeCredentials)
	grants  []*grant // live authorizations
}

// AppOptions describe an OAuth app. Zero durations take the server's
// Options (TokenTTL, RefreshTokenTTL, CodeTTL).
type AppOptions struct {
	// ClientID and ClientSecret; empty ones are generated. Client ids are
	// unique across the server.
	ClientID     string
	ClientSecret string
	// RedirectURIs are the registered redirect URIs, matched exactly; at
	// least one is required.
	RedirectURIs []string
	// Scopes granted to the app's tokens; nil means DefaultScopes.
	Scopes []string
	// Consent shows a consent page with Authorize and Deny buttons instead
	// of approving every authorization at once (the default, for tests).
	Consent bool
	// TokenTTL is the access token lifetime.
	TokenTTL time.Duration
	// RefreshTokenTTL is the refresh token lifetime.
	RefreshTokenTTL time.Duration
	// CodeTTL is the authorization code lifetime.
	CodeTTL time.Duration
}

// grant is one authorization of an app by the account: the refresh-token
// chain it started and the access tokens issued along it.
type grant struct {
	app     *App
	userID  string // who authorized: the account owner
	revoked bool
}

type refreshToken struct {
	grant   *grant
	expires time.Time
	rotated bool // replaced by a newer one: presenting it again is a reuse
	uses    int  // refresh requests that presented it, accepted or not
}

type authCode struct {
	app         *App
	redirectURI string
	challenge   string // S256 code challenge, "" without PKCE
	userID      string
	expires     time.Time
	used        bool
}

// TokenStats count what the token endpoints did for an account, for tests
// of token handling: that a client refreshes once per expiry, never
// presents a rotated refresh token again, and so on.
type TokenStats struct {
	// AccessTokens and RefreshTokens issued, every grant included.
	AccessTokens  int `json:"access_tokens"`
	RefreshTokens int `json:"refresh_tokens"`
	// Codes issued by the authorize endpoint, CodeExchanges of them
	// accepted, and CodeReuses: exchanges of a code already used.
	Codes         int `json:"codes"`
	CodeExchanges int `json:"code_exchanges"`
	CodeReuses    int `json:"code_reuses"`
	// Rotations are accepted refreshes, each of which replaced a refresh
	// token by a new one.
	Rotations int `json:"rotations"`
	// Reuses are refresh requests that presented a refresh token already
	// rotated away: a client that lost or ignored the new one.
	Reuses int `json:"reuses"`
	// RefreshRejected are refresh requests refused for any reason (reuses,
	// revoked, expired or unknown tokens, another client's token).
	RefreshRejected int `json:"refresh_rejected"`
	// MaxRefreshUses is the most refresh requests any one refresh token of
	// the account received: 1 when every token was used once.
	MaxRefreshUses int `json:"max_refresh_uses"`
	// Revocations are grants ended by RevokeGrants, /oauth/revoke or
	// Deauthorize.
	Revocations int `json:"revocations"`
}

// randomSecret makes a URL-safe random string of n bytes of entropy.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AddApp registers an OAuth app (account-level, authorization code) on the
// account. It fails with ErrInvalid without a redirect URI or with one that
// is not an absolute URL, and with ErrConflict when the client id is taken.
func (a *Account) AddApp(opts AppOptions) (*App, error) {
	if len(opts.RedirectURIs) == 0 {
		return nil, fmt.Errorf("add app: no redirect uri: %w", ErrInvalid)
	}
	for _, u := range opts.RedirectURIs {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme == "" || pu.Host == "" || pu.Fragment != "" || len(u) > maxRedirectURI {
			return nil, fmt.Errorf("add app: redirect uri %q: %w", u, ErrInvalid)
		}
	}
	if opts.ClientID == "" {
		opts.ClientID = randomSecret(16)
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = randomSecret(24)
	}
	if len(opts.ClientID) > maxClientID || len(opts.ClientSecret) > maxSecret {
		return nil, fmt.Errorf("add app: client id or secret too long: %w", ErrInvalid)
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	so := a.srv.opts
	app := &App{
		acct: a, kind: appOAuth,
		clientID: opts.ClientID, clientSecret: opts.ClientSecret,
		redirectURIs: slices.Clone(opts.RedirectURIs), scopes: slices.Clone(opts.Scopes),
		consent:  opts.Consent,
		tokenTTL: cmpOr(opts.TokenTTL, so.TokenTTL), refreshTTL: cmpOr(opts.RefreshTokenTTL, so.RefreshTokenTTL),
		codeTTL: cmpOr(opts.CodeTTL, so.CodeTTL),
	}
	ts := &a.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.apps[app.clientID] != nil {
		return nil, fmt.Errorf("add app: client id %q: %w", app.clientID, ErrConflict)
	}
	ts.apps[app.clientID] = app
	a.apps = append(a.apps, app)
	return app, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// App returns the account's OAuth app with that client id, nil when there
// is none.
func (a *Account) App(clientID string) *App {
	ts := &a.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, app := range a.apps {
		if app.clientID == clientID {
			return app
		}
	}
	return nil
}

// Apps returns the account's OAuth apps in the order they were added.
func (a *Account) Apps() []*App {
	ts := &a.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(a.apps)
}

// TokenStats returns the account's token counts.
func (a *Account) TokenStats() TokenStats {
	ts := &a.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st := a.stats
	for _, rt := range ts.refresh {
		if rt.grant.app.acct == a {
			st.MaxRefreshUses = max(st.MaxRefreshUses, rt.uses)
		}
	}
	return st
}

// RefreshTokenUses returns how many refresh requests presented the refresh
// token, accepted or not; 0 for a token the server never issued.
func (s *Server) RefreshTokenUses(refreshToken string) int {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	if rt := s.tokens.refresh[refreshToken]; rt != nil {
		return rt.uses
	}
	return 0
}

// Account is the account the app is registered on, the account its tokens
// act on.
func (p *App) Account() *Account { return p.acct }

// ClientID is the app's client id.
func (p *App) ClientID() string { return p.clientID }

// ClientSecret is the app's client secret.
func (p *App) ClientSecret() string { return p.clientSecret }

// RedirectURIs are the app's registered redirect URIs.
func (p *App) RedirectURIs() []string { return slices.Clone(p.redirectURIs) }

// Scopes are the scopes the app's tokens get.
func (p *App) Scopes() []string { return slices.Clone(p.scopes) }

// Consent reports whether the app shows a consent page rather than
// approving at once.
func (p *App) Consent() bool { return p.consent }

// AuthorizeURL is the URL a browser opens to authorize the app, with a PKCE
// S256 challenge when challenge is not empty. The server must be started.
func (p *App) AuthorizeURL(redirectURI, state, challenge string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {p.clientID}, "redirect_uri": {redirectURI}}
	if state != "" {
		q.Set("state", state)
	}
	if challenge != "" {
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
	}
	return p.acct.srv.URL() + "/oauth/authorize?" + q.Encode()
}

// Authorized reports whether the app holds a live grant on its account.
func (p *App) Authorized() bool {
	ts := &p.acct.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(p.grants) > 0
}

// RevokeGrants ends every authorization of the app: its access tokens get
// 401 code 124 "Invalid access token." and its refresh tokens invalid_grant
// from now on, as when an admin removes the app's access. The app stays
// registered and can be authorized again. It returns how many grants ended.
func (p *App) RevokeGrants() int {
	ts := &p.acct.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return p.revokeLocked()
}

func (p *App) revokeLocked() int {
	n := len(p.grants)
	for _, g := range p.grants {
		g.revoked = true
	}
	p.grants = nil
	p.acct.stats.Revocations += n
	return n
}

// Deauthorize uninstalls the app from its account, as an admin removing it
// in the Marketplace: every grant ends as with RevokeGrants, and the
// Marketplace notification app_deauthorized goes to the account's webhook
// subscription, signed like every notification. The notification is sent
// even when the app held no grant, so that tests can deliver it on its own.
func (p *App) Deauthorize(ctx context.Context) Delivery {
	a := p.acct
	ts := &a.srv.tokens
	ts.mu.Lock()
	userID := ""
	for _, g := range p.grants {
		userID = g.userID
	}
	p.revokeLocked()
	ts.mu.Unlock()
	if userID == "" {
		userID = a.ownerID()
	}
	return a.deliverDeauthorized(ctx, p.clientID, userID)
}

// ownerID is the id of the account owner, who authorizes apps in the
// simulator; "" in an account without one.
func (a *Account) ownerID() string {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	if o := a.st.owner(); o != nil {
		return o.u.ID
	}
	return ""
}

// Route templates of the OAuth endpoints in request counts and fault rules
// (TokenRoute is the token endpoint's).
const (
	AuthorizeRoute         = "GET /oauth/authorize"
	AuthorizeDecisionRoute = "POST /oauth/authorize"
	RevokeRoute            = "POST /oauth/revoke"
)

// authzRequest is a validated authorization request.
type authzRequest struct {
	app         *App
	redirectURI string
	state       string
	challenge   string
}

// errorPage answers an authorization request that cannot be redirected
// (unknown client, unregistered redirect URI) with an HTML page and no
// redirect: redirecting to an unverified URI would make the endpoint an
// open redirector.
func errorPage(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.ExecuteTemplate(w, "error", message)
}

// readAuthorize validates an authorization request. The client and the
// redirect URI are checked first and answered with an error page; every
// later error is redirected to the client with error= and the state, as
// OAuth 2.0 requires once the redirect URI is known to be the client's.
func (s *Server) readAuthorize(w http.ResponseWriter, r *http.Request, q url.Values) (authzRequest, bool) {
	clientID, redirectURI, state := q.Get("client_id"), q.Get("redirect_uri"), q.Get("state")
	if clientID == "" || len(clientID) > maxClientID {
		errorPage(w, http.StatusBadRequest, "Invalid client_id.")
		return authzRequest{}, false
	}
	s.tokens.mu.Lock()
	app := s.tokens.apps[clientID]
	s.tokens.mu.Unlock()
	if app == nil || app.kind != appOAuth {
		errorPage(w, http.StatusBadRequest, "Invalid client_id.")
		return authzRequest{}, false
	}
	if len(redirectURI) > maxRedirectURI || !slices.Contains(app.redirectURIs, redirectURI) {
		errorPage(w, http.StatusBadRequest, "Invalid redirect: the redirect_uri is not registered for this app.")
		return authzRequest{}, false
	}
	countFor(w, app.acct)
	req := authzRequest{app: app, redirectURI: redirectURI, state: state}
	if len(state) > maxState {
		redirectError(w, r, redirectURI, "", "invalid_request", "state is too long")
		return req, false
	}
	if rt := q.Get("response_type"); rt != "code" {
		redirectError(w, r, redirectURI, state, "unsupported_response_type", "response_type must be code")
		return req, false
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method == "":
	case method != "S256":
		// Zoom documents S256 only; a client sending plain (or no method,
		// which means plain) gets it refused here rather than accepted.
		redirectError(w, r, redirectURI, state, "invalid_request", "code_challenge_method must be S256")
		return req, false
	case !validPKCE(challenge, minVerifier, maxChallenge):
		redirectError(w, r, redirectURI, state, "invalid_request", "invalid code_challenge")
		return req, false
	}
	req.challenge = challenge
	return req, true
}

// validPKCE checks a PKCE verifier or challenge: 43 to 128 characters of
// the unreserved set.
func validPKCE(v string, minLen, maxLen int) bool {
	if len(v) < minLen || len(v) > maxLen {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// redirectTo appends params to a redirect URI, keeping its own query.
func redirectTo(redirectURI string, params url.Values) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI // registered URIs are checked when the app is added
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, description string) {
	http.Redirect(w, r, redirectTo(redirectURI, url.Values{
		"error": {code}, "error_description": {description}, "state": {state},
	}), http.StatusFound)
}

// authorize serves GET /oauth/authorize: it approves at once, or shows the
// consent page of an app added with Consent.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	req, ok := s.readAuthorize(w, r, r.URL.Query())
	if !ok {
		return
	}
	if req.app.consent {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// The form carries the request's parameters back, and only those, so
		// that the decision is made on exactly what was validated.
		params := url.Values{}
		for _, k := range []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"} {
			if v := r.URL.Query().Get(k); v != "" {
				params.Set(k, v)
			}
		}
		_ = pageTemplate.ExecuteTemplate(w, "consent", map[string]any{
			"Account": req.app.acct.id, "ClientID": req.app.clientID, "Scopes": req.app.scopes, "Params": params,
		})
		return
	}
	s.approve(w, r, req)
}

// authorizeDecision serves the consent page's form: the same parameters
// and decision=authorize or decision=deny.
func (s *Server) authorizeDecision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthForm)
	if err := r.ParseForm(); err != nil {
		errorPage(w, http.StatusBadRequest, "Invalid authorization form.")
		return
	}
	req, ok := s.readAuthorize(w, r, r.Form)
	if !ok {
		return
	}
	switch r.Form.Get("decision") {
	case "authorize":
		s.approve(w, r, req)
	case "deny":
		redirectError(w, r, req.redirectURI, req.state, "access_denied", "the user denied the authorization")
	default:
		errorPage(w, http.StatusBadRequest, "Choose Authorize or Deny.")
	}
}

// approve issues a code and redirects to the client with it.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, req authzRequest) {
	app := req.app
	userID := app.acct.ownerID()
	code := randomSecret(24)
	now := s.now()
	ts := &s.tokens
	ts.mu.Lock()
	if len(ts.codes) > 1024 {
		for k, c := range ts.codes {
			if c.used || now.After(c.expires) {
				delete(ts.codes, k)
			}
		}
	}
	ts.codes[code] = &authCode{app: app, redirectURI: req.redirectURI, challenge: req.challenge, userID: userID, expires: now.Add(app.codeTTL)}
	app.acct.stats.Codes++
	ts.mu.Unlock()
	http.Redirect(w, r, redirectTo(req.redirectURI, url.Values{"code": {code}, "state": {req.state}}), http.StatusFound)
}

// Zoom's token-endpoint errors for grants. The refresh error body is the
// one seen from Zoom: HTTP 400 {"reason":"Invalid Token!","error":"invalid_grant"};
// the code errors follow it, since Zoom publishes no other.
func invalidGrant(w http.ResponseWriter, reason string) {
	writeOAuthError(w, http.StatusBadRequest, 0, "", "invalid_grant", reason)
}

// exchangeCode serves the authorization_code grant.
func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request, app *App) {
	code, redirectURI, verifier := r.Form.Get("code"), r.Form.Get("redirect_uri"), r.Form.Get("code_verifier")
	if code == "" || len(code) > maxTokenParam {
		writeOAuthError(w, http.StatusBadRequest, 0, "", "invalid_request", "Missing or invalid code.")
		return
	}
	if len(redirectURI) > maxRedirectURI || len(verifier) > maxVerifier {
		invalidGrant(w, "Invalid request.")
		return
	}
	s.tokens.mu.Lock()
	body, reason := s.exchangeLocked(app, code, redirectURI, verifier, s.apiURL(app.acct, r))
	s.tokens.mu.Unlock()
	if reason != "" {
		invalidGrant(w, reason)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// exchangeLocked checks a code and issues its tokens, or returns why not;
// the caller holds s.tokens.mu.
func (s *Server) exchangeLocked(app *App, code, redirectURI, verifier, apiURL string) (tokenResponse, string) {
	a := app.acct
	c := s.tokens.codes[code]
	switch {
	case c == nil || c.app != app:
		return tokenResponse{}, "Invalid authorization code."
	case c.used:
		a.stats.CodeReuses++
		return tokenResponse{}, "Invalid authorization code."
	}
	// A code is spent by any exchange attempt with the right client, as a
	// code whose verifier can be guessed at would be no protection.
	c.used = true
	now := s.now()
	switch {
	case !now.Before(c.expires):
		return tokenResponse{}, "Authorization code has expired."
	case redirectURI != c.redirectURI:
		return tokenResponse{}, "Redirect URI mismatch."
	case c.challenge != "" && (!validPKCE(verifier, minVerifier, maxVerifier) || !s256Matches(verifier, c.challenge)):
		return tokenResponse{}, "Invalid code verifier."
	}
	a.stats.CodeExchanges++
	g := &grant{app: app, userID: c.userID}
	app.grants = append(app.grants, g)
	return s.issueTokens(g, now, apiURL), ""
}

// s256Matches checks a PKCE verifier against its S256 challenge:
// BASE64URL(SHA256(verifier)) without padding.
func s256Matches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// tokenResponse is the token endpoint's answer to the authorization_code
// and refresh_token grants.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	APIURL       string `json:"api_url"`
}

// issueTokens issues an access token and a refresh token on a grant; the
// caller holds s.tokens.mu.
func (s *Server) issueTokens(g *grant, now time.Time, apiURL string) tokenResponse {
	app := g.app
	a := app.acct
	access := s.issueAccess(a, g, app.scopes, app.tokenTTL, now)
	refresh := newAccessToken()
	// Rotated refresh tokens are kept until they expire, so that a reuse is
	// recognised as one; drop the expired ones now and then.
	if len(s.tokens.refresh) > 4096 {
		for k, rt := range s.tokens.refresh {
			if now.After(rt.expires) {
				delete(s.tokens.refresh, k)
			}
		}
	}
	s.tokens.refresh[refresh] = &refreshToken{grant: g, expires: now.Add(app.refreshTTL)}
	a.stats.RefreshTokens++
	return tokenResponse{
		AccessToken: access, TokenType: "bearer", RefreshToken: refresh,
		ExpiresIn: int(app.tokenTTL / time.Second), Scope: strings.Join(app.scopes, " "), APIURL: apiURL,
	}
}

// refreshGrant serves the refresh_token grant with rotation: the answer
// carries a new refresh token and the one presented stops working at once,
// so a client that loses the answer has to authorize again, as with Zoom.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, app *App) {
	raw := r.Form.Get("refresh_token")
	if raw == "" || len(raw) > maxTokenParam {
		writeOAuthError(w, http.StatusBadRequest, 0, "", "invalid_request", "Missing refresh_token.")
		return
	}
	s.tokens.mu.Lock()
	body, ok := s.refreshLocked(app, raw, s.apiURL(app.acct, r))
	s.tokens.mu.Unlock()
	if !ok {
		invalidGrant(w, "Invalid Token!")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// refreshLocked rotates a refresh token, or refuses it; the caller holds
// s.tokens.mu.
func (s *Server) refreshLocked(app *App, raw, apiURL string) (tokenResponse, bool) {
	a := app.acct
	rt := s.tokens.refresh[raw]
	if rt == nil || rt.grant.app != app {
		a.stats.RefreshRejected++
		return tokenResponse{}, false
	}
	rt.uses++
	now := s.now()
	switch {
	case rt.rotated:
		a.stats.Reuses++
		a.stats.RefreshRejected++
		return tokenResponse{}, false
	case rt.grant.revoked || !now.Before(rt.expires):
		a.stats.RefreshRejected++
		return tokenResponse{}, false
	}
	rt.rotated = true
	a.stats.Rotations++
	return s.issueTokens(rt.grant, now, apiURL), true
}

// revoke serves POST /oauth/revoke with HTTP Basic client credentials and
// token=… in the query or a form body. Revoking any token of a grant, access
// or refresh, ends the grant, as Zoom's revoke uninstalls the app's access.
// An unknown token is answered like a known one (RFC 7009), but a token of
// another client is refused.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthForm)
	_ = r.ParseForm()
	app, ok := s.clientAuth(w, r)
	if !ok {
		return
	}
	countFor(w, app.acct)
	raw := r.Form.Get("token")
	if raw == "" || len(raw) > maxTokenParam {
		writeOAuthError(w, http.StatusBadRequest, 0, "", "invalid_request", "Missing token.")
		return
	}
	s.tokens.mu.Lock()
	ok = s.revokeLocked(app, raw)
	s.tokens.mu.Unlock()
	if !ok {
		writeOAuthError(w, http.StatusBadRequest, 0, "", "invalid_request", "The token was not issued to this client.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// revokeLocked revokes what a token belongs to: the grant of an OAuth
// token, or the token alone for a Server-to-Server one, which has no grant.
// It reports false for a token of another client; the caller holds
// s.tokens.mu.
func (s *Server) revokeLocked(app *App, raw string) bool {
	ts := &s.tokens
	var g *grant
	if at, found := ts.access[raw]; found {
		if at.grant == nil {
			if app != at.acct.s2s {
				return false
			}
			delete(ts.access, raw)
			return true
		}
		g = at.grant
	} else if rt := ts.refresh[raw]; rt != nil {
		g = rt.grant
	}
	switch {
	case g == nil:
		return true // unknown tokens are answered like known ones
	case g.app != app:
		return false
	case !g.revoked:
		g.revoked = true
		app.grants = slices.DeleteFunc(app.grants, func(x *grant) bool { return x == g })
		app.acct.stats.Revocations++
	}
	return true
}

// deliverDeauthorized sends the Marketplace app_deauthorized notification
// with the fields of Zoom's Marketplace events document: account_id,
// user_id, signature (an id of this deauthorization), deauthorization_time
// and client_id, plus event_ts both at the top, as every notification has
// it, and in the payload, where that document puts it.
func (a *Account) deliverDeauthorized(ctx context.Context, clientID, userID string) Delivery {
	now := a.srv.now()
	sig := make([]byte, 32)
	_, _ = rand.Read(sig)
	body := deauthEnvelope{
		Event:   "app_deauthorized",
		EventTS: now.UnixMilli(),
		Payload: deauthPayload{
			AccountID:           a.id,
			UserID:              userID,
			Signature:           hex.EncodeToString(sig),
			DeauthorizationTime: now.UTC().Format("2006-01-02T15:04:05.000Z"),
			ClientID:            clientID,
			EventTS:             now.UnixMilli(),
		},
	}
	return a.send(ctx, body.Event, mustJSON(body))
}

type deauthEnvelope struct {
	Event   string        `json:"event"`
	EventTS int64         `json:"event_ts"`
	Payload deauthPayload `json:"payload"`
}

type deauthPayload struct {
	AccountID           string `json:"account_id"`
	UserID              string `json:"user_id"`
	Signature           string `json:"signature"`
	DeauthorizationTime string `json:"deauthorization_time"`
	ClientID            string `json:"client_id"`
	EventTS             int64  `json:"event_ts"`
}

var pageTemplate = template.Must(template.New("pages").Parse(`
{{define "error"}}<!doctype html>
<html><head><meta charset="utf-8"><title>Zoom (simulated): authorization error</title></head>
<body><h1>Authorization error</h1><p>{{.}}</p></body></html>
{{end}}
{{define "consent"}}<!doctype html>
<html><head><meta charset="utf-8"><title>Zoom (simulated): authorize app</title></head>
<body>
<h1>Authorize app {{.ClientID}}</h1>
<p>The app asks for access to account {{.Account}} with these scopes:</p>
<ul>{{range .Scopes}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/oauth/authorize">
{{range $k, $vs := .Params}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">
{{end}}{{end}}<button type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
{{end}}`))
