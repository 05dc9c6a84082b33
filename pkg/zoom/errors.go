package zoom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Zoom error codes the client acts on. Zoom sends them in the "code" field of
// an error body, next to the HTTP status.
const (
	// CodeInvalidToken is "Invalid access token" or "Access token is expired".
	// Zoom documents it under 400 and answers it with 401 in practice.
	CodeInvalidToken = 124
	// CodePaidOnly is "Only available for Paid account": the account's
	// plan (Basic, free) does not offer the endpoint. Zoom also uses it for
	// other refusals of permission.
	CodePaidOnly = 200
	// CodeValidation is a validation failure; on a listing it also means the
	// next_page_token is invalid or expired (tokens live 15 minutes).
	CodeValidation = 300
	// CodeUserNotFound is "User does not exist" (HTTP 404).
	CodeUserNotFound = 1001
	// CodeNotInAccount is "does not belong to this account" (HTTP 400): on
	// a group's endpoint, the group is gone from the account.
	CodeNotInAccount = 1010
	// CodeGroupNotFound is "Group does not exist" (HTTP 404).
	CodeGroupNotFound = 4130
	// CodeRateLimited is the code of a 429 body.
	CodeRateLimited = 429
)

// ErrUserNotFound is matched (errors.Is) by the error of GetUser when Zoom
// answers 404 code 1001: the user was deleted or disassociated.
var ErrUserNotFound = errors.New("zoom: user not found")

// ErrGroupNotFound is matched (errors.Is) by the error of a request on one
// group's endpoints (such as the listing of its admins) when Zoom answers
// 404 code 4130, or 400 code 1010 (not in this account): the group was
// deleted since it was listed.
var ErrGroupNotFound = errors.New("zoom: group not found")

// ErrPlanUnavailable is matched (errors.Is) by the error of a listing that
// the account's plan does not offer, so that a full sync can go on without
// it. Zoom documents 400 code 200 "Only available for Paid account" for GET
// /groups and the endpoints of one group, its admins included. For GET
// /roles it says only "Pro or higher plan" and documents no answer; code 200
// is what it answers for the other role endpoints on a free account, so the
// readings it may take are all accepted there: 400 or 403 with code 200. On
// every one of these endpoints, a 200 whose body is that error instead of
// the listing (Zoom's documents list "Error Code: 200" under the HTTP 200 of
// GET /groups and of the role endpoints) matches too.
var ErrPlanUnavailable = errors.New("zoom: not available on the account's plan")

// ErrNotAPage reports a successful answer that lacks the listing's item
// array. It is never read as an empty listing.
var ErrNotAPage = errors.New("zoom: answer is not a page of the listing (no item array)")

// ErrRateLimited is matched (errors.Is) by every error that comes from a Zoom
// 429 answer, whether the client gave up retrying or failed fast.
var ErrRateLimited = errors.New("zoom: rate limited")

// MaxQuoted bounds, in bytes, each piece of text from Zoom that an error
// quotes (an error message, a reason, the start of a body that is not
// JSON). Zoom's own messages are a sentence; anything longer is cut at a
// character boundary and marked, so that an error always fits in a log
// line, a dead letter's header and a NATS message.
const MaxQuoted = 1 << 10

// quoted returns text from Zoom as an error may quote it: valid UTF-8,
// on one line, and at most MaxQuoted bytes, cut at a character boundary
// with a marker that says how long it was.
func quoted(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsAny(s, "\r\n") {
		s = strings.Join(strings.Fields(s), " ")
	}
	if len(s) <= MaxQuoted {
		return s
	}
	marker := "… (truncated from " + strconv.Itoa(len(s)) + " bytes)"
	cut := MaxQuoted - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// APIError is a non-2xx answer of the Zoom REST API.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is Zoom's error code from the body, 0 when the body had none.
	Code int
	// Message is Zoom's error message, or the start of a non-JSON body.
	// Error quotes at most MaxQuoted bytes of it.
	Message string
	// Method is the HTTP method of the request.
	Method string
	// Endpoint is the path template of the request, such as
	// "/groups/{groupId}/admins", so that errors group well in logs and
	// metrics and carry no identifiers.
	Endpoint string

	// retryAt and daily describe a 429: when Zoom said to come back (zero
	// when it did not say) and whether a daily limit was hit.
	retryAt time.Time
	daily   bool
	// limit is X-RateLimit-Limit of a 429, 0 when absent.
	limit int
}

