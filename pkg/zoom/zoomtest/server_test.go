package zoomtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTokenEndpoint(t *testing.T) {
	s := NewServer(t, small(t), Options{AccountID: "acct-1", ClientID: "cid", ClientSecret: "csecret"})
	tests := []struct {
		name       string
		query      string
		form       string
		user, pass string
		noAuth     bool
		wantStatus int
		wantError  string
		wantCode   int
	}{
		{name: "query parameters", query: "grant_type=account_credentials&account_id=acct-1", user: "cid", pass: "csecret", wantStatus: 200},
		{name: "form body", form: "grant_type=account_credentials&account_id=acct-1", user: "cid", pass: "csecret", wantStatus: 200},
		{name: "wrong secret", query: "grant_type=account_credentials&account_id=acct-1", user: "cid", pass: "nope", wantStatus: 401, wantError: "invalid_client", wantCode: 4704},
		{name: "wrong client", query: "grant_type=account_credentials&account_id=acct-1", user: "other", pass: "csecret", wantStatus: 401, wantError: "invalid_client", wantCode: 4702},
		{name: "no basic auth", query: "grant_type=account_credentials&account_id=acct-1", noAuth: true, wantStatus: 400, wantError: "invalid_request", wantCode: 4706},
		{name: "wrong grant", query: "grant_type=client_credentials&account_id=acct-1", user: "cid", pass: "csecret", wantStatus: 400, wantError: "unsupported_grant_type", wantCode: 4705},
		{name: "no grant", query: "account_id=acct-1", user: "cid", pass: "csecret", wantStatus: 400, wantError: "invalid_request", wantCode: 4706},
		{name: "wrong account", query: "grant_type=account_credentials&account_id=other", user: "cid", pass: "csecret", wantStatus: 400, wantError: "invalid_request", wantCode: 4700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := s.TokenURL()
			if tt.query != "" {
				u += "?" + tt.query
			}
			var body io.Reader
			if tt.form != "" {
				body = strings.NewReader(tt.form)
			}
			req, _ := http.NewRequest("POST", u, body)
			if tt.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if !tt.noAuth {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %v", resp.StatusCode, tt.wantStatus, got)
			}
			if tt.wantStatus != 200 {
				if got["error"] != tt.wantError || int(got["code"].(float64)) != tt.wantCode {
					t.Errorf("got error %v code %v, want %s %d", got["error"], got["code"], tt.wantError, tt.wantCode)
				}
				return
			}
			if got["token_type"] != "bearer" || got["expires_in"] != 3600.0 || got["api_url"] != s.URL() {
				t.Errorf("got %v, want bearer, 3600 s and api_url %s", got, s.URL())
			}
			if want := strings.Join(DefaultScopes, " "); got["scope"] != want {
				t.Errorf("got scope %q, want %q", got["scope"], want)
			}
			if tok, _ := got["access_token"].(string); !strings.HasPrefix(tok, "eyJ") {
				t.Errorf("got access_token %q, want a JWT-shaped token", tok)
			}
		})
	}
}

