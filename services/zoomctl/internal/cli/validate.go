package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/credcheck"
)

// scopeResult is the outcome of one scope's check, as validate prints it:
// what it lacks, nil when it passes.
type scopeResult struct {
	scope, purpose string
	lack           []string
}

// checkScopes runs credcheck's checks against the scopes a token lists.
func checkScopes(scopes []string) []scopeResult {
	var out []scopeResult
	for _, r := range credcheck.CheckScopes(scopes) {
		out = append(out, scopeResult{scope: r.Scope.Scope, purpose: r.Purpose, lack: r.Lack})
	}
	return out
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
	tok, err := credcheck.FetchToken(ctx, c.credentials())
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
	apiErr := credcheck.Probe(ctx, c.credentials(), tok)
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

// credentials are the configuration as credcheck takes it.
func (c validateConfig) credentials() credcheck.Credentials {
	return credcheck.Credentials{AccountID: c.accountID, ClientID: c.clientID, ClientSecret: c.clientSecret,
		OAuthURL: c.oauthURL, APIURL: c.apiURL}
}
