package zoomtest

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Default credentials of a simulated account.
const (
	DefaultAccountID    = "sim-account"
	DefaultClientID     = "sim-client"
	DefaultClientSecret = "sim-secret"
)

// DefaultScopes are the scopes a token gets unless Options.Scopes says
// otherwise: the classic admin scopes of the users, groups and roles APIs.
var DefaultScopes = []string{
	"user:read:admin", "user:write:admin",
	"group:read:admin", "group:write:admin",
	"role:read:admin", "role:write:admin",
}

// Options configure a Server. The zero value is a fast, unlimited, faultless
// simulator with the default credentials and scopes.
type Options struct {
	// The default account's id and the credentials of its
	// Server-to-Server app. Empty fields take DefaultAccountID (or the Org's
	// AccountID when set), DefaultClientID and DefaultClientSecret.
	AccountID    string
	ClientID     string
	ClientSecret string

	// Scopes granted to the default account's Server-to-Server tokens, as
	// Zoom spells them (classic or granular). Nil means DefaultScopes.
	// SetScopes changes them for tokens issued later.
	Scopes []string

	// TokenTTL is the access token lifetime (default 1 hour, as Zoom's), of
	// Server-to-Server tokens and of OAuth apps' unless AppOptions say
	// otherwise.
	TokenTTL time.Duration
	// RefreshTokenTTL is the OAuth refresh token lifetime (default 90 days:
	// Zoom's documents give 15 years or "about 90 days", and the shorter
	// one is the one a client can get wrong).
	RefreshTokenTTL time.Duration
	// CodeTTL is the OAuth authorization code lifetime (default 5 minutes,
	// as Zoom documents).
	CodeTTL time.Duration
	// PageTokenTTL is the next_page_token lifetime (default 15 minutes, as
	// Zoom's).
	PageTokenTTL time.Duration

	// RateLimits are the default account's requests per second per
	// rate-limit label; zero means unlimited, the default. SetRateLimits
	// changes them at run time.
	RateLimits RateLimits
	// Plan is the default account's plan: PlanBasic (free) is refused the
	// groups and roles endpoints, as Zoom refuses them; empty (or an
	// unknown plan) is PlanPro. SetPlan changes it at run time.
	Plan Plan

	// OmitRateLimitHeaders leaves the X-RateLimit-* and Retry-After headers
	// out of responses, as Zoom sometimes does, to test clients that must
	// then fall back to exponential backoff.
	OmitRateLimitHeaders bool

	// APIURL is the api_url field of token responses, of every account
	// without its own AccountOptions.APIURL. Empty means the server's own
	// base URL as the request reached it (scheme and host).
	APIURL string

	// WebhookURL receives a signed Zoom webhook notification for each
	// mutation of the default account; empty sends none. SetWebhookURL
	// changes it at run time.
	WebhookURL string
	// WebhookSecret is the Webhook Secret Token that signs the default
	// account's notifications.
	WebhookSecret string
	// WebhookTimeout bounds one delivery (default 3 s, the time Zoom gives an
	// endpoint to answer).
	WebhookTimeout time.Duration
	// RoleChangeWebhook makes a role change send user.updated with a "role"
	// field. Off by default because no Zoom document says role changes fire
	// any event (Zoom documents no ordering): a connector must not rely on one.
	RoleChangeWebhook bool

	// Seed seeds the simulator's own randomness (fault fractions, the
	// admin API's random mutations) so that runs can be repeated.
	Seed int64

	// Now is the clock for token and page-token expiry and for event times;
	// nil means time.Now. Tests move it to expire tokens without sleeping.
	Now func() time.Time
}

// Server simulates Zoom: one or more accounts (see Account) behind one API
// URL and one OAuth endpoint. Its own organisation, mutation and setting
// methods act on the default account, the one New makes from its Org and
// Options. All its methods are safe for concurrent use, including while it
// serves requests.
type Server struct {
	opts   Options
	now    func() time.Time
	mux    *http.ServeMux
	faults *Faults
	// rateHeaders says whether rate-limit headers are sent; it starts from
	// !Options.OmitRateLimitHeaders and SetRateLimitHeaders changes it.
	rateHeaders atomic.Bool

	def         *Account
	acctMu      sync.RWMutex
	accounts    map[string]*Account
	accountList []*Account

	tokens    tokenStore
	pageKey   []byte
	pageEpoch atomic.Uint32

	counter counter

	client *http.Client
	events eventLog
	wg     sync.WaitGroup // asynchronous webhook deliveries

	rngMu sync.Mutex
	rng   *rand.Rand // for the admin API's random mutations

	httpMu  sync.Mutex
	httpSrv *http.Server
	testSrv *httptest.Server
	baseURL string
}

