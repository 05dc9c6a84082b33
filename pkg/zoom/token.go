package zoom

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// defaultTokenTTL is assumed when the token endpoint leaves out expires_in:
// Zoom documents a one-hour lifetime for Server-to-Server tokens.
const defaultTokenTTL = time.Hour

// maxTokenBody caps what is read from the token endpoint.
const maxTokenBody = 1 << 20

// tokenProvider is what the request loop needs from a token source: a token,
// and a way to drop one that Zoom refused.
type tokenProvider interface {
	token(ctx context.Context) (*oauth2.Token, error)
	invalidate(stale string)
}

// Invalidator may be implemented by a Config.TokenSource that caches tokens:
// the client calls Invalidate with the access token Zoom refused (401 or
// code 124), so that the next Token call gives another one. Only that token
// is dropped: one a concurrent refresh put in its place stays good.
type Invalidator interface {
	Invalidate(refused string)
}

// s2sTokens is the Server-to-Server OAuth (account_credentials) token source.
// All callers share one cached token; when it comes within refreshBefore of
// its expiry, the first caller fetches a new one while the others wait for
// that same fetch instead of sending their own.
type s2sTokens struct {
	client        *Client
	endpoint      string
	accountID     string
	clientID      string
	clientSecret  string
	refreshBefore time.Duration

	mu        sync.Mutex
	tok       *oauth2.Token
	refreshAt time.Time
	inflight  *tokenCall
}

// tokenCall is one fetch that concurrent callers wait for.
type tokenCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

// String never shows the secret or the token.
func (s *s2sTokens) String() string {
	return fmt.Sprintf("zoom.s2sTokens{endpoint: %s, account: %s}", s.endpoint, s.accountID)
}

func (s *s2sTokens) token(ctx context.Context) (*oauth2.Token, error) {
	for {
		s.mu.Lock()
		now := s.client.now()
		if s.tok != nil && now.Before(s.refreshAt) {
			t := s.tok
			s.mu.Unlock()
			return t, nil
		}
		if call := s.inflight; call != nil {
			s.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The fetch ran under the context of the caller that started it;
			// if that caller gave up, this one tries for itself.
			if isContextError(call.err) && ctx.Err() == nil {
				continue
			}
			return call.tok, call.err
		}
		call := &tokenCall{done: make(chan struct{})}
		s.inflight = call
		old := s.tok
		s.mu.Unlock()

		tok, refreshAt, err := s.fetch(ctx)

		s.mu.Lock()
		switch {
		case err == nil:
			s.tok, s.refreshAt = tok, refreshAt
		case old != nil && IsRetryable(err) && s.client.now().Before(old.Expiry):
			// The token endpoint is down but the token we have is still good
			// for a few minutes: keep using it rather than fail requests that
			// would succeed. The next call tries to refresh again.
			s.client.log.Warn().Err(err).Msg("zoom: token refresh failed, using the current token until it expires")
			tok, err = old, nil
		}
		s.inflight = nil
		call.tok, call.err = tok, err
		close(call.done)
		s.mu.Unlock()
		return tok, err
	}
}

func (s *s2sTokens) invalidate(stale string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only the token that was refused is dropped: when several requests are
	// refused together, the first one's refresh serves them all.
	if s.tok != nil && s.tok.AccessToken == stale {
		s.tok = nil
	}
}

// fetch asks the token endpoint for a new token.
func (s *s2sTokens) fetch(ctx context.Context) (*oauth2.Token, time.Time, error) {
	start := time.Now()
	tok, refreshAt, err := s.request(ctx)
	d := time.Since(start)
	s.client.obs.TokenRefreshed(d, err)
	if err == nil {
		s.client.log.Debug().Dur("took", d).Time("expiry", tok.Expiry).Msg("zoom: access token fetched")
	}
	return tok, refreshAt, err
}

