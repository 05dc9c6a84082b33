package provision

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Observer is told of each request served.
type Observer interface {
	// Served is called once per request answered by running it: its
	// action ("" for a request too bad to name one), its result, and the
	// time from its publication to its result.
	Served(action, result string, d time.Duration)
}

// Metrics feeds Prometheus from the worker.
type Metrics struct {
	served  *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_provisioning_requests_total", Help: "Provisioning requests served, by action and result.",
		}, []string{"action", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "zoom_provisioning_seconds", Help: "Time from a provisioning request's publication to its result, by action.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"action"}),
	}
	reg.MustRegister(m.served, m.seconds)
	return m
}

// Served counts one request.
func (m *Metrics) Served(action, result string, d time.Duration) {
	m.served.WithLabelValues(action, result).Inc()
	m.seconds.WithLabelValues(action).Observe(d.Seconds())
}

type nopObserver struct{}

func (nopObserver) Served(string, string, time.Duration) {}