func TestAccessTokenChecks(t *testing.T) {
	tests := []struct {
		name        string
		token       func(s *Server, c *fakeClock) string
		wantStatus  int
		wantMessage string
	}{
		{"valid", func(s *Server, c *fakeClock) string { return requestToken(t, s) }, 200, ""},
		{"missing", func(s *Server, c *fakeClock) string { return "" }, 401, "Invalid access token."},
		{"unknown", func(s *Server, c *fakeClock) string { return "eyJnotatoken" }, 401, "Invalid access token."},
		{"past its hour", func(s *Server, c *fakeClock) string {
			tok := requestToken(t, s)
			c.Advance(time.Hour)
			return tok
		}, 401, "Access token is expired."},
		{"expired by fault", func(s *Server, c *fakeClock) string {
			tok := requestToken(t, s)
			s.Faults().ExpireTokens()
			return tok
		}, 401, "Access token is expired."},
		{"new token after the fault", func(s *Server, c *fakeClock) string {
			s.Faults().ExpireTokens()
			return requestToken(t, s)
		}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			s := NewServer(t, small(t), Options{Now: clock.Now})
			r := api(t, s, tt.token(s, clock), "GET", "/users", nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", r.status, tt.wantStatus, r.raw)
			}
			if tt.wantStatus == 401 && (r.code() != 124 || r.message() != tt.wantMessage) {
				t.Errorf("got %s, want code 124 %q", r.raw, tt.wantMessage)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		name        string
		scopes      []string
		path        string
		wantStatus  int
		wantMessage string
	}{
		{"classic scope", []string{"user:read:admin"}, "/users", 200, ""},
		{"granular scope", []string{"user:read:list_users:admin"}, "/users", 200, ""},
		{"write scope reads too", []string{"group:write:admin"}, "/groups", 200, ""},
		{"no group scope", []string{"user:read:admin"}, "/groups", 400, "Invalid access token, does not contain scopes:[group:read:list_groups:admin]."},
		{"no role scope", []string{"user:read:admin", "group:read:admin"}, "/roles", 400, "Invalid access token, does not contain scopes:[role:read:list_roles:admin]."},
		{"granular for another endpoint", []string{"user:read:user:admin"}, "/users", 400, "Invalid access token, does not contain scopes:[user:read:list_users:admin]."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, small(t), Options{Scopes: tt.scopes})
			r := api(t, s, requestToken(t, s), "GET", tt.path, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", r.status, tt.wantStatus, r.raw)
			}
			if tt.wantStatus == 400 && (r.code() != 4711 || r.message() != tt.wantMessage) {
				t.Errorf("got %s, want code 4711 %q", r.raw, tt.wantMessage)
			}
		})
	}
}

func TestSetScopesAffectsNewTokens(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	old := requestToken(t, s)
	s.SetScopes([]string{"user:read:admin"})
	if r := api(t, s, old, "GET", "/roles", nil); r.status != 200 {
		t.Errorf("old token: got status %d, want 200", r.status)
	}
	if r := api(t, s, requestToken(t, s), "GET", "/roles", nil); r.code() != 4711 {
		t.Errorf("new token: got %s, want code 4711", r.raw)
	}
}

func TestRateLimits(t *testing.T) {
	tests := []struct {
		name        string
		omitHeaders bool
	}{
		{"with headers", false},
		{"without headers", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock() // frozen: the bucket never refills during the test
			s := NewServer(t, small(t), Options{Now: clock.Now, RateLimits: RateLimits{Medium: 2}, OmitRateLimitHeaders: tt.omitHeaders})
			tok := requestToken(t, s)
			for i := range 2 {
				if r := api(t, s, tok, "GET", "/users", nil); r.status != 200 {
					t.Fatalf("request %d: got status %d, want 200", i, r.status)
				}
			}
			r := api(t, s, tok, "GET", "/groups", nil) // Medium too: the budget is per label
			if r.status != http.StatusTooManyRequests || r.code() != 429 ||
				r.message() != "You have reached the maximum per-second rate limit for this API. Try again later." {
				t.Fatalf("got %d %s, want 429", r.status, r.raw)
			}
			wantHeaders := map[string]string{
				"X-RateLimit-Category":  "Medium",
				"X-RateLimit-Type":      "QPS",
				"X-RateLimit-Limit":     "2",
				"X-RateLimit-Remaining": "0",
				"Retry-After":           "1",
			}
			for h, want := range wantHeaders {
				got := r.header.Get(h)
				if tt.omitHeaders {
					want = ""
				}
				if got != want {
					t.Errorf("header %s: got %q, want %q", h, got, want)
				}
			}
			if r := api(t, s, tok, "GET", "/users/"+s.Org().Users[0].ID, nil); r.status != 200 {
				t.Errorf("Light endpoint: got status %d, want 200 (unlimited)", r.status)
			}
			clock.Advance(time.Second)
			if r := api(t, s, tok, "GET", "/users", nil); r.status != 200 {
				t.Errorf("a second later: got status %d, want 200", r.status)
			}
			s.SetRateLimits(RateLimits{})
			for range 5 {
				if r := api(t, s, tok, "GET", "/users", nil); r.status != 200 {
					t.Fatalf("unlimited: got status %d, want 200", r.status)
				}
			}
		})
	}
}