func (s *s2sTokens) request(ctx context.Context) (*oauth2.Token, time.Time, error) {
	params := url.Values{"grant_type": {"account_credentials"}, "account_id": {s.accountID}}.Encode()
	// Zoom documents the parameters in the query string and also accepts them
	// as a form body, as RFC 6749 wants; sending both satisfies either reading
	// of the endpoint (Zoom's own and any standard OAuth server).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+"?"+params, strings.NewReader(params))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("zoom: %s: %w", tokenEndpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.clientID, s.clientSecret)

	sent := s.client.now()
	start := time.Now()
	resp, err := s.client.http.Do(req)
	if err != nil {
		s.client.done(tokenEndpoint, 0, time.Since(start))
		if ctx.Err() != nil {
			return nil, time.Time{}, ctx.Err()
		}
		return nil, time.Time{}, &transportError{fmt.Errorf("zoom: %s: %w", tokenEndpoint, redactURLError(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	s.client.done(tokenEndpoint, resp.StatusCode, time.Since(start))
	if err != nil {
		return nil, time.Time{}, &transportError{fmt.Errorf("zoom: %s: read answer: %w", tokenEndpoint, err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, time.Time{}, newTokenError(resp.StatusCode, body, s.clientSecret)
	}
	var t Token
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, time.Time{}, &TokenError{StatusCode: resp.StatusCode, Reason: "answer is not a JSON token"}
	}
	if t.AccessToken == "" {
		return nil, time.Time{}, &TokenError{StatusCode: resp.StatusCode, Reason: "answer has no access_token"}
	}
	ttl := time.Duration(t.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = defaultTokenTTL
	}
	// Refresh ahead of expiry so that no request carries a token that expires
	// on its way; for short-lived tokens (a simulator) the margin shrinks to
	// half the lifetime so that a token is still used for a while.
	margin := min(s.refreshBefore, ttl/2)
	tokenType := t.TokenType
	if tokenType == "" {
		tokenType = "bearer"
	}
	tok := &oauth2.Token{AccessToken: t.AccessToken, TokenType: tokenType, Expiry: sent.Add(ttl)}
	return tok, tok.Expiry.Add(-margin), nil
}

// newTokenError reads the token endpoint's refusal. Zoom answers in the OAuth
// shape {"reason","error"} and sometimes in its API shape {"code","message"};
// both are read.
func newTokenError(status int, body []byte, secret string) *TokenError {
	var b struct {
		Error       string `json:"error"`
		Reason      string `json:"reason"`
		Description string `json:"error_description"`
		Code        int    `json:"code"`
		Message     string `json:"message"`
	}
	e := &TokenError{StatusCode: status}
	if json.Unmarshal(body, &b) == nil {
		e.OAuthError = b.Error
		e.Code = b.Code
		e.Reason = cmp.Or(b.Reason, b.Description, b.Message)
	} else {
		// The secret goes before the cut, which could leave part of it.
		e.Reason = snippet([]byte(scrub(string(body), secret)))
	}
	e.Reason = quoted(scrub(e.Reason, secret))
	e.OAuthError = quoted(scrub(e.OAuthError, secret))
	return e
}

// scrub removes a secret from text an endpoint sent back, in case it echoes
// what it was given.
func scrub(text, secret string) string {
	if secret == "" || text == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "[redacted]")
}

// redactURLError drops the query string from a *url.Error, so that nothing
// sent as a parameter ends up in an error message.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return &url.Error{Op: ue.Op, URL: u, Err: ue.Err}
	}
	return err
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// staticTokens adapts a caller's oauth2.TokenSource (Config.TokenSource).
type staticTokens struct {
	src oauth2.TokenSource
}

func (s staticTokens) token(ctx context.Context) (*oauth2.Token, error) {
	// oauth2.TokenSource takes no context; honour ours at least before the
	// call.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := s.src.Token()
	if err != nil {
		return nil, fmt.Errorf("zoom: token source: %w", err)
	}
	return t, nil
}

func (s staticTokens) invalidate(stale string) {
	if inv, ok := s.src.(Invalidator); ok {
		inv.Invalidate(stale)
	}
}

// tokenSource exposes the client's tokens as an oauth2.TokenSource.
type tokenSource struct {
	p tokenProvider
}

func (t tokenSource) Token() (*oauth2.Token, error) {
	return t.p.token(context.Background())
}
