// Command writer persists normalized records idempotently in PostgreSQL,
// completes full-sync runs, and relays the change events from its outbox to
// clarity.entitlements.<tenant>.<connector>.<kind>.
package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/admin"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/counts"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/ingest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/provision"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/relay"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/snapshot"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

func main() { service.Main("writer", run) }

func run(ctx context.Context) error {
	cfg, err := readConfig(service.NewEnv())
	if err != nil {
		return err
	}
	log, err := service.Logger(os.Stderr, "writer", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	// The ops address serves from the start: while the writer waits for
	// its database (or migrates it) it is alive, only not ready, and a
	// liveness probe must not restart it.
	stopping := ctx // ends on SIGTERM
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	reg := service.NewRegistry()
	var (
		started atomic.Pointer[store.Store]
		conns   atomic.Pointer[[2]*nats.Conn]
	)
	errStarting := errors.New("starting")
	g.Go(func() error {
		return service.Serve(gctx, cfg.HTTPAddr, service.Profiling(service.OpsMux(reg, map[string]service.Check{
			"nats": func(context.Context) error {
				c := conns.Load()
				if c == nil {
					return errStarting
				}
				if err := natsx.Ready(c[0]); err != nil {
					return err
				}
				return natsx.Ready(c[1])
			},
			"postgres": func(ctx context.Context) error {
				st := started.Load()
				if st == nil {
					return errStarting
				}
				return st.Ping(ctx)
			},
		})))
	})
	fail := func(err error) error {
		cancel()
		if werr := g.Wait(); werr != nil {
			return werr // the ops address failing stopped the start
		}
		if stopping.Err() != nil {
			return nil // asked to stop while starting: a clean stop
		}
		return err
	}

	pool, err := postgres.Open(gctx, cfg.DatabaseURL, int32(cfg.MaxConns), log)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	if err := store.Migrate(gctx, pool); err != nil {
		return fail(err)
	}
	if cfg.MigrateOnly {
		log.Info().Msg("migrations applied")
		cancel()
		_ = g.Wait()
		return nil
	}
	nc, js, err := service.JetStream(gctx, cfg.Common, "writer", log)
	if err != nil {
		return fail(err)
	}
	defer natsx.Drain(nc) //nolint:errcheck
	// The relay publishes on a connection of its own that never buffers
	// publications while reconnecting: a buffered event, flushed after a
	// reconnection, would reach the stream ahead of events lost with the
	// old connection (see relay.Relay.connector).
	rnc, rjs, err := natsx.ConnectAuth(gctx, cfg.NATSURL, "writer-relay", cfg.NATS, log, nats.ReconnectBufSize(-1))
	if err != nil {
		return fail(err)
	}
	defer natsx.Drain(rnc) //nolint:errcheck

	metrics := newMetrics(reg)
	rel := relay.New(relay.Config{
		Pool: pool, JetStream: rjs, Log: log,
		Batch: cfg.RelayBatch, Interval: cfg.RelayInterval, Observer: metrics,
	})
	st := store.New(pool, log, store.Options{Committed: rel.Wake, DeleteThreshold: cfg.DeleteThreshold})
	conns.Store(&[2]*nats.Conn{nc, rnc})
	started.Store(st)

	// The connectors the writer stores records of: the environment's and
	// the registry's.
	registry, err := connector.Open(gctx, js, cfg.StreamReplicas)
	if err != nil {
		return fail(err)
	}
	g.Go(func() error { return registry.Watch(gctx) })
	envConnector := pipeline.ConnectorRef{Tenant: cfg.Tenant, ID: cfg.ConnectorID}
	known := func(ctx context.Context, c pipeline.ConnectorRef) (bool, error) {
		if c == envConnector {
			return true, nil
		}
		_, ok, err := registry.Find(ctx, c, nil)
		return ok, err
	}

	consumeMetrics := service.NewConsumeMetrics(reg)
	holds, err := provision.OpenHolds(gctx, js, cfg.StreamReplicas)
	if err != nil {
		return fail(err)
	}
	g.Go(func() error {
		return natsx.Consumer{
			Stream:       pipeline.StreamRecords,
			Durable:      pipeline.ConsumerWriter,
			AckWait:      cfg.AckWait,
			MaxDeliver:   cfg.MaxDeliver,
			Concurrency:  cfg.Concurrency,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamRecords),
			DeadLetterID: pipeline.DeadLetterID,
			// A page may wait on a run's completion, which holds the
			// connector for as long as the account takes.
			KeepAlive: true,
			Log:       log,
			Observer:  consumeMetrics,
		}.Run(gctx, js, ingest.Handler(provision.Holding{Store: st, Holds: holds}, known))
	})
	g.Go(func() error {
		return natsx.Consumer{
			Stream:       pipeline.StreamProvisionResults,
			Durable:      pipeline.ConsumerWriterProvision,
			AckWait:      cfg.AckWait,
			MaxDeliver:   cfg.MaxDeliver,
			Concurrency:  cfg.Concurrency,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamProvisionResults),
			DeadLetterID: pipeline.DeadLetterID,
			Log:          log,
			Observer:     consumeMetrics,
		}.Run(gctx, js, provision.Handler(provision.Config{
			Store: st, Publisher: js, Known: known, Holds: holds, Retention: cfg.AuditRetention, Log: log,
		}))
	})
	g.Go(func() error { return rel.Run(gctx) })
	g.Go(func() error { return admin.Serve(gctx, nc, st, log) })
	g.Go(func() error { return counts.New(st, counts.Config{Known: known, Log: log}).Serve(gctx, nc) })
	g.Go(func() error { return snapshot.Serve(gctx, nc, pool, log, snapshot.Config{}) })
	g.Go(func() error {
		t := time.NewTicker(min(cfg.RunStallAfter/4, time.Minute))
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				if busy, err := pipelineBusy(gctx, js); err != nil || busy {
					// Pages may be waiting in a queue (the database or a
					// service was away): a run is stalled only when
					// nothing is on its way.
					continue
				}
				if n, err := st.FailStalled(gctx, cfg.RunStallAfter); err != nil {
					log.Warn().Err(err).Msg("fail stalled runs")
				} else if n > 0 {
					log.Warn().Int("runs", n).Msg("stalled runs failed")
				}
			}
		}
	})
	log.Info().Str("addr", cfg.HTTPAddr).Msg("writer started")
	err = g.Wait()
	log.Info().Msg("writer stopped")
	return err
}

