package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestErrorsQuoteZoomBounded: whatever Zoom sends in an error answer (a
// message of megabytes, multi-byte text, an HTML page), the error text
// quotes at most MaxQuoted bytes of it, cut at a character boundary, as
// valid UTF-8, and says that it was cut.
func TestErrorsQuoteZoomBounded(t *testing.T) {
	t.Parallel()
	jsonError := func(status int, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			b, _ := json.Marshal(ErrorBody{Code: 4700, Message: msg})
			writeJSON(w, status, string(b))
		}
	}
	for _, tc := range []struct {
		name    string
		answer  http.HandlerFunc
		quote   string // what the error says
		trimmed bool   // whether the error says Zoom's text was cut
	}{
		{"2 MiB message", jsonError(400, strings.Repeat("x", 2<<20)), "zoom: GET /users/{userId}: 400 code 4700: xxx", true},
		{"multi-byte message", jsonError(403, strings.Repeat("é", 3000)), "zoom: GET /users/{userId}: 403 code 4700: ééé", true},
		{"short message", jsonError(400, "Invalid field."), "zoom: GET /users/{userId}: 400 code 4700: Invalid field.", false},
		{"2 MiB rate limit", jsonError(429, strings.Repeat("y", 2<<20)), "zoom: GET /users/{userId}: ", true},
		{"HTML page", answer(502, "<html>"+strings.Repeat("<p>bad gateway</p>\n", 1<<16)+"</html>"), "zoom: GET /users/{userId}: 502: <html>", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, tc.answer, func(c *Config) {
				c.MaxAttempts = 1
				c.MaxRateLimitWait = time.Millisecond
			})
			_, err := env.c.GetUser(context.Background(), "u1")
			if err == nil {
				t.Fatal("GetUser succeeded, want Zoom's error")
			}
			text := err.Error()
			if len(text) > MaxQuoted+200 || !utf8.ValidString(text) {
				t.Errorf("error of %d bytes (valid UTF-8: %t), want at most %d", len(text), utf8.ValidString(text), MaxQuoted+200)
			}
			if !strings.Contains(text, tc.quote) {
				t.Errorf("error %.200q…, want it to say %q", text, tc.quote)
			}
			if got := strings.Contains(text, "truncated from"); got != tc.trimmed {
				t.Errorf("error %.200q… says it was cut: %t, want %t", text, got, tc.trimmed)
			}
		})
	}
}

// TestTokenErrorQuotesZoomBounded: a refusal of the token endpoint with a
// reason of a megabyte quotes only MaxQuoted bytes of it.
func TestTokenErrorQuotesZoomBounded(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t, answer(200, userBody))
	env.tokens.set(func(ts *tokenServer) {
		ts.fail = func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusBadRequest, `{"error":"invalid_request","reason":"`+strings.Repeat("z", 1<<20-100)+`"}`)
		}
	})
	_, err := env.c.GetUser(context.Background(), "u1")
	if err == nil {
		t.Fatal("GetUser succeeded, want the token endpoint's refusal")
	}
	text := err.Error()
	if len(text) > MaxQuoted+400 || !strings.Contains(text, "POST /oauth/token: 400 invalid_request: zzz") || !strings.Contains(text, "truncated from") {
		t.Errorf("error of %d bytes %.200q…, want Zoom's reason cut to %d bytes and marked", len(text), text, MaxQuoted)
	}
}

