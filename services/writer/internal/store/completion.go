package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// complete reports whether every page of the run's manifest has been
// applied (false for a run without one).
func (s *Store) complete(ctx context.Context, c pipeline.ConnectorRef, runID string) (bool, error) {
	var missing int64
	err := s.pool.QueryRow(ctx, `
		SELECT `+missingPages+`
		FROM runs r JOIN connectors c ON c.id = r.connector_id
		WHERE c.tenant = $1 AND c.connector = $2 AND r.run_id = $3 AND r.fetched`, c.Tenant, c.ID, runID).Scan(&missing)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("count pages: %w", err)
	}
	return missing == 0, nil
}

// missingPages counts, for the run r, the pages of its manifest not yet
// applied.
//
// Each listing's pages are counted by a range of the primary key of
// run_pages: joined, a planner without statistics of run_pages compared
// every page with every listing (4,690 pages, 2,006 listings at 100,000
// users).
const missingPages = `
	(SELECT COALESCE(sum(n), 0) FROM unnest(r.expected_pages) AS n) -
	(SELECT COALESCE(sum(c.n), 0)
	 FROM unnest(r.expected_listing, r.expected_key, r.expected_pages) AS x(listing, key, pages)
	 CROSS JOIN LATERAL (
		SELECT count(*) AS n FROM run_pages p
		WHERE p.connector_id = r.connector_id AND p.run_id = r.run_id
		  AND p.listing = x.listing AND p.listing_key = x.key AND p.page <= x.pages) c)`

// Finalize completes the run when it is fetched and every page of it has
// been applied: it derives group-admin grants, deletes every record the run
// did not see, and emits sync.completed after all of them. It reports whether
// the run completed now; calling it early, or twice, does nothing.
func (s *Store) Finalize(ctx context.Context, c pipeline.ConnectorRef, runID string) (bool, error) {
	w, err := s.begin(ctx, c, exclusive)
	if err != nil {
		return false, err
	}
	defer w.tx.Rollback(ctx) //nolint:errcheck
	r, err := w.loadRun(ctx, runID)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if r.status != RunRunning || !r.fetched {
		return false, nil
	}
	ended, err := w.finalize(ctx, runID, r, s.deleteThreshold)
	if err != nil || ended == nil {
		return false, err
	}
	if err := s.commit(ctx, w); err != nil {
		return false, err
	}
	s.logEnded(c, ended)
	return true, nil
}

