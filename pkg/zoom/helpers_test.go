package zoom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The credentials of the test app. The secret is distinctive so that a test
// can search every error and log line for it.
const (
	testAccount  = "acct-123"
	testClientID = "client-abc"
	testSecret   = "s3cr3t-Zq9xK-never-show"
)

// tokenServer is a fake Zoom OAuth host: it checks the Server-to-Server
// request and issues tokens "tok-1", "tok-2", … .
type tokenServer struct {
	*httptest.Server

	mu        sync.Mutex
	issued    int
	expiresIn int
	delay     time.Duration
	// fail, when set, answers instead of issuing a token.
	fail func(w http.ResponseWriter, r *http.Request)
}

func newTokenServer(t testing.TB) *tokenServer {
	t.Helper()
	ts := &tokenServer{expiresIn: 3600}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
		http.NotFound(w, r)
		return
	}
	ts.mu.Lock()
	fail, delay := ts.fail, ts.delay
	ts.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if fail != nil {
		fail(w, r)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != testClientID || pass != testSecret {
		writeJSON(w, http.StatusUnauthorized, `{"reason":"Invalid client_id or client_secret","error":"invalid_client"}`)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"reason":"bad form","error":"invalid_request"}`)
		return
	}
	// Both the query string and the form body must carry the parameters.
	for _, vals := range []map[string][]string{r.URL.Query(), r.PostForm} {
		if got := first(vals["grant_type"]); got != "account_credentials" {
			writeJSON(w, http.StatusBadRequest, `{"reason":"unsupported grant type","error":"unsupported_grant_type"}`)
			return
		}
		if got := first(vals["account_id"]); got != testAccount {
			writeJSON(w, http.StatusBadRequest, `{"reason":"Invalid account_id","error":"invalid_request"}`)
			return
		}
	}
	ts.mu.Lock()
	ts.issued++
	n, exp := ts.issued, ts.expiresIn
	ts.mu.Unlock()
	writeJSON(w, http.StatusOK, fmt.Sprintf(
		`{"access_token":"tok-%d","token_type":"bearer","expires_in":%d,"scope":"user:read:admin","api_url":"https://api.zoom.us"}`, n, exp))
}

// set changes the server's behaviour under its lock.
func (ts *tokenServer) set(f func(ts *tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

func (ts *tokenServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// bearer returns the access token of an API request, or "" without one.
func bearer(r *http.Request) string {
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// fakeClock is a clock whose sleeps return at once and move time forward, so
// that waits of seconds or hours take no time and can be asserted exactly.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 2, 7, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	return nil
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func (f *fakeClock) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// testEnv is a client wired to a fake token host and a test API handler.
type testEnv struct {
	c      *Client
	tokens *tokenServer
	api    *httptest.Server
	clock  *fakeClock
}

// newTestEnv starts the servers and a client with pacing off, a fake clock
// and short backoffs; mods adjust the Config before New.
func newTestEnv(t testing.TB, api http.Handler, mods ...func(*Config)) *testEnv {
	t.Helper()
	ts := newTokenServer(t)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := Config{
		APIURL:               srv.URL + "/v2",
		OAuthURL:             ts.URL,
		AccountID:            testAccount,
		ClientID:             testClientID,
		ClientSecret:         testSecret,
		DisablePacing:        true,
		RetryInitialInterval: 100 * time.Millisecond,
		RetryMaxInterval:     time.Second,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	clock := newFakeClock()
	c.now, c.sleep = clock.now, clock.sleep
	return &testEnv{c: c, tokens: ts, api: srv, clock: clock}
}

// checkNoSecret fails when text shows the client secret or an access token.
func checkNoSecret(t testing.TB, what, text string) {
	t.Helper()
	for _, s := range []string{testSecret, "tok-1", "tok-2", "tok-3"} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows %q: %s", what, s, text)
		}
	}
}

// sequence answers successive requests with the given handlers, the last
// one repeating, and counts the requests.
type sequence struct {
	mu       sync.Mutex
	n        int
	steps    []http.HandlerFunc
	requests []*http.Request
}

func (s *sequence) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := min(s.n, len(s.steps)-1)
	s.n++
	s.requests = append(s.requests, r)
	s.mu.Unlock()
	s.steps[i](w, r)
}

func (s *sequence) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *sequence) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		out = append(out, bearer(r))
	}
	return out
}

// answer writes a fixed status, headers and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		writeJSON(w, status, body)
	}
}

const userBody = `{"id":"u1","email":"a@example.com","type":2}`

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
