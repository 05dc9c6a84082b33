package zoomtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// AccountRequest is the body of POST /_sim/accounts: the account id, its
// organisation (given whole in Org, or generated from Seed and the sizes,
// or empty when neither is set) and its AccountOptions.
type AccountRequest struct {
	ID     string `json:"id"`
	Org    *Org   `json:"org,omitempty"`
	Seed   int64  `json:"seed,omitempty"`
	Users  int    `json:"users,omitempty"`
	Groups int    `json:"groups,omitempty"`
	Roles  int    `json:"roles,omitempty"`

	ClientID      string     `json:"client_id,omitempty"`
	ClientSecret  string     `json:"client_secret,omitempty"`
	Scopes        []string   `json:"scopes,omitempty"`
	RateLimits    RateLimits `json:"rate_limits"`
	WebhookURL    string     `json:"webhook_url,omitempty"`
	WebhookSecret string     `json:"webhook_secret,omitempty"`
	APIURL        string     `json:"api_url,omitempty"`
	Plan          Plan       `json:"plan,omitempty"`
}

// Bounds of a generated account in the admin API, so that one request
// cannot exhaust the simulator's memory.
const (
	maxAdminUsers  = 1_000_000
	maxAdminGroups = 100_000
	maxAdminRoles  = 1000
	maxAdminBody   = 64 << 20
)

// AppRequest is the body of POST /_sim/accounts/{id}/apps: AppOptions with
// durations as Go duration strings ("30s").
type AppRequest struct {
	ClientID        string   `json:"client_id,omitempty"`
	ClientSecret    string   `json:"client_secret,omitempty"`
	RedirectURIs    []string `json:"redirect_uris"`
	Scopes          []string `json:"scopes,omitempty"`
	Consent         bool     `json:"consent,omitempty"`
	TokenTTL        string   `json:"token_ttl,omitempty"`
	RefreshTokenTTL string   `json:"refresh_token_ttl,omitempty"`
	CodeTTL         string   `json:"code_ttl,omitempty"`
}

// Options converts the request, checking its durations.
func (req AppRequest) Options() (AppOptions, error) {
	opts := AppOptions{
		ClientID: req.ClientID, ClientSecret: req.ClientSecret, RedirectURIs: req.RedirectURIs,
		Scopes: req.Scopes, Consent: req.Consent,
	}
	for _, d := range []struct {
		name string
		v    string
		dst  *time.Duration
	}{
		{"token_ttl", req.TokenTTL, &opts.TokenTTL},
		{"refresh_token_ttl", req.RefreshTokenTTL, &opts.RefreshTokenTTL},
		{"code_ttl", req.CodeTTL, &opts.CodeTTL},
	} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v < 0 {
			return opts, fmt.Errorf("%s: %q is not a duration: %w", d.name, d.v, ErrInvalid)
		}
		*d.dst = v
	}
	return opts, nil
}

// AccountInfo describes an account in the admin API.
type AccountInfo struct {
	ID           string   `json:"id"`
	Default      bool     `json:"default"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	WebhookURL   string   `json:"webhook_url"`
	Plan         Plan     `json:"plan"`
	Users        int      `json:"users"`
	Groups       int      `json:"groups"`
	Roles        int      `json:"roles"`
	Apps         []string `json:"apps"`
}

// Info describes the account: its Server-to-Server credentials, webhook
// URL, sizes and the client ids of its OAuth apps.
func (a *Account) Info() AccountInfo {
	a.st.mu.RLock()
	info := AccountInfo{
		ID: a.id, Default: a == a.srv.def, ClientID: a.ClientID(), ClientSecret: a.ClientSecret(),
		WebhookURL: a.WebhookURL(), Plan: a.Plan(), Users: len(a.st.all), Groups: len(a.st.groups), Roles: len(a.st.roles),
		Apps: []string{},
	}
	a.st.mu.RUnlock()
	for _, app := range a.Apps() {
		info.Apps = append(info.Apps, app.clientID)
	}
	return info
}

// AppInfo describes an OAuth app in the admin API.
type AppInfo struct {
	Account      string   `json:"account"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Consent      bool     `json:"consent"`
	Authorized   bool     `json:"authorized"`
	TokenTTL     string   `json:"token_ttl"`
	RefreshTTL   string   `json:"refresh_token_ttl"`
	CodeTTL      string   `json:"code_ttl"`
}

