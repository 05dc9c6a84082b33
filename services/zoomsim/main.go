// Command zoomsim serves a simulated Zoom account (REST API v2,
// Server-to-Server OAuth and signed webhooks) for demos, tests and
// benchmarks, with an admin API under /_sim/ to count requests, inject
// faults, mutate the account and read the records a connector should emit.
// It is never used in production.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zoomsim:", err)
		os.Exit(1)
	}
}

// run reads the configuration and serves until ctx ends.
func run(ctx context.Context) error {
	cfg, err := loadConfig(os.LookupEnv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, os.Stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log, nil)
}

func newLogger(cfg Config, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", "zoomsim").Logger(), nil
}

// serve generates the account and serves it until ctx ends; ready, when not
// nil, learns the listening address (tests listen on port 0).
func serve(ctx context.Context, cfg Config, log zerolog.Logger, ready func(addr string)) error {
	start := time.Now()
	org := zoomtest.Generate(cfg.Seed, zoomtest.Size{Users: cfg.Users, Groups: cfg.Groups, Roles: cfg.Roles})
	org.AccountID = cfg.AccountID
	sim := zoomtest.New(org, zoomtest.Options{
		AccountID:            cfg.AccountID,
		ClientID:             cfg.ClientID,
		ClientSecret:         cfg.ClientSecret,
		Scopes:               cfg.Scopes,
		RateLimits:           cfg.RateLimits,
		OmitRateLimitHeaders: cfg.OmitRateLimitHeaders,
		WebhookURL:           cfg.WebhookURL,
		WebhookSecret:        cfg.WebhookSecret,
		Seed:                 cfg.Seed,
	})
	defer sim.Close() // waits for webhook deliveries in flight

	mux := http.NewServeMux()
	mux.Handle("/_sim/", sim.AdminHandler())
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.Handle("/", sim.Handler())

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// Secrets (client secret, webhook secret token) are never logged.
	log.Info().
		Str("addr", ln.Addr().String()).
		Int64("seed", cfg.Seed).
		Int("users", len(org.Users)).
		Int("groups", len(org.Groups)).
		Int("roles", len(org.Roles)).
		Str("account_id", cfg.AccountID).
		Bool("webhooks", cfg.WebhookURL != "").
		Interface("rate_limits", cfg.RateLimits).
		Dur("generated_in", time.Since(start)).
		Msg("zoomsim listening")
	if ready != nil {
		ready(ln.Addr().String())
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("zoomsim stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
