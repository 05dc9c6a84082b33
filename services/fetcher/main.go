// Command fetcher consumes sync triggers and user hints, pages through the
// Zoom API and publishes the raw pages of each full-sync run.
package main

import (
	"context"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/clients"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/enrich"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/provision"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/schedule"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

func main() { service.Main("fetcher", run) }

func run(ctx context.Context) error {
	cfg, err := readConfig(service.NewEnv())
	if err != nil {
		return err
	}
	log, err := service.Logger(os.Stderr, "fetcher", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	metrics := service.NewRegistry()
	zm := newZoomMetrics(metrics)
	shared := cfg.Zoom
	shared.Observer = zm

	nc, js, err := service.JetStream(ctx, cfg.Common, "fetcher", log)
	if err != nil {
		return err
	}
	defer natsx.Drain(nc) //nolint:errcheck
	// Every replica draws on one budget per Zoom account (ratebudget).
	var budget *ratebudget.Budget
	if !cfg.Zoom.DisablePacing && cfg.SharedBudget {
		budget, err = ratebudget.Open(ctx, ratebudget.Config{
			JetStream: js, Replicas: cfg.StreamReplicas, Plan: cfg.Zoom.Plan, Share: cfg.Zoom.PaceShare,
			ExpectedReplicas: cfg.BudgetReplicas, Observer: newBudgetMetrics(metrics), Log: log,
		})
		if err != nil {
			return err
		}
	}
	// The replicas' hint batches share listing rounds in the budget's
	// bucket (the runner's hintround.go).
	rounds, err := ratebudget.Bucket(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	var envClient runner.Client
	if !cfg.Connector.IsZero() {
		zcfg := shared
		zcfg.Logger = log.With().Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID).Logger()
		if budget != nil {
			zcfg.Budget = budget.Account(ratebudget.AccountKey(cfg.Zoom.AccountID, cfg.Connector.String()))
		}
		client, err := zoom.New(zcfg)
		if err != nil {
			return err
		}
		envClient = client
	}
	// The registered connectors' clients never see the environment's
	// credentials.
	shared.AccountID, shared.ClientID, shared.ClientSecret = "", "", ""
	runs, err := runstate.Open(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	registry, err := connector.Open(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	var auth *connector.Authorizer
	if cfg.Keys != nil {
		auth, err = connector.NewAuthorizer(ctx, js, cfg.Keys, connector.AuthorizerConfig{
			OAuthURL: cfg.Zoom.OAuthURL, Replicas: cfg.StreamReplicas,
		})
		if err != nil {
			return err
		}
	}
	set := clients.New(clients.Config{
		Env: cfg.Connector, EnvClient: envClient,
		Registry: registry, Keys: cfg.Keys, Authorizer: auth,
		Zoom: shared, Budget: budget, Holder: holder(), Log: log,
	})
	metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fetcher_registered_clients", Help: "Zoom clients held for registered connectors (built on first use).",
	}, func() float64 { return float64(set.Cached()) }))
	sy := syncer.New(syncer.Config{JetStream: js, Concurrency: cfg.Concurrency, Log: log, Progress: newProgressReporter(zm, nc, set)})
	r := runner.New(runner.Config{
		Runs:        runs,
		Syncer:      sy,
		Clients:     set,
		Log:         log,
		MaxAttempts: cfg.MaxAttempts,
		AckWait:     cfg.TriggerAckWait,
		HintQuiet:   cfg.HintQuiet, HintMaxWait: cfg.HintMaxWait,
		HintObserver: newHintMetrics(metrics),
		HintRounds:   rounds,
	})
	sched, err := schedule.New(ctx, schedule.Config{
		JetStream: js, Replicas: cfg.StreamReplicas, Log: log,
		Connectors: func() []schedule.Entry { return scheduled(cfg, registry) },
		Changed:    registry.Changed,
	})
	if err != nil {
		return err
	}
	consumeMetrics := service.NewConsumeMetrics(metrics)
	provisioner, err := provision.New(ctx, provision.Config{
		JetStream: js, Conn: nc, Clients: set, Replicas: cfg.StreamReplicas, Holder: holder(),
		Observer: provision.NewMetrics(metrics), Log: log,
	})
	if err != nil {
		return err
	}

	memo, err := enrich.OpenMemo(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return registry.Watch(gctx) })
	// Nothing is consumed before the registry's copy holds every connector
	// registered: a trigger read earlier would be refused as unknown.
	synced := func(f func() error) func() error {
		return func() error {
			select {
			case <-registry.Synced():
			case <-gctx.Done():
				return nil
			}
			return f()
		}
	}
	g.Go(func() error {
		return service.Serve(gctx, cfg.HTTPAddr, service.Profiling(service.OpsMux(metrics, map[string]service.Check{
			"nats": func(context.Context) error { return natsx.Ready(nc) },
			"connectors": func(context.Context) error {
				select {
				case <-registry.Synced():
					return nil
				default:
					return errors.New("the connector registry is not read yet")
				}
			},
		})))
	})
	g.Go(synced(func() error {
		n := len(registry.All())
		ev := log.Info()
		if cfg.Keys == nil && n > 0 {
			ev = log.Warn().Str("problem", "CONNECTOR_SECRETS_KEY is not set: registered connectors are refused")
		}
		ev.Int("registered", n).Msg("connector registry read")
		return nil
	}))
	g.Go(synced(func() error {
		return natsx.Consumer{
			Stream:      pipeline.StreamSync,
			Durable:     pipeline.ConsumerFetcher,
			AckWait:     cfg.TriggerAckWait,
			MaxDeliver:  1000,
			Concurrency: cfg.SyncWorkers,
			// A sync is handed back at shutdown and resumed elsewhere,
			// rather than finished: it may take far longer than a stop may.
			Grace:        500 * time.Millisecond,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamSync),
			DeadLetterID: pipeline.DeadLetterID,
			Log:          log,
			Observer:     consumeMetrics,
		}.Run(gctx, js, r.HandleTrigger)
	}))
	g.Go(synced(func() error {
		return natsx.Consumer{
			Stream:      pipeline.StreamHint,
			Durable:     pipeline.ConsumerFetcherHints,
			Concurrency: cfg.HintWorkers,
			// A hint waits for its batch, which may wait for the budget.
			KeepAlive:    true,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamHint),
			DeadLetterID: pipeline.DeadLetterID,
			Log:          log,
			Observer:     consumeMetrics,
		}.Run(gctx, js, r.HandleHint)
	}))
	enricher := enrich.New(enrich.Config{
		Clients: set, Publisher: sy, Memo: memo, Log: log,
		State: func(c pipeline.ConnectorRef) (bool, bool) {
			if !cfg.Connector.IsZero() && c == cfg.Connector {
				// Where the environment's connector stands is kept
				// nowhere: its users are read as they come or change.
				return cfg.Enrich, true
			}
			e, ok := registry.Lookup(c)
			return ok && e.Enrich, ok && e.EnrichBaseline
		},
		BaselineNeeded: func(ctx context.Context, c pipeline.ConnectorRef) (bool, time.Time, error) {
			e, err := registry.Get(ctx, c)
			if errors.Is(err, connector.ErrNotFound) {
				return false, time.Time{}, nil
			}
			return err == nil && e.Enrich && !e.EnrichBaseline, e.EnrichSince, err
		},
		BaselineDone: func(ctx context.Context, c pipeline.ConnectorRef) error {
			_, err := registry.Modify(ctx, c, func(r *connector.Record) error {
				r.EnrichBaseline = r.Enrich
				return nil
			})
			if errors.Is(err, connector.ErrNotFound) {
				return nil
			}
			return err
		},
	})
	g.Go(synced(func() error {
		return natsx.Consumer{
			Stream:         clarity.StreamEntitlements,
			Durable:        enrich.Consumer,
			FilterSubjects: enrich.Filters(),
			Concurrency:    cfg.EnrichWorkers,
			// A read waits for the account's budget behind every other
			// request: it is handed back at shutdown rather than finished.
			KeepAlive:           true,
			Grace:               500 * time.Millisecond,
			MaxUnavailableDelay: time.Minute,
			DeadLetter:          pipeline.DeadLetterSubject(clarity.StreamEntitlements),
			DeadLetterID:        pipeline.DeadLetterID,
			Log:                 log,
			Observer:            consumeMetrics,
		}.Run(gctx, js, enricher.Handle)
	}))
	g.Go(synced(func() error { return sched.Run(gctx) }))
	g.Go(synced(func() error { return provisioner.Run(gctx) }))
	start := log.Info().Str("addr", cfg.HTTPAddr).Bool("secrets_key", cfg.Keys != nil)
	if !cfg.Connector.IsZero() {
		start = start.Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID)
	}
	start.Msg("fetcher started")
	err = g.Wait()
	log.Info().Msg("fetcher stopped")
	return err
}

