package pipeline

// The durable consumers of the connector's streams, named for the service
// that reads each. The NATS permissions of a service (package natsauth)
// allow exactly these.
const (
	// ConsumerFetcher reads StreamSync: the sync triggers.
	ConsumerFetcher = "fetcher"
	// ConsumerFetcherHints reads StreamHint.
	ConsumerFetcherHints = "fetcher-hints"
	// ConsumerFetcherEnrich is the fetcher's reader of the service_user
	// events on CLARITY_ENTITLEMENTS: the users to read the details of,
	// for the connectors with enrichment on.
	ConsumerFetcherEnrich = "fetcher-enrich"
	// ConsumerNormalizer reads StreamRaw.
	ConsumerNormalizer = "normalizer"
	// ConsumerNormalizerWebhook reads StreamWebhook.
	ConsumerNormalizerWebhook = "normalizer-webhook"
	// ConsumerWriter reads StreamRecords.
	ConsumerWriter = "writer"
	// ConsumerWriterProvision reads StreamProvisionResults.
	ConsumerWriterProvision = "writer-provision"
	// ConsumerLastSync is the webhook service's reader of the sync events
	// on CLARITY_ENTITLEMENTS (each connector's last sync result).
	ConsumerLastSync = "webhook-last-sync"
)
