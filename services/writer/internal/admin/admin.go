// Package admin answers the writer's part of the admin API: NATS requests on
// zoom.admin.<tenant>.<connector>.<op> for operations on a connector's
// stored records.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// Store is what the admin API needs of the writer's store.
type Store interface {
	ConfirmDeletions(ctx context.Context, c pipeline.ConnectorRef, runID string) (store.Confirmation, error)
	Purge(ctx context.Context, c pipeline.ConnectorRef) (int64, error)
}

// maxRequest bounds a request body: a run id and a little JSON.
const maxRequest = 4 << 10

// timeout bounds one operation: confirming deletions waits for the
// connector's other transactions (a run's completion among them).
const timeout = 5 * time.Minute

// Serve answers admin requests until ctx ends; replicas share them (a queue
// group).
func Serve(ctx context.Context, nc *nats.Conn, st Store, log zerolog.Logger) error {
	ops := []struct {
		subject string
		answer  func(*nats.Msg) (any, string)
	}{
		{"zoom.admin.*.*." + connector.OpConfirmDeletions, func(m *nats.Msg) (any, string) {
			r := confirm(ctx, st, m)
			return r, r.Error
		}},
		{"zoom.admin.*.*." + connector.OpPurge, func(m *nats.Msg) (any, string) {
			r := purge(ctx, st, m)
			return r, r.Error
		}},
	}
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			_ = sub.Drain()
		}
	}()
	for _, op := range ops {
		sub, err := nc.QueueSubscribe(op.subject, "writer", func(m *nats.Msg) {
			reply, refusal := op.answer(m)
			if refusal != "" {
				log.Warn().Str("subject", m.Subject).Str("error", refusal).Msg("admin request refused")
			}
			b, err := json.Marshal(reply)
			if err == nil {
				err = m.Respond(b)
			}
			if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
				log.Warn().Err(err).Str("subject", m.Subject).Msg("admin reply")
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", op.subject, err)
		}
		subs = append(subs, sub)
	}
	<-ctx.Done()
	return nil
}

// purge deletes the records of a connector removed from the registry (the
// webhook service's remove --purge asks for it).
func purge(ctx context.Context, st Store, m *nats.Msg) connector.Reply {
	c, err := pipeline.FromSubject(m.Subject)
	if err != nil {
		return connector.Reply{Error: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := st.Purge(ctx, c)
	if err != nil {
		return connector.Reply{Error: "purge: " + err.Error(), Count: n}
	}
	return connector.Reply{Count: n}
}

func confirm(ctx context.Context, st Store, m *nats.Msg) connector.ConfirmDeletionsReply {
	var req connector.ConfirmDeletionsRequest
	c, err := pipeline.FromSubject(m.Subject)
	if err != nil {
		return connector.ConfirmDeletionsReply{Error: err.Error()}
	}
	if len(m.Data) > maxRequest {
		return connector.ConfirmDeletionsReply{Error: fmt.Sprintf("request of %d bytes: at most %d", len(m.Data), maxRequest)}
	}
	if err := json.Unmarshal(m.Data, &req); err != nil || req.RunID == "" || len(req.RunID) > 128 {
		return connector.ConfirmDeletionsReply{Error: `request must be {"run_id":"…"} with the id of a completed run`}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done, err := st.ConfirmDeletions(ctx, c, req.RunID)
	switch {
	case errors.Is(err, store.ErrUnknownRun):
		return connector.ConfirmDeletionsReply{RunID: req.RunID, Error: fmt.Sprintf("connector %s has no run %s", c, req.RunID)}
	case errors.Is(err, store.ErrNoHeldDeletions):
		return connector.ConfirmDeletionsReply{RunID: req.RunID, Error: fmt.Sprintf("run %s held no deletions, or they were confirmed already", req.RunID)}
	case err != nil:
		return connector.ConfirmDeletionsReply{RunID: req.RunID, Error: "confirm deletions: " + err.Error()}
	}
	return connector.ConfirmDeletionsReply{
		RunID:   req.RunID,
		Held:    &clarity.HeldCounts{ServiceUser: done.HeldUsers, Entitlement: done.HeldEntitlements},
		Deleted: done.Deleted,
	}
}
