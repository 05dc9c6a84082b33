// Command zoomsim serves simulated Zoom accounts (REST API v2,
// Server-to-Server OAuth, OAuth apps with the authorization-code flow, and
// signed webhooks) for demos, tests and benchmarks, with an admin API under
// /_sim/ to count requests, inject faults, mutate accounts, add accounts and
// OAuth apps, revoke and deauthorize apps, and read the records a connector
// should emit. It is never used in production.
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
		TokenTTL:             cfg.TokenTTL,
		RefreshTokenTTL:      cfg.RefreshTokenTTL,
		CodeTTL:              cfg.CodeTTL,
		RateLimits:           cfg.RateLimits,
		OmitRateLimitHeaders: cfg.OmitRateLimitHeaders,
		WebhookURL:           cfg.WebhookURL,
		WebhookSecret:        cfg.WebhookSecret,
		Seed:                 cfg.Seed,
	})
	defer sim.Close() // waits for webhook deliveries in flight
	if err := addAccounts(sim, cfg); err != nil {
		return err
	}

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
		Strs("accounts", accountIDs(sim)).
		Strs("oauth_apps", appIDs(sim)).
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

// addAccounts adds the accounts of ZOOMSIM_ACCOUNTS, each generated from
// its own seed (the main seed plus its position) with the rates of the
// default account, and registers the OAuth app on every account.
func addAccounts(sim *zoomtest.Server, cfg Config) error {
	accounts := []*zoomtest.Account{sim.DefaultAccount()}
	for i, spec := range cfg.Accounts {
		org := zoomtest.Generate(cfg.Seed+int64(i)+1, zoomtest.Size{Users: spec.Users, Groups: spec.Users / 50, Roles: cfg.Roles})
		a, err := sim.AddAccount(spec.ID, org, zoomtest.AccountOptions{Scopes: cfg.Scopes, RateLimits: cfg.RateLimits})
		if err != nil {
			return fmt.Errorf("ZOOMSIM_ACCOUNTS: %w", err)
		}
		accounts = append(accounts, a)
	}
	if len(cfg.OAuth.RedirectURIs) == 0 {
		return nil
	}
	for _, a := range accounts {
		opts := zoomtest.AppOptions{
			ClientID: cfg.OAuth.ClientID, ClientSecret: cfg.OAuth.ClientSecret,
			RedirectURIs: cfg.OAuth.RedirectURIs, Scopes: cfg.Scopes, Consent: cfg.OAuth.Consent,
		}
		if a != sim.DefaultAccount() {
			opts.ClientID += "-" + a.ID()
			opts.ClientSecret += "-" + a.ID()
		}
		if _, err := a.AddApp(opts); err != nil {
			return fmt.Errorf("ZOOMSIM_OAUTH_CLIENT_ID: %w", err)
		}
	}
	return nil
}

func accountIDs(sim *zoomtest.Server) []string {
	var ids []string
	for _, a := range sim.Accounts() {
		ids = append(ids, a.ID())
	}
	return ids
}

// appIDs lists the OAuth apps as "<account>/<client id>"; client ids are
// not secret, and the log is where a demo finds them.
func appIDs(sim *zoomtest.Server) []string {
	ids := []string{}
	for _, a := range sim.Accounts() {
		for _, app := range a.Apps() {
			ids = append(ids, a.ID()+"/"+app.ClientID())
		}
	}
	return ids
}
