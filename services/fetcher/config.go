package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// config is the fetcher's configuration, read from the environment.
type config struct {
	service.Common
	// Connector is the connector the environment defines: CLARITY_TENANT
	// and CONNECTOR_ID, validated, with the Server-to-Server credentials
	// of Zoom. Zero when the credentials are not set: the fetcher then
	// serves the registry's connectors alone.
	Connector pipeline.ConnectorRef
	// Zoom is the environment connector's client configuration; without
	// its credentials, what every registered connector's client shares.
	Zoom zoom.Config
	// Keys opens the registered connectors' secrets
	// (CONNECTOR_SECRETS_KEY); nil when the key is not set, and then no
	// registered connector is served.
	Keys *connector.Keyring
	// Concurrency (FETCH_CONCURRENCY) bounds the listings of one run
	// walked at once; SyncWorkers (SYNC_CONCURRENCY) the runs, of
	// different connectors, this replica serves at once; MaxAttempts
	// (MAX_RUN_ATTEMPTS) the fetches of one run.
	Concurrency    int
	SyncWorkers    int
	MaxAttempts    int
	HintWorkers    int
	SyncInterval   time.Duration
	TriggerAckWait time.Duration
	// SharedBudget draws every Zoom request on one budget per account,
	// shared by the replicas through NATS (ZOOM_SHARED_BUDGET, default
	// true); BudgetReplicas is how many replicas share it, which sets the
	// conservative share each takes while NATS cannot be reached
	// (ZOOM_BUDGET_REPLICAS, default 3).
	SharedBudget   bool
	BudgetReplicas int
	// HintQuiet and HintMaxWait bound a connector's batch of re-read
	// hints (HINT_BATCH_QUIET, HINT_BATCH_MAX_WAIT); HintWorkers
	// (HINT_CONCURRENCY) bounds the hints waiting at once, and so a batch.
	HintQuiet, HintMaxWait time.Duration
	// Enrich turns enrichment on for the environment's connector
	// (ZOOM_ENRICH, default false); a registered connector has its own.
	// EnrichWorkers (ENRICH_CONCURRENCY) bounds the users whose details
	// wait to be read at once.
	Enrich        bool
	EnrichWorkers int
}

// credentialVars are the environment connector's credentials: all three,
// or none.
var credentialVars = []string{"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"}

func readConfig(e *service.Env) (config, error) {
	c := config{
		Common:         service.ReadCommon(e, "FETCHER_ADDR", ":8081"),
		Concurrency:    e.Int("FETCH_CONCURRENCY", 4),
		SyncWorkers:    e.Int("SYNC_CONCURRENCY", 4),
		MaxAttempts:    e.Int("MAX_RUN_ATTEMPTS", 3),
		HintWorkers:    e.Int("HINT_CONCURRENCY", 5000),
		HintQuiet:      e.Duration("HINT_BATCH_QUIET", runner.DefaultHintQuiet),
		HintMaxWait:    e.Duration("HINT_BATCH_MAX_WAIT", runner.DefaultHintMaxWait),
		SyncInterval:   e.Duration("SYNC_INTERVAL", 24*time.Hour),
		TriggerAckWait: e.Duration("TRIGGER_ACK_WAIT", 30*time.Second),
		SharedBudget:   e.Bool("ZOOM_SHARED_BUDGET", true),
		BudgetReplicas: e.Int("ZOOM_BUDGET_REPLICAS", ratebudget.DefaultExpectedReplicas),
		Enrich:         e.Bool("ZOOM_ENRICH", false),
		EnrichWorkers:  e.Int("ENRICH_CONCURRENCY", 64),
	}
	for _, v := range []struct {
		name string
		n    int
	}{
		{"ZOOM_BUDGET_REPLICAS", c.BudgetReplicas}, {"FETCH_CONCURRENCY", c.Concurrency},
		{"SYNC_CONCURRENCY", c.SyncWorkers}, {"MAX_RUN_ATTEMPTS", c.MaxAttempts},
		{"HINT_CONCURRENCY", c.HintWorkers}, {"ENRICH_CONCURRENCY", c.EnrichWorkers},
	} {
		if v.n < 1 {
			e.Check(fmt.Errorf("%s %d is below 1", v.name, v.n))
		}
	}
	plan, err := zoom.ParsePlan(e.String("ZOOM_PLAN", "pro"))
	e.Check(err)
	c.Zoom = zoom.Config{
		APIURL:        e.URL("ZOOM_API_URL", "https://api.zoom.us/v2"),
		OAuthURL:      e.URL("ZOOM_OAUTH_URL", "https://zoom.us"),
		AccountID:     e.String("ZOOM_ACCOUNT_ID", ""),
		ClientID:      e.String("ZOOM_CLIENT_ID", ""),
		ClientSecret:  e.String("ZOOM_CLIENT_SECRET", ""),
		Plan:          plan,
		PaceShare:     e.Float("ZOOM_RATE_SHARE", 0.5),
		DisablePacing: !e.Bool("ZOOM_PACING", true),
	}
	// Half a set of credentials is a mistake, not a choice to go without
	// the environment's connector: the fetcher says which are missing.
	var missing []string
	for i, v := range []string{c.Zoom.AccountID, c.Zoom.ClientID, c.Zoom.ClientSecret} {
		if v == "" {
			missing = append(missing, credentialVars[i])
		}
	}
	if len(missing) > 0 && len(missing) < len(credentialVars) {
		e.Check(fmt.Errorf("%s: %s missing (the environment's connector needs all three; set none to serve only registered connectors)",
			strings.Join(credentialVars, ", "), strings.Join(missing, " and ")))
	}
	envConnector := len(missing) == 0
	if key := e.String("CONNECTOR_SECRETS_KEY", ""); key != "" {
		// The keyring's errors name the variable and never quote the key.
		keys, err := connector.ParseKeyring(key)
		e.Check(err)
		c.Keys = keys
	}
	// Each name is checked under its variable's name, so that the error
	// says which to fix; the connector is made once both are valid.
	e.Check(pipeline.CheckName("CLARITY_TENANT", c.Tenant))
	e.Check(pipeline.CheckName("CONNECTOR_ID", c.ConnectorID))
	if err := e.Err(); err != nil {
		return c, err
	}
	if !envConnector {
		return c, nil
	}
	ref, err := pipeline.NewConnectorRef(c.Tenant, c.ConnectorID)
	if err != nil {
		return c, err
	}
	c.Connector = ref
	return c, nil
}
