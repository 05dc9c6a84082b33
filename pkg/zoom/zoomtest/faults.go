package zoomtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is one rule of injected failure. A request matches when it meets
// every condition set (zero fields are no condition); a matching request is
// delayed by Latency and, when Status is set, answered with that status and
// a Zoom error body instead of being served. Rules stay until removed or
// cleared, or until they have fired Times times.
//
// Recipes:
//
//	5xx on 10% of requests:           Fault{Fraction: 0.1, Status: 503}
//	3 failures in a row, then fine:   Fault{Times: 3, Status: 500}
//	slow API:                         Fault{Latency: 200 * time.Millisecond}
//	fail request number 7:            Fault{Request: 7, Status: 500}
//	inactive users broken after page 2, until cleared:
//	    Fault{Route: "GET /users", Query: map[string]string{"status": "inactive"}, AfterPage: 2, Status: 500}
//	everything under one group:       Fault{PathPrefix: "/v2/groups/abc", Status: 502}
//	token endpoint down:              Fault{Route: TokenRoute, Status: 503}
//	active users cut short on page 3: Fault{Route: "GET /users", Query: map[string]string{"status": "active"},
//	                                        AfterPage: 2, Body: `{"total_records":5000,"users":[]}`}
//
// Faults apply before authentication and rate limiting, as a failing Zoom
// front end would, and to the token endpoint too unless Route excludes it.
type Fault struct {
	// ID is assigned by Faults.Add.
	ID int `json:"id,omitempty"`

	// Route is a route template such as "GET /users" or TokenRoute.
	Route string `json:"route,omitempty"`
	// PathPrefix matches the request path, /v2 included.
	PathPrefix string `json:"path_prefix,omitempty"`
	// Query lists query parameters that must have these exact values. It
	// matches the raw query: a GET /users without status (which means
	// active) does not match {"status": "active"}.
	Query map[string]string `json:"query,omitempty"`
	// AfterPage matches only pages after this one of a listing (the page
	// number a next_page_token or page_number asks for; the first page is
	// 1).
	AfterPage int `json:"after_page,omitempty"`
	// Request matches only the request with this number, counting every
	// request from 1 since the start or the last ResetRequests.
	Request int64 `json:"request,omitempty"`
	// Fraction is the probability that a matching request is hit; 0 means
	// every one.
	Fraction float64 `json:"fraction,omitempty"`
	// Times removes the rule after it has fired this many times; 0 keeps it
	// until removed. With Fraction 0 this fails that many matching requests
	// in a row.
	Times int `json:"times,omitempty"`
	// Account matches only the requests of that account: API requests whose
	// bearer token was issued for it, and token, authorize and revoke
	// requests of its apps (or naming it in account_id). Account.Faults
	// sets it.
	Account string `json:"account,omitempty"`

	// Latency delays matching requests.
	Latency time.Duration `json:"-"`
	// Status is the HTTP status to answer. Zero with a Latency only delays;
	// zero without one means 500.
	Status int `json:"status,omitempty"`
	// Code and Message make the body {"code","message"}; they default to
	// the status and its text.
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Body, when set, is the answer's body exactly, sent with Status (200
	// when zero: Add sets it) instead of an error: a listing Zoom cuts short, say,
	// {"total_records":5000,"users":[]}.
	Body string `json:"body,omitempty"`
}

type faultJSON Fault

// MarshalJSON writes Latency as a Go duration string ("250ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	var lat string
	if f.Latency > 0 {
		lat = f.Latency.String()
	}
	return json.Marshal(struct {
		faultJSON
		Latency string `json:"latency,omitempty"`
	}{faultJSON(f), lat})
}

