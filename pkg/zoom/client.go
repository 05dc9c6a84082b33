package zoom

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cenkalti/backoff/v4"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Defaults of Config.
const (
	DefaultAPIURL               = "https://api.zoom.us/v2"
	DefaultOAuthURL             = "https://zoom.us"
	DefaultPlan                 = PlanPro
	DefaultPaceShare            = 0.5
	DefaultPaceBurst            = 1
	DefaultPageSize             = 300
	DefaultTokenRefreshBefore   = 5 * time.Minute
	DefaultMaxAttempts          = 8
	DefaultMaxRetryElapsed      = 2 * time.Minute
	DefaultRetryInitialInterval = 500 * time.Millisecond
	DefaultRetryMaxInterval     = 30 * time.Second
	DefaultMaxRateLimitWait     = time.Minute
	DefaultMaxListingRestarts   = 3
	DefaultHTTPTimeout          = 30 * time.Second
)

// MaxListingRestartsLimit bounds Config.MaxListingRestarts: the passes of a
// listing are numbered within room for this many.
const MaxListingRestartsLimit = 100

// maxPageSize is the largest page_size every listing accepts. Zoom's 2026
// spec allows 2000 on /users but older documents say 300, and /groups and
// /groups/{groupId}/admins cap at 300.
const maxPageSize = 300

// maxBody caps what is read from one API answer; a page of 300 users is a few
// hundred kilobytes.
const maxBody = 64 << 20

const userAgent = "clarity-zoom-connector"

// Config configures a Client. Only the credentials are required; every other
// zero field takes its default.
type Config struct {
	// APIURL is the REST API base, default https://api.zoom.us/v2.
	APIURL string
	// OAuthURL is the OAuth host, default https://zoom.us; tokens come from
	// $OAuthURL/oauth/token.
	OAuthURL string

	// AccountID, ClientID and ClientSecret are the Server-to-Server OAuth
	// app's credentials. They are required unless TokenSource is set.
	AccountID    string
	ClientID     string
	ClientSecret string
	// TokenSource, when set, replaces the Server-to-Server token source (for
	// example with the tokens of an authorization-code grant). If it also
	// implements Invalidator, the client calls Invalidate when Zoom refuses
	// a token.
	TokenSource oauth2.TokenSource
	// TokenRefreshBefore is how long before its expiry a token is replaced,
	// default 5 minutes (at most half the token's lifetime).
	TokenRefreshBefore time.Duration

	// HTTPClient sends the requests, default an http.Client with a 30 s
	// timeout.
	HTTPClient *http.Client

	// Plan is the account's Zoom plan, which sets its rate limits; default
	// pro.
	Plan Plan
	// PaceShare is the share of the plan's per-second limit this client
	// allows itself in each category, default 0.5: the limit is shared by
	// every app on the account. It must be in (0, 1].
	PaceShare float64
	// PaceBurst is how many requests of one category may go at once before
	// pacing spaces them, default 1.
	PaceBurst int
	// DisablePacing turns client-side pacing off (benchmarks against a
	// simulator); 429s are still honoured.
	DisablePacing bool
	// Budget, when set, paces the client's requests instead of PaceShare:
	// the account's budget, shared with every client that reaches the
	// account. A request's priority comes from its context (WithPriority).
	Budget Budget

	// MaxAttempts bounds the attempts of one request, first one included,
	// default 8.
	MaxAttempts int
	// MaxRetryElapsed bounds the time one request may spend retrying,
	// default 2 minutes. A retry whose wait would overrun it is not made.
	MaxRetryElapsed time.Duration
	// RetryInitialInterval is the first wait of the exponential backoff
	// (with jitter) after 5xx, network failures and 429s that do not say when
	// to come back, default 500 ms.
	RetryInitialInterval time.Duration
	// RetryMaxInterval caps one backoff wait, default 30 s.
	RetryMaxInterval time.Duration
	// MaxRateLimitWait is the longest wait a 429 may impose before the client
	// fails fast with a *RateLimitError instead of sleeping, default 1
	// minute. A daily limit resets hours later.
	MaxRateLimitWait time.Duration

	// PageSize is the page_size of paged listings, default and maximum 300.
	PageSize int
	// MaxListingRestarts bounds how often one listing starts again from its
	// first page after Zoom rejected an expired next_page_token, default 3.
	MaxListingRestarts int

	// Observer, when set, is told of every request, wait and token refresh.
	Observer Observer
	// Logger receives retries and waits at debug and warn level; the zero
	// Logger logs nothing. Tokens and secrets are never logged.
	Logger zerolog.Logger
}

