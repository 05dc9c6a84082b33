package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
)

// runRow is the stored state of a run.
type runRow struct {
	status    string
	startedMs int64
	mode      string
	requests  []string
	fetched   bool
	stats     stats
	apiReqs   int64
	err       string
	startedAt time.Time
	// held counts the users and entitlements whose deletion the
	// accidental-deletion guard held; deletions is "" or a Deletions
	// value.
	held      heldCounts
	deletions string
	// unavailable names the listings the account's plan did not offer
	// (see sparedBy).
	unavailable []string
}

// StartRun records that a run began (emitting sync.started once).
func (s *Store) StartRun(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run) error {
	return s.whileRunning(ctx, c, run, func(*wtx, runRow) error { return nil })
}

// Fetched records that the fetcher published every page of the run, and
// the final list of triggers the run serves.
func (s *Store) Fetched(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFetched) error {
	unavailable, err := unavailableListings(f.Unavailable)
	if err != nil {
		return err
	}
	return s.whileRunning(ctx, c, f.Run, func(w *wtx, _ runRow) error {
		n := len(f.Listings)
		listings := make([]int16, n)
		keys := make([]string, n)
		pages := make([]int32, n)
		for i, l := range f.Listings {
			listings[i], keys[i], pages[i] = int16(l.Listing), passKey(l.ListingKey, l.Pass), l.Pages
		}
		requests := f.Run.RequestIds
		if requests == nil {
			requests = []string{}
		}
		if _, err := w.tx.Exec(ctx, `
			UPDATE runs SET fetched = true, expected_listing = $3, expected_key = $4, expected_pages = $5,
			       api_requests = $6, request_ids = $7, unavailable = $8, progress_at = now()
			WHERE connector_id = $1 AND run_id = $2`,
			w.cid, f.Run.RunId, listings, keys, pages, f.ApiRequests, requests, unavailable); err != nil {
			return fmt.Errorf("record fetched run: %w", err)
		}
		return nil
	})
}

// unavailableListings checks the listings a manifest names as unavailable
// and returns them in the contract's order, each once. A name this writer
// does not know is refused: it could not tell what the run did not see,
// and completing the run would delete it.
func unavailableListings(names []string) ([]string, error) {
	var groups, roles bool
	for _, n := range names {
		switch n {
		case clarity.UnavailableGroups:
			groups = true
		case clarity.UnavailableRoles:
			roles = true
		default:
			return nil, fmt.Errorf("%w: unknown unavailable listing %.64q", ErrBadBatch, n)
		}
	}
	out := []string{}
	if groups {
		out = append(out, clarity.UnavailableGroups)
	}
	if roles {
		out = append(out, clarity.UnavailableRoles)
	}
	return out, nil
}

// Fail ends a run as failed. It deletes nothing.
func (s *Store) Fail(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFailed) error {
	var ended *endedRun
	err := s.whileRunning(ctx, c, f.Run, func(w *wtx, r runRow) error {
		if f.ApiRequests > r.apiReqs {
			r.apiReqs = f.ApiRequests
		}
		if len(f.Run.RequestIds) > len(r.requests) {
			r.requests = f.Run.RequestIds
		}
		var err error
		ended, err = w.endRun(ctx, f.Run.RunId, RunFailed, f.Error, r)
		return err
	})
	if err == nil && ended != nil {
		s.logEnded(c, ended)
	}
	return err
}

