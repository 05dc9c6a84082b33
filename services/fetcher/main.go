// Command fetcher consumes sync triggers and user hints, pages through the
// Zoom API and publishes the raw pages of each full-sync run.
package main

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
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
	reg := service.NewRegistry()
	zm := newZoomMetrics(reg)
	zcfg := cfg.Zoom
	zcfg.Observer = zm
	zcfg.Logger = log.With().Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID).Logger()
	client, err := zoom.New(zcfg)
	if err != nil {
		return err
	}

	nc, js, err := service.JetStream(ctx, cfg.Common, "fetcher", log)
	if err != nil {
		return err
	}
	defer natsx.Drain(nc) //nolint:errcheck
	runs, err := runstate.Open(ctx, js, cfg.StreamReplicas)
	if err != nil {
		return err
	}
	r := runner.New(runner.Config{
		Runs:        runs,
		Syncer:      syncer.New(syncer.Config{JetStream: js, Concurrency: cfg.Concurrency, Log: log, Progress: zm}),
		Clients:     map[pipeline.ConnectorRef]runner.Client{cfg.Connector: client},
		Log:         log,
		MaxAttempts: cfg.MaxAttempts,
		AckWait:     cfg.TriggerAckWait,
	})
	consumeMetrics := service.NewConsumeMetrics(reg)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return service.Serve(gctx, cfg.HTTPAddr, service.Profiling(service.OpsMux(reg, map[string]service.Check{
			"nats": func(context.Context) error { return natsx.Ready(nc) },
		})))
	})
	g.Go(func() error {
		return natsx.Consumer{
			Stream:      pipeline.StreamSync,
			Durable:     "fetcher",
			AckWait:     cfg.TriggerAckWait,
			MaxDeliver:  1000,
			Concurrency: 4,
			// A sync is handed back at shutdown and resumed elsewhere,
			// rather than finished: it may take far longer than a stop may.
			Grace:      500 * time.Millisecond,
			DeadLetter: pipeline.DeadLetterSubject(pipeline.StreamSync),
			Log:        log,
			Observer:   consumeMetrics,
		}.Run(gctx, js, r.HandleTrigger)
	})
	g.Go(func() error {
		return natsx.Consumer{
			Stream:      pipeline.StreamHint,
			Durable:     "fetcher-hints",
			Concurrency: cfg.HintWorkers,
			DeadLetter:  pipeline.DeadLetterSubject(pipeline.StreamHint),
			Log:         log,
			Observer:    consumeMetrics,
		}.Run(gctx, js, r.HandleHint)
	})
	if cfg.SyncInterval > 0 {
		sched, err := schedule.New(ctx, schedule.Config{
			JetStream: js, Interval: cfg.SyncInterval, Replicas: cfg.StreamReplicas, Log: log,
		})
		if err != nil {
			return err
		}
		g.Go(func() error { return sched.Run(gctx, []pipeline.ConnectorRef{cfg.Connector}) })
	}
	log.Info().Str("addr", cfg.HTTPAddr).Str("tenant", cfg.Connector.Tenant).Str("connector", cfg.Connector.ID).Msg("fetcher started")
	err = g.Wait()
	log.Info().Msg("fetcher stopped")
	return err
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
