package connector

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// While replica A's refresh is at Zoom, the administrator re-authorizes (the
// callback on a webhook replica stores fresh tokens, state active). Zoom
// answers A invalid_grant (its refresh token belongs to the old grant). A
// then wipes the fresh tokens and sets needs_reauthorization.
func TestRefusedRefreshKeepsANewAuthorization(t *testing.T) {
	f := newFlow(t, time.Hour)
	f.authorize(t)
	ctx := context.Background()
	auth := *f.auth
	auth.client = &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "grant_type=refresh_token") {
			// the callback of a new authorization, meanwhile
			fresh, err := sealGrant(f.keys, f.ref, Grant{Access: "fresh-access", Refresh: "fresh-refresh", Expiry: time.Now().Add(time.Hour)}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.reg.Modify(ctx, f.ref, func(r *Record) error {
				r.Tokens, r.State, r.Reason = fresh, StateActive, ""
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(`{"error":"invalid_grant","reason":"Invalid Token!"}`)), Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	ts := f.reg.TokenSource(f.keys, &auth, f.ref, "replica-A")
	ts.Invalidate(f.access(t)) // Zoom refused the access token: refresh
	_, _, err := ts.Access(ctx)
	e, _ := f.reg.Get(ctx, f.ref)
	t.Logf("A: %v; record: state=%s refresh stored=%v", err, e.State, e.Tokens.Refresh != "")
	if e.State != StateActive || e.Tokens.Refresh == "" {
		t.Errorf("the fresh authorization was wiped")
	}
}
