package zoom

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenFetchReuseAndRefreshAhead(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(200, userBody)}}
	env := newTestEnv(t, api)
	ctx := context.Background()

	steps := []struct {
		name       string
		advance    time.Duration
		wantTokens int
		wantBearer string
	}{
		{"first request fetches a token", 0, 1, "tok-1"},
		{"second request reuses it", time.Second, 1, "tok-1"},
		{"54 minutes later it is still fresh", 54 * time.Minute, 1, "tok-1"},
		{"5 minutes before expiry it is replaced", time.Minute, 2, "tok-2"},
		{"the new one is reused", time.Minute, 2, "tok-2"},
	}
	for i, s := range steps {
		env.clock.advance(s.advance)
		if _, err := env.c.GetUser(ctx, "u1"); err != nil {
			t.Fatalf("%s: GetUser: %v", s.name, err)
		}
		if got := env.tokens.count(); got != s.wantTokens {
			t.Errorf("%s: token requests = %d, want %d", s.name, got, s.wantTokens)
		}
		if got := api.tokens()[i]; got != s.wantBearer {
			t.Errorf("%s: bearer = %q, want %q", s.name, got, s.wantBearer)
		}
	}
	st := env.c.Requests()
	if got, want := st.TokenRequests, int64(2); got != want {
		t.Errorf("Stats.TokenRequests = %d, want %d", got, want)
	}
	if got, want := st.Count(tokenEndpoint), int64(2); got != want {
		t.Errorf("Stats.Count(%q) = %d, want %d", tokenEndpoint, got, want)
	}
}

func TestTokenShortLifetimeRefreshesAtHalf(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(200, userBody)}}
	env := newTestEnv(t, api)
	env.tokens.set(func(ts *tokenServer) { ts.expiresIn = 60 }) // a simulator's short token: the margin shrinks to 30 s
	ctx := context.Background()
	for _, s := range []struct {
		advance    time.Duration
		wantTokens int
	}{{0, 1}, {29 * time.Second, 1}, {2 * time.Second, 2}} {
		env.clock.advance(s.advance)
		if _, err := env.c.GetUser(ctx, "u1"); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
		if got := env.tokens.count(); got != s.wantTokens {
			t.Errorf("after %s: token requests = %d, want %d", s.advance, got, s.wantTokens)
		}
	}
}

func TestTokenSharedByConcurrentCallers(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(200, userBody)}}
	env := newTestEnv(t, api)
	env.tokens.set(func(ts *tokenServer) { ts.delay = 50 * time.Millisecond })
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := env.c.GetUser(context.Background(), "u1"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("GetUser: %v", err)
	}
	if got, want := env.tokens.count(), 1; got != want {
		t.Errorf("token requests = %d, want %d", got, want)
	}
}

func TestTokenRefusedByAPIIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		refusal      http.HandlerFunc
		then         http.HandlerFunc
		wantErr      bool
		wantRequests int
	}{
		{"401 code 124", answer(401, `{"code":124,"message":"Invalid access token."}`), answer(200, userBody), false, 2},
		{"400 code 124", answer(400, `{"code":124,"message":"Access token is expired."}`), answer(200, userBody), false, 2},
		{"401 without body", answer(401, ``), answer(200, userBody), false, 2},
		{"refused twice", answer(401, `{"code":124,"message":"Invalid access token."}`),
			answer(401, `{"code":124,"message":"Invalid access token."}`), true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &sequence{steps: []http.HandlerFunc{tt.refusal, tt.then}}
			env := newTestEnv(t, api)
			_, err := env.c.GetUser(context.Background(), "u1")
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("GetUser error = %v, want error %t", err, tt.wantErr)
			}
			if got := api.count(); got != tt.wantRequests {
				t.Errorf("API requests = %d, want %d", got, tt.wantRequests)
			}
			if got, want := env.tokens.count(), 2; got != want {
				t.Errorf("token requests = %d, want %d", got, want)
			}
			if got, want := strings.Join(api.tokens(), ","), "tok-1,tok-2"; got != want {
				t.Errorf("bearers = %s, want %s", got, want)
			}
			if err != nil {
				var api *APIError
				if !errors.As(err, &api) || api.StatusCode != 401 || api.Code != CodeInvalidToken {
					t.Errorf("error = %v, want *APIError 401 code 124", err)
				}
				if !IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = false, want true", err)
				}
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		mod           func(*Config)
		fail          http.HandlerFunc
		wantStatus    int
		wantHint      string
		wantPermanent bool
	}{
		{
			name:          "wrong secret",
			mod:           func(c *Config) { c.ClientSecret = testSecret + "-old" },
			wantStatus:    401,
			wantHint:      "Client secret",
			wantPermanent: true,
		},
		{
			name:          "not an S2S app",
			fail:          answer(400, `{"reason":"unsupported grant type","error":"unsupported_grant_type"}`),
			wantStatus:    400,
			wantHint:      "Server-to-Server OAuth app",
			wantPermanent: true,
		},
		{
			name:          "zoom code 4705",
			fail:          answer(400, `{"code":4705,"message":"Grant type is not supported."}`),
			wantStatus:    400,
			wantHint:      "Server-to-Server OAuth app",
			wantPermanent: true,
		},
		{
			name:          "wrong account",
			mod:           func(c *Config) { c.AccountID = "other" },
			wantStatus:    400,
			wantHint:      "Account ID",
			wantPermanent: true,
		},
		{
			name:          "endpoint echoes the secret",
			fail:          answer(401, `{"reason":"bad secret `+testSecret+`","error":"invalid_client"}`),
			wantStatus:    401,
			wantHint:      "Client secret",
			wantPermanent: true,
		},
		{
			name:       "endpoint down",
			fail:       answer(503, `<html>down</html>`),
			wantStatus: 503,
			wantHint:   "retry later",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &sequence{steps: []http.HandlerFunc{answer(200, userBody)}}
			mods := []func(*Config){func(c *Config) { c.MaxAttempts = 2 }}
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			env := newTestEnv(t, api, mods...)
			env.tokens.set(func(ts *tokenServer) { ts.fail = tt.fail })
			_, err := env.c.GetUser(context.Background(), "u1")
			var te *TokenError
			if !errors.As(err, &te) {
				t.Fatalf("error = %v, want a *TokenError", err)
			}
			if te.StatusCode != tt.wantStatus {
				t.Errorf("StatusCode = %d, want %d", te.StatusCode, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantHint) {
				t.Errorf("error %q does not say %q", err, tt.wantHint)
			}
			if got := IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %t, want %t", got, tt.wantPermanent)
			}
			if got := IsRetryable(err); got == tt.wantPermanent {
				t.Errorf("IsRetryable = %t, want %t", got, !tt.wantPermanent)
			}
			if got := api.count(); got != 0 {
				t.Errorf("API requests = %d, want 0 without a token", got)
			}
			checkNoSecret(t, "error", err.Error())
		})
	}
}

func TestTokenRefreshFailureKeepsValidToken(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(200, userBody)}}
	env := newTestEnv(t, api)
	ctx := context.Background()
	if _, err := env.c.GetUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	env.tokens.set(func(ts *tokenServer) { ts.fail = answer(503, `down`) })
	env.clock.advance(57 * time.Minute) // inside the refresh margin, before expiry
	if _, err := env.c.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("GetUser with the token endpoint down: %v, want the current token used", err)
	}
	if got, want := api.tokens()[1], "tok-1"; got != want {
		t.Errorf("bearer = %q, want %q", got, want)
	}
}

func TestTokenSourceInterface(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, &sequence{steps: []http.HandlerFunc{answer(200, userBody)}})
	ts := env.c.TokenSource()
	a, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessToken != "tok-1" || b.AccessToken != "tok-1" {
		t.Errorf("tokens = %q, %q, want tok-1 twice", a.AccessToken, b.AccessToken)
	}
	if got, want := a.Type(), "Bearer"; got != want {
		t.Errorf("Type() = %q, want %q", got, want)
	}
}
