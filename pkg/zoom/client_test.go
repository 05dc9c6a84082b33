package zoom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	full := Config{AccountID: testAccount, ClientID: testClientID, ClientSecret: testSecret}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // "" for success
	}{
		{"defaults", func(*Config) {}, ""},
		{"missing account", func(c *Config) { c.AccountID = "" }, "missing AccountID"},
		{"missing client id", func(c *Config) { c.ClientID = "" }, "missing ClientID"},
		{"missing secret", func(c *Config) { c.ClientSecret = "" }, "missing ClientSecret"},
		{"missing all", func(c *Config) { *c = Config{} }, "missing AccountID, ClientID, ClientSecret"},
		{"token source instead of credentials", func(c *Config) {
			*c = Config{TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"})}
		}, ""},
		{"bad api url", func(c *Config) { c.APIURL = "api.zoom.us/v2" }, "APIURL"},
		{"bad oauth url", func(c *Config) { c.OAuthURL = "ftp://zoom.us" }, "OAuthURL"},
		{"unknown plan", func(c *Config) { c.Plan = "platinum" }, "Plan"},
		{"enterprise is business", func(c *Config) { c.Plan = "Enterprise" }, ""},
		{"share above 1", func(c *Config) { c.PaceShare = 1.5 }, "PaceShare"},
		{"negative share", func(c *Config) { c.PaceShare = -0.1 }, "PaceShare"},
		{"page size above 300", func(c *Config) { c.PageSize = 2000 }, "PageSize"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "MaxAttempts"},
		{"negative wait", func(c *Config) { c.MaxRateLimitWait = -time.Second }, "MaxRateLimitWait"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := full
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New = %v, want an error saying %q", c, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", err, tt.wantErr)
			}
			checkNoSecret(t, "config error", err.Error())
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := New(Config{AccountID: "a", ClientID: "b", ClientSecret: "c", APIURL: "https://api-eu.zoom.us/v2/"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Config()
	checks := []struct {
		name      string
		got, want any
	}{
		{"APIURL", got.APIURL, "https://api-eu.zoom.us/v2"},
		{"OAuthURL", got.OAuthURL, DefaultOAuthURL},
		{"Plan", got.Plan, PlanPro},
		{"PaceShare", got.PaceShare, DefaultPaceShare},
		{"PageSize", got.PageSize, 300},
		{"TokenRefreshBefore", got.TokenRefreshBefore, 5 * time.Minute},
		{"MaxAttempts", got.MaxAttempts, DefaultMaxAttempts},
		{"MaxRateLimitWait", got.MaxRateLimitWait, DefaultMaxRateLimitWait},
		{"MaxListingRestarts", got.MaxListingRestarts, DefaultMaxListingRestarts},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if got.HTTPClient == nil {
		t.Error("HTTPClient is nil, want a default client")
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	cfg := Config{AccountID: testAccount, ClientID: testClientID, ClientSecret: testSecret}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		checkNoSecret(t, "Config "+f, fmt.Sprintf(f, cfg))
		checkNoSecret(t, "*Config "+f, fmt.Sprintf(f, &cfg))
		checkNoSecret(t, "Client "+f, fmt.Sprintf(f, c))
	}
	if s := cfg.String(); !strings.Contains(s, "[redacted]") || !strings.Contains(s, testClientID) {
		t.Errorf("Config.String() = %s, want the client id and a redacted secret", s)
	}
}

// TestSecretsNeverInErrors runs every kind of failure and checks that no
// error text shows the secret or a token.
func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	scenarios := []struct {
		name string
		api  http.HandlerFunc
		mod  func(*Config)
		tok  http.HandlerFunc
	}{
		{name: "permanent 4xx", api: answer(403, `{"code":200,"message":"No permission."}`)},
		{name: "token refused twice", api: answer(401, `{"code":124,"message":"Invalid access token."}`)},
		{name: "5xx exhausted", api: answer(502, `bad gateway`), mod: func(c *Config) { c.MaxAttempts = 2 }},
		{name: "daily limit", api: answer(429, `{"code":429,"message":"daily"}`, "X-RateLimit-Type", "Daily-limit")},
		{name: "bad secret", api: answer(200, userBody), mod: func(c *Config) { c.ClientSecret = testSecret + "x" }},
		{name: "token endpoint echoes", api: answer(200, userBody),
			tok: answer(400, `{"error":"invalid_client","reason":"`+testSecret+` is wrong"}`)},
		{name: "token endpoint unreachable", api: answer(200, userBody),
			mod: func(c *Config) { c.OAuthURL = "http://127.0.0.1:1"; c.MaxAttempts = 1 }},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var logs bytes.Buffer
			mods := []func(*Config){func(c *Config) { c.Logger = zerolog.New(&logs).Level(zerolog.DebugLevel) }}
			if sc.mod != nil {
				mods = append(mods, sc.mod)
			}
			env := newTestEnv(t, sc.api, mods...)
			if sc.tok != nil {
				env.tokens.set(func(ts *tokenServer) { ts.fail = sc.tok })
			}
			_, err := env.c.GetUser(context.Background(), "u1")
			if err == nil {
				t.Fatal("GetUser = nil, want an error")
			}
			checkNoSecret(t, "error", err.Error())
			checkNoSecret(t, "error %+v", fmt.Sprintf("%+v", err))
			checkNoSecret(t, "log", logs.String())
		})
	}
}

func TestGetUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		api          http.HandlerFunc
		wantBody     string
		wantNotFound bool
		wantErr      string
		wantRequests int
	}{
		{"found", answer(200, userBody), userBody, false, "", 1},
		{"not found", answer(404, `{"code":1001,"message":"User does not exist: u1."}`), "", true,
			"zoom: GET /users/{userId}: 404 code 1001: User does not exist: u1.", 1},
		{"404 of another kind", answer(404, `<html>no such route</html>`), "", false,
			"zoom: GET /users/{userId}: 404: <html>no such route</html>", 1},
		{"invitation expired", answer(400, `{"code":1120,"message":"Invitation expired."}`), "", false,
			"zoom: GET /users/{userId}: 400 code 1120: Invitation expired.", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			var mu sync.Mutex
			env := newTestEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				path = r.URL.EscapedPath()
				mu.Unlock()
				tt.api(w, r)
			}))
			body, err := env.c.GetUser(context.Background(), "u1")
			if string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			if got := errors.Is(err, ErrUserNotFound); got != tt.wantNotFound {
				t.Errorf("errors.Is(%v, ErrUserNotFound) = %t, want %t", err, got, tt.wantNotFound)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if !IsPermanent(err) || IsRetryable(err) {
					t.Errorf("IsPermanent/IsRetryable = %t/%t, want true/false", IsPermanent(err), IsRetryable(err))
				}
			}
			if got, want := env.c.Requests().Count("GET /users/{userId}"), int64(tt.wantRequests); got != want {
				t.Errorf("requests = %d, want %d (4xx are not retried)", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if path != "/v2/users/u1" {
				t.Errorf("path = %s, want /v2/users/u1", path)
			}
		})
	}
}

func TestAPIErrorFields(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, answer(400, `{"code":300,"message":"The next page token is invalid or expired."}`))
	_, _, err := collect(t, env.c, UsersListing(UserStatusActive))
	var api *APIError
	if !errors.As(err, &api) {
		t.Fatalf("error = %v, want an *APIError", err)
	}
	want := APIError{StatusCode: 400, Code: 300, Message: "The next page token is invalid or expired.", Method: "GET", Endpoint: "/users"}
	if *api != want {
		t.Errorf("APIError = %+v, want %+v", *api, want)
	}
	if got, want := api.Error(), "zoom: GET /users: 400 code 300: The next page token is invalid or expired."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := err.Error(), "list users/active page 1: "+api.Error(); got != want {
		t.Errorf("wrapped error = %q, want %q", got, want)
	}
}