// Error reads like "zoom: GET /users: 400 code 300: The next page token is
// invalid or expired."
func (e *APIError) Error() string {
	return "zoom: " + e.Method + " " + e.Endpoint + ": " + e.answer()
}

// answer is the status, code and message part of Error.
func (e *APIError) answer() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != 0 {
		b.WriteString(" code ")
		b.WriteString(strconv.Itoa(e.Code))
	}
	msg := quoted(e.Message)
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.StatusCode))
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// Is lets errors.Is match ErrUserNotFound, ErrGroupNotFound,
// ErrPlanUnavailable and ErrRateLimited.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUserNotFound:
		return e.StatusCode == http.StatusNotFound && e.Code == CodeUserNotFound
	case ErrGroupNotFound:
		// Code 1010 on a user's endpoint is about the user, not a group.
		return strings.HasPrefix(e.Endpoint, "/groups/{groupId}") &&
			(e.StatusCode == http.StatusNotFound && e.Code == CodeGroupNotFound ||
				e.StatusCode == http.StatusBadRequest && e.Code == CodeNotInAccount)
	case ErrPlanUnavailable:
		return e.planRefused()
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

// planRefused reports the answer of a paid-only endpoint to a free account
// (see ErrPlanUnavailable). Code 200 on a user's endpoint is about the user
// (such as "cannot be changed to a free user type"), not the plan.
func (e *APIError) planRefused() bool {
	if e.Code != CodePaidOnly {
		return false
	}
	switch {
	case e.Endpoint == "/groups" || strings.HasPrefix(e.Endpoint, "/groups/"):
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusOK
	case e.Endpoint == "/roles" || strings.HasPrefix(e.Endpoint, "/roles/"):
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusForbidden ||
			e.StatusCode == http.StatusOK
	}
	return false
}

// Retryable reports whether the same request may succeed later: a 429 or a
// server error. Every other 4xx is permanent.
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 ||
		e.StatusCode == http.StatusRequestTimeout
}

// tokenRejected reports whether Zoom refused the access token itself, which a
// fresh token may cure. Any 401 counts, not only code 124, because an answer
// without a body (a proxy, a simulator) means the same thing.
func (e *APIError) tokenRejected() bool {
	return e.StatusCode == http.StatusUnauthorized ||
		(e.StatusCode == http.StatusBadRequest && e.Code == CodeInvalidToken)
}

// pageTokenRejected reports whether Zoom refused a next_page_token. The caller
// checks that a token was sent: without one, code 300 is a plain validation
// error.
func (e *APIError) pageTokenRejected() bool {
	return e.StatusCode == http.StatusBadRequest && e.Code == CodeValidation
}

// RateLimitError is returned instead of waiting when Zoom's 429 asks for a
// wait longer than Config.MaxRateLimitWait (typically a daily limit that
// resets hours later), or when the retry budget ran out on a 429 whose end
// Zoom announced. The caller can reschedule its work for RetryAt.
type RateLimitError struct {
	// RetryAt is when Zoom said requests may resume; zero when unknown.
	RetryAt time.Time
	// Daily reports a daily limit rather than a per-second one.
	Daily bool
	// Wait is how long the client would have had to wait from when it gave up.
	Wait time.Duration
	// Err is Zoom's 429 answer.
	Err *APIError

	// reason says why the client did not wait.
	reason string
}

// Error names the endpoint, the kind of limit, when it ends and why the client
// did not wait for it.
func (e *RateLimitError) Error() string {
	kind := "per-second"
	if e.Daily {
		kind = "daily"
	}
	when := "at an unknown time"
	if !e.RetryAt.IsZero() {
		when = fmt.Sprintf("at %s (in %s)", e.RetryAt.UTC().Format(time.RFC3339), e.Wait.Round(time.Second))
	}
	return fmt.Sprintf("zoom: %s %s: %s rate limit reached, Zoom accepts requests again %s; %s (%s)",
		e.Err.Method, e.Err.Endpoint, kind, when, e.reason, e.Err.answer())
}

