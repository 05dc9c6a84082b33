package receiver

import "github.com/prometheus/client_golang/prometheus"

// Results of a webhook request, the values of the result label of
// zoom_webhook_requests_total.
const (
	ResultAccepted         = "accepted"
	ResultDuplicate        = "duplicate"
	ResultURLValidation    = "url_validation"
	ResultBadMethod        = "bad_method"
	ResultUnknownConnector = "unknown_connector"
	ResultTooLarge         = "too_large"
	ResultBadRequest       = "bad_request"
	ResultBadSignature     = "bad_signature"
	ResultStaleTimestamp   = "stale_timestamp"
	ResultBadJSON          = "bad_json"
	ResultUnavailable      = "unavailable"
	// ResultOverloaded is a request shed because MaxConcurrent requests
	// were already being served; it counts every route of the public
	// address, not the webhook routes alone.
	ResultOverloaded = "overloaded"
	// ResultDeauthorized is an app_deauthorized notification handled.
	ResultDeauthorized = "deauthorized"
)

var results = []string{
	ResultAccepted, ResultDuplicate, ResultURLValidation, ResultBadMethod, ResultUnknownConnector,
	ResultTooLarge, ResultBadRequest, ResultBadSignature, ResultStaleTimestamp, ResultBadJSON, ResultUnavailable,
	ResultOverloaded, ResultDeauthorized,
}

// Metrics counts what the receiver did with each request.
type Metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	publish  prometheus.Histogram
	inFlight prometheus.Gauge
}

// NewMetrics registers the receiver's metrics on reg:
// zoom_webhook_requests_total{result}, zoom_webhook_events_total{event},
// zoom_webhook_publish_seconds and zoom_webhook_requests_in_flight.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_webhook_requests_total",
			Help: "Webhook requests, by result (accepted, duplicate, url_validation, or why refused).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_webhook_events_total",
			Help: "Verified Zoom notifications answered 200, by event name.",
		}, []string{"event"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "zoom_webhook_publish_seconds",
			Help:    "Time to store one notification in JetStream, failures included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "zoom_webhook_requests_in_flight",
			Help: "Requests being served on the public address; at the concurrency limit, more are shed with 503.",
		}),
	}
	// Every result starts at zero, so that a rate over a result that has not
	// happened yet is 0 rather than absent.
	for _, r := range results {
		m.requests.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.events, m.publish, m.inFlight)
	return m
}

func (m *Metrics) request(result string) { m.requests.WithLabelValues(result).Inc() }

func (m *Metrics) event(name string) { m.events.WithLabelValues(name).Inc() }
