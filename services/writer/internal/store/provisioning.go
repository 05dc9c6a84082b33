package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Provisioning results are audited in provisioning_audit, and published as
// clarity.provisioning.<result> events through the outbox, numbered like
// every change, so that a result's event carries the latest sequence
// committed and the record changes its action caused follow it. Every
// statement on provisioning_audit is here.

// RecordProvisioning stores the audit row of a provisioning outcome and,
// with event, its result event in the same transaction. It reports false,
// and changes nothing, when the outcome was recorded before (a redelivery),
// and ErrAuditConflict when another run of the same request id was.
func (s *Store) RecordProvisioning(ctx context.Context, c pipeline.ConnectorRef, o *pipeline.ProvisionOutcome, event bool) (bool, error) {
	o = storable(o)
	data, err := json.Marshal(o.Result)
	if err != nil {
		return false, fmt.Errorf("%w: encode provisioning result: %v", ErrBadBatch, err)
	}
	req, _ := json.Marshal(o.Request) // a struct of strings always encodes
	by, _ := json.Marshal(o.RequestedBy)
	if o.RequestedBy == nil {
		by = []byte("{}")
	}
	calls, _ := json.Marshal(o.Calls)
	if o.Calls == nil {
		calls = []byte("[]")
	}
	const insert = `
		INSERT INTO provisioning_audit (tenant, connector, audit_key, request_id, action, user_key, entitlement,
			request, requested_by, received_at, finished_at, result, error, zoom_status, zoom_code, calls)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT DO NOTHING`
	args := []any{c.Tenant, c.ID, o.AuditKey, o.Result.RequestID, o.Result.Action, o.Request.User, o.Request.Entitlement,
		req, by, o.ReceivedAt, o.FinishedAt, o.Result.Result, o.Result.Error, o.Result.ZoomStatus, o.Result.ZoomCode, calls}
	if !event {
		// A connector the deployment does not serve gets no row of its own
		// (and so no sequence): only the audit keeps the request.
		tag, err := s.pool.Exec(ctx, insert, args...)
		if err != nil {
			return false, fmt.Errorf("audit provisioning: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return true, nil
		}
		return false, s.sameProvisioning(ctx, c, o)
	}
	var fresh bool
	err = retry(ctx, func() error {
		w, err := s.begin(ctx, c, shared)
		if err != nil {
			return err
		}
		defer w.tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
		tag, err := w.tx.Exec(ctx, insert, args...)
		if err != nil {
			return fmt.Errorf("audit provisioning: %w", err)
		}
		fresh = tag.RowsAffected() == 1
		if !fresh {
			return nil
		}
		w.emit(clarity.KindProvisioning, o.Result.Result, o.Result.RequestID, data)
		return s.commit(ctx, w)
	})
	if err != nil || fresh {
		return fresh, err
	}
	return false, s.sameProvisioning(ctx, c, o)
}

// ErrAuditConflict reports an outcome whose request id the audit holds from
// another run of it: recorded and published, the first run's result stands.
var ErrAuditConflict = errors.New("the provisioning audit holds another run of this request id")

// sameProvisioning reports, as ErrAuditConflict, that the audit row of o's
// request is not o's (a redelivery of o finds its own).
func (s *Store) sameProvisioning(ctx context.Context, c pipeline.ConnectorRef, o *pipeline.ProvisionOutcome) error {
	var received, finished time.Time
	err := s.pool.QueryRow(ctx, `SELECT received_at, finished_at FROM provisioning_audit WHERE tenant = $1 AND connector = $2 AND audit_key = $3`,
		c.Tenant, c.ID, o.AuditKey).Scan(&received, &finished)
	if err != nil {
		return fmt.Errorf("read provisioning audit: %w", err)
	}
	if !received.Equal(o.ReceivedAt.Truncate(time.Microsecond)) || !finished.Equal(o.FinishedAt.Truncate(time.Microsecond)) {
		return fmt.Errorf("%w: %s", ErrAuditConflict, o.AuditKey)
	}
	return nil
}

// PruneProvisioning deletes the audit rows of requests received before
// before, and returns how many.
func (s *Store) PruneProvisioning(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM provisioning_audit WHERE received_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune provisioning audit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// storable is a copy of o whose texts Postgres takes: valid UTF-8 without
// NUL, which neither text nor jsonb holds. The worker bounds and checks
// what it hands over; this keeps an outcome that slipped through from
// being refused on every redelivery, and so from never being published.
func storable(o *pipeline.ProvisionOutcome) *pipeline.ProvisionOutcome {
	c := *o
	for _, p := range []*string{&c.AuditKey,
		&c.Request.RequestID, &c.Request.Action, &c.Request.User, &c.Request.Entitlement, &c.Request.Mode,
		&c.Request.TransferTo, &c.Request.Email, &c.Request.License,
		&c.Result.RequestID, &c.Result.Action, &c.Result.Result, &c.Result.Error} {
		*p = storableText(*p)
	}
	if o.RequestedBy != nil {
		c.RequestedBy = make(map[string]string, len(o.RequestedBy))
		for k, v := range o.RequestedBy {
			c.RequestedBy[storableText(k)] = storableText(v)
		}
	}
	if o.Calls != nil {
		c.Calls = make([]pipeline.ZoomCall, len(o.Calls))
		for i, call := range o.Calls {
			call.Call = storableText(call.Call)
			c.Calls[i] = call
		}
	}
	return &c
}

// storableText is s as valid UTF-8 without NUL.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}
