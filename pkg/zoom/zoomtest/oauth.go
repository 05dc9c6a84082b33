package zoomtest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

type accessToken struct {
	acct    *Account
	grant   *grant // the OAuth authorization it belongs to; nil for Server-to-Server
	expires time.Time
	epoch   uint64
	scopes  map[string]bool
}

// grants reports whether the token holds any scope, classic or granular,
// that Zoom accepts for the route.
func (t accessToken) grants(rt route) bool {
	for _, sc := range rt.macro {
		if t.scopes[sc] {
			return true
		}
	}
	for _, sc := range rt.granular {
		if t.scopes[sc] {
			return true
		}
	}
	return false
}

func scopeSet(scopes []string) map[string]bool {
	set := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		set[sc] = true
	}
	return set
}

// tokenStore holds everything the OAuth endpoints issue (access tokens,
// refresh tokens, authorization codes) and the apps they are issued to, by
// client id. One lock guards it all, and the per-account and per-app fields
// documented as guarded by it: a revocation then takes effect for every
// token at once.
type tokenStore struct {
	mu      sync.Mutex
	access  map[string]accessToken
	refresh map[string]*refreshToken
	codes   map[string]*authCode
	apps    map[string]*App
}

func (ts *tokenStore) init() {
	ts.access = map[string]accessToken{}
	ts.refresh = map[string]*refreshToken{}
	ts.codes = map[string]*authCode{}
	ts.apps = map[string]*App{}
}

// register adds an app under its client id, which must be unused.
func (ts *tokenStore) register(app *App) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.apps[app.clientID] != nil {
		return fmt.Errorf("client id %q: %w", app.clientID, ErrConflict)
	}
	ts.apps[app.clientID] = app
	return nil
}

// issueAccess stores a new access token; the caller holds ts.mu.
func (s *Server) issueAccess(a *Account, g *grant, scopes []string, ttl time.Duration, now time.Time) string {
	ts := &s.tokens
	// Drop expired tokens now and then so that a long benchmark does not
	// grow the map without bound.
	if len(ts.access) > 1024 {
		for k, t := range ts.access {
			if now.After(t.expires) || t.epoch < t.acct.epoch || (t.grant != nil && t.grant.revoked) {
				delete(ts.access, k)
			}
		}
	}
	tok := newAccessToken()
	ts.access[tok] = accessToken{acct: a, grant: g, expires: now.Add(ttl), epoch: a.epoch, scopes: scopeSet(scopes)}
	a.stats.AccessTokens++
	return tok
}

// Bounds of the values the OAuth endpoints read. Anything longer is refused
// where it enters, before it is looked up or stored.
const (
	maxClientID     = 256
	maxSecret       = 256
	maxTokenParam   = 4096 // codes, refresh tokens, tokens to revoke
	maxRedirectURI  = 2048
	maxState        = 4096
	maxOAuthForm    = 64 << 10
	minVerifier     = 43
	maxVerifier     = 128
	maxChallenge    = 128
	maxGrantType    = 64
	maxAccountParam = maxAccountID
)

// token serves POST /oauth/token: the account_credentials grant
// (Server-to-Server OAuth) and the authorization_code and refresh_token
// grants (OAuth apps). The parameters may come in the query or in a form
// body, as Zoom accepts both; the client authenticates with HTTP Basic only.
//
// Zoom's token endpoint answers errors as {"reason","error"} (the OAuth
// style), while its documentation tables give 47xx codes; where a 47xx code
// is documented the simulator sends both pairs of fields in one body so that
// clients written against either reading work. Revoked credentials answer
// exactly like wrong ones, because that is all a client of a deactivated app
// sees.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthForm)
	_ = r.ParseForm() // a malformed or oversized body leaves the query values, enough to report the error
	app, ok := s.clientAuth(w, r)
	if !ok {
		return
	}
	countFor(w, app.acct)
	gt := r.Form.Get("grant_type")
	if len(gt) > maxGrantType {
		gt = "(too long)"
	}
	switch {
	case gt == "":
		writeOAuthError(w, http.StatusBadRequest, 4706, "Missing grant type.", "invalid_request", "Missing grant type")
	case gt == "account_credentials" && app.kind == appS2S:
		s.accountCredentials(w, r, app)
	case gt == "authorization_code" && app.kind == appOAuth:
		s.exchangeCode(w, r, app)
	case gt == "refresh_token" && app.kind == appOAuth:
		s.refreshGrant(w, r, app)
	default:
		// Zoom answers a grant its app type does not have (an OAuth app's
		// credentials with account_credentials, say) as an unsupported one.
		writeOAuthError(w, http.StatusBadRequest, 4705, "Grant type is not supported from token endpoint.", "unsupported_grant_type", "unsupported grant type")
	}
}

