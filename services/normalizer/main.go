// Command normalizer turns raw Zoom pages (and, with webhooks, Zoom events)
// into normalized Clarity record batches for the writer.
package main

import (
	"cmp"
	"context"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
	"github.com/claritysecurity/zoom-connector/services/normalizer/internal/pipe"
)

func main() { service.Main("normalizer", run) }

func run(ctx context.Context) error {
	cfg, err := readConfig(service.NewEnv())
	if err != nil {
		return err
	}
	log, err := service.Logger(os.Stderr, "normalizer", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	nc, js, err := service.JetStream(ctx, cfg.Common, "normalizer", log)
	if err != nil {
		return err
	}
	defer natsx.Drain(nc) //nolint:errcheck
	reg := service.NewRegistry()
	p := pipe.New(pipe.Config{Publisher: js, Log: log, Observer: newMetrics(reg)})
	consumeMetrics := service.NewConsumeMetrics(reg)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return service.Serve(gctx, cfg.HTTPAddr, service.Profiling(service.OpsMux(reg, map[string]service.Check{
			"nats": func(context.Context) error { return natsx.Ready(nc) },
		})))
	})
	g.Go(func() error {
		return natsx.Consumer{
			Stream:       pipeline.StreamRaw,
			Durable:      pipeline.ConsumerNormalizer,
			MaxDeliver:   cfg.MaxDeliver,
			Concurrency:  cfg.Concurrency,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamRaw),
			DeadLetterID: pipeline.DeadLetterID,
			Log:          log,
			Observer:     consumeMetrics,
		}.Run(gctx, js, p.Raw())
	})
	g.Go(func() error {
		return natsx.Consumer{
			Stream:       pipeline.StreamWebhook,
			Durable:      pipeline.ConsumerNormalizerWebhook,
			MaxDeliver:   cfg.MaxDeliver,
			Concurrency:  cfg.Concurrency,
			DeadLetter:   pipeline.DeadLetterSubject(pipeline.StreamWebhook),
			DeadLetterID: pipeline.DeadLetterID,
			Log:          log,
			Observer:     consumeMetrics,
		}.Run(gctx, js, p.HandleWebhook)
	})
	log.Info().Str("addr", cfg.HTTPAddr).Msg("normalizer started")
	err = g.Wait()
	log.Info().Msg("normalizer stopped")
	return err
}

// metrics count the records the normalizer produced.
type metrics struct {
	records *prometheus.CounterVec
	pages   *prometheus.CounterVec
	skipped prometheus.Counter
	ignored *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_records_normalized_total", Help: "Records produced from Zoom pages and events, by kind.",
		}, []string{"kind"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_pages_normalized_total", Help: "Zoom pages normalized, by listing (several may travel in one message).",
		}, []string{"listing"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "zoom_items_skipped_total", Help: "Zoom items that could not be keyed (no id and no email).",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_webhook_events_ignored_total", Help: "Webhook events that change no record, by event name.",
		}, []string{"event"}),
	}
	reg.MustRegister(m.records, m.pages, m.skipped, m.ignored)
	return m
}

func (m *metrics) Records(kind pb.Kind, n int) {
	m.records.WithLabelValues(kindLabel(kind)).Add(float64(n))
}

func (m *metrics) Skipped(n int) { m.skipped.Add(float64(n)) }

// Page counts one normalized page of listing l.
func (m *metrics) Page(l pb.Listing) {
	m.pages.WithLabelValues(strings.ToLower(strings.TrimPrefix(l.String(), "LISTING_"))).Inc()
}

// WebhookIgnored counts one ignored webhook event (pipe.WebhookObserver).
func (m *metrics) WebhookIgnored(event string) { m.ignored.WithLabelValues(event).Inc() }

func kindLabel(k pb.Kind) string { return cmp.Or(pipeline.KindName(k), "unknown") }
