package zoomtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand, to expire tokens without
// sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// response is a decoded answer of the simulator.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) code() int {
	c, _ := r.body["code"].(float64)
	return int(c)
}

func (r response) message() string {
	m, _ := r.body["message"].(string)
	return m
}

func (r response) items(field string) []map[string]any {
	list, _ := r.body[field].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

func (r response) str(field string) string {
	s, _ := r.body[field].(string)
	return s
}

func (r response) num(field string) int {
	n, _ := r.body[field].(float64)
	return int(n)
}

func do(t testing.TB, method, rawURL, token string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, rawURL, err, raw)
		}
	}
	return r
}

// api calls the /v2 API with a token.
func api(t testing.TB, s *Server, token, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = strings.NewReader(string(b))
	}
	return do(t, method, s.APIBase()+path, token, rd)
}

// requestToken asks the token endpoint for a token with the server's
// credentials.
func requestToken(t testing.TB, s *Server) string {
	t.Helper()
	req, err := http.NewRequest("POST", s.TokenURL()+"?grant_type=account_credentials&account_id="+url.QueryEscape(s.AccountID()), nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.SetBasicAuth(s.ClientID(), s.ClientSecret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: status %d, decode error %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// listAll pages through a listing and returns its items and the pages.
func listAll(t testing.TB, s *Server, token, path, field string) ([]map[string]any, []response) {
	t.Helper()
	var items []map[string]any
	var pages []response
	next := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for range 10000 {
		p := path
		if next != "" {
			p += sep + "next_page_token=" + url.QueryEscape(next)
		}
		r := api(t, s, token, "GET", p, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: got status %d, want 200: %s", p, r.status, r.raw)
		}
		pages = append(pages, r)
		items = append(items, r.items(field)...)
		next = r.str("next_page_token")
		if next == "" {
			return items, pages
		}
	}
	t.Fatalf("GET %s: more than 10000 pages", path)
	return nil, nil
}

// small is a generated organisation big enough for several pages.
func small(t testing.TB) *Org {
	t.Helper()
	return Generate(7, Size{Users: 700, Groups: 12, Roles: 6, InactiveFraction: 0.2, PendingFraction: 0.1})
}

func countStatus(org *Org, status string) int {
	n := 0
	for _, u := range org.Users {
		if u.Status == status {
			n++
		}
	}
	return n
}