// New returns a simulator serving a copy of org with the given options. A nil
// org is an empty account.
func New(org *Org, opts Options) *Server {
	if org == nil {
		org = &Org{}
	}
	if opts.AccountID == "" {
		opts.AccountID = org.AccountID
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.Scopes == nil {
		opts.Scopes = DefaultScopes
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = 90 * 24 * time.Hour
	}
	if opts.CodeTTL <= 0 {
		opts.CodeTTL = 5 * time.Minute
	}
	if opts.PageTokenTTL <= 0 {
		opts.PageTokenTTL = 15 * time.Minute
	}
	if opts.WebhookTimeout <= 0 {
		opts.WebhookTimeout = 3 * time.Second
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:     opts,
		now:      now,
		pageKey:  make([]byte, 32),
		client:   &http.Client{Timeout: opts.WebhookTimeout},
		rng:      rand.New(rand.NewPCG(uint64(opts.Seed), 0x2a)),
		accounts: map[string]*Account{},
	}
	_, _ = crand.Read(s.pageKey)
	s.faults = &Faults{srv: s, rules: newFaultRules(opts.Seed)}
	s.rateHeaders.Store(!opts.OmitRateLimitHeaders)
	s.tokens.init()
	s.def = s.newAccount(opts.AccountID, org, AccountOptions{
		ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, Scopes: opts.Scopes,
		RateLimits: opts.RateLimits, WebhookURL: opts.WebhookURL, WebhookSecret: opts.WebhookSecret,
		Plan: opts.Plan,
	})
	s.faults.acct = s.def
	s.accounts[s.def.id] = s.def
	s.accountList = []*Account{s.def}
	_ = s.tokens.register(s.def.s2s) // the first app: its client id is free
	s.counter.reset()
	s.routes()
	return s
}

// NewServer starts a simulator on a local port for the duration of a test and
// closes it when the test ends.
func NewServer(t testing.TB, org *Org, opts Options) *Server {
	t.Helper()
	s := New(org, opts)
	ts := httptest.NewServer(s.Handler())
	s.httpMu.Lock()
	s.testSrv = ts
	s.baseURL = ts.URL
	s.httpMu.Unlock()
	t.Cleanup(s.Close)
	return s
}

// Start serves the simulator on addr (":0" picks a free port) in the
// background and returns its base URL, such as "http://127.0.0.1:9090".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String()
	s.httpMu.Lock()
	s.httpSrv = srv
	s.baseURL = url
	s.httpMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = srv.Serve(ln) // ends with http.ErrServerClosed on Close
	}()
	return url, nil
}

// Close stops a server started by Start or NewServer and waits for webhook
// deliveries in flight.
func (s *Server) Close() {
	s.httpMu.Lock()
	srv, ts := s.httpSrv, s.testSrv
	s.httpSrv, s.testSrv = nil, nil
	s.httpMu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
	}
	if ts != nil {
		ts.Close()
	}
	s.wg.Wait()
}

// URL is the base URL of a started server (empty before Start or NewServer).
// The OAuth token endpoint is URL()+"/oauth/token" and the API base is
// URL()+"/v2".
func (s *Server) URL() string {
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	return s.baseURL
}

// APIBase is URL()+"/v2", the simulator's counterpart of
// https://api.zoom.us/v2.
func (s *Server) APIBase() string { return s.URL() + "/v2" }

// TokenURL is URL()+"/oauth/token".
func (s *Server) TokenURL() string { return s.URL() + "/oauth/token" }

// AccountID is the default account's id, the account_id its
// Server-to-Server credentials are accepted with.
func (s *Server) AccountID() string { return s.def.id }

// ClientID is the client id of the default account's Server-to-Server app.
func (s *Server) ClientID() string { return s.def.ClientID() }

// ClientSecret is the client secret of the default account's
// Server-to-Server app.
func (s *Server) ClientSecret() string { return s.def.ClientSecret() }