// FailStalled fails every run that made no progress for longer than idle,
// so that a lost page or a vanished fetcher cannot leave a run open forever.
func (s *Store) FailStalled(ctx context.Context, idle time.Duration) (int, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.tenant, c.connector, r.run_id, r.started_at_ms, r.mode, r.request_ids
		FROM runs r JOIN connectors c ON c.id = r.connector_id
		WHERE r.status = 'running' AND r.progress_at < now() - make_interval(secs => $1)`,
		idle.Seconds())
	if err != nil {
		return 0, fmt.Errorf("find stalled runs: %w", err)
	}
	type stalled struct {
		connector pipeline.ConnectorRef
		run       *pb.Run
	}
	var list []stalled
	for rows.Next() {
		st := stalled{run: &pb.Run{}}
		// The names were validated when the connector's row was made.
		if err := rows.Scan(&st.connector.Tenant, &st.connector.ID, &st.run.RunId, &st.run.StartedAtMs, &st.run.Mode, &st.run.RequestIds); err != nil {
			rows.Close()
			return 0, fmt.Errorf("find stalled runs: %w", err)
		}
		list = append(list, st)
	}
	rows.Close()
	for _, st := range list {
		msg := fmt.Sprintf("run stalled: no progress for %s (a page was lost or the fetcher stopped); trigger a new sync", idle)
		if err := s.Fail(ctx, st.connector, &pb.RunFailed{Run: st.run, Error: msg}); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// whileRunning runs fn in a write transaction on the run, creating it if
// new, and commits; a run that has already ended is left as it is.
func (s *Store) whileRunning(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run, fn func(w *wtx, r runRow) error) error {
	w, err := s.begin(ctx, c, exclusive)
	if err != nil {
		return err
	}
	r, err := w.ensureRun(ctx, run)
	if err == nil && r.status == RunRunning {
		err = fn(w, r)
	}
	if err != nil || r.status != RunRunning {
		_ = w.tx.Rollback(ctx)
		return err
	}
	return s.commit(ctx, w)
}

// ensureRun creates the run on first sight (emitting sync.started) and
// returns its state, locked for the rest of the transaction.
func (w *wtx) ensureRun(ctx context.Context, run *pb.Run) (runRow, error) {
	if run == nil || run.RunId == "" || run.StartedAtMs <= 0 {
		return runRow{}, fmt.Errorf("%w: run without id or start", ErrBadBatch)
	}
	// Every page of a run comes here: most find their run, and read it
	// without trying to insert it again.
	r, err := w.loadRun(ctx, run.RunId)
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return r, err
	}
	mode := run.Mode
	if mode == "" {
		mode = "full"
	}
	requests := run.RequestIds
	if requests == nil {
		requests = []string{}
	}
	startedAt := time.UnixMilli(run.StartedAtMs).UTC()
	tag, err := w.tx.Exec(ctx, `
		INSERT INTO runs (connector_id, run_id, started_at_ms, mode, request_ids, started_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		w.cid, run.RunId, run.StartedAtMs, mode, requests, startedAt)
	if err != nil {
		return runRow{}, fmt.Errorf("create run: %w", err)
	}
	if r, err = w.loadRun(ctx, run.RunId); err != nil {
		return r, err
	}
	if tag.RowsAffected() == 1 {
		if err := w.emitSync(run.RunId, clarity.OpStarted, r, time.Time{}); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (w *wtx) loadRun(ctx context.Context, runID string) (runRow, error) {
	var r runRow
	q := `SELECT status, started_at_ms, mode, request_ids, fetched, created, updated, deleted, unchanged,
		       api_requests, error, started_at, held_users, held_entitlements, deletions, unavailable
		FROM runs WHERE connector_id = $1 AND run_id = $2`
	// A shared transaction reads its run unlocked: only exclusive
	// transactions change a run's status, and they wait for it to end.
	if w.mode == exclusive {
		q += " FOR UPDATE"
	}
	err := w.tx.QueryRow(ctx, q, w.cid, runID).
		Scan(&r.status, &r.startedMs, &r.mode, &r.requests, &r.fetched, &r.stats.created, &r.stats.updated,
			&r.stats.deleted, &r.stats.unchanged, &r.apiReqs, &r.err, &r.startedAt,
			&r.held.users, &r.held.entitlements, &r.deletions, &r.unavailable)
	if err != nil {
		return r, fmt.Errorf("load run %s: %w", runID, err)
	}
	return r, nil
}

func (w *wtx) emitSync(runID, op string, r runRow, finished time.Time) error {
	d := clarity.SyncData{
		RunID:      runID,
		RequestIDs: r.requests,
		Mode:       r.mode,
		StartedAt:  r.startedAt.UTC().Format(time.RFC3339Nano),
		Stats: clarity.SyncStats{
			Created: r.stats.created, Updated: r.stats.updated, Deleted: r.stats.deleted,
			Unchanged: r.stats.unchanged, APIRequests: r.apiReqs,
		},
		Error: r.err,
	}
	if op == clarity.OpCompleted && len(r.unavailable) > 0 {
		d.Unavailable = r.unavailable
	}
	if r.deletions == DeletionsHeld {
		d.Deletions = DeletionsHeld
		d.Held = &clarity.HeldCounts{ServiceUser: r.held.users, Entitlement: r.held.entitlements}
	}
	if d.RequestIDs == nil {
		d.RequestIDs = []string{}
	}
	if len(d.RequestIDs) > 0 {
		d.RequestID = d.RequestIDs[0]
	}
	if !finished.IsZero() {
		d.FinishedAt = finished.UTC().Format(time.RFC3339Nano)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	w.emit(clarity.KindSync, op, runID, data)
	return nil
}

// endRun ends the run r with status (RunCompleted or RunFailed) and the
// error msg, emitting its sync event, and returns what to log once the
// transaction has committed.
func (w *wtx) endRun(ctx context.Context, runID, status, msg string, r runRow) (*endedRun, error) {
	now := time.Now()
	r.err = msg
	r.status = status
	ended := &endedRun{id: runID, status: status, err: msg, stats: r.stats, held: r.held, took: now.Sub(r.startedAt)}
	if _, err := w.tx.Exec(ctx, `
		UPDATE runs SET status = $3, error = $4, finished_at = $5, api_requests = $6, request_ids = $7,
		       deleted = $8, held_users = $9, held_entitlements = $10, deletions = $11
		WHERE connector_id = $1 AND run_id = $2`,
		w.cid, runID, status, msg, now, r.apiReqs, r.requests, r.stats.deleted,
		r.held.users, r.held.entitlements, r.deletions); err != nil {
		return nil, fmt.Errorf("end run: %w", err)
	}
	op := clarity.OpCompleted
	if status == RunFailed {
		op = clarity.OpFailed
	}
	return ended, w.emitSync(runID, op, r, now)
}

// endedRun is a run that a transaction ended, for the log.
type endedRun struct {
	id, status, err string
	stats           stats
	held            heldCounts
	took            time.Duration
}

// logEnded logs the end of a run, once its transaction has committed.
func (s *Store) logEnded(c pipeline.ConnectorRef, e *endedRun) {
	ev := s.log.Info()
	if e.status != RunCompleted {
		ev = s.log.Warn().Str("error", e.err)
	}
	if e.held != (heldCounts{}) {
		ev = s.log.Warn().Str("deletions", DeletionsHeld).
			Int64("held_users", e.held.users).Int64("held_entitlements", e.held.entitlements)
	}
	ev.Str("tenant", c.Tenant).Str("connector", c.ID).Str("run_id", e.id).
		Int64(clarity.OpCreated, e.stats.created).Int64(clarity.OpUpdated, e.stats.updated).Int64(clarity.OpDeleted, e.stats.deleted).
		Int64("unchanged", e.stats.unchanged).Dur("took", e.took).Msg("sync " + e.status)
}

// passKey names one pass of a listing in run_pages: pages of an abandoned
// pass must not count towards the completion of the pass that replaced it.
func passKey(key string, pass int32) string {
	if pass == 0 {
		return key
	}
	return fmt.Sprintf("%s#%d", key, pass)
}
