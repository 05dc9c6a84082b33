package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsumeMetrics counts what the consume loop does; it implements
// natsx.Observer.
type ConsumeMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dead     *prometheus.CounterVec
}

// NewConsumeMetrics registers the consume-loop metrics on reg.
func NewConsumeMetrics(reg prometheus.Registerer) *ConsumeMetrics {
	m := &ConsumeMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_messages_handled_total",
			Help: "Messages handled, by stream and result (ok or error).",
		}, []string{"stream", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zoom_message_handle_seconds",
			Help:    "Time to handle one message, by stream.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"stream"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zoom_dead_letters_total",
			Help: "Messages moved to a dead-letter subject, by stream.",
		}, []string{"stream"}),
	}
	reg.MustRegister(m.handled, m.duration, m.dead)
	return m
}

// Handled counts one handled message.
func (m *ConsumeMetrics) Handled(stream string, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.handled.WithLabelValues(stream, result).Inc()
	m.duration.WithLabelValues(stream).Observe(d.Seconds())
}

// DeadLettered counts one dead-lettered message.
func (m *ConsumeMetrics) DeadLettered(stream string) {
	m.dead.WithLabelValues(stream).Inc()
}
