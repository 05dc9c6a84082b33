package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// scopeCheck is one scope the connector needs. Zoom apps carry either
// classic scopes (user:read:admin) or, since 2024, granular ones
// (user:read:list_users:admin); a token may list either kind.
type scopeCheck struct {
	// scope is the classic scope, as Zoom's app page and the README's list
	// of required scopes name it.
	scope string
	// purpose says what the connector does with it.
	purpose string
	// classic are the classic scopes that grant it: a write scope includes
	// its read scope, as Zoom's API reference lists both for every read.
	classic []string
	// granular are the granular scopes that, all together, stand for it:
	// exactly the operations the connector calls, not the whole classic scope.
	granular []string
}

// requiredScopes are the checks of zoomctl validate. Reading users, groups
// (with their admins) and roles is what a full sync and a webhook re-read
// need; the write scopes are what deprovisioning from Clarity needs
// (deactivate or delete a user, take away a group, group-admin or role).
var requiredScopes = []scopeCheck{
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

// missing returns what the granted scopes lack for c: nil when c passes;
// otherwise the granular scopes to add when the app uses granular scopes,
// else the classic one.
func (c scopeCheck) missing(granted map[string]bool, granularApp bool) []string {
	for _, s := range c.classic {
		if granted[s] {
			return nil
		}
	}
	var lack []string
	for _, s := range c.granular {
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
	return []string{c.scope}
}

// scopeResult is the outcome of one check: what it lacks, nil when it passes.
type scopeResult struct {
	scopeCheck
	lack []string
}

// checkScopes runs every check of requiredScopes against the scopes a token
// lists.
func checkScopes(scopes []string) []scopeResult {
	granted := map[string]bool{}
	granularApp := false
	for _, s := range scopes {
		granted[s] = true
		granularApp = granularApp || isGranular(s)
	}
	res := make([]scopeResult, len(requiredScopes))
	for i, sc := range requiredScopes {
		res[i] = scopeResult{scopeCheck: sc, lack: sc.missing(granted, granularApp)}
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

func runValidate(ctx context.Context, args []string, out, errw io.Writer) int {
	// The credentials come from the environment, like the services'; no
	// tenant or connector flags, which would suggest otherwise.
	fs := flag.NewFlagSet("zoomctl validate", flag.ContinueOnError)
	fs.SetOutput(errw)
	timeout := fs.Duration("timeout", 30*time.Second, "give up on Zoom after this long (exit 3)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: zoomctl validate [--timeout 30s]")
		fmt.Fprintln(fs.Output(), "\nChecks the connector's Zoom credentials, as Clarity's Validate button does: gets an")
		fmt.Fprintln(fs.Output(), "access token, checks its scopes against what the connector needs, and makes one")
		fmt.Fprintln(fs.Output(), "cheap API call (GET /users?page_size=1). Exit 0 when all pass, 1 when a scope is")
		fmt.Fprintln(fs.Output(), "missing or Zoom refuses, 2 on bad configuration, 3 when Zoom cannot be reached.")
		fmt.Fprintln(fs.Output(), "\nEnvironment: ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET (required),")
		fmt.Fprintf(fs.Output(), "ZOOM_OAUTH_URL (default %s), ZOOM_API_URL (default %s).\n\n", zoom.DefaultOAuthURL, zoom.DefaultAPIURL)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	creds := validateConfig{
		accountID:    strings.TrimSpace(os.Getenv("ZOOM_ACCOUNT_ID")),
		clientID:     strings.TrimSpace(os.Getenv("ZOOM_CLIENT_ID")),
		clientSecret: strings.TrimSpace(os.Getenv("ZOOM_CLIENT_SECRET")),
		oauthURL:     strings.TrimRight(envOr("ZOOM_OAUTH_URL", zoom.DefaultOAuthURL), "/"),
		apiURL:       strings.TrimRight(envOr("ZOOM_API_URL", zoom.DefaultAPIURL), "/"),
	}
	if err := creds.check(); err != nil {
		return fail(errw, ExitUsage, "validate: %v", err)
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	return validate(ctx, creds, out, errw)
}

// validateConfig is the connector's Zoom configuration.
type validateConfig struct {
	accountID, clientID, clientSecret string
	oauthURL, apiURL                  string
}

func (c validateConfig) check() error {
	var missing []string
	for _, v := range []struct{ name, value string }{
		{"ZOOM_ACCOUNT_ID", c.accountID}, {"ZOOM_CLIENT_ID", c.clientID}, {"ZOOM_CLIENT_SECRET", c.clientSecret},
	} {
		if v.value == "" {
			missing = append(missing, v.name)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return fmt.Errorf("%s is required (a credential of the Server-to-Server OAuth app)", missing[0])
	default:
		return fmt.Errorf("%s are required (the Server-to-Server OAuth app's credentials)", strings.Join(missing, ", "))
	}
	for _, u := range []struct{ name, value string }{{"ZOOM_OAUTH_URL", c.oauthURL}, {"ZOOM_API_URL", c.apiURL}} {
		p, err := url.Parse(u.value)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			// The URL is not quoted: it may carry credentials.
			return fmt.Errorf("%s is not an http(s) URL with a host", u.name)
		}
	}
	return nil
}

// configNames turns the pkg/zoom configuration names in token hints into
// the environment variables an operator sets.
var configNames = strings.NewReplacer(
	"the Account ID, Client ID and Client secret", "ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET",
	"the Client ID and Client secret", "ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET",
	"the Account ID", "ZOOM_ACCOUNT_ID")

// checkLine prints one check as "  ok       what  detail".
func checkLine(out io.Writer, state, what, detail string) {
	fmt.Fprintf(out, "  %-8s %-18s %s\n", state, what, detail)
}

func validate(ctx context.Context, c validateConfig, out, errw io.Writer) int {
	fmt.Fprintf(out, "Zoom account %s (client %s), token endpoint %s/oauth/token, API %s\n",
		c.accountID, c.clientID, c.oauthURL, c.apiURL)

	// 1. One token request: the credentials, and the scopes the token holds.
	tok, err := fetchToken(ctx, c)
	if err != nil {
		var te *zoom.TokenError
		if errors.As(err, &te) && !te.Retryable() {
			checkLine(out, "failed", "credentials", "Zoom refused them")
			// The client's hints name its Config fields; here they are variables.
			return fail(errw, ExitFailed, "validate: %s", configNames.Replace(err.Error()))
		}
		checkLine(out, "failed", "credentials", "Zoom's token endpoint did not answer")
		return fail(errw, ExitError, "validate: %v", err)
	}
	scopes := strings.Fields(tok.Scope)
	checkLine(out, "ok", "credentials", fmt.Sprintf("access token issued, %d scopes", len(scopes)))

	// 2. The scopes, from the token's own list.
	var missing []string
	for _, r := range checkScopes(scopes) {
		switch {
		case len(scopes) == 0:
			checkLine(out, "unknown", r.scope, r.purpose+"; the token lists no scopes")
		case r.lack == nil:
			checkLine(out, "ok", r.scope, r.purpose)
		default:
			checkLine(out, "missing", r.scope, r.purpose+"; add "+strings.Join(r.lack, ", "))
			missing = append(missing, r.lack...)
		}
	}

	// 3. One cheap call that proves the token opens the API.
	apiErr := probeAPI(ctx, c, tok)
	var api *zoom.APIError
	switch {
	case apiErr == nil:
		checkLine(out, "ok", "GET /users", "the API answers with this token")
	case errors.As(apiErr, &api) && !zoom.IsRetryable(apiErr):
		checkLine(out, "refused", "GET /users", api.Error())
	default:
		checkLine(out, "failed", "GET /users", "the API did not answer (unreachable, unavailable or rate limited)")
		return fail(errw, ExitError, "validate: %v", apiErr)
	}

	switch {
	case len(scopes) == 0:
		return fail(errw, ExitFailed, "validate: the token endpoint did not list the token's scopes; check them on the app's Scopes page")
	case len(missing) > 0:
		// A refusal of the probe is listed above; the missing scopes explain it.
		return fail(errw, ExitFailed, "validate: missing scopes: %s (add them on the Server-to-Server OAuth app's Scopes page in the Zoom App Marketplace)",
			strings.Join(missing, ", "))
	case api != nil:
		return fail(errw, ExitFailed, "validate: %v%s", api, apiHint(api))
	}
	fmt.Fprintln(out, "all checks passed")
	return ExitOK
}

// apiHint says what to change for a refusal of the probe call.
func apiHint(e *zoom.APIError) string {
	switch {
	case e.Code == 4711 || e.Code == 4700:
		return " (the app lacks a scope Zoom names: add it on the app's Scopes page)"
	case e.Code == zoom.CodeInvalidToken || e.StatusCode == http.StatusUnauthorized:
		return " (Zoom refused a token it just issued: check that ZOOM_API_URL belongs to the same Zoom as ZOOM_OAUTH_URL and that the app is activated)"
	case e.StatusCode == http.StatusForbidden:
		return " (the account or app may not use this API: check the app is activated and the account's plan)"
	case e.StatusCode == http.StatusNotFound:
		return " (check ZOOM_API_URL: it should end in /v2)"
	}
	return ""
}

// fetchToken asks the token endpoint for an account_credentials token. The
// pkg/zoom client does this too, but does not hand out the granted scopes,
// which are the point here. Neither the secret nor the token is ever printed.
func fetchToken(ctx context.Context, c validateConfig) (zoom.Token, error) {
	endpoint := c.oauthURL + "/oauth/token"
	params := url.Values{"grant_type": {"account_credentials"}, "account_id": {c.accountID}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"?"+params, strings.NewReader(params))
	if err != nil {
		return zoom.Token{}, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(c.clientID, c.clientSecret)
	resp, err := http.DefaultClient.Do(req)
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
		return zoom.Token{}, tokenError(resp.StatusCode, body, c.clientSecret)
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
		if len(e.Reason) > 200 {
			e.Reason = e.Reason[:200] + "…"
		}
	}
	// An endpoint that echoes what it was sent must not make us print the secret.
	e.Reason = strings.ReplaceAll(e.Reason, secret, "[redacted]")
	e.OAuthError = strings.ReplaceAll(e.OAuthError, secret, "[redacted]")
	return e
}

// errProbed stops the probe after its first page.
var errProbed = errors.New("probed")

// probeAPI lists the first active user, a page of one: the cheapest call
// that needs the scope a sync needs first.
func probeAPI(ctx context.Context, c validateConfig, tok zoom.Token) error {
	client, err := zoom.New(zoom.Config{
		APIURL:   c.apiURL,
		OAuthURL: c.oauthURL,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{
			AccessToken: tok.AccessToken, TokenType: cmp.Or(tok.TokenType, "bearer"),
		}),
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
