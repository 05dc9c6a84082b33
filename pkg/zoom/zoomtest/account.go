package zoomtest

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
)

// An Account is one Zoom account served by a Server: its organisation, its
// rate-limit budget (Zoom's limits are per account, shared by every app on
// it), its webhook subscription, its Server-to-Server app and its OAuth apps.
// A Server starts with one account, the default, which the Server's own
// methods act on; AddAccount adds more, so that several tenants can be served
// behind one API URL as Zoom serves every account behind api.zoom.us. An API
// request acts on the account its access token was issued for.
//
// All methods are safe for concurrent use, including while the server
// serves requests.
type Account struct {
	srv    *Server
	id     string
	apiURL string
	st     *state
	limits *limiter
	scopes atomic.Pointer[[]string]
	plan   atomic.Pointer[Plan]

	webhookURL    atomic.Pointer[string]
	webhookSecret atomic.Pointer[string]

	counter acctCounter
	faults  *Faults
	// seats limits Licensed users (licenses.go); nil: no limit.
	seats atomic.Pointer[SeatLimit]

	// Guarded by srv.tokens.mu, with the tokens they govern.
	epoch uint64 // ExpireTokens bumps it: older access tokens are expired
	s2s   *App   // the account's Server-to-Server app
	apps  []*App // OAuth apps, in the order they were added
	stats TokenStats
}

// AccountOptions configure an account added with AddAccount. The zero value
// is an unlimited account without webhooks whose Server-to-Server app has
// the credentials "sim-client-<id>" and "sim-secret-<id>" and DefaultScopes.
type AccountOptions struct {
	// ClientID and ClientSecret are the account's Server-to-Server OAuth
	// app, for the account_credentials grant. Client ids are unique across
	// the server, as Zoom's are.
	ClientID     string
	ClientSecret string
	// Scopes of the Server-to-Server app's tokens; nil means DefaultScopes.
	Scopes []string
	// RateLimits are the account's own per-label limits; zero is unlimited.
	RateLimits RateLimits
	// WebhookURL and WebhookSecret are the account's event subscription:
	// where its notifications go (empty sends none) and the secret token
	// that signs them.
	WebhookURL    string
	WebhookSecret string
	// APIURL is the api_url of the account's token responses; empty means
	// Options.APIURL, or the server's own URL.
	APIURL string
	// Plan is the account's plan: PlanBasic (free) is refused the groups
	// and roles endpoints; empty is PlanPro. SetPlan changes it.
	Plan Plan
}

// ErrAccountExists is returned by AddAccount for an id already served.
var ErrAccountExists = errors.New("zoomtest: account already exists")

// maxAccountID bounds account ids, which reach the simulator from the admin
// API and from token requests.
const maxAccountID = 64