// String shows the configuration without the client secret.
func (cfg Config) String() string {
	secret := "<empty>"
	if cfg.ClientSecret != "" {
		secret = "[redacted]"
	}
	return fmt.Sprintf("zoom.Config{APIURL: %q, OAuthURL: %q, AccountID: %q, ClientID: %q, ClientSecret: %s, "+
		"Plan: %q, PaceShare: %g, DisablePacing: %t, MaxAttempts: %d, MaxRetryElapsed: %s, MaxRateLimitWait: %s, PageSize: %d}",
		cfg.APIURL, cfg.OAuthURL, cfg.AccountID, cfg.ClientID, secret,
		cfg.Plan, cfg.PaceShare, cfg.DisablePacing, cfg.MaxAttempts, cfg.MaxRetryElapsed, cfg.MaxRateLimitWait, cfg.PageSize)
}

// GoString keeps the secret out of %#v too.
func (cfg Config) GoString() string { return cfg.String() }

// withDefaults fills the zero fields and checks the rest.
func (cfg Config) withDefaults() (Config, error) {
	var problems []string
	if cfg.TokenSource == nil {
		var missing []string
		if cfg.AccountID == "" {
			missing = append(missing, "AccountID")
		}
		if cfg.ClientID == "" {
			missing = append(missing, "ClientID")
		}
		if cfg.ClientSecret == "" {
			missing = append(missing, "ClientSecret")
		}
		if len(missing) > 0 {
			problems = append(problems, "missing "+strings.Join(missing, ", ")+
				" (the Server-to-Server OAuth app's credentials)")
		}
	}
	cfg.APIURL = strings.TrimRight(cmp.Or(cfg.APIURL, DefaultAPIURL), "/")
	cfg.OAuthURL = strings.TrimRight(cmp.Or(cfg.OAuthURL, DefaultOAuthURL), "/")
	for _, u := range []struct{ name, value string }{{"APIURL", cfg.APIURL}, {"OAuthURL", cfg.OAuthURL}} {
		p, err := url.Parse(u.value)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			// The URL is not quoted: it may carry credentials.
			problems = append(problems, u.name+" is not an http(s) URL with a host")
		}
	}
	if cfg.Plan == "" {
		cfg.Plan = DefaultPlan
	}
	if p, err := ParsePlan(string(cfg.Plan)); err != nil {
		problems = append(problems, fmt.Sprintf("Plan %q is not free, pro or business", cfg.Plan))
	} else {
		cfg.Plan = p
	}
	if cfg.PaceShare == 0 {
		cfg.PaceShare = DefaultPaceShare
	}
	if cfg.PaceShare < 0 || cfg.PaceShare > 1 {
		problems = append(problems, fmt.Sprintf("PaceShare %g is not in (0, 1]", cfg.PaceShare))
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.PageSize < 0 || cfg.PageSize > maxPageSize {
		problems = append(problems, fmt.Sprintf("PageSize %d is not in [1, %d]", cfg.PageSize, maxPageSize))
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"PaceBurst", &cfg.PaceBurst, DefaultPaceBurst},
		{"MaxAttempts", &cfg.MaxAttempts, DefaultMaxAttempts},
		{"MaxListingRestarts", &cfg.MaxListingRestarts, DefaultMaxListingRestarts},
	} {
		if *n.v == 0 {
			*n.v = n.def
		}
		if *n.v < 0 {
			problems = append(problems, fmt.Sprintf("%s %d is negative", n.name, *n.v))
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"TokenRefreshBefore", &cfg.TokenRefreshBefore, DefaultTokenRefreshBefore},
		{"MaxRetryElapsed", &cfg.MaxRetryElapsed, DefaultMaxRetryElapsed},
		{"RetryInitialInterval", &cfg.RetryInitialInterval, DefaultRetryInitialInterval},
		{"RetryMaxInterval", &cfg.RetryMaxInterval, DefaultRetryMaxInterval},
		{"MaxRateLimitWait", &cfg.MaxRateLimitWait, DefaultMaxRateLimitWait},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			problems = append(problems, fmt.Sprintf("%s %s is negative", d.name, *d.v))
		}
	}
	if cfg.MaxListingRestarts > MaxListingRestartsLimit {
		problems = append(problems, fmt.Sprintf("MaxListingRestarts %d is over %d", cfg.MaxListingRestarts, MaxListingRestartsLimit))
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if len(problems) > 0 {
		return cfg, fmt.Errorf("zoom: config: %s", strings.Join(problems, "; "))
	}
	return cfg, nil
}

