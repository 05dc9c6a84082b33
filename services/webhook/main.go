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
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/admin"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/console"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/oauth"
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
	// The environment's connector, when it has a secret token; the
	// registry's others, read live.
	static := receiver.NewStatic()
	if cfg.Secret != "" {
		static = receiver.NewStatic(receiver.Connector{Ref: cfg.Connector, Secret: cfg.Secret})
	}
	// The webhook service owns the registry's and the OAuth states'
	// buckets: it applies their configuration.
	registry, err := connector.OpenOwned(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	connectors := receiver.Registry{Static: static, Registry: registry, Keys: cfg.Keys}
	rc := receiver.New(receiver.Config{
		Connectors:    connectors,
		Default:       cfg.Connector,
		Publisher:     js,
		Log:           log,
		Metrics:       receiver.NewMetrics(reg),
		MaxBody:       int64(cfg.MaxBody),
		MaxConcurrent: cfg.MaxConcurrent,
		Deauthorized:  connectors.Deauthorize,
	})
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() { watchErr <- registry.Watch(wctx) }()
	select {
	case <-registry.Synced():
	case err := <-watchErr:
		return err
	case <-ctx.Done():
		return nil
	}
	var (
		routes       []route
		servers      []func(context.Context) error
		adminConsole *console.Console
	)
	if cfg.Keys != nil {
		authorizer, err := connector.NewAuthorizer(ctx, js, cfg.Keys, connector.AuthorizerConfig{
			OAuthURL: cfg.OAuthURL, RedirectTemplate: cfg.RedirectTemplate, Replicas: cfg.StreamReplicas, OwnStates: true})
		if err != nil {
			return err
		}
		adm := admin.New(admin.Config{Registry: registry, Keys: cfg.Keys, Authorizer: authorizer, NC: nc, JS: js,
			APIURL: cfg.APIURL, OAuthURL: cfg.OAuthURL, Log: log})
		routes = append(routes, route{oauth.Route, oauth.Handler(oauth.Config{Registry: registry, Keys: cfg.Keys,
			Authorizer: authorizer, JS: js, APIURL: cfg.APIURL, AdminURL: cfg.AdminURL, Log: log})})
		if cfg.AdminAddr != "" {
			activity := console.NewActivity()
			adminConsole = console.New(console.Config{Token: cfg.AdminToken, Registry: registry, Keys: cfg.Keys, NC: nc, JS: js,
				Activity: activity, RedirectTemplate: cfg.RedirectTemplate, OAuthURL: cfg.OAuthURL, APIURL: cfg.APIURL,
				SecureCookies: strings.HasPrefix(cfg.AdminURL, "https://"), Log: log})
			servers = append(servers, func(ctx context.Context) error { return activity.Follow(ctx, nc, js, log) })
		}
		// Subscribed before the service says it is up (/healthz): its
		// first admin request is answered.
		serveAdmin, err := adm.Listen()
		if err != nil {
			return err
		}
		servers = append(servers, serveAdmin, func(ctx context.Context) error {
			return natsx.Consumer{
				Stream:         clarity.StreamEntitlements,
				Durable:        admin.LastSyncConsumer,
				FilterSubjects: []string{pipeline.EventsOfKind(clarity.KindSync)},
				MaxDeliver:     5,
				Log:            log,
			}.Run(ctx, js, admin.LastSync(registry))
		})
	} else {
		log.Warn().Msg("CONNECTOR_SECRETS_KEY is not set: only the environment's connector is served; no admin API, no OAuth redirect")
	}

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

	var adminLn net.Listener
	if adminConsole != nil {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			publicLn.Close()
			opsLn.Close()
			return fmt.Errorf("listen on ADMIN_ADDR: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	if adminLn != nil {
		g.Go(func() error { return adminConsole.Serve(gctx, adminLn) })
		log.Info().Str("admin_addr", cfg.AdminAddr).Str("admin_url", cfg.AdminURL).Msg("admin console served")
	}
	g.Go(func() error { return service.ServeListener(gctx, opsLn, ops) })
	g.Go(func() error {
		select {
		case err := <-watchErr:
			return err
		case <-gctx.Done():
			stopWatch()
			return <-watchErr
		}
	})
	for _, serve := range servers {
		g.Go(func() error { return serve(gctx) })
	}
	// Serving returns once in-flight requests are answered (or after 3
	// seconds): every accepted notification was stored before its 200, so
	// nothing is left to hand over but the connection's drain.
	g.Go(func() error { return servePublic(gctx, publicLn, publicHandler(rc, ops, routes...)) })
	log.Info().Str("addr", cfg.Addr).Str("ops_addr", cfg.HTTPAddr).Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID).
		Int("max_concurrent", cfg.MaxConcurrent).Int("max_body", cfg.MaxBody).Msg("webhook started")
	err = g.Wait()
	log.Info().Msg("webhook stopped")
	return err
}