func TestQuoted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"", ""},
		{"User does not exist.", "User does not exist."},
		{"two\nlines\r\n", "two lines"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{strings.Repeat("a", MaxQuoted), strings.Repeat("a", MaxQuoted)},
	} {
		if got := quoted(tc.in); got != tc.want {
			t.Errorf("quoted(%.40q) = %.40q, want %.40q", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{strings.Repeat("a", MaxQuoted+1), strings.Repeat("日本", 1000), strings.Repeat("é", 1<<20)} {
		got := quoted(in)
		if len(got) > MaxQuoted || !utf8.ValidString(got) || !strings.HasSuffix(got, "bytes)") {
			t.Errorf("quoted of %d bytes: %d bytes (valid UTF-8: %t) %.40q…, want at most %d, marked", len(in), len(got), utf8.ValidString(got), got, MaxQuoted)
		}
	}
}

// TestErrorSentinels: the answers of Zoom that callers act on match their
// sentinel, and nothing else does: a code on another endpoint or under
// another status means something else.
func TestErrorSentinels(t *testing.T) {
	t.Parallel()
	const (
		user   = "/users/{userId}"
		admins = "/groups/{groupId}/admins"
		groups = "/groups"
		roles  = "/roles"
	)
	for _, tc := range []struct {
		status, code int
		endpoint     string
		want         error // the one sentinel it matches; nil for none
	}{
		{404, CodeUserNotFound, user, ErrUserNotFound},
		{400, CodeUserNotFound, user, nil},
		{404, 0, user, nil},
		{404, CodeGroupNotFound, admins, ErrGroupNotFound},
		{400, CodeNotInAccount, admins, ErrGroupNotFound},
		{404, CodeNotInAccount, admins, nil},
		{400, CodeGroupNotFound, admins, nil},
		{400, CodeNotInAccount, user, nil},
		{404, CodeGroupNotFound, "/users", nil},
		{429, CodeRateLimited, admins, ErrRateLimited},
		{429, 0, user, ErrRateLimited},
		{500, 0, admins, nil},
		{400, CodePaidOnly, groups, ErrPlanUnavailable},
		{400, CodePaidOnly, admins, ErrPlanUnavailable},
		{200, CodePaidOnly, groups, ErrPlanUnavailable},
		{400, CodePaidOnly, roles, ErrPlanUnavailable},
		{403, CodePaidOnly, roles, ErrPlanUnavailable},
		{200, CodePaidOnly, roles, ErrPlanUnavailable},
		{403, CodePaidOnly, groups, nil},
		{400, CodeValidation, groups, nil},
		{400, 4700, roles, nil},
		{400, CodePaidOnly, "/users", nil},
		{400, CodePaidOnly, user, nil},
	} {
		api := &APIError{StatusCode: tc.status, Code: tc.code, Method: http.MethodGet, Endpoint: tc.endpoint}
		// Wrapped, as the client's callers get it.
		err := fmt.Errorf("list page 1: %w", api)
		for _, s := range []error{ErrUserNotFound, ErrGroupNotFound, ErrPlanUnavailable, ErrRateLimited} {
			if got, want := errors.Is(err, s), s == tc.want; got != want {
				t.Errorf("%d code %d on %s: errors.Is(%v) got %t, want %t", tc.status, tc.code, tc.endpoint, s, got, want)
			}
		}
	}
}

// TestGroupGoneFromTheListing: a group deleted between the listing of
// groups and the listing of its admins ends that listing with an error
// that matches ErrGroupNotFound.
func TestGroupGoneFromTheListing(t *testing.T) {
	t.Parallel()
	for _, body := range []struct {
		status int
		body   string
	}{
		{404, `{"code":4130,"message":"Group does not exist: g1."}`},
		{400, `{"code":1010,"message":"Group does not belong to your account."}`},
	} {
		env := newTestEnv(t, answer(body.status, body.body))
		err := env.c.Pages(context.Background(), GroupAdminsListing("g1"), func(RawPage) error { return nil })
		if !errors.Is(err, ErrGroupNotFound) {
			t.Errorf("%d %s: got %v, want an error matching ErrGroupNotFound", body.status, body.body, err)
		}
	}
}

// TestPlanUnavailableListing: the listings a free (Basic) account is
// refused end with an error that matches ErrPlanUnavailable, in each way
// Zoom documents or may answer it; the users listing never does, nor does
// an empty 200 that is no error.
func TestPlanUnavailableListing(t *testing.T) {
	t.Parallel()
	const paidOnly = `{"code":200,"message":"Only available for Paid account."}`
	for _, tc := range []struct {
		name    string
		listing Listing
		status  int
		body    string
		want    bool
	}{
		{"groups 400", GroupsListing(), 400, paidOnly, true},
		{"group admins 400", GroupAdminsListing("g1"), 400, `{"code":200,"message":"Only available for paid account,abc."}`, true},
		{"groups 200 with the error", GroupsListing(), 200, paidOnly, true},
		{"roles 400", RolesListing(), 400, paidOnly, true},
		{"roles 403", RolesListing(), 403, `{"code":200,"message":"You do not have the permission."}`, true},
		{"roles 200 with the error", RolesListing(), 200, paidOnly, true},
		{"users 400 code 200", UsersListing(UserStatusActive), 400, paidOnly, false},
		{"groups without items", GroupsListing(), 200, `{"total_records":0}`, false},
		{"roles missing scope", RolesListing(), 400, `{"code":4700,"message":"Invalid access token, does not contain role:read:admin scope."}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, answer(tc.status, tc.body), func(c *Config) { c.MaxAttempts = 1 })
			err := env.c.Pages(context.Background(), tc.listing, func(RawPage) error {
				t.Error("a page was handed over, want none")
				return nil
			})
			if err == nil {
				t.Fatal("Pages succeeded, want an error")
			}
			if got := errors.Is(err, ErrPlanUnavailable); got != tc.want {
				t.Errorf("%v: errors.Is(ErrPlanUnavailable) got %t, want %t", err, got, tc.want)
			}
			if tc.status == 200 && !errors.Is(err, ErrNotAPage) {
				t.Errorf("%v: want it to match ErrNotAPage too", err)
			}
		})
	}
}