// Unwrap returns Zoom's 429 answer.
func (e *RateLimitError) Unwrap() error { return e.Err }

// TokenError is a refusal of the OAuth token endpoint. Its message says what
// to fix; it never carries the client secret or a token.
type TokenError struct {
	// StatusCode is the HTTP status of the token endpoint.
	StatusCode int
	// Code is Zoom's numeric code when the body had one (4702, 4705, …).
	Code int
	// OAuthError is the OAuth "error" field, such as "invalid_client".
	OAuthError string
	// Reason is Zoom's explanation ("reason", "error_description" or
	// "message"), with any secret scrubbed. Error quotes at most
	// MaxQuoted bytes of it.
	Reason string
}

// Error reads like "zoom: POST /oauth/token: 401 invalid_client: Invalid
// client_id or client_secret (check the Client ID and Client secret …)".
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("zoom: POST /oauth/token: ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.OAuthError != "" {
		b.WriteByte(' ')
		b.WriteString(quoted(e.OAuthError))
	}
	if e.Code != 0 {
		b.WriteString(" code ")
		b.WriteString(strconv.Itoa(e.Code))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(quoted(e.Reason))
	}
	if h := e.Hint(); h != "" {
		b.WriteString(" (")
		b.WriteString(h)
		b.WriteByte(')')
	}
	return b.String()
}

// Hint says what an operator should change, or "" when the refusal is not
// about configuration.
func (e *TokenError) Hint() string {
	reason := strings.ToLower(e.Reason)
	switch {
	case e.Retryable():
		return "Zoom's token endpoint is unavailable; retry later"
	case e.OAuthError == "unsupported_grant_type" || e.Code == 4705 ||
		strings.Contains(reason, "grant type") || strings.Contains(reason, "grant_type"):
		return "the credentials are not those of an activated Server-to-Server OAuth app; " +
			"use the Account ID, Client ID and Client secret of a Server-to-Server OAuth app"
	case strings.Contains(reason, "account"):
		return "check the Account ID: it must be the one shown on the Server-to-Server OAuth app"
	case e.OAuthError == "invalid_client" || e.Code == 4702 || e.Code == 4704 || e.Code == 4706 ||
		e.StatusCode == http.StatusUnauthorized || strings.Contains(reason, "client"):
		return "check the Client ID and Client secret: they must be those of the Server-to-Server OAuth app"
	case e.OAuthError == "invalid_grant" || e.OAuthError == "invalid_request":
		return "check the Account ID, Client ID and Client secret of the Server-to-Server OAuth app"
	}
	return ""
}

// Retryable reports whether asking again later may succeed.
func (e *TokenError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// transportError is a request that got no HTTP answer (connection refused,
// reset, timeout, truncated body). It is always worth retrying.
type transportError struct {
	err error
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// IsRetryable reports whether err is transient: a 429, a 5xx, a network
// failure, or a token endpoint that is unavailable. Context cancellation is
// not retryable. A caller that gets a retryable error from this client has
// already seen the client's own retries run out, and should retry later
// (RetryAt tells when, if Zoom said).
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Retryable()
	}
	var tok *TokenError
	if errors.As(err, &tok) {
		return tok.Retryable()
	}
	var te *transportError
	return errors.As(err, &te)
}

// IsPermanent reports whether err is an answer from Zoom that will not change
// by asking again: a 4xx other than 429 (bad request, missing scope, not
// found, forbidden, a token still refused after a refresh), or a token
// endpoint refusal such as invalid credentials.
func IsPermanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return !api.Retryable()
	}
	var tok *TokenError
	if errors.As(err, &tok) {
		return !tok.Retryable()
	}
	return false
}

// RetryAt returns when Zoom said a rate-limited request may be sent again, if
// err carries that time.
func RetryAt(err error) (time.Time, bool) {
	var rl *RateLimitError
	if errors.As(err, &rl) && !rl.RetryAt.IsZero() {
		return rl.RetryAt, true
	}
	var api *APIError
	if errors.As(err, &api) && !api.retryAt.IsZero() {
		return api.retryAt, true
	}
	return time.Time{}, false
}
