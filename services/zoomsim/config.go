package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// Config is zoomsim's configuration, read from the environment alone.
type Config struct {
	Addr   string // ZOOMSIM_ADDR, default ":9090"
	Seed   int64  // ZOOMSIM_SEED, default 1
	Users  int    // ZOOMSIM_USERS, default 5000
	Groups int    // ZOOMSIM_GROUPS, default Users/50
	Roles  int    // ZOOMSIM_ROLES, default 10 (the three default roles included)

	AccountID    string // ZOOM_ACCOUNT_ID, default "sim-account"
	ClientID     string // ZOOM_CLIENT_ID, default "sim-client"
	ClientSecret string // ZOOM_CLIENT_SECRET, default "sim-secret"

	WebhookURL    string // ZOOMSIM_WEBHOOK_URL, default none (no notifications)
	WebhookSecret string // ZOOM_WEBHOOK_SECRET_TOKEN, default none

	// RateLimits from ZOOMSIM_RATE_LIMITS, e.g. "light=30,medium=20,heavy=10";
	// default unlimited.
	RateLimits zoomtest.RateLimits
	// OmitRateLimitHeaders from ZOOMSIM_OMIT_RATE_LIMIT_HEADERS (true/false).
	OmitRateLimitHeaders bool
	// Scopes granted to tokens, space-separated in ZOOMSIM_SCOPES; default
	// the classic admin scopes of users, groups and roles.
	Scopes []string

	// Accounts are more accounts beside the default one, from
	// ZOOMSIM_ACCOUNTS: comma-separated "id" or "id:users" (default users:
	// ZOOMSIM_USERS). Each is generated from its own seed, and its
	// Server-to-Server credentials are "sim-client-<id>" and
	// "sim-secret-<id>".
	Accounts []AccountSpec
	// OAuth is the OAuth app registered on every account when
	// ZOOMSIM_OAUTH_REDIRECT_URIS is set; none otherwise.
	OAuth OAuthConfig

	// Token lifetimes: ZOOMSIM_TOKEN_TTL (access tokens, default 1h),
	// ZOOMSIM_REFRESH_TOKEN_TTL (default 90 days) and ZOOMSIM_CODE_TTL
	// (authorization codes, default 5m), as Go durations; zero keeps the
	// simulator's defaults.
	TokenTTL        time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration

	LogLevel  string // LOG_LEVEL, default "info"
	LogFormat string // LOG_FORMAT, "json" (default) or "console"
}

// AccountSpec is one account of ZOOMSIM_ACCOUNTS.
type AccountSpec struct {
	ID    string
	Users int
}

// OAuthConfig is the OAuth app (authorization code) zoomsim registers. On
// the default account its client id and secret are ClientID and
// ClientSecret; on each account of ZOOMSIM_ACCOUNTS they are suffixed with
// "-<account id>", client ids being unique across the simulator.
type OAuthConfig struct {
	ClientID     string   // ZOOMSIM_OAUTH_CLIENT_ID, default "sim-oauth-client"
	ClientSecret string   // ZOOMSIM_OAUTH_CLIENT_SECRET, default "sim-oauth-secret"
	RedirectURIs []string // ZOOMSIM_OAUTH_REDIRECT_URIS, space-separated, matched exactly
	// Consent, from ZOOMSIM_OAUTH_CONSENT, shows a consent page with
	// Authorize and Deny instead of approving at once.
	Consent bool
}

