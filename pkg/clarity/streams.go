package clarity

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams returns the configuration of every stream the connector uses.
// Each service ensures all of them at start, so that services can start in any
// order and a trigger published before the fetcher first ran is kept.
func Streams() []jetstream.StreamConfig {
	work := func(name, subject, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  2 * time.Minute,
		}
	}
	webhook := work(StreamWebhook, "zoom.webhook.>", "verified Zoom webhook notifications")
	// Zoom retries a failed delivery after 5, 25 and 85 minutes; the
	// duplicate window covers them so a retry of a stored event is dropped.
	webhook.Duplicates = 2 * time.Hour
	return []jetstream.StreamConfig{
		work(StreamSync, "zoom.sync.>", "sync triggers"),
		work(StreamRaw, "zoom.raw.>", "raw Zoom pages and run control, fetcher to normalizer"),
		work(StreamRecords, "zoom.records.>", "normalized record batches and run control, to the writer"),
		webhook,
		work(StreamHint, "zoom.hint.>", "requests to re-read one user from Zoom"),
		{
			Name:        StreamDeadLetter,
			Description: "messages that kept failing, with the reason",
			Subjects:    []string{"zoom.dlq.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			MaxAge:      14 * 24 * time.Hour,
		},
		{
			Name:        StreamEntitlements,
			Description: "Clarity entitlement change events (CloudEvents)",
			Subjects:    []string{"clarity.entitlements.>"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			// The outbox relay may publish a change again after a crash
			// between publish and mark, or once its database is back; the
			// window drops such repeats. It costs the server memory for
			// the ids it holds, not more at a sync's peak (a sync ends
			// well within it), only for longer.
			Duplicates: time.Hour,
		},
	}
}

// Replicated sets the number of replicas of every stream: 3 on a 3-node
// NATS cluster. Every service applies the same number at start.
func Replicated(replicas int, cfgs []jetstream.StreamConfig) []jetstream.StreamConfig {
	out := make([]jetstream.StreamConfig, len(cfgs))
	for i, c := range cfgs {
		c.Replicas = max(1, replicas)
		out[i] = c
	}
	return out
}

// RunsBucket is the key-value bucket where fetchers coordinate runs, one key
// per connector.
const RunsBucket = "zoom_runs"
