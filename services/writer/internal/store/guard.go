package store

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The accidental-deletion guard. A full sync that would delete more than a
// threshold of a connector's users, or of its entitlements, completes
// without deleting them: a listing Zoom cut short in a way no check
// catches, or a misconfigured account, must not deprovision a company.
// The run's sync.completed says "deletions":"held" with the counts; the
// records stay as they are until an operator confirms the run's deletions
// (ConfirmDeletions) or a later full sync deletes them with the threshold
// lifted.

// heldCounts counts the users and entitlements a run did not delete.
type heldCounts struct {
	users, entitlements int64
}

// What became of the deletions of a completed run that the
// accidental-deletion guard held.
const (
	// DeletionsHeld: the guard held them; they wait for a confirmation.
	DeletionsHeld = "held"
	// DeletionsConfirmed: an operator confirmed them and they were applied.
	DeletionsConfirmed = "confirmed"
)

// guard is the accidental-deletion guard: it returns the users and
// entitlements going when either are more than threshold of those stored,
// and nothing when the run may delete them.
func (w *wtx) guard(ctx context.Context, going heldCounts, threshold float64) (heldCounts, error) {
	if threshold <= 0 || going == (heldCounts{}) {
		return heldCounts{}, nil
	}
	var stored heldCounts
	if err := w.tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE r.kind = $2), count(*) FILTER (WHERE r.kind = $3)
		FROM records r WHERE r.connector_id = $1 AND r.kind IN ($2, $3) AND NOT r.deleted`,
		w.cid, pb.Kind_KIND_SERVICE_USER, pb.Kind_KIND_ENTITLEMENT).Scan(&stored.users, &stored.entitlements); err != nil {
		return heldCounts{}, fmt.Errorf("count stored records: %w", err)
	}
	over := func(n, of int64) bool { return float64(n) > threshold*float64(of) }
	if over(going.users, stored.users) || over(going.entitlements, stored.entitlements) {
		return going, nil
	}
	return heldCounts{}, nil
}

// ErrNoHeldDeletions reports a confirmation for a run that held no
// deletions, or whose deletions were confirmed already.
var ErrNoHeldDeletions = errors.New("store: the run held no deletions")

// ErrUnknownRun reports a confirmation for a run the connector never had.
var ErrUnknownRun = errors.New("store: no such run")

// Confirmation is what confirming a run's held deletions did.
type Confirmation struct {
	// HeldUsers and HeldEntitlements count what the run held.
	HeldUsers, HeldEntitlements int64
	// Deleted counts the records deleted now, grants and attributes
	// included; users or entitlements seen again since the run are not
	// deleted.
	Deleted int64
}

// ConfirmDeletions applies the deletions that the guard held at the end of
// the completed run runID: the users and entitlements that the run did not
// see and that nothing has seen or changed since (a later sync that listed
// one, or a webhook that touched it, keeps it), with their grants and
// attributes, each with its deleted event. A run is confirmed once.
func (s *Store) ConfirmDeletions(ctx context.Context, c pipeline.ConnectorRef, runID string) (Confirmation, error) {
	var known bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connectors WHERE tenant = $1 AND connector = $2)`,
		c.Tenant, c.ID).Scan(&known); err != nil {
		return Confirmation{}, fmt.Errorf("find connector: %w", err)
	}
	if !known {
		return Confirmation{}, fmt.Errorf("run %s: %w", runID, ErrUnknownRun)
	}
	w, err := s.begin(ctx, c, exclusive)
	if err != nil {
		return Confirmation{}, err
	}
	defer w.tx.Rollback(ctx) //nolint:errcheck
	r, err := w.loadRun(ctx, runID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Confirmation{}, fmt.Errorf("run %s: %w", runID, ErrUnknownRun)
	}
	if err != nil {
		return Confirmation{}, err
	}
	if r.status != RunCompleted || r.deletions != DeletionsHeld {
		return Confirmation{}, fmt.Errorf("run %s (%s, deletions %q): %w", runID, r.status, r.deletions, ErrNoHeldDeletions)
	}
	gen := r.startedMs
	if _, err := w.tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return Confirmation{}, fmt.Errorf("confirm deletions: %w", err)
	}
	spare := sparedBy(r.unavailable)
	if err := w.expireUsers(ctx, gen, math.MaxInt64, true, spare); err != nil {
		return Confirmation{}, err
	}
	if err := w.expireEntitlements(ctx, gen, spare); err != nil {
		return Confirmation{}, err
	}
	if _, err := w.tx.Exec(ctx, `
		UPDATE runs SET deletions = $3, deleted = deleted + $4
		WHERE connector_id = $1 AND run_id = $2`, w.cid, runID, DeletionsConfirmed, w.stats.deleted); err != nil {
		return Confirmation{}, fmt.Errorf("confirm deletions: %w", err)
	}
	if err := s.commit(ctx, w); err != nil {
		return Confirmation{}, err
	}
	s.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("run_id", runID).
		Int64(clarity.OpDeleted, w.stats.deleted).Msg("held deletions confirmed")
	return Confirmation{HeldUsers: r.held.users, HeldEntitlements: r.held.entitlements, Deleted: w.stats.deleted}, nil
}