func TestRateLimitedRetries(t *testing.T) {
	t.Parallel()
	base := newFakeClock().now()
	tests := []struct {
		name    string
		headers []string
		// wantWait is exact unless wantMin/wantMax are set.
		wantWait         time.Duration
		wantMin, wantMax time.Duration
	}{
		{name: "Retry-After seconds", headers: []string{"Retry-After", "2"}, wantWait: 2 * time.Second},
		{name: "Retry-After datetime", headers: []string{"Retry-After", base.Add(3 * time.Second).Format(time.RFC3339)}, wantWait: 3 * time.Second},
		{name: "X-RateLimit-Reset", headers: []string{"X-RateLimit-Reset", strconv.FormatInt(base.Add(4*time.Second).Unix(), 10)}, wantWait: 4 * time.Second},
		{name: "Retry-After wins over X-RateLimit-Reset", headers: []string{"Retry-After", "1", "X-RateLimit-Reset", strconv.FormatInt(base.Add(9*time.Second).Unix(), 10)}, wantWait: time.Second},
		{name: "no headers: backoff with jitter", wantMin: 50 * time.Millisecond, wantMax: 150 * time.Millisecond},
		{name: "unreadable header: backoff", headers: []string{"Retry-After", "soon"}, wantMin: 50 * time.Millisecond, wantMax: 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &sequence{steps: []http.HandlerFunc{
				answer(429, `{"code":429,"message":"You have reached the maximum per-second rate limit for this API. Try again later."}`, tt.headers...),
				answer(200, userBody),
			}}
			env := newTestEnv(t, api)
			body, err := env.c.GetUser(context.Background(), "u1")
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if string(body) != userBody {
				t.Errorf("body = %q, want %q", body, userBody)
			}
			slept := env.clock.slept()
			if len(slept) != 1 {
				t.Fatalf("sleeps = %v, want one", slept)
			}
			if tt.wantMax == 0 && slept[0] != tt.wantWait {
				t.Errorf("wait = %s, want %s", slept[0], tt.wantWait)
			}
			if tt.wantMax != 0 && (slept[0] < tt.wantMin || slept[0] > tt.wantMax) {
				t.Errorf("wait = %s, want within [%s, %s]", slept[0], tt.wantMin, tt.wantMax)
			}
			st := env.c.Requests()
			if st.RateLimited != 1 || st.Retries != 1 || st.Waited != slept[0] {
				t.Errorf("stats = %d 429s, %d retries, waited %s; want 1, 1, %s", st.RateLimited, st.Retries, st.Waited, slept[0])
			}
			if got, want := api.count(), 2; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
		})
	}
}