// pipelineBusy reports whether pages or run messages wait in the streams
// between the fetcher and the writer (work queues: what they hold is not
// yet handled).
func pipelineBusy(ctx context.Context, js jetstream.JetStream) (bool, error) {
	for _, name := range []string{pipeline.StreamRaw, pipeline.StreamRecords} {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			return false, err
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return false, err
		}
		if info.State.Msgs > 0 {
			return true, nil
		}
	}
	return false, nil
}

// metrics are the writer's own Prometheus metrics.
type metrics struct {
	events   *prometheus.CounterVec
	lag      prometheus.Histogram
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	changes  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clarity_change_events_published_total",
			Help: "Change events published, by kind and operation.",
		}, []string{"kind", "op"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zoom_outbox_lag_seconds",
			Help:    "Age of the oldest outbox row of each relayed batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zoom_sync_runs_total", Help: "Full-sync runs ended, by tenant, connector and result (completed or failed).",
	}, []string{"tenant", "connector", "result"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "zoom_sync_duration_seconds", Help: "Time from a run's start to its end, by result.",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
	}, []string{"tenant", "connector", "result"})
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zoom_sync_records_total", Help: "Records of ended runs, by tenant, connector and outcome (created, updated, deleted, unchanged).",
	}, []string{"tenant", "connector", "outcome"})
	reg.MustRegister(m.events, m.lag, m.runs, m.duration, m.changes)
	return m
}

// SyncEnded counts an ended run, its duration and its records.
func (m *metrics) SyncEnded(c pipeline.ConnectorRef, op string, d clarity.SyncData) {
	m.runs.WithLabelValues(c.Tenant, c.ID, op).Inc()
	start, err1 := time.Parse(time.RFC3339Nano, d.StartedAt)
	end, err2 := time.Parse(time.RFC3339Nano, d.FinishedAt)
	if err1 == nil && err2 == nil {
		m.duration.WithLabelValues(c.Tenant, c.ID, op).Observe(end.Sub(start).Seconds())
	}
	// The outcomes of records are their operations, and "unchanged".
	for outcome, n := range map[string]int64{clarity.OpCreated: d.Stats.Created, clarity.OpUpdated: d.Stats.Updated,
		clarity.OpDeleted: d.Stats.Deleted, "unchanged": d.Stats.Unchanged} {
		m.changes.WithLabelValues(c.Tenant, c.ID, outcome).Add(float64(n))
	}
}

// Published counts published change events.
func (m *metrics) Published(kind, op string, n int) {
	m.events.WithLabelValues(kind, op).Add(float64(n))
}

// Lag observes the age of the oldest outbox row of a relayed batch.
func (m *metrics) Lag(d time.Duration) { m.lag.Observe(d.Seconds()) }
