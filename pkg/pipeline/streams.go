package pipeline

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// The internal streams: work queues between the services, and the dead
// letters. CLARITY_ENTITLEMENTS, the stream downstream consumers read, is
// named in package clarity.
const (
	StreamSync       = "ZOOM_SYNC"
	StreamRaw        = "ZOOM_RAW"
	StreamRecords    = "ZOOM_RECORDS"
	StreamWebhook    = "ZOOM_WEBHOOK"
	StreamHint       = "ZOOM_HINT"
	StreamDeadLetter = "ZOOM_DLQ"
)

// The key-value buckets the services coordinate through.
const (
	// RunsBucket holds the active full-sync run of each connector.
	RunsBucket = "zoom_runs"
	// ScheduleBucket holds the last scheduled slot of each connector.
	ScheduleBucket = "zoom_schedule"
	// BudgetBucket holds the rate budget of each Zoom account: one key per
	// account and rate category counting the requests of the current
	// second, with the account's holds after a 429.
	BudgetBucket = "zoom_rate_budget"
	// EnrichBucket holds, for enrichment, the profile digest of each user
	// at its last read: one key per connector and user.
	EnrichBucket = "zoom_enrich"
)

// RawSubject carries raw Zoom pages and run control from fetcher to
// normalizer.
func RawSubject(c ConnectorRef) string { return "zoom.raw." + c.Key() }

// RecordsSubject carries normalized record batches and run control to the
// writer.
func RecordsSubject(c ConnectorRef) string { return "zoom.records." + c.Key() }

// WebhookSubject carries verified Zoom notifications from webhook to
// normalizer.
func WebhookSubject(c ConnectorRef) string { return "zoom.webhook." + c.Key() }

// HintSubject carries requests to re-read one user from Zoom to the fetcher.
func HintSubject(c ConnectorRef) string { return "zoom.hint." + c.Key() }

// SyncSubject is where anyone triggers a sync of a connector.
func SyncSubject(c ConnectorRef) string { return clarity.SyncSubject(c.Tenant, c.ID) }

// EventSubject is where the change events of one kind are published.
func EventSubject(c ConnectorRef, kind string) string {
	return clarity.EventSubject(c.Tenant, c.ID, kind)
}

// NewTrigger is a full-sync trigger of connector c, the public JSON that
// Clarity sends too (not an internal envelope), with Nats-Msg-Id id when
// id is not empty.
func NewTrigger(c ConnectorRef, requestID, id string) *nats.Msg {
	body, _ := json.Marshal(clarity.Trigger{Mode: "full", RequestID: requestID}) // a struct of strings always encodes
	msg := nats.NewMsg(SyncSubject(c))
	msg.Data = body
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	return msg
}

// EventsOfKind is the subject filter of every connector's change events of
// one kind (clarity.entitlements.*.*.<kind>).
func EventsOfKind(kind string) string { return "clarity.entitlements.*.*." + kind }

// DeadLetterSubject is where a message that keeps failing on a stream goes.
func DeadLetterSubject(stream string) string { return "zoom.dlq." + strings.ToLower(stream) }

// Streams returns the configuration of every stream the connector uses, with
// replicas replicas each (3 on a 3-node cluster). Each service creates those
// missing at start, so that services can start in any order and a trigger
// published before the fetcher first ran is kept; only a stream's owner
// (StreamOwner) applies its configuration to an existing stream.
func Streams(replicas int) []jetstream.StreamConfig {
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
	out := []jetstream.StreamConfig{
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
			Name:        clarity.StreamEntitlements,
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
			MaxAge:     DefaultEventsMaxAge,
		},
	}
	out = append(out, ProvisionStreams(DefaultProvisionKeep)...)
	for i := range out {
		out[i].Replicas = max(1, replicas)
	}
	return out
}

// DefaultEventsMaxAge is how long CLARITY_ENTITLEMENTS keeps an event unless
// EVENTS_MAX_AGE says otherwise: a consumer that fell further behind starts
// again from a snapshot.
const DefaultEventsMaxAge = 7 * 24 * time.Hour

// WithEventRetention returns cfgs with CLARITY_ENTITLEMENTS keeping events
// for maxAge and, when maxBytes is positive, at most maxBytes of them (the
// oldest go first).
func WithEventRetention(cfgs []jetstream.StreamConfig, maxAge time.Duration, maxBytes int64) []jetstream.StreamConfig {
	out := make([]jetstream.StreamConfig, len(cfgs))
	for i, c := range cfgs {
		if c.Name == clarity.StreamEntitlements {
			c.MaxAge = maxAge
			if maxBytes > 0 {
				c.MaxBytes = maxBytes
			}
		}
		out[i] = c
	}
	return out
}