// Info describes the app, its credentials included (they are the
// simulator's own, for the tests and demos that drive it).
func (p *App) Info() AppInfo {
	return AppInfo{
		Account: p.acct.id, ClientID: p.clientID, ClientSecret: p.clientSecret,
		RedirectURIs: p.RedirectURIs(), Scopes: p.Scopes(), Consent: p.consent, Authorized: p.Authorized(),
		TokenTTL: p.tokenTTL.String(), RefreshTTL: p.refreshTTL.String(), CodeTTL: p.codeTTL.String(),
	}
}

// adminError answers an admin API error with Zoom's error body, the
// status chosen from the error's kind.
func adminError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, ErrAccountExists), errors.Is(err, ErrConflict):
		status = http.StatusConflict
	}
	writeError(w, status, status, err.Error())
}

// decodeAdmin reads an admin request body of at most limit bytes.
func decodeAdmin(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, 300, "invalid request body: "+err.Error())
		return false
	}
	return true
}

// accountRoutes adds the per-account admin routes to mux (see
// AdminHandler).
func (s *Server) accountRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/accounts", func(w http.ResponseWriter, r *http.Request) {
		infos := []AccountInfo{}
		for _, a := range s.Accounts() {
			infos = append(infos, a.Info())
		}
		writeJSON(w, http.StatusOK, map[string]any{"accounts": infos})
	})
	mux.HandleFunc("POST /_sim/accounts", func(w http.ResponseWriter, r *http.Request) {
		var req AccountRequest
		if !decodeAdmin(w, r, maxAdminBody, &req) {
			return
		}
		if req.Users < 0 || req.Users > maxAdminUsers || req.Groups < 0 || req.Groups > maxAdminGroups || req.Roles < 0 || req.Roles > maxAdminRoles {
			writeError(w, http.StatusBadRequest, 300, fmt.Sprintf("users, groups and roles must be at most %d, %d and %d", maxAdminUsers, maxAdminGroups, maxAdminRoles))
			return
		}
		org := req.Org
		if org == nil && req.Users > 0 {
			org = Generate(req.Seed, Size{Users: req.Users, Groups: req.Groups, Roles: req.Roles})
		}
		a, err := s.AddAccount(req.ID, org, AccountOptions{
			ClientID: req.ClientID, ClientSecret: req.ClientSecret, Scopes: req.Scopes, RateLimits: req.RateLimits,
			WebhookURL: req.WebhookURL, WebhookSecret: req.WebhookSecret, APIURL: req.APIURL,
			Plan: req.Plan,
		})
		if err != nil {
			adminError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, a.Info())
	})

	// acct wraps a handler of /_sim/accounts/{id}/…, answering 404 for an
	// unknown account.
	acct := func(h func(a *Account, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			a := s.Account(id)
			if a == nil {
				writeError(w, http.StatusNotFound, 404, fmt.Sprintf("account %.64q not found", id))
				return
			}
			h(a, w, r)
		}
	}
	// app wraps a handler of /_sim/accounts/{id}/apps/{clientId}/….
	app := func(h func(p *App, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
		return acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("clientId")
			p := a.App(id)
			if p == nil {
				writeError(w, http.StatusNotFound, 404, fmt.Sprintf("app %.64q not found in account %s", id, a.id))
				return
			}
			h(p, w, r)
		})
	}

	mux.HandleFunc("GET /_sim/accounts/{id}", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Info())
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/org", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Org())
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/expected", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeExpected(w, a.Org())
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/events", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"events": nonNil(a.Events())})
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/requests", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"total": a.TotalRequests(), "routes": a.Requests(), "statuses": a.RequestsByStatus(),
			"writes": a.WriteRequests(),
		})
	}))
	mux.HandleFunc("PUT /_sim/accounts/{id}/seats", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var l SeatLimit
		if !decodeAdmin(w, r, 1<<10, &l) {
			return
		}
		if l.Licensed <= 0 {
			a.SetSeatLimit(nil)
		} else {
			a.SetSeatLimit(&l)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/tokens", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.TokenStats())
	}))
	mux.HandleFunc("PUT /_sim/accounts/{id}/webhook", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var req struct {
			URL    string  `json:"url"`
			Secret *string `json:"secret"`
		}
		if !decodeAdmin(w, r, 1<<16, &req) {
			return
		}
		a.SetWebhookURL(req.URL)
		if req.Secret != nil {
			a.SetWebhookSecret(*req.Secret)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("PUT /_sim/accounts/{id}/rate-limits", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var req RateLimits
		if !decodeAdmin(w, r, 1<<16, &req) {
			return
		}
		a.SetRateLimits(req)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("PUT /_sim/accounts/{id}/plan", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var req struct {
			Plan Plan `json:"plan"`
		}
		if !decodeAdmin(w, r, 1<<16, &req) {
			return
		}
		if err := a.SetPlan(req.Plan); err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/mutate", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		s.mutateRoute(w, r, a)
	}))
	faults := func(a *Account, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]any{
			"faults": a.faults.List(), "credentials_revoked": a.faults.CredentialsRevoked(),
		})
	}
	mux.HandleFunc("GET /_sim/accounts/{id}/faults", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		faults(a, w)
	}))
	mux.HandleFunc("DELETE /_sim/accounts/{id}/faults", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		a.faults.Clear()
		faults(a, w)
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/faults", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var req FaultsRequest
		if !decodeAdmin(w, r, 1<<20, &req) {
			return
		}
		a.faults.Do(req)
		faults(a, w)
	}))

	mux.HandleFunc("GET /_sim/accounts/{id}/apps", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		infos := []AppInfo{}
		for _, p := range a.Apps() {
			infos = append(infos, p.Info())
		}
		writeJSON(w, http.StatusOK, map[string]any{"apps": infos})
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/apps", acct(func(a *Account, w http.ResponseWriter, r *http.Request) {
		var req AppRequest
		if !decodeAdmin(w, r, 1<<20, &req) {
			return
		}
		opts, err := req.Options()
		if err != nil {
			adminError(w, err)
			return
		}
		p, err := a.AddApp(opts)
		if err != nil {
			adminError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, p.Info())
	}))
	mux.HandleFunc("GET /_sim/accounts/{id}/apps/{clientId}", app(func(p *App, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Info())
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/apps/{clientId}/revoke", app(func(p *App, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"revoked": p.RevokeGrants()})
	}))
	mux.HandleFunc("POST /_sim/accounts/{id}/apps/{clientId}/deauthorize", app(func(p *App, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"delivery": p.Deauthorize(r.Context())})
	}))
}

// mutateRoute serves POST …/mutate?n=5 for an account: n random mutations
// from the server's one random stream, so that a run's mutations can be
// replayed from Options.Seed.
func (s *Server) mutateRoute(w http.ResponseWriter, r *http.Request, a *Account) {
	n := 1
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > 100000 {
			writeError(w, http.StatusBadRequest, 300, "n must be an integer from 0 to 100000.")
			return
		}
	}
	s.rngMu.Lock()
	ds, err := a.RandomMutations(r.Context(), s.rng, n)
	s.rngMu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, 500, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": nonNil(ds)})
}

// writeExpected writes the oracle's records of org, one JSON object a line.
func writeExpected(w http.ResponseWriter, org *Org) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, rec := range Expected(org) {
		if err := enc.Encode(rec); err != nil {
			return // the client went away
		}
	}
}
