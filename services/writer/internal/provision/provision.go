// Package provision takes the provisioning worker's outcomes
// (zoom.provision.results.<tenant>.<connector>): each is audited and its
// result committed to the outbox as a clarity.provisioning.<result> event,
// in one transaction; then the records the action touched are read again
// from Zoom (a user re-read through the fetcher, a group's admin as Zoom
// showed it), so that their change events follow the result's.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// DefaultRetention is how long the audit keeps a request unless
// PROVISION_AUDIT_RETENTION says otherwise: as long as the worker keeps a
// request's result to answer its id again, the most it may be.
const DefaultRetention = pipeline.DefaultProvisionKeep

// CheckRetention refuses an audit retention longer than the worker keeps a
// request's result: a request id repeated after its result was forgotten
// would run again while the audit still holds its first run.
func CheckRetention(d time.Duration) error {
	if d > pipeline.DefaultProvisionKeep {
		return fmt.Errorf("PROVISION_AUDIT_RETENTION %s is longer than the %s the provisioning worker keeps a request's result to answer its id again",
			d, pipeline.DefaultProvisionKeep)
	}
	return nil
}

// pruneEvery is how often, at most, audit rows past the retention are
// deleted.
const pruneEvery = time.Hour

// Source names the batches this package publishes, for logs and metrics.
const Source = "provisioning"

// Store is what the handler needs of the store.
type Store interface {
	RecordProvisioning(ctx context.Context, c pipeline.ConnectorRef, o *pipeline.ProvisionOutcome, event bool) (bool, error)
	PruneProvisioning(ctx context.Context, before time.Time) (int64, error)
}

// Config configures the handler.
type Config struct {
	Store Store
	// Publisher publishes the re-reads.
	Publisher pipeline.Publisher
	// Known reports whether the deployment serves a connector: the result
	// of a request for any other is audited, not published.
	Known func(ctx context.Context, c pipeline.ConnectorRef) (bool, error)
	// Holds is the bucket of the users a write is under way for, whose
	// marks a result lifts (see Holding).
	Holds jetstream.KeyValue
	// Retention is how long audit rows are kept, default DefaultRetention.
	Retention time.Duration
	// Now is the clock, default time.Now.
	Now func() time.Time
	Log zerolog.Logger
}

// Handler returns the consume handler of ZOOM_PROVISION_RESULTS.
func Handler(cfg Config) natsx.Handler {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var mu sync.Mutex
	var pruned time.Time
	prune := func(ctx context.Context) {
		mu.Lock()
		now := cfg.Now()
		due := now.Sub(pruned) > pruneEvery
		if due {
			pruned = now
		}
		mu.Unlock()
		if !due {
			return
		}
		if n, err := cfg.Store.PruneProvisioning(ctx, cfg.Now().Add(-cfg.Retention)); err != nil {
			cfg.Log.Warn().Err(err).Msg("provisioning audit not pruned")
		} else if n > 0 {
			cfg.Log.Info().Int64("rows", n).Dur("retention", cfg.Retention).Msg("provisioning audit pruned")
		}
	}
	return func(ctx context.Context, msg jetstream.Msg) error {
		c, err := pipeline.ProvisionResultConnector(msg.Subject())
		if err != nil {
			return natsx.Permanent(fmt.Errorf("provisioning result: %w", err))
		}
		var o pipeline.ProvisionOutcome
		if err := json.Unmarshal(msg.Data(), &o); err != nil {
			return natsx.Permanent(fmt.Errorf("provisioning result: %w", err))
		}
		if o.Tenant != c.Tenant || o.Connector != c.ID || o.AuditKey == "" {
			return natsx.Permanent(fmt.Errorf("provisioning result for %s/%s on %s's subject", o.Tenant, o.Connector, c))
		}
		known, err := cfg.Known(ctx, c)
		if err != nil {
			return fmt.Errorf("look up connector %s: %w", c, err)
		}
		_, err = cfg.Store.RecordProvisioning(ctx, c, &o, known)
		conflict := errors.Is(err, store.ErrAuditConflict)
		switch {
		case conflict:
			// Another run of the same request id is audited and
			// published: this one publishes nothing, neither result nor
			// re-reads, so that what Clarity sees stays the first run's.
			cfg.Log.Warn().Str("tenant", c.Tenant).Str("connector", c.ID).Str("request_id", o.Result.RequestID).
				Str("result", o.Result.Result).Msg("provisioning: a request id ran again after its result was forgotten; the first run's result stands")
		case err != nil:
			if postgres.Unavailable(err) && ctx.Err() == nil {
				return natsx.Unavailable(err)
			}
			return err
		}
		prune(ctx)
		// The changes held back for the result go on now, after it.
		if err := Lift(ctx, cfg.Holds, c, o.AuditKey, o.Holds); err != nil {
			return err
		}
		if conflict {
			return nil
		}
		if !known {
			return unsequenced(ctx, cfg.Publisher, c, &o)
		}
		// Published after the result's commit (again on a redelivery: the
		// ids make the repeats one), so the changes they make come after.
		return refresh(ctx, cfg.Publisher, c, &o)
	}
}

