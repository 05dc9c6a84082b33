package main

import (
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// config is the fetcher's configuration, read from the environment.
type config struct {
	service.Common
	// Connector is the connector the fetcher serves: CLARITY_TENANT and
	// CONNECTOR_ID, validated.
	Connector      pipeline.ConnectorRef
	Zoom           zoom.Config
	Concurrency    int
	MaxAttempts    int
	HintWorkers    int
	SyncInterval   time.Duration
	TriggerAckWait time.Duration
}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:         service.ReadCommon(e, "FETCHER_ADDR", ":8081"),
		Concurrency:    e.Int("FETCH_CONCURRENCY", 4),
		MaxAttempts:    e.Int("MAX_RUN_ATTEMPTS", 3),
		HintWorkers:    e.Int("HINT_CONCURRENCY", 4),
		SyncInterval:   e.Duration("SYNC_INTERVAL", 24*time.Hour),
		TriggerAckWait: e.Duration("TRIGGER_ACK_WAIT", 30*time.Second),
	}
	plan, err := zoom.ParsePlan(e.String("ZOOM_PLAN", "pro"))
	e.Check(err)
	c.Zoom = zoom.Config{
		APIURL:        e.URL("ZOOM_API_URL", "https://api.zoom.us/v2"),
		OAuthURL:      e.URL("ZOOM_OAUTH_URL", "https://zoom.us"),
		AccountID:     e.Required("ZOOM_ACCOUNT_ID"),
		ClientID:      e.Required("ZOOM_CLIENT_ID"),
		ClientSecret:  e.Required("ZOOM_CLIENT_SECRET"),
		Plan:          plan,
		PaceShare:     e.Float("ZOOM_RATE_SHARE", 0.5),
		DisablePacing: !e.Bool("ZOOM_PACING", true),
	}
	// Each name is checked under its variable's name, so that the error
	// says which to fix; the connector is made once both are valid.
	e.Check(pipeline.CheckName("CLARITY_TENANT", c.Tenant))
	e.Check(pipeline.CheckName("CONNECTOR_ID", c.ConnectorID))
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
