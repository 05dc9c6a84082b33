package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// LastSyncConsumer names the durable consumer of sync events that keeps each
// registered connector's last sync in its record.
const LastSyncConsumer = pipeline.ConsumerLastSync

// LastSync returns the consume handler that records the end of every full
// sync (clarity.sync.completed or failed) in its connector's record, for
// list and show. Events of connectors the registry does not hold (the
// environment's, or one removed) are skipped.
func LastSync(reg *connector.Registry) natsx.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var ev clarity.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			return natsx.Permanent(err)
		}
		op, ok := strings.CutPrefix(ev.Type, "clarity."+clarity.KindSync+".")
		if !ok || (op != clarity.OpCompleted && op != clarity.OpFailed) {
			return nil
		}
		// The connector is the subject's, not what the body says.
		ref, err := pipeline.FromSubject(msg.Subject())
		if err != nil || ev.Tenant != ref.Tenant || ev.Connector != ref.ID {
			return nil
		}
		if _, known := reg.Lookup(ref); !known {
			return nil
		}
		var d clarity.SyncData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return natsx.Permanent(err)
		}
		last := &connector.LastSync{RunID: d.RunID, Result: op, FinishedAt: d.FinishedAt, Error: pipeline.Bound(d.Error, 512)}
		_, err = reg.Modify(ctx, ref, func(r *connector.Record) error {
			if r.LastSync != nil && r.LastSync.FinishedAt > last.FinishedAt {
				return errOlder
			}
			r.LastSync = last
			return nil
		})
		if errors.Is(err, errOlder) || errors.Is(err, connector.ErrNotFound) {
			return nil
		}
		return err
	}
}

var errOlder = errors.New("an older sync's end")
