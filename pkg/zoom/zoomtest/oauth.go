package zoomtest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

type accessToken struct {
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

// tokenStore holds issued access tokens. ExpireTokens bumps the epoch, which
// turns every token issued before into an expired one.
type tokenStore struct {
	mu      sync.Mutex
	tokens  map[string]accessToken
	epoch   uint64
	revoked bool
}

// token serves POST /oauth/token for the account_credentials grant
// (Server-to-Server OAuth). The grant parameters may come in the query or in
// a form body, as Zoom accepts both.
//
// Zoom's token endpoint answers errors as {"reason","error"} (the OAuth
// style), while its documentation tables give 47xx codes; the simulator sends
// both pairs of fields in one body so that clients written against either
// reading work. Revoked credentials answer exactly like wrong ones, because
// that is all a client of a deactivated app sees.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm() // a malformed body leaves the query values, enough to report the error
	clientID, secret, ok := r.BasicAuth()
	if !ok || clientID == "" || secret == "" {
		writeOAuthError(w, http.StatusBadRequest, 4706, "Client ID or client secret is missing.", "invalid_request", "Client ID or client secret is missing.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(s.opts.ClientID)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, 4702, "Invalid client.", "invalid_client", "Invalid client_id or client_secret")
		return
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, 4704, "Invalid client secret.", "invalid_client", "Invalid client_id or client_secret")
		return
	}
	s.tokens.mu.Lock()
	revoked := s.tokens.revoked
	s.tokens.mu.Unlock()
	if revoked {
		writeOAuthError(w, http.StatusUnauthorized, 4702, "Invalid client.", "invalid_client", "Invalid client_id or client_secret")
		return
	}
	switch gt := r.Form.Get("grant_type"); gt {
	case "account_credentials":
	case "":
		writeOAuthError(w, http.StatusBadRequest, 4706, "Missing grant type.", "invalid_request", "Missing grant type")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, 4705, "Grant type is not supported from token endpoint.", "unsupported_grant_type", "unsupported grant type")
		return
	}
	if acct := r.Form.Get("account_id"); acct != s.opts.AccountID {
		writeOAuthError(w, http.StatusBadRequest, 4700, "Invalid account ID.", "invalid_request", "Invalid request : Account ID is invalid.")
		return
	}

	scopes := *s.scopes.Load()
	set := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		set[sc] = true
	}
	tok := newAccessToken()
	s.tokens.mu.Lock()
	now := s.now()
	// Drop expired tokens now and then so that a long benchmark does not
	// grow the map without bound.
	if len(s.tokens.tokens) > 1024 {
		for k, t := range s.tokens.tokens {
			if now.After(t.expires) || t.epoch < s.tokens.epoch {
				delete(s.tokens.tokens, k)
			}
		}
	}
	s.tokens.tokens[tok] = accessToken{expires: now.Add(s.opts.TokenTTL), epoch: s.tokens.epoch, scopes: set}
	s.tokens.mu.Unlock()

	apiURL := s.opts.APIURL
	if apiURL == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		apiURL = scheme + "://" + r.Host
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(s.opts.TokenTTL / time.Second),
		"scope":        strings.Join(scopes, " "),
		"api_url":      apiURL,
	})
}

// newAccessToken makes an opaque token shaped like Zoom's (a JWT: three
// base64url parts, the first starting with "eyJ").
func newAccessToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return "eyJzdiI6IjAwMDAwMiIsImFsZyI6IkhTNTEyIiwidiI6IjIuMCJ9." +
		base64.RawURLEncoding.EncodeToString(b[:32]) + "." + base64.RawURLEncoding.EncodeToString(b[32:])
}

// authenticate checks the bearer token: a missing or unknown one is
// "Invalid access token.", an old one "Access token is expired.", both HTTP
// 401 code 124 as Zoom answers in practice.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (accessToken, bool) {
	h := r.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		raw, ok = strings.CutPrefix(h, "bearer ")
	}
	raw = strings.TrimSpace(raw)
	if !ok || raw == "" {
		writeError(w, http.StatusUnauthorized, 124, "Invalid access token.")
		return accessToken{}, false
	}
	s.tokens.mu.Lock()
	tok, found := s.tokens.tokens[raw]
	epoch := s.tokens.epoch
	s.tokens.mu.Unlock()
	switch {
	case !found:
		writeError(w, http.StatusUnauthorized, 124, "Invalid access token.")
		return accessToken{}, false
	case tok.epoch < epoch || !s.now().Before(tok.expires):
		writeError(w, http.StatusUnauthorized, 124, "Access token is expired.")
		return accessToken{}, false
	}
	return tok, true
}

func writeOAuthError(w http.ResponseWriter, status, code int, message, oauthErr, reason string) {
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