// Client calls the Zoom REST API: it gets and refreshes access tokens, paces
// requests under the account's rate limits, retries what can be retried and
// counts what it sends. It is safe for concurrent use.
type Client struct {
	cfg    Config
	http   *http.Client
	tokens tokenProvider
	pacer  *pacer
	count  *counter
	obs    Observer
	log    zerolog.Logger

	// now and sleep are the clock; tests replace them.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// New checks cfg, fills in its defaults and returns a client. It sends
// nothing: the first token is fetched with the first request.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:   cfg,
		http:  cfg.HTTPClient,
		count: newCounter(),
		obs:   cfg.Observer,
		log:   cfg.Logger,
		now:   time.Now,
		sleep: sleep,
	}
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	c.pacer = newPacer(cfg,
		func() time.Time { return c.now() },
		func(ctx context.Context, d time.Duration) error { return c.sleep(ctx, d) })
	if cfg.TokenSource != nil {
		c.tokens = staticTokens{src: cfg.TokenSource}
	} else {
		c.tokens = &s2sTokens{
			client:        c,
			endpoint:      cfg.OAuthURL + "/oauth/token",
			accountID:     cfg.AccountID,
			clientID:      cfg.ClientID,
			clientSecret:  cfg.ClientSecret,
			refreshBefore: cfg.TokenRefreshBefore,
		}
	}
	return c, nil
}

// String names the client without its credentials.
func (c *Client) String() string {
	return fmt.Sprintf("zoom.Client{APIURL: %s, AccountID: %s}", c.cfg.APIURL, c.cfg.AccountID)
}

// GoString keeps the credentials out of %#v too.
func (c *Client) GoString() string { return c.String() }

// Config returns the client's configuration with its defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// TokenSource returns the client's access tokens as an oauth2.TokenSource:
// the same cached token the client's own requests use.
func (c *Client) TokenSource() oauth2.TokenSource { return tokenSource{c.tokens} }

// Requests returns a snapshot of the requests sent so far.
func (c *Client) Requests() Stats { return c.count.snapshot() }

// GetUser returns the body of GET /users/{userId}, as Zoom sent it. userID is
// a Zoom user id or an email. When Zoom answers that the user does not exist
// (404 code 1001), the error matches ErrUserNotFound.
func (c *Client) GetUser(ctx context.Context, userID string) ([]byte, error) {
	if userID == "" {
		return nil, errors.New("zoom: get user: empty user id")
	}
	body, err := c.do(ctx, request{
		method:   http.MethodGet,
		endpoint: "/users/{userId}",
		path:     "/users/" + url.PathEscape(userID),
	})
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", userID, err)
	}
	return body, nil
}