// validAccountID accepts the characters of Zoom's account ids (base64url)
// and the hyphens and dots of readable test ids.
func validAccountID(id string) bool {
	if id == "" || len(id) > maxAccountID {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// newAccount builds an account; the caller registers it.
func (s *Server) newAccount(id string, org *Org, opts AccountOptions) *Account {
	if org == nil {
		org = &Org{}
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	if opts.APIURL == "" {
		opts.APIURL = s.opts.APIURL
	}
	a := &Account{
		srv:    s,
		id:     id,
		apiURL: opts.APIURL,
		st:     newState(org, id),
		limits: newLimiter(opts.RateLimits, s.now),
	}
	a.limits.plan = a.Plan // the daily caps depend on it
	a.faults = &Faults{srv: s, acct: a, scope: id, rules: s.faults.rules}
	a.counter.reset()
	a.SetScopes(opts.Scopes)
	if !validPlan(opts.Plan) {
		opts.Plan = "" // AddAccount and New check it first
	}
	_ = a.SetPlan(opts.Plan)
	a.SetWebhookURL(opts.WebhookURL)
	a.SetWebhookSecret(opts.WebhookSecret)
	a.s2s = &App{acct: a, kind: appS2S, clientID: opts.ClientID, clientSecret: opts.ClientSecret}
	return a
}

// AddAccount adds an account serving a copy of org (nil is an empty
// account) under id. Its access tokens, rate limits, webhooks and apps are
// its own; the org's AccountID is ignored in favour of id. It fails with
// ErrAccountExists when id is taken, with ErrConflict when the
// Server-to-Server client id is, and with ErrInvalid for an id that is
// empty, longer than 64 characters or not made of letters, digits, '-', '_'
// and '.'.
func (s *Server) AddAccount(id string, org *Org, opts AccountOptions) (*Account, error) {
	if !validAccountID(id) {
		return nil, fmt.Errorf("add account %q: %w", id, ErrInvalid)
	}
	if opts.ClientID == "" {
		opts.ClientID = "sim-client-" + id
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "sim-secret-" + id
	}
	if len(opts.ClientID) > maxClientID || len(opts.ClientSecret) > maxSecret {
		return nil, fmt.Errorf("add account %q: client id or secret too long: %w", id, ErrInvalid)
	}
	if !validPlan(opts.Plan) {
		return nil, fmt.Errorf("add account %q: plan %.32q is not basic, pro or business: %w", id, opts.Plan, ErrInvalid)
	}
	a := s.newAccount(id, org, opts)
	s.acctMu.Lock()
	defer s.acctMu.Unlock()
	if s.accounts[id] != nil {
		return nil, fmt.Errorf("add account %q: %w", id, ErrAccountExists)
	}
	if err := s.tokens.register(a.s2s); err != nil {
		return nil, fmt.Errorf("add account %q: %w", id, err)
	}
	s.accounts[id] = a
	s.accountList = append(s.accountList, a)
	return a, nil
}

// Account returns the account with that id, nil when there is none.
func (s *Server) Account(id string) *Account {
	s.acctMu.RLock()
	defer s.acctMu.RUnlock()
	return s.accounts[id]
}

// Accounts returns every account, the default first, then in the order they
// were added.
func (s *Server) Accounts() []*Account {
	s.acctMu.RLock()
	defer s.acctMu.RUnlock()
	return append([]*Account(nil), s.accountList...)
}

// DefaultAccount returns the account the Server's own methods act on: the
// one New made from its Org and Options.
func (s *Server) DefaultAccount() *Account { return s.def }

// ID is the account id, the account_id of its token requests and of its
// webhook payloads.
func (a *Account) ID() string { return a.id }

// ClientID is the client id of the account's Server-to-Server app.
func (a *Account) ClientID() string { return a.s2s.clientID }

// ClientSecret is the client secret of the account's Server-to-Server app.
func (a *Account) ClientSecret() string { return a.s2s.clientSecret }

// Org returns a snapshot of the account's organisation, users and groups in
// listing order.
func (a *Account) Org() *Org {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	return a.st.snapshot()
}

// SetScopes sets the scopes granted to the account's Server-to-Server
// tokens issued from now on; tokens already issued keep theirs, as with
// Zoom, where a scope change takes effect on the next token.
func (a *Account) SetScopes(scopes []string) {
	c := append([]string(nil), scopes...)
	a.scopes.Store(&c)
}

// SetWebhookURL sets where the account's notifications go; empty stops
// them.
func (a *Account) SetWebhookURL(url string) { a.webhookURL.Store(&url) }

// WebhookURL is where the account's notifications go, empty when nowhere.
func (a *Account) WebhookURL() string { return *a.webhookURL.Load() }

// SetWebhookSecret sets the secret token that signs the account's
// notifications from now on.
func (a *Account) SetWebhookSecret(secret string) { a.webhookSecret.Store(&secret) }

// WebhookSecret is the secret token that signs the account's notifications.
func (a *Account) WebhookSecret() string { return *a.webhookSecret.Load() }

// SetRateLimits changes the account's per-label rate limits at run time.
func (a *Account) SetRateLimits(l RateLimits) { a.limits.set(l) }

// Faults returns the account's fault injector: rules added through it
// match only the account's requests, and its switches (ExpireTokens,
// RevokeCredentials) act on this account alone.
func (a *Account) Faults() *Faults { return a.faults }

// ExpireTokens makes every access token issued for the account so far
// expired (401 code 124 "Access token is expired."), Server-to-Server and
// OAuth alike; refresh tokens keep working, so that an OAuth client has to
// refresh.
func (a *Account) ExpireTokens() { a.faults.ExpireTokens() }

// Events returns the account's webhook notifications made so far (among
// the server's most recent 10,000), in order, sent or not.
func (a *Account) Events() []Delivery {
	var out []Delivery
	for _, d := range a.srv.Events() {
		if d.Account == a.id {
			out = append(out, d)
		}
	}
	return out
}

// Requests returns how many requests of the account each route template
// received since the start or the last ResetRequests: API requests whose
// access token is the account's, and token requests of its apps. Requests
// that fail before the account is known (a fault, a bad token) are not
// counted here, only in Server.Requests.
func (a *Account) Requests() map[string]int {
	a.counter.mu.Lock()
	defer a.counter.mu.Unlock()
	return maps.Clone(a.counter.byRoute)
}

// RequestsByStatus returns the account's counts by route template and
// status, keyed like "GET /users 200".
func (a *Account) RequestsByStatus() map[string]int {
	a.counter.mu.Lock()
	defer a.counter.mu.Unlock()
	return maps.Clone(a.counter.byStatus)
}

// TotalRequests returns the number of the account's requests answered.
func (a *Account) TotalRequests() int {
	a.counter.mu.Lock()
	defer a.counter.mu.Unlock()
	return a.counter.total
}

// acctCounter counts one account's requests; Server.ResetRequests resets
// it.
type acctCounter struct {
	mu       sync.Mutex
	byRoute  map[string]int
	byStatus map[string]int
	total    int
}

func (c *acctCounter) reset() {
	c.mu.Lock()
	c.byRoute = map[string]int{}
	c.byStatus = map[string]int{}
	c.total = 0
	c.mu.Unlock()
}

func (c *acctCounter) done(template, key string) {
	c.mu.Lock()
	c.byRoute[template]++
	c.byStatus[key]++
	c.total++
	c.mu.Unlock()
}
