// Command webhook is the public HTTP endpoint for Zoom webhook
// notifications: it verifies each one and stores it in JetStream for the
// normalizer. Its public address (WEBHOOK_ADDR) serves the webhook routes
// with /healthz and /readyz; /metrics and the profiles are served, with
// /healthz and /readyz, on an internal address (WEBHOOK_OPS_ADDR) only.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"golang.org/x/sync/errgroup"

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
	// The profiles are on the internal address only: publicHandler passes
	// on nothing of ops but /healthz and /readyz.
	ops := service.Profiling(service.OpsMux(reg, map[string]service.Check{
		"nats": func(context.Context) error { return natsx.Ready(nc) },
	}))
	rc := receiver.New(receiver.Config{
		Connectors:    receiver.NewStatic(receiver.Connector{Ref: cfg.Connector, Secret: cfg.Secret}),
		Default:       cfg.Connector,
		Publisher:     js,
		Log:           log,
		Metrics:       receiver.NewMetrics(reg),
		MaxBody:       int64(cfg.MaxBody),
		MaxConcurrent: cfg.MaxConcurrent,
	})

	// Both addresses are bound before either is served, so that a taken
	// port stops the service at start, and so that the internal address
	// answers as soon as the public one does.
	publicLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on WEBHOOK_ADDR: %w", err)
	}
	opsLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		publicLn.Close()
		return fmt.Errorf("listen on WEBHOOK_OPS_ADDR: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return service.ServeListener(gctx, opsLn, ops) })
	// Serving returns once in-flight requests are answered (or after 3
	// seconds): every accepted notification was stored before its 200, so
	// nothing is left to hand over but the connection's drain.
	g.Go(func() error { return servePublic(gctx, publicLn, publicHandler(rc, ops)) })
	log.Info().Str("addr", cfg.Addr).Str("ops_addr", cfg.HTTPAddr).Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID).
		Int("max_concurrent", cfg.MaxConcurrent).Int("max_body", cfg.MaxBody).Msg("webhook started")
	err = g.Wait()
	log.Info().Msg("webhook stopped")
	return err
}
