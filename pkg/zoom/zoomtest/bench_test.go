package zoomtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

var (
	bigOnce sync.Once
	bigOrg  *Org
)

func big() *Org {
	bigOnce.Do(func() { bigOrg = Generate(42, Size{Users: 100000, Groups: 2000, Roles: 10}) })
	return bigOrg
}

// BenchmarkListUsersPage measures one page of 300 users from a 100,000-user
// account, served in-process without a network.
func BenchmarkListUsersPage(b *testing.B) {
	s := New(big(), Options{})
	h := s.Handler()
	tok := requestToken(b, serveForBench(b, s))
	first := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v2/users?page_size=300", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(first, req)
	if first.Code != http.StatusOK {
		b.Fatalf("got status %d", first.Code)
	}
	next := url.QueryEscape(pageToken(first.Body.Bytes()))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/v2/users?page_size=300&include_fields=custom_attributes&next_page_token="+next, nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("got status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// serveForBench serves an existing Server on a test listener, for
// benchmarks that need a token from the HTTP endpoint.
func serveForBench(tb testing.TB, s *Server) *Server {
	tb.Helper()
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(ts.Close)
	s.httpMu.Lock()
	s.baseURL = ts.URL
	s.httpMu.Unlock()
	return s
}

func pageToken(body []byte) string {
	const key = `"next_page_token":"`
	for i := 0; i+len(key) < len(body); i++ {
		if string(body[i:i+len(key)]) == key {
			j := i + len(key)
			k := j
			for body[k] != '"' {
				k++
			}
			return string(body[j:k])
		}
	}
	return ""
}
