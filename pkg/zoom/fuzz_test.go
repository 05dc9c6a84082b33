package zoom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// The fuzz targets below feed the client every kind of answer Zoom (or a
// proxy in front of it) could send: listing pages, error bodies, token
// endpoint answers and rate-limit headers. `go test` runs their seed corpora
// as ordinary tests; `go test -run '^$' -fuzz FuzzPages ./pkg/zoom/` explores
// further.

// fuzzListings are the listings the fuzz targets walk, picked by a byte.
var fuzzListings = []Listing{
	UsersListing(UserStatusActive),
	UsersListing(UserStatusPending),
	GroupsListing(),
	GroupAdminsListing("g1"),
	RolesListing(),
}

// fuzzAnswer is what a fuzzed server answers; tests swap it between runs of
// the fuzz function (which run one at a time in a process).
type fuzzAnswer struct {
	mu       sync.Mutex
	status   int
	headers  http.Header
	first    []byte // body of the first request
	rest     []byte // body of every later request
	requests int
	auth     []string // Authorization header of each request
}

func (a *fuzzAnswer) set(status int, headers http.Header, first, rest []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status, a.headers, a.first, a.rest, a.requests, a.auth = status, headers, first, rest, 0, nil
}

func (a *fuzzAnswer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	body := a.rest
	if a.requests == 0 {
		body = a.first
	}
	a.requests++
	a.auth = append(a.auth, r.Header.Get("Authorization"))
	status, headers := a.status, a.headers
	a.mu.Unlock()
	for k, v := range headers {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (a *fuzzAnswer) seen() (int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, append([]string(nil), a.auth...)
}

// simBodies returns real answers of the simulator for each listing, walked in
// small pages: per listing, the body of each page in order.
func simBodies(tb testing.TB) map[int][][]byte {
	tb.Helper()
	org := zoomtest.Generate(3, zoomtest.Size{Users: 40, Groups: 4, Roles: 5})
	sim := zoomtest.NewServer(tb, org, zoomtest.Options{})
	c, err := New(Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true, PageSize: 7,
	})
	if err != nil {
		tb.Fatal(err)
	}
	out := map[int][][]byte{}
	for i, l := range fuzzListings {
		if l.Kind == ListingGroupAdmins {
			// The fuzz listing's group id is made up; walk a real group's.
			for _, g := range org.Groups {
				if len(g.Admins) > 0 {
					l = GroupAdminsListing(g.ID)
					break
				}
			}
		}
		err := c.Pages(context.Background(), l, func(p RawPage) error {
			out[i] = append(out[i], p.Body)
			return nil
		})
		if err != nil {
			tb.Fatalf("walk %s on the simulator: %v", l, err)
		}
	}
	return out
}

// itemCounts decodes a page body as any reader of Zoom's documented page
// shape would, independently of the client's probe, to check the counts it
// reports.
type itemCounts struct {
	NextPageToken string            `json:"next_page_token"`
	TotalRecords  int               `json:"total_records"`
	Users         []json.RawMessage `json:"users"`
	Groups        []json.RawMessage `json:"groups"`
	Admins        []json.RawMessage `json:"admins"`
	Roles         []json.RawMessage `json:"roles"`
}

func (c itemCounts) of(k ListingKind) int {
	switch k {
	case ListingUsers:
		return len(c.Users)
	case ListingGroups:
		return len(c.Groups)
	case ListingGroupAdmins:
		return len(c.Admins)
	}
	return len(c.Roles)
}

// isJSONObject reports whether b is one JSON object, the only shape a Zoom
// listing page has.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return json.Valid(b) && len(b) > 0 && b[0] == '{'
}

