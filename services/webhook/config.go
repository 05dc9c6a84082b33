package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

// config is the webhook service's configuration, read from the environment.
// Its Common.HTTPAddr (WEBHOOK_OPS_ADDR) is the internal address of
// /healthz, /readyz, /metrics and the profiles, as every service has one;
// Addr (WEBHOOK_ADDR) is the public one Zoom calls, which serves the
// webhook routes, /healthz and /readyz only.
type config struct {
	service.Common
	// Connector is the default connector, whose notifications come to
	// POST /webhooks/zoom: CLARITY_TENANT and CONNECTOR_ID, validated.
	Connector pipeline.ConnectorRef
	// Addr is the public address.
	Addr string
	// Secret is the default connector's webhook secret token.
	Secret receiver.Secret
	// MaxConcurrent bounds the requests served at once on the public
	// address; more are shed with 503.
	MaxConcurrent int
	// MaxBody is the largest notification body accepted, in bytes.
	MaxBody int
	// Keys is CONNECTOR_SECRETS_KEY; nil when it is not set, and then the
	// registry's connectors are not served, nor the admin API and the
	// OAuth redirect.
	Keys *connector.Keyring
	// RedirectTemplate is OAUTH_REDIRECT_URL.
	RedirectTemplate string
	// OAuthURL and APIURL are Zoom's (ZOOM_OAUTH_URL, ZOOM_API_URL).
	OAuthURL, APIURL string
	// AdminAddr (ADMIN_ADDR) is the admin console's internal address;
	// empty serves none. AdminToken is what a person signs in with
	// (ADMIN_TOKEN, or the file ADMIN_TOKEN_FILE names); AdminURL
	// (ADMIN_URL, default http://ADMIN_ADDR) is where browsers reach the
	// console, linked from the OAuth redirect's pages.
	AdminAddr, AdminToken, AdminURL string
}

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 16

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:        service.ReadCommon(e, "WEBHOOK_OPS_ADDR", ":8084"),
		Addr:          e.String("WEBHOOK_ADDR", ":8080"),
		Secret:        receiver.Secret(e.String("ZOOM_WEBHOOK_SECRET_TOKEN", "")),
		MaxConcurrent: e.Int("WEBHOOK_MAX_CONCURRENT", receiver.MaxConcurrent),
		MaxBody:       e.Int("WEBHOOK_MAX_BODY", receiver.MaxBody),

		RedirectTemplate: e.String("OAUTH_REDIRECT_URL", connector.DefaultRedirectTemplate),
		OAuthURL:         e.URL("ZOOM_OAUTH_URL", zoom.DefaultOAuthURL),
		APIURL:           e.URL("ZOOM_API_URL", zoom.DefaultAPIURL),
	}
	if v := e.String("CONNECTOR_SECRETS_KEY", ""); v != "" {
		keys, err := connector.ParseKeyring(v)
		e.Check(err)
		c.Keys = keys
	}
	c.readAdmin(e)
	if !strings.Contains(c.RedirectTemplate, "{connector}") {
		e.Check(fmt.Errorf("OAUTH_REDIRECT_URL must contain {connector}, the service identifier Zoom's redirect names"))
	}
	// Each name is checked under its variable's name, so that the error
	// says which to fix; the connector is made below, once both are valid.
	e.Check(pipeline.CheckName("CLARITY_TENANT", c.Tenant))
	e.Check(pipeline.CheckName("CONNECTOR_ID", c.ConnectorID))
	if c.Addr == c.HTTPAddr {
		e.Check(fmt.Errorf("WEBHOOK_OPS_ADDR must differ from WEBHOOK_ADDR, got %q for both", c.Addr))
	}
	if c.MaxConcurrent < 1 {
		e.Check(fmt.Errorf("WEBHOOK_MAX_CONCURRENT must be at least 1, got %d", c.MaxConcurrent))
	}
	if c.MaxBody < 1 || c.MaxBody > receiver.MaxStorableBody {
		e.Check(fmt.Errorf("WEBHOOK_MAX_BODY must be between 1 and %d bytes, got %d", receiver.MaxStorableBody, c.MaxBody))
	}
	if err := e.Err(); err != nil {
		return c, err
	}
	ref, err := pipeline.NewConnectorRef(c.Tenant, c.ConnectorID)
	if err != nil {
		return c, err
	}
	c.Connector = ref
	return c, nil
}

// readAdmin reads the admin console's variables: with ADMIN_ADDR set, a
// token is required, and the registry's key.
func (c *config) readAdmin(e *service.Env) {
	c.AdminAddr = e.String("ADMIN_ADDR", "")
	if c.AdminAddr == "" {
		return
	}
	c.AdminToken = e.String("ADMIN_TOKEN", "")
	if f := e.String("ADMIN_TOKEN_FILE", ""); f != "" && c.AdminToken == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			e.Check(fmt.Errorf("ADMIN_TOKEN_FILE cannot be read: %v", errors.Unwrap(err)))
			return
		}
		c.AdminToken = strings.TrimSpace(string(b))
	}
	switch {
	case c.AdminToken == "":
		e.Check(errors.New("ADMIN_ADDR is set: ADMIN_TOKEN or ADMIN_TOKEN_FILE is required to sign in to the admin console"))
	case len(c.AdminToken) < minAdminToken:
		e.Check(fmt.Errorf("ADMIN_TOKEN must be at least %d characters", minAdminToken))
	}
	if c.Keys == nil && e.String("CONNECTOR_SECRETS_KEY", "") == "" {
		e.Check(errors.New("ADMIN_ADDR is set: the admin console needs CONNECTOR_SECRETS_KEY"))
	}
	def := "http://" + c.AdminAddr
	if strings.HasPrefix(c.AdminAddr, ":") {
		def = "http://localhost" + c.AdminAddr
	}
	c.AdminURL = strings.TrimRight(e.URL("ADMIN_URL", def), "/")
	if c.AdminAddr == c.Addr || c.AdminAddr == c.HTTPAddr {
		e.Check(fmt.Errorf("ADMIN_ADDR must differ from WEBHOOK_ADDR and WEBHOOK_OPS_ADDR, got %q", c.AdminAddr))
	}
}
