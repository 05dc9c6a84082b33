package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Progress states of a request in the ledger.
const (
	// stateClaimed: the request message Seq serves the request id; Zoom
	// was not written yet.
	stateClaimed = "claimed"
	// stateWriting: Zoom did not show the effect when read, and the write
	// is about to be sent (or was, when the worker died after it).
	stateWriting = "writing"
	// stateDone: the result is final.
	stateDone = "done"
)

// progress is what the ledger keeps of one request.
type progress struct {
	// Seq is the stream sequence of the request message that got this far.
	Seq   uint64 `json:"seq"`
	State string `json:"state"`
	// Outcome is the request's result and what the writer is handed.
	Outcome *pipeline.ProvisionOutcome `json:"outcome,omitempty"`
	// Answered says that the reply and the result for the writer are
	// published.
	Answered bool `json:"answered,omitempty"`
}

// ledger keeps each request's progress in the provisioning bucket, so that
// a request id runs once and answers its first result, also across
// restarts: a JetStream bucket, beside the stream the requests come on,
// rather than a table, so that the fetcher needs no database.
type ledger struct {
	kv jetstream.KeyValue
}

// openLedger opens (creating or updating) the provisioning bucket, whose
// entries live keep.
func openLedger(ctx context.Context, js jetstream.JetStream, replicas int, keep time.Duration) (*ledger, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      pipeline.ProvisionBucket,
		Description: "each provisioning request's progress and result, by connector and request id",
		History:     1,
		TTL:         keep,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open provisioning bucket: %w", err)
	}
	return &ledger{kv: kv}, nil
}

// get returns the progress of the request stored under key, its revision,
// and false when the ledger holds none. An entry that does not decode is an
// error, not an absence: the request waits rather than risk running twice.
func (l *ledger) get(ctx context.Context, key string) (progress, uint64, bool, error) {
	e, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return progress{}, 0, false, nil
	}
	if err != nil {
		return progress{}, 0, false, fmt.Errorf("read provisioning progress: %w", err)
	}
	var p progress
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return progress{}, 0, false, fmt.Errorf("%w: %v", errUndecodable, err)
	}
	return p, e.Revision(), true, nil
}

// errUndecodable reports a ledger entry this code cannot read: whether its
// request ran is unknown, so it is not run.
var errUndecodable = errors.New("provisioning progress entry does not decode: the request is not run until it is removed or expires")

// errClaimed reports a request id that another request message serves.
var errClaimed = errors.New("the request id is being served by an earlier request message: this one answers its result once it is done")

// claim stores p under key if the ledger holds nothing there yet, so that
// of two messages with one request id only one runs. It fails with
// errClaimed when another got there first.
func (l *ledger) claim(ctx context.Context, key string, p progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode provisioning progress: %w", err)
	}
	if _, err := l.kv.Create(ctx, key, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errClaimed
		}
		return fmt.Errorf("claim provisioning request: %w", err)
	}
	return nil
}

// takeOver stores p under key if the entry is still at revision rev.
func (l *ledger) takeOver(ctx context.Context, key string, p progress, rev uint64) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode provisioning progress: %w", err)
	}
	if _, err := l.kv.Update(ctx, key, b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return errClaimed
		}
		return fmt.Errorf("take over provisioning request: %w", err)
	}
	return nil
}

// put stores the progress of the request under key.
func (l *ledger) put(ctx context.Context, key string, p progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode provisioning progress: %w", err)
	}
	if _, err := l.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store provisioning progress: %w", err)
	}
	return nil
}