// refresh publishes the re-reads of the records the action touched.
func refresh(ctx context.Context, pub pipeline.Publisher, c pipeline.ConnectorRef, o *pipeline.ProvisionOutcome) error {
	stem := pipeline.ProvisionResultID(c, o.AuditKey)
	for i, r := range o.Reads {
		if r.UserID == "" || (len(r.Body) == 0 && !r.NotFound) {
			continue
		}
		// The user as the action read it back, normalized by the
		// normalizer like a re-read user (LISTING_USER).
		m, err := pipeline.NewMsg(pipeline.RawSubject(c), &pb.Envelope{
			Tenant: c.Tenant, Connector: c.ID,
			Body: &pb.Envelope_RawPage{RawPage: &pb.RawPage{
				Ref:         &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true},
				FetchedAtMs: max(r.ReadAtMs, 1),
				Body:        r.Body,
				UserId:      r.UserID,
				NotFound:    r.NotFound,
				Removal:     removalOf(o, r),
			}},
		}, stem+"/user/"+strconv.Itoa(i))
		if err != nil {
			return natsx.Permanent(err)
		}
		if _, err := pub.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("publish user %s as read: %w", r.UserID, err)
		}
	}
	if a := o.Admins; a != nil && a.GroupID != "" && a.Email != "" {
		b := &pb.RecordBatch{VersionMs: max(a.ReadAtMs, 1), Source: Source}
		admins := []*pb.GroupAdmins{{GroupId: a.GroupID, Emails: []string{strings.ToLower(a.Email)}}}
		if a.IsAdmin {
			b.AdminsAdded = admins
		} else {
			b.AdminsRemoved = admins
		}
		m, err := pipeline.NewMsg(pipeline.RecordsSubject(c), &pb.Envelope{
			Tenant: c.Tenant, Connector: c.ID, Body: &pb.Envelope_Records{Records: b},
		}, stem+"/admins")
		if err != nil {
			return natsx.Permanent(err)
		}
		if _, err := pub.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("publish group %s's admin as read: %w", a.GroupID, err)
		}
	}
	return nil
}

// removalOf is why a user the action read back as gone went: the mode of
// the remove_user that removed it (disassociate when it names none), else
// empty (absent: Zoom does not say).
func removalOf(o *pipeline.ProvisionOutcome, r pipeline.UserRead) string {
	if !r.NotFound || o.Request.Action != clarity.ActionRemoveUser {
		return ""
	}
	if o.Request.Mode == clarity.RemoveDelete {
		return clarity.RemovalDeleted
	}
	return clarity.RemovalDisassociated
}

// unsequenced publishes the result event of a request for a connector the
// deployment does not serve straight on its event subject, as the fetcher
// refuses a sync trigger for one: no sequence is kept for a connector that
// does not exist, so its sequence is 0, and its id derives from the
// request's audit key, so that a redelivery publishes the same event.
func unsequenced(ctx context.Context, pub pipeline.Publisher, c pipeline.ConnectorRef, o *pipeline.ProvisionOutcome) error {
	data, err := json.Marshal(o.Result)
	if err != nil {
		return natsx.Permanent(err)
	}
	ev := clarity.NewEvent(c.Tenant, c.ID, 0, clarity.KindProvisioning, o.Result.Result, o.Result.RequestID, o.FinishedAt, data)
	ev.ID = pipeline.RefusalID(c.Tenant, c.ID, "provision-"+o.AuditKey)
	m := nats.NewMsg(clarity.EventSubject(c.Tenant, c.ID, clarity.KindProvisioning))
	m.Data = ev.AppendJSON(nil)
	m.Header.Set("Content-Type", clarity.ContentType)
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := pub.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish the result of %s for an unserved connector: %w", o.AuditKey, err)
	}
	return nil
}
