package main

import (
	"fmt"
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
}

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