// AuthorizeURL is URL()+"/oauth/authorize", where OAuth apps are
// authorized.
func (s *Server) AuthorizeURL() string { return s.URL() + "/oauth/authorize" }

// RevokeURL is URL()+"/oauth/revoke".
func (s *Server) RevokeURL() string { return s.URL() + "/oauth/revoke" }

// Handler serves the Zoom API: the OAuth endpoints under /oauth/ and the
// /v2 routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Org returns a snapshot of the default account's organisation, users and
// groups in listing order.
func (s *Server) Org() *Org { return s.def.Org() }

// Faults returns the server's fault injector: its rules apply to every
// request (unless a rule names an Account), its switches to the default
// account.
func (s *Server) Faults() *Faults { return s.faults }

// SetScopes sets the scopes granted to the default account's
// Server-to-Server tokens issued from now on. Tokens already issued keep
// theirs, as with Zoom, where a scope change takes effect on the next token.
func (s *Server) SetScopes(scopes []string) { s.def.SetScopes(scopes) }

// SetWebhookURL sets where the default account's webhook notifications go;
// empty stops them.
func (s *Server) SetWebhookURL(url string) { s.def.SetWebhookURL(url) }

// SetRateLimits changes the default account's per-label rate limits at run
// time.
func (s *Server) SetRateLimits(l RateLimits) { s.def.SetRateLimits(l) }

// SetRateLimitHeaders turns the X-RateLimit-* and Retry-After headers on or
// off at run time (see Options.OmitRateLimitHeaders).
func (s *Server) SetRateLimitHeaders(on bool) { s.rateHeaders.Store(on) }

// Category is a Zoom rate-limit label, spelled as in the
// X-RateLimit-Category header.
type Category string

// Rate-limit labels.
const (
	Light  Category = "Light"
	Medium Category = "Medium"
	Heavy  Category = "Heavy"
)

// route is one API operation: its template, its rate-limit label and the
// scopes that grant it, from Zoom's OpenAPI (x-macro-scopes and
// x-granular-scopes).
type route struct {
	method, path string
	category     Category
	macro        []string // classic scopes that grant the operation
	granular     []string // granular scopes that grant it; the :admin ones are named in 4711 errors
	handle       func(a *Account, w http.ResponseWriter, r *http.Request)
}

func (rt route) template() string { return rt.method + " " + rt.path }

var userRead = []string{"user:read", "user:write", "user:read:admin", "user:write:admin"}
var userWrite = []string{"user:write:admin", "user:write"}
var groupRead = []string{"group:read:admin", "group:write:admin"}
var groupWrite = []string{"group:write:admin"}
var roleRead = []string{"role:read:admin", "role:write:admin"}
var roleWrite = []string{"role:write:admin"}

