package provision

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// holds marks the users a write is under way for (pipeline.ProvisionHoldBucket):
// the writer holds back their incremental changes (a webhook Zoom sends for
// the write, a re-read) until the write's result is committed, so that the
// changes follow the result's event. The writer lifts the marks.
type holds struct {
	kv jetstream.KeyValue
}

func openHolds(ctx context.Context, js jetstream.JetStream, replicas int) (*holds, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, pipeline.ProvisionHoldConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("open provisioning holds bucket: %w", err)
	}
	return &holds{kv: kv}, nil
}

// mark marks each of who (user keys, emails) of connector c for the
// request auditKey: the mark names the request, so that only its result
// lifts it, not that of an earlier request for the same user.
func (h *holds) mark(ctx context.Context, c pipeline.ConnectorRef, auditKey string, who []string) error {
	for _, w := range who {
		if _, err := h.kv.Put(ctx, pipeline.ProvisionHoldKey(c, w), []byte(auditKey)); err != nil {
			return fmt.Errorf("mark a provisioning write under way: %w", err)
		}
	}
	return nil
}
