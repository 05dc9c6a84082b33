package main

import (
	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

// config is the webhook service's configuration, read from the environment.
// WEBHOOK_ADDR serves both the webhook routes and /healthz, /readyz and
// /metrics.
type config struct {
	service.Common
	// Secret is the default connector's webhook secret token.
	Secret receiver.Secret
}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common: service.ReadCommon(e, "WEBHOOK_ADDR", ":8080"),
		Secret: receiver.Secret(e.Required("ZOOM_WEBHOOK_SECRET_TOKEN")),
	}
	e.Check(clarity.CheckToken("CLARITY_TENANT", c.Tenant))
	e.Check(clarity.CheckToken("CONNECTOR_ID", c.ConnectorID))
	return c, e.Err()
}