var apiRoutes = []route{
	{"GET", "/users", Medium, userRead, []string{"user:read:list_users:admin"}, (*Account).listUsers},
	{"POST", "/users", Light, userWrite, []string{"user:write:user:admin"}, (*Account).createUser},
	{"GET", "/users/{userId}", Light, append(slicesClone(userRead), "user_profile", "user_info:read"), []string{"user:read:user", "user:read:user:admin"}, (*Account).getUser},
	{"PATCH", "/users/{userId}", Light, userWrite, []string{"user:update:user", "user:update:user:admin"}, (*Account).patchUser},
	{"DELETE", "/users/{userId}", Light, userWrite, []string{"user:delete:user", "user:delete:user:admin"}, (*Account).deleteUser},
	{"PUT", "/users/{userId}/status", Light, userWrite, []string{"user:update:status", "user:update:status:admin"}, (*Account).putUserStatus},
	{"GET", "/groups", Medium, groupRead, []string{"group:read:list_groups:admin"}, (*Account).listGroups},
	{"POST", "/groups", Light, groupWrite, []string{"group:write:group:admin"}, (*Account).createGroup},
	{"GET", "/groups/{groupId}", Light, groupRead, []string{"group:read:group:admin"}, (*Account).getGroup},
	{"PATCH", "/groups/{groupId}", Light, groupWrite, []string{"group:update:group:admin"}, (*Account).patchGroup},
	{"DELETE", "/groups/{groupId}", Light, groupWrite, []string{"group:delete:group:admin"}, (*Account).deleteGroup},
	{"GET", "/groups/{groupId}/members", Medium, groupRead, []string{"group:read:list_members:admin"}, (*Account).listGroupMembers},
	{"POST", "/groups/{groupId}/members", Medium, groupWrite, []string{"group:write:member:admin"}, (*Account).addGroupMembers},
	{"DELETE", "/groups/{groupId}/members/{memberId}", Light, groupWrite, []string{"group:delete:member:admin"}, (*Account).deleteGroupMember},
	{"GET", "/groups/{groupId}/admins", Medium, groupRead, []string{"group:read:administrator:admin"}, (*Account).listGroupAdmins},
	{"POST", "/groups/{groupId}/admins", Medium, groupWrite, []string{"group:write:administrator:admin"}, (*Account).addGroupAdmins},
	{"DELETE", "/groups/{groupId}/admins/{userId}", Light, groupWrite, []string{"group:delete:administrator:admin"}, (*Account).deleteGroupAdmin},
	{"GET", "/roles", Medium, roleRead, []string{"role:read:list_roles", "role:read:list_roles:admin"}, (*Account).listRoles},
	{"GET", "/roles/{roleId}", Light, roleRead, []string{"role:read:role", "role:read:role:admin"}, (*Account).getRole},
	{"GET", "/roles/{roleId}/members", Medium, roleRead, []string{"role:read:list_members", "role:read:list_members:admin"}, (*Account).listRoleMembers},
	{"POST", "/roles/{roleId}/members", Medium, roleWrite, []string{"role:write:member", "role:write:member:admin"}, (*Account).addRoleMembers},
	{"DELETE", "/roles/{roleId}/members/{memberId}", Light, roleWrite, []string{"role:delete:member", "role:delete:member:admin"}, (*Account).deleteRoleMember},
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TokenRoute is the route template of the OAuth token endpoint in request
// counts and fault rules.
const TokenRoute = "POST /oauth/token"

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, TokenRoute, s.token)
	})
	s.mux.HandleFunc("GET /oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, AuthorizeRoute, s.authorize)
	})
	s.mux.HandleFunc("POST /oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, AuthorizeDecisionRoute, s.authorizeDecision)
	})
	s.mux.HandleFunc("POST /oauth/revoke", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, RevokeRoute, s.revoke)
	})
	for _, rt := range apiRoutes {
		s.mux.HandleFunc(rt.method+" /v2"+rt.path, func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, rt.template(), func(w http.ResponseWriter, r *http.Request) { s.api(w, r, rt) })
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, r.Method+" (unknown)", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, 2300, "This API endpoint is not recognized.")
		})
	})
}

// statusWriter remembers the status of a response, and the account it was
// for once a handler knows it, for the request counters.
type statusWriter struct {
	http.ResponseWriter
	status int
	acct   *Account
}

// countFor records the account a request is for, so that its account's
// counters count it too.
func countFor(w http.ResponseWriter, a *Account) {
	if sw, ok := w.(*statusWriter); ok {
		sw.acct = a
	}
}

// WriteHeader records the first status written.
func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write records an implicit 200 when no status was written before.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// serve runs what every request goes through: numbering, faults, then the
// route's handler, then counting.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, template string, next http.HandlerFunc) {
	n := s.counter.start()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		key := s.counter.done(template, sw.status)
		if sw.acct != nil {
			sw.acct.counter.done(template, key)
		}
	}()
	if s.faults.apply(sw, r, template, n) {
		return
	}
	next(sw, r)
}

// api checks the access token, the rate limit, the scopes and the plan, in
// that order:
// Zoom needs to know the account (from the token) to apply its limit. The
// route then acts on the token's account.
func (s *Server) api(w http.ResponseWriter, r *http.Request, rt route) {
	tok, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	a := tok.acct
	countFor(w, a)
	if !a.limits.allow(w, rt.category, s.rateHeaders.Load()) {
		return
	}
	if !tok.grants(rt) {
		var need []string
		for _, g := range rt.granular {
			if strings.HasSuffix(g, ":admin") {
				need = append(need, g)
			}
		}
		writeError(w, http.StatusBadRequest, 4711, "Invalid access token, does not contain scopes:["+strings.Join(need, ",")+"].")
		return
	}
	if a.planRefuses(w, rt) {
		return
	}
	rt.handle(a, w, r)
}
