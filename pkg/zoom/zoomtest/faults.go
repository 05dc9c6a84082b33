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
type Faults struct {
	srv    *Server
	mu     sync.Mutex
	rng    *rand.Rand
	rules  []*Fault
	nextID int
}

func newFaults(s *Server, seed int64) *Faults {
	return &Faults{srv: s, rng: rand.New(rand.NewPCG(uint64(seed), 0xfa17))}
}

// Add installs a rule and returns its id.
func (f *Faults) Add(rule Fault) int {
	switch {
	case rule.Status == 0 && rule.Body != "":
		rule.Status = http.StatusOK
	case rule.Status == 0 && rule.Latency == 0:
		rule.Status = http.StatusInternalServerError
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	rule.ID = f.nextID
	f.rules = append(f.rules, &rule)
	return rule.ID
}

// Remove uninstalls a rule, reporting whether it was there.
func (f *Faults) Remove(id int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.rules)
	f.rules = slices.DeleteFunc(f.rules, func(r *Fault) bool { return r.ID == id })
	return len(f.rules) < n
}

// List returns the installed rules, with Times counting down what remains.
func (f *Faults) List() []Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Fault, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, *r)
	}
	return out
}

// Clear removes every rule and restores revoked credentials: the server
// behaves normally again, except that tokens and page tokens already expired
// stay expired.
func (f *Faults) Clear() {
	f.mu.Lock()
	f.rules = nil
	f.mu.Unlock()
	f.RestoreCredentials()
}

// ExpireTokens makes every access token issued so far expired: requests with
// one get 401 code 124 "Access token is expired." until the client gets a new
// token.
func (f *Faults) ExpireTokens() {
	ts := &f.srv.tokens
	ts.mu.Lock()
	ts.epoch++
	ts.mu.Unlock()
}

// RevokeCredentials makes the token endpoint refuse the credentials (401
// invalid_client), as when the app is deactivated, until
// RestoreCredentials. Tokens already issued keep working until they expire;
// add ExpireTokens to cut them off too.
func (f *Faults) RevokeCredentials() { f.setRevoked(true) }

// RestoreCredentials undoes RevokeCredentials.
func (f *Faults) RestoreCredentials() { f.setRevoked(false) }

func (f *Faults) setRevoked(v bool) {
	ts := &f.srv.tokens
	ts.mu.Lock()
	ts.revoked = v
	ts.mu.Unlock()
}

// CredentialsRevoked reports whether RevokeCredentials is in force.
func (f *Faults) CredentialsRevoked() bool {
	ts := &f.srv.tokens
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.revoked
}

// ExpirePageTokens makes every next_page_token issued so far invalid (400
// code 300), as if 15 minutes had passed.
func (f *Faults) ExpirePageTokens() { f.srv.pageEpoch.Add(1) }

// apply runs the rules for one request. It answers the request and returns
// true when a rule fails it.
func (f *Faults) apply(w http.ResponseWriter, r *http.Request, template string, n int64, pageOf func(*http.Request) int) bool {
	f.mu.Lock()
	if len(f.rules) == 0 {
		f.mu.Unlock()
		return false
	}
	var latency time.Duration
	var fail *Fault
	page := -1
	for _, rule := range f.rules {
		if !rule.matches(r, template, n) {
			continue
		}
		if rule.AfterPage > 0 {
			if page < 0 {
				page = pageOf(r)
			}
			if page <= rule.AfterPage {
				continue
			}
		}
		if rule.Fraction > 0 && f.rng.Float64() >= rule.Fraction {
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
	f.rules = slices.DeleteFunc(f.rules, func(r *Fault) bool { return r.Times < 0 })
	f.mu.Unlock()

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