// request is one API call: endpoint is the path template that names it in
// counts, errors and the category table; path is the real path.
type request struct {
	method   string
	endpoint string
	path     string
	query    url.Values
	// body, when not nil, is sent as the JSON body of a write request.
	body []byte
}

// do sends r until it succeeds, fails permanently or the retry budget runs
// out, and returns the answer's body.
func (c *Client) do(ctx context.Context, r request) ([]byte, error) {
	name := r.method + " " + r.endpoint
	cat := EndpointCategory(name)
	start := c.now()
	bo := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(c.cfg.RetryInitialInterval),
		backoff.WithMaxInterval(c.cfg.RetryMaxInterval),
		backoff.WithMaxElapsedTime(0), // the loop below keeps its own budget
	)
	refreshed := false
	for attempt := 1; ; attempt++ {
		body, used, err := c.send(ctx, r, name, cat)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if rl := (*RateLimitError)(nil); errors.As(err, &rl) {
			// Held back before sending: no retry ends the hold sooner.
			return nil, err
		}
		var api *APIError
		errors.As(err, &api)
		var wait time.Duration
		var reason WaitReason
		switch {
		case api != nil && api.tokenRejected():
			// Zoom refused the token (revoked, rotated, expired early): drop
			// it and try once with a new one. A second refusal is real.
			if refreshed {
				return nil, err
			}
			refreshed = true
			c.tokens.invalidate(used)
			c.count.add(func(s *Stats) { s.Retries++ })
			c.log.Debug().Str("endpoint", name).Int("status", api.StatusCode).Int("code", api.Code).
				Msg("zoom: access token refused, retrying with a new one")
			continue
		case api != nil && api.StatusCode == http.StatusTooManyRequests:
			reason = WaitRateLimit
			switch {
			case !api.retryAt.IsZero():
				wait = max(api.retryAt.Sub(c.now()), minRateLimitWait)
				if wait > c.cfg.MaxRateLimitWait {
					// The account's other clients must not spend requests
					// bound to fail either (a daily limit resets at midnight
					// UTC): the budget holds them back until then.
					c.pacer.tellBudget(cat, RateLimited{Until: api.retryAt, Daily: api.daily, Limit: api.limit})
					return nil, &RateLimitError{RetryAt: api.retryAt, Daily: api.daily, Wait: wait, Err: api,
						reason: fmt.Sprintf("that is longer than MaxRateLimitWait (%s), so the client does not wait", c.cfg.MaxRateLimitWait)}
				}
			case api.daily:
				// Zoom's daily limits reset at midnight UTC: the account's
				// other clients hold back until then.
				c.pacer.tellBudget(cat, RateLimited{Until: nextMidnightUTC(c.now()), Daily: true, Limit: api.limit})
				return nil, &RateLimitError{Daily: true, Err: api,
					reason: "Zoom did not say when it resets, and a daily limit is not worth waiting for"}
			default:
				wait = bo.NextBackOff()
			}
		case IsRetryable(err):
			reason = WaitBackoff
			wait = bo.NextBackOff()
		default:
			return nil, err
		}
		elapsed := c.now().Sub(start)
		if attempt >= c.cfg.MaxAttempts || elapsed+wait > c.cfg.MaxRetryElapsed {
			return nil, fmt.Errorf("giving up after %s in %s: %w", plural(attempt, "attempt"), elapsed.Round(time.Millisecond), err)
		}
		if reason == WaitRateLimit {
			// The limit is the account's, not this request's: hold the whole
			// category so that concurrent requests do not hit it too.
			c.pacer.holdUntil(cat, RateLimited{Until: c.now().Add(wait), Daily: api.daily, Limit: api.limit})
			c.log.Warn().Str("endpoint", name).Int("attempt", attempt).Dur("wait", wait).Bool("daily", api.daily).
				Msg("zoom: rate limited, waiting")
		} else {
			c.log.Debug().Err(err).Str("endpoint", name).Int("attempt", attempt).Dur("wait", wait).
				Msg("zoom: request failed, retrying")
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("zoom: %s: waiting %s to retry: %w (after: %v)", name, wait, serr, err)
		}
		c.count.add(func(s *Stats) { s.Waited += wait; s.Retries++ })
		c.obs.Waited(name, reason, wait)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// minRateLimitWait is the least wait after a 429 whose announced reset has
// already passed on our clock (clock skew, second-granular headers).
const minRateLimitWait = 100 * time.Millisecond

// send makes one attempt: pace, get a token, send, read. It returns the body
// of a 2xx answer, or an *APIError, and the access token it used.
func (c *Client) send(ctx context.Context, r request, name string, cat Category) ([]byte, string, error) {
	waited, err := c.pacer.wait(ctx, cat)
	// Below a millisecond the limiter did not hold the request back; the
	// measure is only the cost of asking it.
	if waited >= time.Millisecond {
		c.count.add(func(s *Stats) { s.Paced += waited })
		c.obs.Waited(name, WaitPacing, waited)
	}
	if held := (*HoldError)(nil); errors.As(err, &held) {
		method, endpoint, _ := strings.Cut(name, " ")
		return nil, "", &RateLimitError{RetryAt: held.Until, Daily: held.Daily, Wait: held.Until.Sub(c.now()),
			Err: &APIError{StatusCode: http.StatusTooManyRequests, Code: http.StatusTooManyRequests, Method: method, Endpoint: endpoint,
				Message: "not sent: an earlier 429 holds the account's requests of this category back"},
			reason: fmt.Sprintf("that is longer than MaxRateLimitWait (%s), so the client does not wait", c.cfg.MaxRateLimitWait)}
	}
	if err != nil {
		return nil, "", fmt.Errorf("zoom: %s: pacing: %w", name, err)
	}
	tok, err := c.tokens.token(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("access token for %s: %w", name, err)
	}
	u := c.cfg.APIURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var payload io.Reader
	if r.body != nil {
		payload = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, payload)
	if err != nil {
		return nil, "", fmt.Errorf("zoom: %s: %w", name, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok.SetAuthHeader(req)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.done(name, 0, time.Since(start))
		if ctx.Err() != nil {
			return nil, tok.AccessToken, fmt.Errorf("zoom: %s: %w", name, ctx.Err())
		}
		return nil, tok.AccessToken, &transportError{fmt.Errorf("zoom: %s: %w", name, redactURLError(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	c.done(name, resp.StatusCode, time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			return nil, tok.AccessToken, fmt.Errorf("zoom: %s: %w", name, ctx.Err())
		}
		return nil, tok.AccessToken, &transportError{fmt.Errorf("zoom: %s: read answer: %w", name, err)}
	}
	if len(body) > maxBody {
		return nil, tok.AccessToken, fmt.Errorf("zoom: %s: answer larger than %d bytes", name, maxBody)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, tok.AccessToken, nil
	}
	return nil, tok.AccessToken, c.apiError(r, resp, body)
}

// done counts one HTTP request and tells the observer.
func (c *Client) done(endpoint string, status int, d time.Duration) {
	c.count.request(endpoint, status)
	c.obs.RequestDone(endpoint, status, d)
}

// apiError reads Zoom's error body and, for a 429, when the limit ends.
func (c *Client) apiError(r request, resp *http.Response, body []byte) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, Method: r.method, Endpoint: r.endpoint}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Code, quoted(eb.Message)
	} else {
		e.Message = snippet(body)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.retryAt, _ = rateLimitReset(resp.Header, c.now())
		e.daily = isDailyLimit(resp.Header, e.Message)
		e.limit = rateLimitHeaderLimit(resp.Header)
	}
	return e
}

// snippet is the start of a body that is not JSON (an HTML error page from a
// proxy), on one line and valid UTF-8, for an error message.
func snippet(body []byte) string {
	const n = 200
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "\uFFFD")), " ")
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