// FuzzPages serves arbitrary 200 bodies to a listing walk (the first request
// gets first, every later one rest) and checks that the walk always ends, that
// nothing is accepted that is not a JSON page, and that each page handed over
// is exactly what was served with the counts it holds.
func FuzzPages(f *testing.F) {
	for i, bodies := range simBodies(f) {
		for j, b := range bodies {
			next := b
			if j+1 < len(bodies) {
				next = bodies[j+1]
			}
			f.Add(uint8(i), b, next)
		}
	}
	for i := range fuzzListings {
		k := uint8(i)
		f.Add(k, []byte(`{"next_page_token":"","total_records":0,"users":[],"groups":[],"admins":[],"roles":[]}`), []byte(`{}`))
		f.Add(k, []byte(`{"next_page_token":"a"}`), []byte(`{"next_page_token":"a"}`))
		f.Add(k, []byte(`{"next_page_token":"a"}`), []byte(`{"next_page_token":"b"}`))
		f.Add(k, []byte(`{"next_page_token":"a","users":[{}],"groups":[{}],"admins":[{}],"roles":[{}]}`), []byte(`not json`))
		f.Add(k, []byte(`{"next_page_token":5}`), []byte(`{}`))
		f.Add(k, []byte(`{"users":"x","groups":{},"admins":7,"roles":true}`), []byte(`{}`))
		f.Add(k, []byte(`{"users":[1,2],"roles":[null]}`), []byte(`{}`))
		f.Add(k, []byte(`[]`), []byte(`{}`))
		f.Add(k, []byte(`"page"`), []byte(`{}`))
		f.Add(k, []byte(``), []byte(`{}`))
		f.Add(k, []byte(`{"next_page_token":"a"}`), []byte(`<html><body>502 Bad Gateway</body></html>`))
		f.Add(k, []byte(`{"NEXT_PAGE_TOKEN":"a","Users":[{}]}`), []byte(`{"next_page_token":"","next_page_token":"a"}`))
		f.Add(k, []byte("{\"total_records\":1e400}"), []byte(`{}`))
		f.Add(k, []byte("{\"next_page_token\":\"\\u0000\"}"), []byte(`{}`))
		f.Add(k, []byte("\xef\xbb\xbf{}"), []byte(`{}`))
	}
	// A body that is JSON but no page: a proxy or a broken Zoom front end
	// answering 200 "null" must not pass for an empty listing, since an
	// empty listing deletes every record of its kind.
	f.Add(uint8(0), []byte(`null`), []byte(`{}`))
	f.Add(uint8(2), []byte(`{"next_page_token":"a","groups":[]}`), []byte(`null`))

	api := &fuzzAnswer{}
	env := newTestEnv(f, api)
	f.Fuzz(func(t *testing.T, kind uint8, first, rest []byte) {
		l := fuzzListings[int(kind)%len(fuzzListings)]
		api.set(http.StatusOK, nil, first, rest)
		var pages []RawPage
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := env.c.Pages(ctx, l, func(p RawPage) error {
			pages = append(pages, p)
			if len(pages) > 10 {
				return errors.New("more than 10 pages from two bodies: the walk loops")
			}
			return nil
		})
		requests, _ := api.seen()
		if len(pages) > 10 {
			t.Fatalf("%s: the walk did not end: %d pages, %d requests", l, len(pages), requests)
		}
		// Two bodies make at most three requests: the first, the second,
		// and the second again when its token differs from the first's;
		// after that the same token would be followed forever.
		if requests > 3 {
			t.Errorf("%s: %d requests for two bodies, want at most 3", l, requests)
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: the walk hung until its deadline", l)
		}
		for i, p := range pages {
			served := rest
			if i == 0 {
				served = first
			}
			if !bytes.Equal(p.Body, served) {
				t.Errorf("%s page %d: body %q, want exactly the served %q", l, i+1, p.Body, served)
			}
			if p.Number != i+1 || p.Listing != l {
				t.Errorf("%s page %d: got number %d listing %s", l, i+1, p.Number, p.Listing)
			}
			if !isJSONObject(served) {
				t.Errorf("%s page %d: body %q is not a JSON object, yet it was accepted as a page", l, i+1, served)
				continue
			}
			var want itemCounts
			if json.Unmarshal(served, &want) == nil {
				if p.Items != want.of(l.Kind) || p.TotalRecords != want.TotalRecords {
					t.Errorf("%s page %d: items %d total %d, want %d and %d", l, i+1, p.Items, p.TotalRecords, want.of(l.Kind), want.TotalRecords)
				}
				if p.Last != (want.NextPageToken == "") {
					t.Errorf("%s page %d: Last %t with next_page_token %q", l, i+1, p.Last, want.NextPageToken)
				}
			}
			if p.Last && i != len(pages)-1 {
				t.Errorf("%s: page %d is Last but the walk went on", l, i+1)
			}
		}
		if err != nil {
			if len(pages) > 0 && pages[len(pages)-1].Last {
				t.Errorf("%s: error %v after the last page", l, err)
			}
			if !strings.HasPrefix(err.Error(), "list "+l.String()) {
				t.Errorf("%s: error %q does not name the listing", l, err)
			}
			return
		}
		if len(pages) == 0 || !pages[len(pages)-1].Last {
			t.Errorf("%s: the walk ended without error and without a last page (%d pages)", l, len(pages))
		}
	})
}

