package pipeline

import (
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// The services, by the name each connects to NATS with (its role in
// package natsauth).
const (
	ServiceFetcher    = "fetcher"
	ServiceNormalizer = "normalizer"
	ServiceWriter     = "writer"
	ServiceWebhook    = "webhook"
)

// StreamOwner returns the service that owns a stream, "" for a stream the
// services do not ensure. The owner is the service whose work depends on
// the stream's configuration, and the only one allowed to change it: at
// start it applies its configuration (retention, replicas) to the stream.
// Every other service only creates the stream when it is missing, so that
// the services start in any order and a message published before the
// owner first ran is kept.
//
//   - the fetcher: ZOOM_SYNC and ZOOM_HINT (its work queues) and
//     ZOOM_PROVISION (its worker reads the requests in order and deletes
//     each once served; MaxAge bounds how long an unserved one waits);
//   - the normalizer: ZOOM_RAW and ZOOM_WEBHOOK, its work queues (the
//     webhook stream's duplicate window covers Zoom's retries);
//   - the writer: ZOOM_RECORDS and ZOOM_PROVISION_RESULTS, its work queues;
//     CLARITY_ENTITLEMENTS, which its outbox relay publishes and whose
//     retention (EVENTS_MAX_AGE, EVENTS_MAX_BYTES) and duplicate window
//     bound what a downstream consumer can replay; and ZOOM_DLQ, the dead
//     letters, which no service consumes: the writer holds the deployment's
//     records, so the stream the operator replays from is kept with them
//     rather than by the internet-facing webhook service.
func StreamOwner(stream string) string {
	switch stream {
	case StreamSync, StreamHint, StreamProvision:
		return ServiceFetcher
	case StreamRaw, StreamWebhook:
		return ServiceNormalizer
	case StreamRecords, StreamProvisionResults, clarity.StreamEntitlements, StreamDeadLetter:
		return ServiceWriter
	}
	return ""
}

// OwnedStreams returns the configurations of cfgs that service owns.
func OwnedStreams(service string, cfgs []jetstream.StreamConfig) []jetstream.StreamConfig {
	var out []jetstream.StreamConfig
	for _, c := range cfgs {
		if StreamOwner(c.Name) == service {
			out = append(out, c)
		}
	}
	return out
}