// scheduled is every connector on a schedule: the environment's, every
// SYNC_INTERVAL (0: never), at multiples of it since the Unix epoch, as
// before there was a registry; and each active registered connector whose
// schedule is not manual, spread over its interval. Without
// CONNECTOR_SECRETS_KEY no registered connector is scheduled: each trigger
// would only be refused.
func scheduled(cfg config, registry *connector.Registry) []schedule.Entry {
	var out []schedule.Entry
	if !cfg.Connector.IsZero() && cfg.SyncInterval > 0 {
		out = append(out, schedule.Entry{Connector: cfg.Connector, Interval: cfg.SyncInterval})
	}
	if cfg.Keys == nil {
		return out
	}
	return append(out, schedule.Registered(registry.All(), cfg.Connector)...)
}

// holder names this replica in the leases of token refreshes, for whoever
// reads the registry: its host name (a pod's name).
func holder() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "fetcher"
	}
	return "fetcher@" + h
}

// zoomMetrics feeds Prometheus from the Zoom client and the syncer.
type zoomMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	waits    *prometheus.CounterVec
	waited   *prometheus.CounterVec
	tokens   *prometheus.CounterVec
	pages    *prometheus.CounterVec
}

func newZoomMetrics(reg prometheus.Registerer) *zoomMetrics {
	m := &zoomMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_api_requests_total", Help: "Zoom API requests, by endpoint and HTTP status.",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zoom_api_request_seconds", Help: "Zoom API request time, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"endpoint"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_api_waits_total", Help: "Waits before Zoom requests, by reason (pacing, rate_limit, backoff).",
		}, []string{"reason"}),
		waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_api_wait_seconds_total", Help: "Time waited before Zoom requests, by reason.",
		}, []string{"reason"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_token_refreshes_total", Help: "Access token requests, by result.",
		}, []string{"result"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_pages_published_total", Help: "Raw pages published, by listing.",
		}, []string{"listing"}),
	}
	reg.MustRegister(m.requests, m.latency, m.waits, m.waited, m.tokens, m.pages)
	return m
}

func (m *zoomMetrics) RequestDone(endpoint string, status int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, statusLabel(status)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

func (m *zoomMetrics) Waited(_ string, reason zoom.WaitReason, d time.Duration) {
	m.waits.WithLabelValues(string(reason)).Inc()
	m.waited.WithLabelValues(string(reason)).Add(d.Seconds())
}

func (m *zoomMetrics) TokenRefreshed(_ time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.tokens.WithLabelValues(result).Inc()
}

func (m *zoomMetrics) Page(_ pipeline.ConnectorRef, l zoom.Listing, _ zoom.RawPage) {
	kind := "users"
	switch l.Kind {
	case zoom.ListingGroups:
		kind = "groups"
	case zoom.ListingGroupAdmins:
		kind = "group_admins"
	case zoom.ListingRoles:
		kind = "roles"
	}
	m.pages.WithLabelValues(kind).Inc()
}

func statusLabel(s int) string {
	if s == 0 {
		return "none"
	}
	return strconv.Itoa(s)
}
