package natsauth

import (
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// BucketOwner returns the role that owns a key-value bucket, "" for a
// bucket the services do not use. The owner is the only role that may
// change the bucket's configuration: it opens the bucket with
// CreateOrUpdateKeyValue, which applies its configuration (replicas, TTL)
// at start, while every other role that uses the bucket opens it as it is
// and creates it only when it is missing (natsx.OpenKeyValue). The owners
// of the streams are in package pipeline (pipeline.StreamOwner).
//
//   - the webhook service: the connector registry, whose records its
//     admin API writes, and the OAuth states, which its consent flow makes
//     and takes;
//   - the fetcher: the buckets it alone uses (runs, schedule, rate budget,
//     enrichment digests, provisioning ledger and lease), and the
//     provisioning holds, whose marks its worker makes and renews (the
//     writer only reads and lifts them).
func BucketOwner(bucket string) Role {
	switch bucket {
	case connector.Bucket, connector.StatesBucket:
		return RoleWebhook
	case pipeline.RunsBucket, pipeline.ScheduleBucket, pipeline.BudgetBucket, pipeline.EnrichBucket,
		pipeline.ProvisionBucket, provisionLeaseBucket, pipeline.ProvisionHoldBucket:
		return RoleFetcher
	}
	return ""
}

// buckets are the names of every bucket the services use.
func buckets() []string {
	return []string{connector.Bucket, connector.StatesBucket, pipeline.RunsBucket, pipeline.ScheduleBucket,
		pipeline.BudgetBucket, pipeline.EnrichBucket, pipeline.ProvisionBucket, provisionLeaseBucket,
		pipeline.ProvisionHoldBucket}
}

// ownedBuckets are the names of the buckets r owns.
func ownedBuckets(r Role) []string {
	var out []string
	for _, b := range buckets() {
		if BucketOwner(b) == r {
			out = append(out, b)
		}
	}
	return out
}