func TestSetRateLimitHeaders(t *testing.T) {
	clock := newClock()
	s := NewServer(t, small(t), Options{Now: clock.Now, RateLimits: RateLimits{Light: 1}})
	tok := requestToken(t, s)
	id := s.Org().Users[0].ID
	api(t, s, tok, "GET", "/users/"+id, nil)
	if r := api(t, s, tok, "GET", "/users/"+id, nil); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %d with Retry-After %q, want 429 with the header", r.status, r.header.Get("Retry-After"))
	}
	s.SetRateLimitHeaders(false)
	r := api(t, s, tok, "GET", "/users/"+id, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "" || r.header.Get("X-RateLimit-Category") != "" {
		t.Errorf("got %d with headers %v, want 429 without rate-limit headers", r.status, r.header)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name string
		// run installs faults and makes requests; it returns the statuses.
		run  func(t *testing.T, s *Server, tok string) []int
		want []int
	}{
		{"times in a row", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().Add(Fault{Times: 3, Status: 503})
			return statuses(t, s, tok, 5, "/users")
		}, []int{503, 503, 503, 200, 200}},
		{"request number", func(t *testing.T, s *Server, tok string) []int {
			s.ResetRequests()
			s.Faults().Add(Fault{Request: 2, Status: 500})
			return statuses(t, s, tok, 3, "/users")
		}, []int{200, 500, 200}},
		{"route only", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().Add(Fault{Route: "GET /groups", Status: 502})
			return append(statuses(t, s, tok, 1, "/users"), statuses(t, s, tok, 1, "/groups")...)
		}, []int{200, 502}},
		{"path prefix", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().Add(Fault{PathPrefix: "/v2/roles", Status: 500})
			return append(statuses(t, s, tok, 1, "/roles"), statuses(t, s, tok, 1, "/groups")...)
		}, []int{500, 200}},
		{"cleared", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().Add(Fault{Status: 500})
			s.Faults().Clear()
			return statuses(t, s, tok, 1, "/users")
		}, []int{200}},
		{"removed", func(t *testing.T, s *Server, tok string) []int {
			id := s.Faults().Add(Fault{Status: 500})
			first := statuses(t, s, tok, 1, "/users")
			if !s.Faults().Remove(id) {
				t.Error("Remove: got false, want true")
			}
			return append(first, statuses(t, s, tok, 1, "/users")...)
		}, []int{500, 200}},
		{"token endpoint", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().Add(Fault{Route: TokenRoute, Times: 1, Status: 503})
			return []int{tokenStatus(t, s), tokenStatus(t, s)}
		}, []int{503, 200}},
		{"revoked credentials", func(t *testing.T, s *Server, tok string) []int {
			s.Faults().RevokeCredentials()
			got := []int{tokenStatus(t, s)}
			got = append(got, statuses(t, s, tok, 1, "/users")...) // issued tokens still work
			s.Faults().RestoreCredentials()
			return append(got, tokenStatus(t, s))
		}, []int{401, 200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, small(t), Options{})
			tok := requestToken(t, s)
			got := tt.run(t, s, tok)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got statuses %v, want %v", got, tt.want)
			}
		})
	}
}

func statuses(t *testing.T, s *Server, tok string, n int, path string) []int {
	t.Helper()
	var out []int
	for range n {
		out = append(out, api(t, s, tok, "GET", path, nil).status)
	}
	return out
}

