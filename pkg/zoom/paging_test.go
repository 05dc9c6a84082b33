package zoom

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// pagedAPI serves one listing in pages keyed by next_page_token ("" for the
// first), checks the query every page must carry, and can reject a token.
type pagedAPI struct {
	t         testing.TB
	path      string
	wantQuery url.Values
	pages     map[string]string

	mu       sync.Mutex
	reject   map[string]int // token → how many more times to reject it
	requests []string       // the next_page_token of each request
}

func (p *pagedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if got := r.URL.EscapedPath(); got != p.path {
		p.t.Errorf("path = %s, want %s", got, p.path)
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	tok := q.Get("next_page_token")
	q.Del("next_page_token")
	if got, want := q.Encode(), p.wantQuery.Encode(); got != want {
		p.t.Errorf("query = %s, want %s", got, want)
	}
	p.mu.Lock()
	p.requests = append(p.requests, tok)
	rejected := p.reject[tok] > 0
	if rejected {
		p.reject[tok]--
	}
	p.mu.Unlock()
	body, ok := p.pages[tok]
	if rejected || !ok {
		writeJSON(w, 400, `{"code":300,"message":"The next page token is invalid or expired."}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

func (p *pagedAPI) tokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// Bodies with odd spacing, so that a re-encoded body would not compare equal.
var userPages = map[string]string{
	"": `{"next_page_token":"t2","page_size":300,"total_records":5,
  "users":[{"id":"u1","email":"a@x.com"} , {"id":"u2","email":"b@x.com","custom_attributes":[{"key":"k","value":"v"}]}]}`,
	"t2": `{"next_page_token":"t3","page_size":300,"total_records":5,"users":[{"id":"u3"},{"id":"u4"}]}`,
	"t3": `{"next_page_token":"","page_size":300,"total_records":5,"users":[{"email":"pending@x.com"}]}` + "\n",
}

type pageSummary struct {
	number    int
	items     int
	last      bool
	restarted bool
}

// collect walks a listing and returns what it saw.
func collect(t testing.TB, c *Client, l Listing) ([]pageSummary, []RawPage, error) {
	t.Helper()
	var sums []pageSummary
	var pages []RawPage
	err := c.Pages(context.Background(), l, func(p RawPage) error {
		sums = append(sums, pageSummary{p.Number, p.Items, p.Last, p.Restarted})
		pages = append(pages, p)
		return nil
	})
	return sums, pages, err
}

func TestPagesWalksEveryListing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		listing   Listing
		path      string
		query     url.Values
		pages     map[string]string
		want      []pageSummary
		wantTotal int
	}{
		{
			name:    "users over three pages",
			listing: UsersListing(UserStatusActive),
			path:    "/v2/users",
			query:   url.Values{"status": {"active"}, "page_size": {"300"}, "include_fields": {"custom_attributes"}},
			pages:   userPages,
			want:    []pageSummary{{1, 2, false, false}, {2, 2, false, false}, {3, 1, true, false}},
			// total_records as Zoom sent it
			wantTotal: 5,
		},
		{
			name:    "pending users",
			listing: UsersListing(UserStatusPending),
			path:    "/v2/users",
			query:   url.Values{"status": {"pending"}, "page_size": {"300"}, "include_fields": {"custom_attributes"}},
			pages:   map[string]string{"": `{"total_records":1,"users":[{"email":"p@x.com"}]}`},
			want:    []pageSummary{{1, 1, true, false}},
			// next_page_token missing altogether ends the listing too
			wantTotal: 1,
		},
		{
			name:    "groups over two pages",
			listing: GroupsListing(),
			path:    "/v2/groups",
			query:   url.Values{"page_size": {"300"}},
			pages: map[string]string{
				"":   `{"groups":[{"id":"g1","name":"A","total_members":3}],"total_records":2,"next_page_token":"g2"}`,
				"g2": `{"groups":[{"id":"g2","name":"B","total_members":0}],"total_records":2,"next_page_token":""}`,
			},
			want:      []pageSummary{{1, 1, false, false}, {2, 1, true, false}},
			wantTotal: 2,
		},
		{
			name:      "group admins, id escaped",
			listing:   GroupAdminsListing("g/1 x"),
			path:      "/v2/groups/g%2F1%20x/admins",
			query:     url.Values{"page_size": {"300"}},
			pages:     map[string]string{"": `{"admins":[{"email":"A@x.com","name":"A"},{"email":"b@x.com"}],"page_size":300,"total_records":2}`},
			want:      []pageSummary{{1, 2, true, false}},
			wantTotal: 2,
		},
		{
			name:    "roles, one request, a stray page token followed",
			listing: RolesListing(),
			path:    "/v2/roles",
			query:   url.Values{},
			pages: map[string]string{
				"":   `{"roles":[{"id":"0","name":"Owner"},{"id":"1","name":"Admin"}],"total_records":3,"next_page_token":"r2"}`,
				"r2": `{"roles":[{"id":"2","name":"Member"}],"total_records":3}`,
			},
			want:      []pageSummary{{1, 2, false, false}, {2, 1, true, false}},
			wantTotal: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &pagedAPI{t: t, path: tt.path, wantQuery: tt.query, pages: tt.pages}
			env := newTestEnv(t, api)
			sums, pages, err := collect(t, env.c, tt.listing)
			if err != nil {
				t.Fatalf("Pages: %v", err)
			}
			if got, want := mustJSON(t, fmtSums(sums)), mustJSON(t, fmtSums(tt.want)); got != want {
				t.Errorf("pages = %s, want %s", got, want)
			}
			toks := api.tokens()
			for i, p := range pages {
				if want := tt.pages[toks[i]]; !bytes.Equal(p.Body, []byte(want)) {
					t.Errorf("page %d body = %q, want exactly %q", p.Number, p.Body, want)
				}
				if p.TotalRecords != tt.wantTotal {
					t.Errorf("page %d TotalRecords = %d, want %d", p.Number, p.TotalRecords, tt.wantTotal)
				}
				if p.FetchedAt.IsZero() {
					t.Errorf("page %d FetchedAt is zero", p.Number)
				}
				if p.Listing != tt.listing {
					t.Errorf("page %d Listing = %v, want %v", p.Number, p.Listing, tt.listing)
				}
			}
			if got, want := env.c.Requests().Count(tt.listing.Endpoint()), int64(len(tt.want)); got != want {
				t.Errorf("requests to %s = %d, want %d", tt.listing.Endpoint(), got, want)
			}
		})
	}
}

func fmtSums(s []pageSummary) [][4]any {
	var out [][4]any
	for _, p := range s {
		out = append(out, [4]any{p.number, p.items, p.last, p.restarted})
	}
	return out
}

func TestPagesRestartsOnExpiredPageToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reject     map[string]int
		restarts   int
		want       []pageSummary
		wantTokens string
		wantErr    bool
	}{
		{
			name:       "token of page 2 expired once",
			reject:     map[string]int{"t2": 1},
			restarts:   3,
			want:       []pageSummary{{1, 2, false, false}, {1, 2, false, true}, {2, 2, false, false}, {3, 1, true, false}},
			wantTokens: ",t2,,t2,t3",
		},
		{
			name:       "token of page 3 expired twice",
			reject:     map[string]int{"t3": 2},
			restarts:   3,
			want:       []pageSummary{{1, 2, false, false}, {2, 2, false, false}, {1, 2, false, true}, {2, 2, false, false}, {1, 2, false, true}, {2, 2, false, false}, {3, 1, true, false}},
			wantTokens: ",t2,t3,,t2,t3,,t2,t3",
		},
		{
			name:       "restarts are bounded",
			reject:     map[string]int{"t2": 100},
			restarts:   2,
			want:       []pageSummary{{1, 2, false, false}, {1, 2, false, true}, {1, 2, false, true}},
			wantTokens: ",t2,,t2,,t2",
			wantErr:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &pagedAPI{t: t, path: "/v2/users", pages: userPages, reject: tt.reject,
				wantQuery: url.Values{"status": {"inactive"}, "page_size": {"300"}, "include_fields": {"custom_attributes"}}}
			env := newTestEnv(t, api, func(c *Config) { c.MaxListingRestarts = tt.restarts })
			sums, _, err := collect(t, env.c, UsersListing(UserStatusInactive))
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("Pages error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				var api *APIError
				if !errors.As(err, &api) || api.Code != CodeValidation {
					t.Errorf("error = %v, want an *APIError code 300", err)
				}
			}
			if got, want := mustJSON(t, fmtSums(sums)), mustJSON(t, fmtSums(tt.want)); got != want {
				t.Errorf("pages = %s, want %s", got, want)
			}
			if got := strings.Join(api.tokens(), ","); got != tt.wantTokens {
				t.Errorf("page tokens sent = %q, want %q", got, tt.wantTokens)
			}
		})
	}
}

func TestPagesCode300OnFirstPageIsPermanent(t *testing.T) {
	t.Parallel()
	api := &sequence{steps: []http.HandlerFunc{answer(400, `{"code":300,"message":"Validation Failed."}`)}}
	env := newTestEnv(t, api)
	_, _, err := collect(t, env.c, GroupsListing())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 300 {
		t.Fatalf("error = %v, want *APIError code 300", err)
	}
	if got, want := api.count(), 1; got != want {
		t.Errorf("requests = %d, want %d (no restart without a page token)", got, want)
	}
}

func TestPagesStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	api := &pagedAPI{t: t, path: "/v2/users", pages: userPages,
		wantQuery: url.Values{"status": {"active"}, "page_size": {"300"}, "include_fields": {"custom_attributes"}}}
	env := newTestEnv(t, api)
	stop := errors.New("stop here")
	var seen int
	err := env.c.Pages(context.Background(), UsersListing(UserStatusActive), func(p RawPage) error {
		seen++
		if p.Number == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("error = %v, want the callback's", err)
	}
	if got, want := len(api.tokens()), 2; got != want || seen != 2 {
		t.Errorf("requests = %d, pages seen = %d, want %d and 2", got, seen, want)
	}
}

func TestPagesRejectsBadListings(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, &sequence{steps: []http.HandlerFunc{answer(200, `{}`)}})
	for _, l := range []Listing{UsersListing("deleted"), UsersListing(""), GroupAdminsListing(""), {}} {
		if err := env.c.Pages(context.Background(), l, func(RawPage) error { return nil }); err == nil {
			t.Errorf("Pages(%v) = nil, want an error", l)
		}
	}
}

func TestPagesRepeatedTokenIsAnError(t *testing.T) {
	t.Parallel()
	api := &pagedAPI{t: t, path: "/v2/groups", wantQuery: url.Values{"page_size": {"300"}}, pages: map[string]string{
		"":     `{"groups":[],"next_page_token":"same"}`,
		"same": `{"groups":[],"next_page_token":"same"}`,
	}}
	env := newTestEnv(t, api)
	if _, _, err := collect(t, env.c, GroupsListing()); err == nil {
		t.Error("Pages = nil, want an error for a token that repeats")
	}
	// Tokens that come back after others lead round in a circle too.
	api = &pagedAPI{t: t, path: "/v2/groups", wantQuery: url.Values{"page_size": {"300"}}, pages: map[string]string{
		"":  `{"groups":[],"next_page_token":"a"}`,
		"a": `{"groups":[],"next_page_token":"b"}`,
		"b": `{"groups":[],"next_page_token":"a"}`,
	}}
	env = newTestEnv(t, api)
	if _, _, err := collect(t, env.c, GroupsListing()); err == nil || !strings.Contains(err.Error(), "sent before") {
		t.Errorf("Pages = %v, want an error for tokens that come round again", err)
	}
}

func TestPageSizeConfig(t *testing.T) {
	t.Parallel()
	api := &pagedAPI{t: t, path: "/v2/groups", wantQuery: url.Values{"page_size": {"50"}},
		pages: map[string]string{"": `{"groups":[]}`}}
	env := newTestEnv(t, api, func(c *Config) { c.PageSize = 50 })
	if _, _, err := collect(t, env.c, GroupsListing()); err != nil {
		t.Fatal(err)
	}
}

func TestPagesShortListingIsAnError(t *testing.T) {
	t.Parallel()
	users := func(n int) string {
		items := make([]string, n)
		for i := range items {
			items[i] = `{"id":"u` + strconv.Itoa(i) + `"}`
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	for _, tc := range []struct {
		name  string
		pages map[string]string
		short bool
	}{
		{"an empty page that counts 5000", map[string]string{
			"": `{"total_records":5000,"users":[]}`,
		}, true},
		{"cut short after the first page", map[string]string{
			"":   `{"total_records":8,"next_page_token":"t2","users":` + users(3) + `}`,
			"t2": `{"total_records":8,"users":[]}`,
		}, true},
		{"every item listed", map[string]string{
			"":   `{"total_records":6,"next_page_token":"t2","users":` + users(3) + `}`,
			"t2": `{"total_records":6,"users":` + users(3) + `}`,
		}, false},
		{"users deleted while it paged", map[string]string{
			"":   `{"total_records":6,"next_page_token":"t2","users":` + users(3) + `}`,
			"t2": `{"total_records":4,"users":` + users(1) + `}`,
		}, false},
		{"users created while it paged, one shifted past the cursor", map[string]string{
			"":   `{"total_records":6,"next_page_token":"t2","users":` + users(3) + `}`,
			"t2": `{"total_records":7,"users":` + users(3) + `}`,
		}, false},
		{"more missing than the totals moved", map[string]string{
			"":   `{"total_records":100,"next_page_token":"t2","users":` + users(3) + `}`,
			"t2": `{"total_records":98,"users":` + users(3) + `}`,
		}, true},
		{"changes that offset each other: a few short, totals unchanged", map[string]string{
			"":   `{"total_records":346,"next_page_token":"t2","users":` + users(300) + `}`,
			"t2": `{"total_records":346,"users":` + users(41) + `}`,
		}, false},
		{"a page missing from a large listing", map[string]string{
			"":   `{"total_records":900,"next_page_token":"t2","users":` + users(300) + `}`,
			"t2": `{"total_records":900,"users":` + users(300) + `}`,
		}, true},
		{"no total_records", map[string]string{
			"": `{"users":[]}`,
		}, false},
		{"an empty account", map[string]string{
			"": `{"total_records":0,"users":[]}`,
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &pagedAPI{t: t, path: "/v2/users", pages: tc.pages,
				wantQuery: url.Values{"status": {"active"}, "page_size": {"300"}, "include_fields": {"custom_attributes"}}}
			env := newTestEnv(t, api)
			sums, _, err := collect(t, env.c, UsersListing(UserStatusActive))
			if got := errors.Is(err, ErrShortListing); got != tc.short {
				t.Fatalf("Pages = %v, want ErrShortListing %v", err, tc.short)
			}
			if tc.short {
				// The last page is never handed over: nothing may take
				// the listing for complete.
				for _, s := range sums {
					if s.last {
						t.Errorf("page %d handed over as the last of a short listing", s.number)
					}
				}
			}
		})
	}
}
