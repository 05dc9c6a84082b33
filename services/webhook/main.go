// Command webhook is the public HTTP endpoint for Zoom webhook
// notifications: it verifies each one and stores it in JetStream for the
// normalizer, and serves /healthz, /readyz and /metrics on the same address.
package main

import (
	"context"
	"os"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

func main() { service.Main("webhook", run) }

func run(ctx context.Context) error {
	cfg, err := readConfig(service.NewEnv())
	if err != nil {
		return err
	}
	log, err := service.Logger(os.Stderr, "webhook", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	nc, js, err := service.JetStream(ctx, cfg.Common, "webhook", log)
	if err != nil {
		return err
	}
	defer natsx.Drain(nc) //nolint:errcheck
	reg := service.NewRegistry()
	mux := service.OpsMux(reg, map[string]service.Check{
		"nats": func(context.Context) error { return natsx.Ready(nc) },
	})
	receiver.New(receiver.Config{
		Connectors:       receiver.NewStatic(receiver.Connector{Tenant: cfg.Tenant, ID: cfg.ConnectorID, Secret: cfg.Secret}),
		DefaultTenant:    cfg.Tenant,
		DefaultConnector: cfg.ConnectorID,
		Publisher:        js,
		Log:              log,
		Metrics:          receiver.NewMetrics(reg),
	}).Register(mux)

	log.Info().Str("addr", cfg.HTTPAddr).Str("tenant", cfg.Tenant).Str("connector", cfg.ConnectorID).Msg("webhook started")
	// Serve returns once in-flight requests are answered (or after 3
	// seconds): every accepted notification was stored before its 200, so
	// nothing is left to hand over but the connection's drain.
	err = service.Serve(ctx, cfg.HTTPAddr, mux)
	log.Info().Msg("webhook stopped")
	return err
}