func TestRateLimitFailsFast(t *testing.T) {
	t.Parallel()
	base := newFakeClock().now()
	tests := []struct {
		name        string
		headers     []string
		message     string
		wantDaily   bool
		wantRetryAt time.Time
	}{
		{
			name:        "daily limit with ISO-8601 Retry-After",
			headers:     []string{"Retry-After", "2026-02-08T00:00:00Z", "X-RateLimit-Type", "Daily-limit", "X-RateLimit-Category", "Medium"},
			message:     "You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request.",
			wantDaily:   true,
			wantRetryAt: time.Date(2026, 2, 8, 0, 0, 0, 0, time.UTC),
		},
		{
			name:      "daily limit without headers",
			message:   "You have reached the maximum daily rate limit for this API.",
			wantDaily: true,
		},
		{
			name:        "per-second limit asking for more than MaxRateLimitWait",
			headers:     []string{"Retry-After", "3600"},
			message:     "Try again later.",
			wantRetryAt: base.Add(time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &sequence{steps: []http.HandlerFunc{answer(429, mustJSON(t, ErrorBody{Code: 429, Message: tt.message}), tt.headers...)}}
			env := newTestEnv(t, api)
			_, err := env.c.GetUser(context.Background(), "u1")
			var rl *RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("error = %v, want a *RateLimitError", err)
			}
			if rl.Daily != tt.wantDaily || !rl.RetryAt.Equal(tt.wantRetryAt) {
				t.Errorf("RateLimitError = daily %t at %s, want daily %t at %s", rl.Daily, rl.RetryAt, tt.wantDaily, tt.wantRetryAt)
			}
			if at, ok := RetryAt(err); ok != !tt.wantRetryAt.IsZero() || !at.Equal(tt.wantRetryAt) {
				t.Errorf("RetryAt = %s, %t, want %s", at, ok, tt.wantRetryAt)
			}
			if !errors.Is(err, ErrRateLimited) || !IsRetryable(err) || IsPermanent(err) {
				t.Errorf("Is(ErrRateLimited)/IsRetryable/IsPermanent = %t/%t/%t, want true/true/false",
					errors.Is(err, ErrRateLimited), IsRetryable(err), IsPermanent(err))
			}
			if slept := env.clock.slept(); len(slept) != 0 {
				t.Errorf("sleeps = %v, want none", slept)
			}
			if got, want := api.count(), 1; got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			if !strings.Contains(err.Error(), "rate limit reached") {
				t.Errorf("error %q does not say the rate limit was reached", err)
			}
		})
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	tests := []struct {
		name         string
		steps        []http.HandlerFunc
		maxAttempts  int
		wantErr      bool
		wantRequests int
		wantSleeps   int
	}{
		{"500 then 502 then success", []http.HandlerFunc{answer(500, `{}`), answer(502, `bad gateway`), answer(200, userBody)}, 0, false, 3, 2},
		{"connection dropped then success", []http.HandlerFunc{hangUp, answer(200, userBody)}, 0, false, 2, 1},
		{"503 until attempts run out", []http.HandlerFunc{answer(503, `{"code":0,"message":"busy"}`)}, 3, true, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &sequence{steps: tt.steps}
			env := newTestEnv(t, api, func(c *Config) { c.MaxAttempts = tt.maxAttempts })
			_, err := env.c.GetUser(context.Background(), "u1")
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("GetUser error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "giving up after 3 attempts") || !IsRetryable(err) {
					t.Errorf("error = %v (retryable %t), want a retryable 'giving up after 3 attempts'", err, IsRetryable(err))
				}
			}
			if got := api.count(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			slept := env.clock.slept()
			if len(slept) != tt.wantSleeps {
				t.Errorf("sleeps = %v, want %d", slept, tt.wantSleeps)
			}
			for i := 1; i < len(slept); i++ {
				// Jitter is ±50% around a base that grows 1.5× per retry.
				if slept[i] < 50*time.Millisecond || slept[i] > time.Second {
					t.Errorf("backoff %d = %s, want within [50ms, 1s]", i, slept[i])
				}
			}
		})
	}
}

func TestRetryBudgetBoundsElapsedTime(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(429, `{"code":429}`, "Retry-After", "20")}}
	env := newTestEnv(t, api, func(c *Config) { c.MaxRetryElapsed = 50 * time.Second; c.MaxAttempts = 100 })
	_, err := env.c.GetUser(context.Background(), "u1")
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error = %v, want giving up after 3 attempts (20 s + 20 s, a third wait overruns 50 s)", err)
	}
	if at, ok := RetryAt(err); !ok || !at.Equal(env.clock.now().Add(20*time.Second)) {
		t.Errorf("RetryAt = %s, %t, want 20 s after the last answer", at, ok)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(503, `busy`)}}
	env := newTestEnv(t, api, func(c *Config) { c.RetryInitialInterval = 10 * time.Second; c.RetryMaxInterval = 10 * time.Second })
	env.c.sleep = sleep // the real clock: the wait must be cut short by ctx
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := env.c.GetUser(ctx, "u1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("GetUser returned after %s, want soon after cancel", d)
	}
	if IsRetryable(err) || IsPermanent(err) {
		t.Errorf("IsRetryable/IsPermanent = %t/%t on cancellation, want false/false", IsRetryable(err), IsPermanent(err))
	}
	if got, want := api.count(), 1; got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
}