// UnmarshalJSON reads Latency as a Go duration string ("250ms").
func (f *Fault) UnmarshalJSON(b []byte) error {
	var v struct {
		faultJSON
		Latency string `json:"latency,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Fault(v.faultJSON)
	if v.Latency != "" {
		d, err := time.ParseDuration(v.Latency)
		if err != nil {
			return fmt.Errorf("fault latency: %w", err)
		}
		f.Latency = d
	}
	return nil
}

// Faults injects failures into a Server at run time. Its methods are safe
// for concurrent use.
//
// Server.Faults holds the rules for every request, and its switches
// (ExpireTokens, RevokeCredentials) act on the default account;
// Account.Faults is a view of the same rules limited to one account's
// requests, whose switches act on that account.
type Faults struct {
	srv   *Server
	acct  *Account // the switches' account
	scope string   // "" for every rule, else the account id the view is limited to
	rules *faultRules
}

// faultRules are the server's rules, shared by every Faults view.
type faultRules struct {
	mu     sync.Mutex
	rng    *rand.Rand
	rules  []*Fault
	nextID int
	scoped int // rules with an Account, so that apply resolves accounts only when needed
}

func newFaultRules(seed int64) *faultRules {
	return &faultRules{rng: rand.New(rand.NewPCG(uint64(seed), 0xfa17))}
}

func (f *Faults) mine(r *Fault) bool { return f.scope == "" || r.Account == f.scope }

// Add installs a rule and returns its id. A rule added through an account's
// Faults matches only that account's requests.
func (f *Faults) Add(rule Fault) int {
	switch {
	case rule.Status == 0 && rule.Body != "":
		rule.Status = http.StatusOK
	case rule.Status == 0 && rule.Latency == 0:
		rule.Status = http.StatusInternalServerError
	}
	if f.scope != "" {
		rule.Account = f.scope
	}
	fr := f.rules
	fr.mu.Lock()
	defer fr.mu.Unlock()
	fr.nextID++
	rule.ID = fr.nextID
	fr.rules = append(fr.rules, &rule)
	if rule.Account != "" {
		fr.scoped++
	}
	return rule.ID
}

// Remove uninstalls a rule, reporting whether it was there.
func (f *Faults) Remove(id int) bool {
	fr := f.rules
	fr.mu.Lock()
	defer fr.mu.Unlock()
	n := len(fr.rules)
	fr.rules = slices.DeleteFunc(fr.rules, func(r *Fault) bool { return r.ID == id && f.mine(r) })
	fr.recount()
	return len(fr.rules) < n
}

func (fr *faultRules) recount() {
	fr.scoped = 0
	for _, r := range fr.rules {
		if r.Account != "" {
			fr.scoped++
		}
	}
}

// List returns the installed rules, with Times counting down what remains.
func (f *Faults) List() []Fault {
	fr := f.rules
	fr.mu.Lock()
	defer fr.mu.Unlock()
	out := make([]Fault, 0, len(fr.rules))
	for _, r := range fr.rules {
		if f.mine(r) {
			out = append(out, *r)
		}
	}
	return out
}

// Clear removes every rule and restores every account's revoked
// credentials: the server behaves normally again, except that tokens and
// page tokens already expired stay expired. Through an account's Faults it
// removes that account's rules and restores its credentials only.
func (f *Faults) Clear() {
	fr := f.rules
	fr.mu.Lock()
	fr.rules = slices.DeleteFunc(fr.rules, f.mine)
	fr.recount()
	fr.mu.Unlock()
	if f.scope != "" {
		f.RestoreCredentials()
		return
	}
	for _, a := range f.srv.Accounts() {
		a.faults.RestoreCredentials()
	}
}

// ExpireTokens makes every access token issued so far for the account (the
// default account through Server.Faults) expired: requests with one get 401
// code 124 "Access token is expired." until the client gets a new token.
// Refresh tokens keep working.
func (f *Faults) ExpireTokens() {
	ts := &f.srv.tokens
	ts.mu.Lock()
	f.acct.epoch++
	ts.mu.Unlock()
}

// RevokeCredentials makes the token endpoint refuse the account's
// Server-to-Server credentials (401 invalid_client), as when the app is
// deactivated, until RestoreCredentials. Tokens already issued keep working
// until they expire; add ExpireTokens to cut them off too.
func (f *Faults) RevokeCredentials() { f.setRevoked(true) }

// RestoreCredentials undoes RevokeCredentials.
func (f *Faults) RestoreCredentials() { f.setRevoked(false) }

func (f *Faults) setRevoked(v bool) {
	ts := &f.srv.tokens
	ts.mu.Lock()
	f.acct.s2s.revoked = v
	ts.mu.Unlock()
}

// CredentialsRevoked reports whether RevokeCredentials is in force.
func (f *Faults) CredentialsRevoked() bool {
	ts := &f.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return f.acct.s2s.revoked
}

// ExpirePageTokens makes every next_page_token issued so far invalid (400
// code 300), as if 15 minutes had passed. Page tokens are the server's, so
// this applies to every account whichever Faults it is called on.
func (f *Faults) ExpirePageTokens() { f.srv.pageEpoch.Add(1) }

// apply runs the rules for one request. It answers the request and returns
// true when a rule fails it.
func (f *Faults) apply(w http.ResponseWriter, r *http.Request, template string, n int64) bool {
	fr := f.rules
	fr.mu.Lock()
	if len(fr.rules) == 0 {
		fr.mu.Unlock()
		return false
	}
	// The request's account is looked up outside the lock, and only when a
	// rule needs it: the lookup takes the token store's lock.
	acct := ""
	if fr.scoped > 0 {
		fr.mu.Unlock()
		acct = f.srv.requestAccount(r, template)
		fr.mu.Lock()
	}
	var latency time.Duration
	var fail *Fault
	page := -1
	for _, rule := range fr.rules {
		if !rule.matches(r, template, n) || (rule.Account != "" && rule.Account != acct) {
			continue
		}
		if rule.AfterPage > 0 {
			if page < 0 {
				page = f.srv.pageOf(r)
			}
			if page <= rule.AfterPage {
				continue
			}
		}
		if rule.Fraction > 0 && fr.rng.Float64() >= rule.Fraction {
			continue
		}
		latency += rule.Latency
		if rule.Status != 0 && fail == nil {
			c := *rule
			fail = &c
		}
		if rule.Times > 0 {
			rule.Times--
			if rule.Times == 0 {
				rule.Times = -1 // spent: removed below
			}
		}
	}
	fr.rules = slices.DeleteFunc(fr.rules, func(r *Fault) bool { return r.Times < 0 })
	fr.recount()
	fr.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if fail == nil {
		return false
	}
	if fail.Body != "" {
		writeBody(w, fail.Status, []byte(fail.Body))
		return true
	}
	code, msg := fail.Code, fail.Message
	if code == 0 {
		code = fail.Status
	}
	if msg == "" {
		msg = http.StatusText(fail.Status)
	}
	writeError(w, fail.Status, code, msg)
	return true
}

func (rule *Fault) matches(r *http.Request, template string, n int64) bool {
	if rule.Route != "" && rule.Route != template {
		return false
	}
	if rule.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, rule.PathPrefix) {
		return false
	}
	if rule.Request != 0 && rule.Request != n {
		return false
	}
	if len(rule.Query) > 0 {
		q := r.URL.Query()
		for k, v := range rule.Query {
			if q.Get(k) != v {
				return false
			}
		}
	}
	return true
}