// clientAuth checks the request's HTTP Basic client credentials and returns
// their app, answering the error itself when they do not hold.
func (s *Server) clientAuth(w http.ResponseWriter, r *http.Request) (*App, bool) {
	clientID, secret, ok := r.BasicAuth()
	if !ok || clientID == "" || secret == "" {
		writeOAuthError(w, http.StatusBadRequest, 4706, "Client ID or client secret is missing.", "invalid_request", "Client ID or client secret is missing.")
		return nil, false
	}
	var app *App
	revoked := false
	if len(clientID) <= maxClientID {
		s.tokens.mu.Lock()
		app = s.tokens.apps[clientID]
		if app != nil {
			revoked = app.revoked
		}
		s.tokens.mu.Unlock()
	}
	if app == nil {
		writeOAuthError(w, http.StatusUnauthorized, 4702, "Invalid client.", "invalid_client", "Invalid client_id or client_secret")
		return nil, false
	}
	if len(secret) > maxSecret || subtle.ConstantTimeCompare([]byte(secret), []byte(app.clientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, 4704, "Invalid client secret.", "invalid_client", "Invalid client_id or client_secret")
		return nil, false
	}
	if revoked {
		writeOAuthError(w, http.StatusUnauthorized, 4702, "Invalid client.", "invalid_client", "Invalid client_id or client_secret")
		return nil, false
	}
	return app, true
}

// accountCredentials serves the account_credentials grant of a
// Server-to-Server app: no refresh token, as Zoom documents.
func (s *Server) accountCredentials(w http.ResponseWriter, r *http.Request, app *App) {
	a := app.acct
	if acct := r.Form.Get("account_id"); len(acct) > maxAccountParam || acct != a.id {
		writeOAuthError(w, http.StatusBadRequest, 4700, "Invalid account ID.", "invalid_request", "Invalid request : Account ID is invalid.")
		return
	}
	scopes := *a.scopes.Load()
	ttl := s.opts.TokenTTL
	s.tokens.mu.Lock()
	tok := s.issueAccess(a, nil, scopes, ttl, s.now())
	s.tokens.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(ttl / time.Second),
		"scope":        strings.Join(scopes, " "),
		"api_url":      s.apiURL(a, r),
	})
}

// apiURL is the api_url of a token response: the account's, the server's
// option, or the server's own URL as the request reached it.
func (s *Server) apiURL(a *Account, r *http.Request) string {
	if a.apiURL != "" {
		return a.apiURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// newAccessToken makes an opaque token shaped like Zoom's (a JWT: three
// base64url parts, the first starting with "eyJ").
func newAccessToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return "eyJzdiI6IjAwMDAwMiIsImFsZyI6IkhTNTEyIiwidiI6IjIuMCJ9." +
		base64.RawURLEncoding.EncodeToString(b[:32]) + "." + base64.RawURLEncoding.EncodeToString(b[32:])
}

// authenticate checks the bearer token: a missing, unknown or revoked one
// is "Invalid access token.", an old one "Access token is expired.", both
// HTTP 401 code 124 as Zoom answers in practice.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (accessToken, bool) {
	raw, ok := bearer(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, 124, "Invalid access token.")
		return accessToken{}, false
	}
	s.tokens.mu.Lock()
	tok, found := s.tokens.access[raw]
	var epoch uint64
	revoked := false
	if found {
		epoch = tok.acct.epoch
		revoked = tok.grant != nil && tok.grant.revoked
	}
	s.tokens.mu.Unlock()
	switch {
	case !found || revoked:
		writeError(w, http.StatusUnauthorized, 124, "Invalid access token.")
		return accessToken{}, false
	case tok.epoch < epoch || !s.now().Before(tok.expires):
		writeError(w, http.StatusUnauthorized, 124, "Access token is expired.")
		return accessToken{}, false
	}
	return tok, true
}

// bearer returns the request's bearer token, refusing an empty or
// oversized one.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(h, "bearer ")
	}
	raw = strings.TrimSpace(raw)
	return raw, ok && raw != "" && len(raw) <= maxTokenParam
}

// requestAccount names the account a request belongs to, for fault rules
// limited to one account: the account of its bearer token, or of the app
// its client id names, or the account_id it asks for; "" when none.
func (s *Server) requestAccount(r *http.Request, template string) string {
	if raw, ok := bearer(r); ok {
		s.tokens.mu.Lock()
		tok, found := s.tokens.access[raw]
		s.tokens.mu.Unlock()
		if found {
			return tok.acct.id
		}
		return ""
	}
	clientID, _, ok := r.BasicAuth()
	if !ok {
		clientID = r.URL.Query().Get("client_id")
	}
	if clientID != "" && len(clientID) <= maxClientID {
		s.tokens.mu.Lock()
		app := s.tokens.apps[clientID]
		s.tokens.mu.Unlock()
		if app != nil {
			return app.acct.id
		}
	}
	if template == TokenRoute {
		return r.URL.Query().Get("account_id")
	}
	return ""
}

// writeOAuthError answers an OAuth error with Zoom's {"reason","error"}
// and, when Zoom documents one (code not 0), its 47xx code and message.
func writeOAuthError(w http.ResponseWriter, status, code int, message, oauthErr, reason string) {
	if code == 0 {
		writeJSON(w, status, map[string]any{"reason": reason, "error": oauthErr})
		return
	}
	writeJSON(w, status, map[string]any{"code": code, "message": message, "error": oauthErr, "reason": reason})
}

// writeJSON writes v as Zoom does, with its content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes Zoom's error body {"code","message"}.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})
}

// fieldError is one item of the errors array of a validation error.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// writeValidation writes Zoom's validation error: code 300 "Validation
// Failed." with the offending fields.
func writeValidation(w http.ResponseWriter, field, message string) {
	writeJSON(w, http.StatusBadRequest, struct {
		Code    int          `json:"code"`
		Message string       `json:"message"`
		Errors  []fieldError `json:"errors"`
	}{300, "Validation Failed.", []fieldError{{field, message}}})
}