func TestContextCancelledDuringRateLimitWait(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(429, `{"code":429}`, "Retry-After", "30")}}
	env := newTestEnv(t, api)
	env.c.sleep = sleep
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := env.c.GetUser(ctx, "u1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
}

// recorder is an Observer that counts what it is told.
type recorder struct {
	mu       sync.Mutex
	requests map[string]int
	waits    map[WaitReason]time.Duration
	tokens   int
}

func (r *recorder) RequestDone(endpoint string, status int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests[endpoint+" "+strconv.Itoa(status)]++
}

func (r *recorder) Waited(_ string, reason WaitReason, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits[reason] += d
}

func (r *recorder) TokenRefreshed(time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens++
}

func TestObserverAndStats(t *testing.T) {
	t.Parallel()
	rec := &recorder{requests: map[string]int{}, waits: map[WaitReason]time.Duration{}}
	api := &sequence{steps: []http.HandlerFunc{
		answer(429, `{"code":429}`, "Retry-After", "1"),
		answer(401, `{"code":124,"message":"Invalid access token."}`),
		answer(200, userBody),
	}}
	env := newTestEnv(t, api, func(c *Config) { c.Observer = rec })
	if _, err := env.c.GetUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	wantRequests := map[string]int{
		"POST /oauth/token 200":   2,
		"GET /users/{userId} 429": 1,
		"GET /users/{userId} 401": 1,
		"GET /users/{userId} 200": 1,
	}
	if got, want := mustJSON(t, rec.requests), mustJSON(t, wantRequests); got != want {
		t.Errorf("observed requests = %s, want %s", got, want)
	}
	if got, want := rec.waits[WaitRateLimit], time.Second; got != want {
		t.Errorf("observed rate-limit wait = %s, want %s", got, want)
	}
	if got, want := rec.tokens, 2; got != want {
		t.Errorf("observed token refreshes = %d, want %d", got, want)
	}
	st := env.c.Requests()
	want := []RequestCount{
		{"GET /users/{userId}", 200, 1},
		{"GET /users/{userId}", 401, 1},
		{"GET /users/{userId}", 429, 1},
		{"POST /oauth/token", 200, 2},
	}
	if got, want := mustJSON(t, st.ByEndpoint), mustJSON(t, want); got != want {
		t.Errorf("ByEndpoint = %s, want %s", got, want)
	}
	if st.Total != 5 || st.TokenRequests != 2 || st.RateLimited != 1 || st.Retries != 2 || st.Waited != time.Second {
		t.Errorf("stats = %+v, want 5 requests, 2 token requests, 1 429, 2 retries, 1s waited", st)
	}
}

func TestStaticTokenSourceIsInvalidated(t *testing.T) {
	t.Parallel()
	src := &invalidating{}
	api := &sequence{steps: []http.HandlerFunc{answer(401, `{"code":124}`), answer(200, userBody)}}
	env := newTestEnv(t, api, func(c *Config) { *c = Config{APIURL: c.APIURL, TokenSource: src, DisablePacing: true} })
	if _, err := env.c.GetUser(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(api.tokens(), ","), "static-0,static-1"; got != want {
		t.Errorf("bearers = %s, want %s", got, want)
	}
}

// invalidating is a caller's token source that changes token when told.
type invalidating struct {
	mu sync.Mutex
	n  int
}

func (s *invalidating) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &oauth2.Token{AccessToken: "static-" + strconv.Itoa(s.n)}, nil
}

func (s *invalidating) Invalidate(refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if refused == "static-"+strconv.Itoa(s.n) {
		s.n++
	}
}

func TestTransportErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	env := newTestEnv(t, answer(200, userBody), func(c *Config) { c.APIURL = "http://" + addr + "/v2"; c.MaxAttempts = 2 })
	_, err = env.c.GetUser(context.Background(), "u1")
	if err == nil || !IsRetryable(err) || IsPermanent(err) {
		t.Errorf("error = %v (retryable %t), want a retryable error", err, IsRetryable(err))
	}
	if got, want := env.c.Requests().Count("GET /users/{userId}"), int64(2); got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
}
