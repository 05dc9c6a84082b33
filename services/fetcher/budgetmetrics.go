package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// budgetMetrics feeds Prometheus from the account-wide rate budget.
type budgetMetrics struct {
	granted     *prometheus.CounterVec
	waited      *prometheus.HistogramVec
	coordinated prometheus.Gauge
}

func newBudgetMetrics(reg prometheus.Registerer) *budgetMetrics {
	m := &budgetMetrics{
		granted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_budget_grants_total",
			Help: "Zoom requests the account-wide rate budget let through, by category, priority and source (shared: the NATS bucket; local: this replica's conservative share while the bucket is away).",
		}, []string{"category", "priority", "source"}),
		waited: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zoom_budget_wait_seconds",
			Help:    "Time a Zoom request waited for the account-wide rate budget, by priority.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"priority"}),
		coordinated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zoom_budget_shared",
			Help: "1 while the rate budget is shared through NATS, 0 while this replica paces under its conservative local share.",
		}),
	}
	m.coordinated.Set(1)
	reg.MustRegister(m.granted, m.waited, m.coordinated)
	return m
}

func (m *budgetMetrics) Granted(c zoom.Category, p zoom.Priority, waited time.Duration, shared bool) {
	source := "local"
	if shared {
		source = "shared"
	}
	m.granted.WithLabelValues(string(c), p.String(), source).Inc()
	m.waited.WithLabelValues(p.String()).Observe(waited.Seconds())
}

func (m *budgetMetrics) Coordinated(ok bool) {
	if ok {
		m.coordinated.Set(1)
	} else {
		m.coordinated.Set(0)
	}
}