// fuzzHeaderValue reports whether v can travel as an HTTP header value
// unchanged, so that what the client reads is what the test set.
func fuzzHeaderValue(v string) bool {
	if v != strings.TrimSpace(v) {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzAPIError answers every request with an arbitrary error status, body and
// rate-limit headers, and checks how the client classifies and reports it.
func FuzzAPIError(f *testing.F) {
	zoomErrors := []struct {
		status int
		body   string
	}{
		{400, `{"code":300,"message":"The next page token is invalid or expired."}`},
		{400, `{"code":4711,"message":"Invalid access token, does not contain scopes:[user:read:list_users:admin]."}`},
		{400, `{"code":124,"message":"Invalid access token."}`},
		{401, `{"code":124,"message":"Access token is expired."}`},
		{403, `{"code":200,"message":"Only available for Paid account."}`},
		{404, `{"code":1001,"message":"User does not exist: u1."}`},
		{404, `{"code":4130,"message":"A group with this 123 does not exist."}`},
		{400, `{"code":300,"message":"Validation Failed.","errors":[{"field":"page_size","message":"Invalid field."}]}`},
		{429, `{"code":429,"message":"You have reached the maximum per-second rate limit for this API. Try again later."}`},
		{429, `{"code":429,"message":"You have reached the maximum daily rate limit for this API. Refer to the response header for details on when you can make another request."}`},
		{500, `{"code":500,"message":"Internal Server Error"}`},
		{502, `<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>`},
		{503, ``},
		{504, strings.Repeat("é", 300)},
		{408, `{"code":"x","message":5}`},
		{418, "\xff\xfe\x00"},
	}
	headerSets := [][3]string{
		{"", "", ""},
		{"1", "", "QPS"},
		{"2026-02-08T00:00:00Z", "", "Daily-limit"},
		{"", "1770465605", "QPS"},
		{"", "1770465605500", ""},
		{"Sun, 08 Feb 2026 00:00:00 GMT", "", ""},
		{"soon", "later", "Daily-limit"},
		{"-3", "3", ""},
	}
	for i, e := range zoomErrors {
		h := headerSets[i%len(headerSets)]
		f.Add(uint16(e.status), []byte(e.body), h[0], h[1], h[2])
	}
	for _, h := range headerSets {
		f.Add(uint16(429), []byte(`{"code":429,"message":"Too many requests"}`), h[0], h[1], h[2])
	}

	api := &fuzzAnswer{}
	env := newTestEnv(f, api, func(c *Config) { c.MaxAttempts = 1 })
	f.Fuzz(func(t *testing.T, status uint16, body []byte, retryAfter, reset, rlType string) {
		st := 400 + int(status)%200
		if !fuzzHeaderValue(retryAfter) || !fuzzHeaderValue(reset) || !fuzzHeaderValue(rlType) {
			return
		}
		h := http.Header{}
		for k, v := range map[string]string{"Retry-After": retryAfter, "X-RateLimit-Reset": reset, "X-RateLimit-Type": rlType} {
			if v != "" {
				h.Set(k, v)
			}
		}
		api.set(st, h, body, body)
		_, err := env.c.GetUser(context.Background(), "u1")
		if err == nil {
			t.Fatalf("status %d: GetUser succeeded", st)
		}
		var api2 *APIError
		if !errors.As(err, &api2) {
			t.Fatalf("status %d: error %v (%T) is not an *APIError", st, err, err)
		}
		if api2.StatusCode != st || api2.Method != http.MethodGet || api2.Endpoint != "/users/{userId}" {
			t.Errorf("APIError %+v, want status %d on GET /users/{userId}", *api2, st)
		}
		var eb ErrorBody
		if json.Unmarshal(body, &eb) == nil {
			if api2.Code != eb.Code || api2.Message != eb.Message {
				t.Errorf("body %q: code %d message %q, want %d and %q", body, api2.Code, api2.Message, eb.Code, eb.Message)
			}
		} else {
			if api2.Code != 0 {
				t.Errorf("non-JSON body %q: code %d, want 0", body, api2.Code)
			}
			if n := len(api2.Message); n > 200+len("…") {
				t.Errorf("non-JSON body: message of %d bytes, want a snippet of at most 200", n)
			}
			if strings.ContainsAny(api2.Message, "\n\r\t") {
				t.Errorf("non-JSON body: message %q is not on one line", api2.Message)
			}
		}
		msg := err.Error()
		if !strings.Contains(msg, strconv.Itoa(st)) {
			t.Errorf("error %q does not show the status %d", msg, st)
		}
		retryable := st == http.StatusTooManyRequests || st >= 500 || st == http.StatusRequestTimeout
		if got := IsRetryable(err); got != retryable {
			t.Errorf("status %d: IsRetryable %t, want %t", st, got, retryable)
		}
		if got := IsPermanent(err); got == retryable {
			t.Errorf("status %d: IsPermanent %t, want %t", st, got, !retryable)
		}
		if got := errors.Is(err, ErrRateLimited); got != (st == http.StatusTooManyRequests) {
			t.Errorf("status %d: errors.Is(ErrRateLimited) %t", st, got)
		}
		if got, want := errors.Is(err, ErrUserNotFound), st == http.StatusNotFound && api2.Code == CodeUserNotFound; got != want {
			t.Errorf("status %d code %d: errors.Is(ErrUserNotFound) %t, want %t", st, api2.Code, got, want)
		}
		_, gotAt := RetryAt(err)
		wantAt := false
		if st == http.StatusTooManyRequests {
			at, ok := rateLimitReset(h, env.clock.now())
			wantAt = ok && !at.IsZero()
		}
		if gotAt != wantAt {
			t.Errorf("status %d headers %v: RetryAt found %t, want %t", st, h, gotAt, wantAt)
		}
		var rl *RateLimitError
		if errors.As(err, &rl) {
			if st != http.StatusTooManyRequests {
				t.Errorf("status %d: a *RateLimitError", st)
			}
			if rl.Wait < 0 {
				t.Errorf("RateLimitError with a negative wait %s", rl.Wait)
			}
		}
		requests, _ := api.seen()
		if want := 1; requests != want && st != http.StatusUnauthorized && !(st == 400 && api2.Code == CodeInvalidToken) {
			t.Errorf("status %d with MaxAttempts 1: %d requests, want %d", st, requests, want)
		}
	})
}

// FuzzTokenEndpoint answers the OAuth token request with an arbitrary status
// and body and checks that the client either uses exactly the token it was
// given or fails with a *TokenError that never shows the client secret.
func FuzzTokenEndpoint(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"access_token":"eyJhbGciOi.x.y","token_type":"bearer","expires_in":3600,"scope":"user:read:admin group:read:admin","api_url":"https://api.zoom.us"}`},
		{200, `{"access_token":"t","expires_in":1}`},
		{200, `{"access_token":"t","token_type":"Bearer","expires_in":-5}`},
		{200, `{"access_token":"t","expires_in":9223372036854775807}`},
		{200, `{"access_token":"t","expires_in":1e3}`},
		{200, `{"access_token":"t","expires_in":"3600"}`},
		{200, `{"access_token":""}`},
		{200, `{"access_token":" ","expires_in":10}`},
		{200, `{"access_token":"a b\r\nX-Injected: 1"}`},
		{200, `{}`},
		{200, `null`},
		{200, `<html>login</html>`},
		{401, `{"reason":"Invalid client_id or client_secret","error":"invalid_client"}`},
		{401, `{"code":4702,"message":"Invalid client.","error":"invalid_client","reason":"Invalid client_id or client_secret"}`},
		{400, `{"reason":"unsupported grant type","error":"unsupported_grant_type"}`},
		{400, `{"code":4700,"message":"Invalid account ID.","error":"invalid_request","reason":"Invalid request : Account ID is invalid."}`},
		{400, `{"reason":"Invalid Token!","error":"invalid_grant"}`},
		{401, `{"reason":"bad secret ` + testSecret + `","error":"invalid_client ` + testSecret + `"}`},
		{400, `{"error_description":"` + testSecret + `","error":"invalid_request"}`},
		{500, `oops ` + testSecret + ` oops`},
		{503, `<html>down</html>`},
		{429, `{"code":429,"message":"Too many requests"}`},
		{302, ``},
	}
	for _, s := range seeds {
		f.Add(uint16(s.status), []byte(s.body))
	}

	api := &fuzzAnswer{}
	env := newTestEnv(f, api, func(c *Config) { c.MaxAttempts = 1 })
	var tok struct {
		mu     sync.Mutex
		status int
		body   []byte
	}
	env.tokens.set(func(ts *tokenServer) {
		ts.fail = func(w http.ResponseWriter, _ *http.Request) {
			tok.mu.Lock()
			status, body := tok.status, tok.body
			tok.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
		}
	})
	cfg := env.c.Config()
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		st := 200 + int(status)%400
		if st >= 300 && st < 400 || st == http.StatusNoContent || st == http.StatusNotModified {
			// Redirects are followed by net/http, and 204/304 carry no
			// body: neither says anything about decoding.
			st = 200
		}
		tok.mu.Lock()
		tok.status, tok.body = st, body
		tok.mu.Unlock()
		api.set(http.StatusOK, nil, []byte(userBody), []byte(userBody))
		// A fresh client each time, so that no token is cached.
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.now, c.sleep = env.clock.now, env.clock.sleep
		got, err := c.GetUser(context.Background(), "u1")
		_, auth := api.seen()

		var want Token
		decoded := json.Unmarshal(body, &want) == nil
		if err == nil {
			if st != http.StatusOK || !decoded || want.AccessToken == "" {
				t.Fatalf("token answer %d %q accepted", st, body)
			}
			if string(got) != userBody {
				t.Errorf("GetUser body %q, want %q", got, userBody)
			}
			// HTTP trims the spaces around a header value, so a token with
			// spaces at its ends arrives trimmed.
			if len(auth) != 1 || !strings.HasSuffix(auth[0], strings.TrimSpace(" "+want.AccessToken)) {
				t.Errorf("API saw Authorization %q, want the token %q", auth, want.AccessToken)
			}
			return
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("error shows the client secret: %s", err)
		}
		var te *TokenError
		if !errors.As(err, &te) {
			// Only a token the transport refuses to send (a header-unsafe
			// one) may fail after a good token answer.
			if st == http.StatusOK && decoded && want.AccessToken != "" && len(auth) == 0 {
				return
			}
			t.Fatalf("token answer %d %q: error %v (%T), want a *TokenError", st, body, err, err)
		}
		if te.StatusCode != st {
			t.Errorf("TokenError status %d, want %d", te.StatusCode, st)
		}
		if len(auth) != 0 {
			t.Errorf("the API was called %d times without a token", len(auth))
		}
		if got, want := IsRetryable(err), st == http.StatusTooManyRequests || st >= 500; got != want {
			t.Errorf("token status %d: IsRetryable %t, want %t", st, got, want)
		}
		if st == http.StatusUnauthorized && te.Hint() == "" {
			t.Errorf("a 401 from the token endpoint gives no hint: %s", err)
		}
	})
}

// FuzzRateLimitReset checks the reading of Retry-After and X-RateLimit-Reset:
// no panic, and a delay that is not negative never ends in the past.
func FuzzRateLimitReset(f *testing.F) {
	for _, s := range [][4]string{
		{"7", "", "QPS", ""},
		{"0.5", "", "", ""},
		{"2026-02-08T00:00:00Z", "", "Daily-limit", ""},
		{"2026-02-08T01:00:00+01:00", "", "", ""},
		{"2026-02-08T00:00:00", "", "", ""},
		{"Sun, 08 Feb 2026 00:00:00 GMT", "", "", ""},
		{"", "1770465605", "", ""},
		{"", "1770465605500", "", ""},
		{"", "3", "", "You have reached the maximum daily rate limit for this API."},
		{"later", "soon", "", ""},
		{"-4", "", "", ""},
		{"NaN", "Inf", "", ""},
		{"1e308", "", "", ""},
		{"", "1e308", "", ""},
		{"0x10", "", "", ""},
		{"", "2026-02-08T00:00:00.5Z", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	now := time.Date(2026, 2, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, retryAfter, reset, rlType, message string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("X-RateLimit-Reset", reset)
		h.Set("X-RateLimit-Type", rlType)
		got, ok := rateLimitReset(h, now)
		again, ok2 := rateLimitReset(h, now)
		if !got.Equal(again) || ok != ok2 {
			t.Errorf("rateLimitReset is not deterministic: %s %t then %s %t", got, ok, again, ok2)
		}
		_ = isDailyLimit(h, message)
		if !ok && !got.IsZero() {
			t.Errorf("rateLimitReset(%q, %q) = %s with ok false", retryAfter, reset, got)
		}
		// A number of seconds from now, when not negative, says "later".
		if secs, err := strconv.ParseFloat(strings.TrimSpace(retryAfter), 64); err == nil && secs >= 0 && !math.IsInf(secs, 0) {
			if !ok {
				t.Fatalf("Retry-After %q (%g s) not read", retryAfter, secs)
			}
			if got.Before(now) {
				t.Errorf("Retry-After %q (%g s from now) read as %s, before now (%s)", retryAfter, secs, got, now)
			}
			if secs < 1e9 {
				if d := got.Sub(now).Seconds() - secs; math.Abs(d) > 1e-6*max(1, secs) {
					t.Errorf("Retry-After %q read as %s from now, want %g s", retryAfter, got.Sub(now), secs)
				}
			}
			return
		}
		if _, raOK := rateLimitReset(http.Header{"Retry-After": {retryAfter}}, now); raOK {
			// Read as a datetime: nothing to check beyond no panic.
			return
		}
		if n, err := strconv.ParseFloat(strings.TrimSpace(reset), 64); err == nil && n >= 0 && n <= 1e9 {
			if !ok || got.Before(now) {
				t.Errorf("X-RateLimit-Reset %q (seconds from now) read as %s %t", reset, got, ok)
			}
		}
	})
}
