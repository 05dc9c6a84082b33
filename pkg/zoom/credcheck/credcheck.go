// Package credcheck checks a Zoom Server-to-Server OAuth app's credentials
// as Clarity's Validate button does: one token request, the scopes the
// token lists against what the connector needs, and one cheap API call.
// zoomctl validate and the admin console both use it.
package credcheck

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
	"time"

	"golang.org/x/oauth2"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Scope is one scope the connector needs. Zoom apps carry either classic
// scopes (user:read:admin) or, since 2024, granular ones
// (user:read:list_users:admin); a token may list either kind.
type Scope struct {
	// Scope is the classic scope, as Zoom's app page and the README's list
	// of required scopes name it.
	Scope string
	// Purpose says what the connector does with it.
	Purpose string
	// Classic are the classic scopes that grant it: a write scope includes
	// its read scope: Zoom grants every read to either.
	Classic []string
	// Granular are the granular scopes that, all together, stand for it:
	// exactly the operations the connector calls, not the whole classic
	// scope.
	Granular []string
}

// Required returns the scopes the connector needs. Reading users, groups
// (with their admins) and roles is what a full sync and a webhook re-read
// need; the write scopes are what deprovisioning from Clarity needs
// (deactivate or delete a user, take away a group, group-admin or role).
func Required() []Scope {
	return []Scope{
		{"user:read:admin", "list and read users (sync, webhook re-reads)",
			[]string{"user:read:admin", "user:write:admin"},
			[]string{"user:read:list_users:admin", "user:read:user:admin"}},
		{"group:read:admin", "list groups and their admins (sync)",
			[]string{"group:read:admin", "group:write:admin"},
			[]string{"group:read:list_groups:admin", "group:read:administrator:admin"}},
		{"role:read:admin", "list roles (sync)",
			[]string{"role:read:admin", "role:write:admin"},
			[]string{"role:read:list_roles:admin"}},
		{"user:write:admin", "deactivate and delete users (deprovisioning)",
			[]string{"user:write:admin"},
			[]string{"user:update:status:admin", "user:delete:user:admin"}},
		{"group:write:admin", "remove group members and group admins (deprovisioning)",
			[]string{"group:write:admin"},
			[]string{"group:delete:member:admin", "group:delete:administrator:admin"}},
		{"role:write:admin", "remove role members (deprovisioning)",
			[]string{"role:write:admin"},
			[]string{"role:delete:member:admin"}},
	}
}

// missing returns what the granted scopes lack for c: nil when c passes;
// otherwise the granular scopes to add when the app uses granular scopes,
// else the classic one.
func (c Scope) missing(granted map[string]bool, granularApp bool) []string {
	for _, s := range c.Classic {
		if granted[s] {
			return nil
		}
	}
	var lack []string
	for _, s := range c.Granular {
		if !granted[s] {
			lack = append(lack, s)
		}
	}
	if len(lack) == 0 {
		return nil
	}
	if granularApp {
		return lack
	}
	return []string{c.Scope}
}

// Result is the outcome of one scope's check: what it lacks, nil when it
// passes.
type Result struct {
	Scope
	Lack []string
}

// CheckScopes runs every check of Required against the scopes a token
// lists.
func CheckScopes(scopes []string) []Result {
	granted := map[string]bool{}
	granularApp := false
	for _, s := range scopes {
		granted[s] = true
		granularApp = granularApp || isGranular(s)
	}
	req := Required()
	res := make([]Result, len(req))
	for i, sc := range req {
		res[i] = Result{Scope: sc, Lack: sc.missing(granted, granularApp)}
	}
	return res
}

// isGranular reports whether s reads like a granular scope
// (<product>:<action>:<object>[:admin]) rather than a classic one
// (<product>:<action>[:admin]).
func isGranular(s string) bool {
	parts := strings.Split(s, ":")
	return len(parts) >= 4 || (len(parts) == 3 && parts[2] != "admin")
}

// Credentials are a Server-to-Server OAuth app's, and the Zoom they belong
// to.
type Credentials struct {
	AccountID, ClientID, ClientSecret string
	// OAuthURL and APIURL are Zoom's, without a trailing slash.
	OAuthURL, APIURL string
	// HTTPClient, when set, makes the requests.
	HTTPClient *http.Client
}

func (c Credentials) client() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// FetchToken asks the token endpoint for an account_credentials token. The
// pkg/zoom client does this too, but does not hand out the granted scopes,
// which are the point here. Neither the secret nor the token is ever in an
// error.
func FetchToken(ctx context.Context, c Credentials) (zoom.Token, error) {
	endpoint := c.OAuthURL + "/oauth/token"
	params := url.Values{"grant_type": {"account_credentials"}, "account_id": {c.AccountID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"?"+params, strings.NewReader(params))
	if err != nil {
		return zoom.Token{}, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := c.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the account id in its query; name the endpoint instead
		}
		return zoom.Token{}, fmt.Errorf("cannot reach Zoom at %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return zoom.Token{}, fmt.Errorf("cannot reach Zoom at %s: read answer: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return zoom.Token{}, tokenError(resp.StatusCode, body, c.ClientSecret)
	}
	var t zoom.Token
	if json.Unmarshal(body, &t) != nil || t.AccessToken == "" {
		return zoom.Token{}, &zoom.TokenError{StatusCode: resp.StatusCode,
			Reason: "the answer is not an access token; check ZOOM_OAUTH_URL (Zoom's is " + zoom.DefaultOAuthURL + ")"}
	}
	return t, nil
}

// tokenError reads the token endpoint's refusal, in Zoom's OAuth shape
// {"error","reason"} or its API shape {"code","message"}.
func tokenError(status int, body []byte, secret string) *zoom.TokenError {
	var b struct {
		Error       string `json:"error"`
		Reason      string `json:"reason"`
		Description string `json:"error_description"`
		Code        int    `json:"code"`
		Message     string `json:"message"`
	}
	e := &zoom.TokenError{StatusCode: status}
	if json.Unmarshal(body, &b) == nil {
		e.OAuthError, e.Code = b.Error, b.Code
		e.Reason = cmp.Or(b.Reason, b.Description, b.Message)
	} else {
		e.Reason = strings.Join(strings.Fields(string(body)), " ")
	}
	// An endpoint that echoes what it was sent must not make us print the
	// secret: redacted before the cut, which could leave part of it.
	if secret != "" {
		e.Reason = strings.ReplaceAll(e.Reason, secret, "[redacted]")
		e.OAuthError = strings.ReplaceAll(e.OAuthError, secret, "[redacted]")
	}
	e.Reason = pipeline.Bound(e.Reason, 200)
	e.OAuthError = pipeline.Bound(e.OAuthError, 64)
	return e
}

// errProbed stops the probe after its first page.
var errProbed = errors.New("probed")

// Probe lists the first active user, a page of one: the cheapest call that
// needs the scope a sync needs first.
func Probe(ctx context.Context, c Credentials, tok zoom.Token) error {
	client, err := zoom.New(zoom.Config{
		APIURL:   c.APIURL,
		OAuthURL: c.OAuthURL,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{
			AccessToken: tok.AccessToken, TokenType: cmp.Or(tok.TokenType, "bearer"),
		}),
		HTTPClient:       c.HTTPClient,
		PageSize:         1,
		DisablePacing:    true,
		MaxAttempts:      2,
		MaxRetryElapsed:  10 * time.Second,
		MaxRateLimitWait: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	err = client.Pages(ctx, zoom.UsersListing(zoom.UserStatusActive), func(zoom.RawPage) error { return errProbed })
	if err == nil || errors.Is(err, errProbed) {
		return nil
	}
	return err
}