// finalize completes the fetched run r within the transaction when every
// page of its manifest has been applied, and returns the ended run, or nil
// when the run is not complete yet. What a listing the account's plan did
// not offer would have shown stays (see sparedBy). A run
// that would delete more than threshold (a fraction; 0 is no limit) of the
// connector's users or entitlements holds those deletions (see guard).
func (w *wtx) finalize(ctx context.Context, runID string, r runRow, threshold float64) (*endedRun, error) {
	var missing int64
	err := w.tx.QueryRow(ctx, `SELECT `+missingPages+` FROM runs r WHERE r.connector_id = $1 AND r.run_id = $2`,
		w.cid, runID).Scan(&missing)
	if err != nil {
		return nil, fmt.Errorf("count pages: %w", err)
	}
	if missing > 0 {
		return nil, nil
	}
	gen := r.startedMs
	// The passes over the account below are cheaper alone than shared with
	// parallel workers: at 100,000 users the pass finding users going took
	// 0.82 s in one process, and 0.95 s in three, each of them busy for
	// most of it. The transaction is exclusive: every other one of the
	// connector waits for it, and the workers' CPU is taken from them.
	if _, err := w.tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return nil, fmt.Errorf("complete run: %w", err)
	}
	if err := w.analyzeIfStale(ctx); err != nil {
		return nil, err
	}
	spare := sparedBy(r.unavailable)
	// Without the admin listings, the run cannot tell an admin gone: the
	// admins stay as the last listing or event left them.
	if !spare.groups {
		if err := w.expireAdmins(ctx, gen); err != nil {
			return nil, err
		}
	}
	grants, _, err := w.adminGrantsFor(ctx, nil, gen)
	if err != nil {
		return nil, err
	}
	if err := w.upsert(ctx, grants, gen, gen, true, nil); err != nil {
		return nil, err
	}
	if spare.roles {
		// The license entitlements ride on the roles page, having no
		// listing of their own: a run without it makes them here, so
		// that a free account has the licences its users hold.
		licenses, err := licenseRecords()
		if err != nil {
			return nil, err
		}
		if err := w.upsert(ctx, licenses, gen, gen, true, nil); err != nil {
			return nil, err
		}
	}
	// The generation of the last completed run before this one: users
	// compared record by record since then, in this run or in one that
	// failed, may hold grants and attributes their page no longer gave.
	var prev int64
	if err := w.tx.QueryRow(ctx, `
		SELECT COALESCE(max(started_at_ms), 0) FROM runs
		WHERE connector_id = $1 AND status = 'completed' AND started_at_ms < $2`, w.cid, gen).Scan(&prev); err != nil {
		return nil, fmt.Errorf("find the previous run: %w", err)
	}
	held, err := w.expireUnseen(ctx, gen, prev, threshold, spare)
	if err != nil {
		return nil, err
	}
	if held != (heldCounts{}) {
		r.held, r.deletions = held, DeletionsHeld
	}
	if _, err := w.tx.Exec(ctx, `
		DELETE FROM records WHERE connector_id = $1 AND deleted AND version < $2`,
		w.cid, gen-tombstoneTTL.Milliseconds()); err != nil {
		return nil, fmt.Errorf("purge tombstones: %w", err)
	}
	if _, err := w.tx.Exec(ctx, `DELETE FROM run_pages WHERE connector_id = $1 AND run_id = $2`, w.cid, runID); err != nil {
		return nil, fmt.Errorf("purge run pages: %w", err)
	}
	r.stats.created += w.stats.created
	r.stats.updated += w.stats.updated
	r.stats.deleted += w.stats.deleted
	r.stats.unchanged += w.stats.unchanged
	if _, err := w.tx.Exec(ctx, `UPDATE runs SET created = $3, updated = $4, unchanged = $5 WHERE connector_id = $1 AND run_id = $2`,
		w.cid, runID, r.stats.created, r.stats.updated, r.stats.unchanged); err != nil {
		return nil, fmt.Errorf("count run: %w", err)
	}
	return w.endRun(ctx, runID, RunCompleted, "", r)
}

// licenseRecords are the records of the license entitlements, which every
// account has, in the canonical form the normalizer gives them.
func licenseRecords() ([]*pb.Record, error) {
	recs := make([]*pb.Record, 0, len(clarity.Licenses))
	for _, e := range clarity.Licenses {
		data, err := clarity.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("license entitlement %s: %w", e.ID, err)
		}
		recs = append(recs, &pb.Record{Kind: pb.Kind_KIND_ENTITLEMENT, Key: e.ID, Data: data, Hash: clarity.Hash(data)})
	}
	return recs, nil
}

// tombstoneTTL is how long a deleted record is remembered, so that an event
// older than its deletion cannot bring it back.
const tombstoneTTL = 7 * 24 * time.Hour

// analyzeIfStale refreshes the planner's statistics of the records table
// when a fifth of it changed since they were taken (a no-op resync, which
// marks every user as seen, changes about a ninth). The queries that complete a run join
// records with itself and with group_admins; right after the bulk load of a
// first sync, without statistics, the planner may choose to scan every user
// for each admin.
func (w *wtx) analyzeIfStale(ctx context.Context) error {
	var stale bool
	err := w.tx.QueryRow(ctx, `
		SELECT s.n_mod_since_analyze > 0.2 * greatest(c.reltuples, 1000)
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.relid = 'records'::regclass`).Scan(&stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read table statistics: %w", err)
	}
	if !stale {
		return nil
	}
	// A small sample is enough to steer the joins, and keeps the pause of
	// the (exclusive) completion short.
	if _, err := w.tx.Exec(ctx, `SET LOCAL default_statistics_target = 10`); err != nil {
		return fmt.Errorf("analyze records: %w", err)
	}
	if _, err := w.tx.Exec(ctx, `ANALYZE records`); err != nil {
		return fmt.Errorf("analyze records: %w", err)
	}
	return nil
}