// loadConfig reads the configuration through lookup (os.LookupEnv in main,
// a map in tests). An invalid value is an error naming its variable.
func loadConfig(lookup func(string) (string, bool)) (Config, error) {
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := Config{
		Addr:          get("ZOOMSIM_ADDR", ":9090"),
		AccountID:     get("ZOOM_ACCOUNT_ID", zoomtest.DefaultAccountID),
		ClientID:      get("ZOOM_CLIENT_ID", zoomtest.DefaultClientID),
		ClientSecret:  get("ZOOM_CLIENT_SECRET", zoomtest.DefaultClientSecret),
		WebhookURL:    get("ZOOMSIM_WEBHOOK_URL", ""),
		WebhookSecret: get("ZOOM_WEBHOOK_SECRET_TOKEN", ""),
		LogLevel:      get("LOG_LEVEL", "info"),
		LogFormat:     get("LOG_FORMAT", "json"),
		Scopes:        strings.Fields(get("ZOOMSIM_SCOPES", strings.Join(zoomtest.DefaultScopes, " "))),
	}
	var err error
	if c.Seed, err = strconv.ParseInt(get("ZOOMSIM_SEED", "1"), 10, 64); err != nil {
		return c, fmt.Errorf("ZOOMSIM_SEED: %w", err)
	}
	ints := []struct {
		name string
		def  int
		dst  *int
		min  int
	}{
		{"ZOOMSIM_USERS", 5000, &c.Users, 1},
		{"ZOOMSIM_ROLES", 10, &c.Roles, 3},
	}
	for _, v := range ints {
		if *v.dst, err = atoiMin(get(v.name, strconv.Itoa(v.def)), v.min); err != nil {
			return c, fmt.Errorf("%s: %w", v.name, err)
		}
	}
	if c.Groups, err = atoiMin(get("ZOOMSIM_GROUPS", strconv.Itoa(c.Users/50)), 0); err != nil {
		return c, fmt.Errorf("ZOOMSIM_GROUPS: %w", err)
	}
	if c.RateLimits, err = parseRateLimits(get("ZOOMSIM_RATE_LIMITS", "")); err != nil {
		return c, fmt.Errorf("ZOOMSIM_RATE_LIMITS: %w", err)
	}
	if c.OmitRateLimitHeaders, err = strconv.ParseBool(get("ZOOMSIM_OMIT_RATE_LIMIT_HEADERS", "false")); err != nil {
		return c, fmt.Errorf("ZOOMSIM_OMIT_RATE_LIMIT_HEADERS: %w", err)
	}
	if c.Accounts, err = parseAccounts(get("ZOOMSIM_ACCOUNTS", ""), c.Users); err != nil {
		return c, fmt.Errorf("ZOOMSIM_ACCOUNTS: %w", err)
	}
	if uris := strings.Fields(get("ZOOMSIM_OAUTH_REDIRECT_URIS", "")); len(uris) > 0 {
		for _, u := range uris {
			if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
				return c, fmt.Errorf("ZOOMSIM_OAUTH_REDIRECT_URIS: %q is not an absolute URL", u)
			}
		}
		c.OAuth = OAuthConfig{
			ClientID:     get("ZOOMSIM_OAUTH_CLIENT_ID", "sim-oauth-client"),
			ClientSecret: get("ZOOMSIM_OAUTH_CLIENT_SECRET", "sim-oauth-secret"),
			RedirectURIs: uris,
		}
		if c.OAuth.Consent, err = strconv.ParseBool(get("ZOOMSIM_OAUTH_CONSENT", "false")); err != nil {
			return c, fmt.Errorf("ZOOMSIM_OAUTH_CONSENT: %w", err)
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{
		{"ZOOMSIM_TOKEN_TTL", &c.TokenTTL},
		{"ZOOMSIM_REFRESH_TOKEN_TTL", &c.RefreshTokenTTL},
		{"ZOOMSIM_CODE_TTL", &c.CodeTTL},
	} {
		v := get(d.name, "")
		if v == "" {
			continue
		}
		if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
			return c, fmt.Errorf("%s: %q is not a positive duration", d.name, v)
		}
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return c, fmt.Errorf("LOG_FORMAT: %q is neither json nor console", c.LogFormat)
	}
	return c, nil
}

func atoiMin(s string, min int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < min {
		return 0, fmt.Errorf("%d is below the minimum %d", n, min)
	}
	return n, nil
}

// parseRateLimits reads "light=30,medium=20,heavy=10"; missing labels are
// unlimited.
func parseRateLimits(s string) (zoomtest.RateLimits, error) {
	var rl zoomtest.RateLimits
	if s == "" {
		return rl, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return rl, fmt.Errorf("%q is not label=number", part)
		}
		n, err := atoiMin(strings.TrimSpace(val), 0)
		if err != nil {
			return rl, fmt.Errorf("%s: %w", name, err)
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "light":
			rl.Light = n
		case "medium":
			rl.Medium = n
		case "heavy":
			rl.Heavy = n
		default:
			return rl, fmt.Errorf("unknown label %q (want light, medium or heavy)", name)
		}
	}
	return rl, nil
}

// parseAccounts reads "acme:200,globex": account ids, each with an optional
// number of users (default users).
func parseAccounts(s string, users int) ([]AccountSpec, error) {
	if s == "" {
		return nil, nil
	}
	var out []AccountSpec
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		id, n, hasN := strings.Cut(strings.TrimSpace(part), ":")
		spec := AccountSpec{ID: strings.TrimSpace(id), Users: users}
		if spec.ID == "" || len(spec.ID) > 64 || strings.ContainsFunc(spec.ID, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) {
			return nil, fmt.Errorf("%q is not an account id (letters, digits, '-', '_' and '.', at most 64)", id)
		}
		if seen[spec.ID] {
			return nil, fmt.Errorf("account %q is listed twice", spec.ID)
		}
		seen[spec.ID] = true
		if hasN {
			var err error
			if spec.Users, err = atoiMin(strings.TrimSpace(n), 1); err != nil {
				return nil, fmt.Errorf("account %s: %w", spec.ID, err)
			}
		}
		out = append(out, spec)
	}
	return out, nil
}
