package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/ingest"
)

// OpenHolds opens the bucket of the users a provisioning write is under way
// for (pipeline.ProvisionHoldBucket), creating it when it is missing. Its
// owner, the fetcher, applies its configuration to an existing bucket.
func OpenHolds(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := natsx.OpenKeyValue(ctx, js, pipeline.ProvisionHoldConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("open provisioning holds bucket: %w", err)
	}
	return kv, nil
}

// Holding is a store whose incremental changes (webhooks, re-reads) of a
// user a provisioning write is under way for wait until that write's
// result is committed: the changes the write caused then follow the
// result's event, whichever way they come. The pages of a full sync do not
// wait. A mark lasts pipeline.ProvisionHoldTTL at most.
type Holding struct {
	ingest.Store
	Holds jetstream.KeyValue
}

// errHeld reports a change waiting for a provisioning result.
var errHeld = errors.New("a provisioning write is under way for a user of this change: it waits for the write's result")

// ApplyChange applies b once no user of it is held.
func (h Holding) ApplyChange(ctx context.Context, c pipeline.ConnectorRef, b *pb.RecordBatch) error {
	if b.GetSource() != Source {
		for _, who := range changeUsers(b) {
			_, err := h.Holds.Get(ctx, pipeline.ProvisionHoldKey(c, who))
			switch {
			case err == nil:
				// Tried again with growing delays, neither redelivered nor
				// counted as failing (natsx.Consumer).
				return natsx.Unavailable(errHeld)
			case !errors.Is(err, jetstream.ErrKeyNotFound):
				return natsx.Unavailable(fmt.Errorf("read provisioning holds: %w", err))
			}
		}
	}
	return h.Store.ApplyChange(ctx, c, b)
}

// Lift lifts the marks of who (user keys, emails) of connector c that the
// request auditKey made. A mark another request made since (a later request
// for the same user, whose changes must wait for its own result) stays:
// a mark is deleted only at the revision that was read, and only when it
// names auditKey.
func Lift(ctx context.Context, kv jetstream.KeyValue, c pipeline.ConnectorRef, auditKey string, who []string) error {
	for _, w := range who {
		key := pipeline.ProvisionHoldKey(c, w)
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			continue
		case err != nil:
			return fmt.Errorf("read a provisioning hold: %w", err)
		case string(e.Value()) != auditKey:
			continue // another request's mark
		}
		err = kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			// ErrKeyExists: marked again since it was read, by another
			// request, whose mark stays.
			return fmt.Errorf("lift a provisioning hold: %w", err)
		}
	}
	return nil
}

// changeUsers is who an incremental change is about: user keys and
// lower-case emails, each once.
func changeUsers(b *pb.RecordBatch) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(b.GetReplaceUser())
	for _, r := range b.GetRecords() {
		add(r.GetUserKey())
		add(strings.ToLower(r.GetEmail()))
	}
	for _, d := range b.GetDeletes() {
		switch d.GetKind() {
		case pb.Kind_KIND_SERVICE_USER:
			add(d.GetKey())
		case pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE:
			user, _, _ := strings.Cut(d.GetKey(), "|")
			add(user)
		}
	}
	for _, ga := range append(b.GetAdminsAdded(), b.GetAdminsRemoved()...) {
		for _, e := range ga.GetEmails() {
			add(strings.ToLower(e))
		}
	}
	return out
}