func tokenStatus(t *testing.T, s *Server) int {
	t.Helper()
	req, _ := http.NewRequest("POST", s.TokenURL()+"?grant_type=account_credentials&account_id="+s.AccountID(), nil)
	req.SetBasicAuth(s.ClientID(), s.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFaultFraction(t *testing.T) {
	s := NewServer(t, small(t), Options{Seed: 3})
	tok := requestToken(t, s)
	s.Faults().Add(Fault{Fraction: 0.3, Status: 500})
	failed := 0
	for _, st := range statuses(t, s, tok, 200, "/roles") {
		if st == 500 {
			failed++
		}
	}
	if failed < 30 || failed > 90 {
		t.Errorf("got %d failures of 200 requests, want about 60", failed)
	}
}

func TestFaultLatency(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	s.Faults().Add(Fault{Latency: 60 * time.Millisecond, Times: 1})
	start := time.Now()
	if r := api(t, s, tok, "GET", "/users", nil); r.status != 200 {
		t.Fatalf("got status %d, want 200 (latency only)", r.status)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("got a reply after %v, want at least 60ms", d)
	}
}

func TestFaultListingAfterPage(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	s.Faults().Add(Fault{Route: "GET /users", Query: map[string]string{"status": "inactive"}, AfterPage: 2, Status: 500})
	for attempt := range 2 { // the fault stays until cleared
		next, page := "", 1
		for {
			path := "/users?status=inactive&page_size=20"
			if next != "" {
				path += "&next_page_token=" + url.QueryEscape(next)
			}
			r := api(t, s, tok, "GET", path, nil)
			if page <= 2 {
				if r.status != 200 {
					t.Fatalf("attempt %d page %d: got status %d, want 200", attempt, page, r.status)
				}
				next, page = r.str("next_page_token"), page+1
				continue
			}
			if r.status != 500 {
				t.Fatalf("attempt %d page %d: got status %d, want 500", attempt, page, r.status)
			}
			break
		}
	}
	if got, _ := listAll(t, s, tok, "/users?status=active&page_size=20", "users"); len(got) != countStatus(org, StatusActive) {
		t.Errorf("active listing: got %d users, want all %d", len(got), countStatus(org, StatusActive))
	}
	s.Faults().Clear()
	if got, _ := listAll(t, s, tok, "/users?status=inactive&page_size=20", "users"); len(got) != countStatus(org, StatusInactive) {
		t.Errorf("after Clear: got %d inactive users, want %d", len(got), countStatus(org, StatusInactive))
	}
}

func TestFaultJSON(t *testing.T) {
	in := `{"route":"GET /users","query":{"status":"inactive"},"after_page":2,"latency":"250ms","status":503,"times":4}`
	var f Fault
	if err := json.Unmarshal([]byte(in), &f); err != nil {
		t.Fatal(err)
	}
	want := Fault{Route: "GET /users", Query: map[string]string{"status": "inactive"}, AfterPage: 2, Latency: 250 * time.Millisecond, Status: 503, Times: 4}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", f, want)
	}
	out, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"latency":"250ms"`) {
		t.Errorf("got %s, want latency as a duration string", out)
	}
}

func TestRequestCounter(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	api(t, s, tok, "GET", "/users", nil)
	api(t, s, tok, "GET", "/users?status=inactive", nil)
	api(t, s, tok, "GET", "/groups/nope/admins", nil)
	api(t, s, "", "GET", "/users", nil)
	api(t, s, tok, "GET", "/nothing/here", nil)
	wantRoutes := map[string]int{
		"POST /oauth/token":            1,
		"GET /users":                   3,
		"GET /groups/{groupId}/admins": 1,
		"GET (unknown)":                1,
	}
	if got := s.Requests(); fmt.Sprint(got) != fmt.Sprint(wantRoutes) {
		t.Errorf("got routes %v, want %v", got, wantRoutes)
	}
	wantStatus := map[string]int{
		"POST /oauth/token 200":            1,
		"GET /users 200":                   2,
		"GET /users 401":                   1,
		"GET /groups/{groupId}/admins 404": 1,
		"GET (unknown) 404":                1,
	}
	if got := s.RequestsByStatus(); fmt.Sprint(got) != fmt.Sprint(wantStatus) {
		t.Errorf("got statuses %v, want %v", got, wantStatus)
	}
	if got := s.TotalRequests(); got != 6 {
		t.Errorf("got total %d, want 6", got)
	}
	s.ResetRequests()
	if got := s.TotalRequests(); got != 0 || len(s.Requests()) != 0 {
		t.Errorf("after reset: got total %d and %v, want nothing", got, s.Requests())
	}
}

func TestStartAndClose(t *testing.T) {
	s := New(small(t), Options{})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if url != s.URL() || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("got url %q (URL() %q)", url, s.URL())
	}
	if got := tokenStatus(t, s); got != 200 {
		t.Errorf("got token status %d, want 200", got)
	}
	s.Close()
	if _, err := http.Get(url + "/v2/users"); err == nil {
		t.Error("got an answer after Close, want a refused connection")
	}
}

// TestConcurrentListingAndMutations runs listings while the organisation
// changes; under -race it checks the locking.
func TestConcurrentListingAndMutations(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status := []string{"active", "inactive", "pending", "active"}[i]
			for range 3 {
				listAll(t, s, tok, "/users?page_size=37&include_fields=custom_attributes&status="+status, "users")
				api(t, s, tok, "GET", "/groups", nil)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := s.RandomMutations(t.Context(), randFor(5), 200); err != nil {
			t.Errorf("random mutations: %v", err)
		}
	}()
	wg.Wait()
}
