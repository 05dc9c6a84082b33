package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// hintMetrics counts how the batches of re-read hints were served: one
// request per user, or a listing of the statuses involved.
type hintMetrics struct {
	batches  *prometheus.CounterVec
	users    *prometheus.CounterVec
	requests *prometheus.CounterVec
}

func newHintMetrics(reg prometheus.Registerer) *hintMetrics {
	m := &hintMetrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_hint_batches_total",
			Help: "Batches of user re-read hints, by how they were served (reread: one request per user; listed: a listing of the active and inactive users).",
		}, []string{"choice"}),
		users: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_hint_users_total", Help: "Distinct users of the hint batches, by how their batch was served.",
		}, []string{"choice"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fetcher_hint_requests_total", Help: "Zoom requests spent on hint batches, by how the batch was served.",
		}, []string{"choice"}),
	}
	reg.MustRegister(m.batches, m.users, m.requests)
	return m
}

func (m *hintMetrics) HintBatch(_ pipeline.ConnectorRef, choice runner.HintChoice, users int, requests int) {
	m.batches.WithLabelValues(string(choice)).Inc()
	m.users.WithLabelValues(string(choice)).Add(float64(users))
	m.requests.WithLabelValues(string(choice)).Add(float64(requests))
}
