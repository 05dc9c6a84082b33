package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
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

// tombstoneTTL is how long a deleted record is remembered, so that an event
// older than its deletion cannot bring it back.
const tombstoneTTL = 7 * 24 * time.Hour

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
		       api_requests, error, started_at, held_users, held_entitlements, deletions
		FROM runs WHERE connector_id = $1 AND run_id = $2`
	// A shared transaction reads its run unlocked: only exclusive
	// transactions change a run's status, and they wait for it to end.
	if w.mode == exclusive {
		q += " FOR UPDATE"
	}
	err := w.tx.QueryRow(ctx, q, w.cid, runID).
		Scan(&r.status, &r.startedMs, &r.mode, &r.requests, &r.fetched, &r.stats.created, &r.stats.updated,
			&r.stats.deleted, &r.stats.unchanged, &r.apiReqs, &r.err, &r.startedAt,
			&r.held.users, &r.held.entitlements, &r.deletions)
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

// StartRun records that a run began (emitting sync.started once).
func (s *Store) StartRun(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run) error {
	return s.whileRunning(ctx, c, run, func(*wtx, runRow) error { return nil })
}

// ApplyPage applies one page of a full sync. Pages of a run that already
// ended are ignored: that run's outcome is published and final. Pages apply
// in parallel; the page that turns out to be the last one missing of a run
// whose manifest has arrived completes the run.
func (s *Store) ApplyPage(ctx context.Context, c pipeline.ConnectorRef, b *pb.RecordBatch) error {
	return s.ApplyPages(ctx, c, []*pb.RecordBatch{b})
}

// ApplyPages applies pages of one run in one transaction, as ApplyPage
// applies one.
func (s *Store) ApplyPages(ctx context.Context, c pipeline.ConnectorRef, bs []*pb.RecordBatch) error {
	if len(bs) == 0 {
		return fmt.Errorf("%w: no pages", ErrBadBatch)
	}
	run := bs[0].GetRun()
	for _, b := range bs {
		if b.Ref == nil || b.Run == nil {
			return fmt.Errorf("%w: page without reference", ErrBadBatch)
		}
		if b.Run.RunId != run.RunId || b.Run.StartedAtMs != run.StartedAtMs {
			return fmt.Errorf("%w: pages of runs %s and %s in one bundle", ErrBadBatch, run.RunId, b.Run.RunId)
		}
		hashRecords(b.Records)
	}
	var fetched bool
	err := retry(ctx, func() error {
		var err error
		fetched, err = s.applyPages(ctx, c, run, bs)
		return err
	})
	if err != nil || !fetched {
		return err
	}
	// Every page commits before it looks, so the last one to commit sees
	// them all.
	complete, err := s.complete(ctx, c, run.RunId)
	if err != nil || !complete {
		return err
	}
	_, err = s.Finalize(ctx, c, run.RunId)
	return err
}

// applyPages applies pages in a shared transaction and reports whether the
// run's manifest had arrived.
func (s *Store) applyPages(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run, bs []*pb.RecordBatch) (bool, error) {
	w, err := s.begin(ctx, c, shared)
	if err != nil {
		return false, err
	}
	defer w.tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	r, err := w.ensureRun(ctx, run)
	if err != nil {
		return false, err
	}
	if r.status != RunRunning {
		s.log.Debug().Str("run_id", run.RunId).Str("status", r.status).Msg("page of an ended run ignored")
		return false, nil
	}
	gen := run.StartedAtMs
	n := len(bs)
	listings, keys, numbers := make([]int16, n), make([]string, n), make([]int32, n)
	admins := map[[2]string]int64{} // group id and email: the newest version
	for i, b := range bs {
		apply := w.upsert
		switch b.Ref.Listing {
		case pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE, pb.Listing_LISTING_USERS_PENDING:
			apply = w.applyUsers
		}
		if err := apply(ctx, b.Records, b.VersionMs, gen); err != nil {
			return false, err
		}
		if ga := b.GroupAdmins; ga != nil {
			for _, e := range lowerEmails(ga.Emails) {
				k := [2]string{ga.GroupId, e}
				admins[k] = max(admins[k], b.VersionMs)
			}
		}
		listings[i], keys[i], numbers[i] = int16(b.Ref.Listing), passKey(b.Ref.ListingKey, b.Ref.Pass), b.Ref.Page
	}
	if len(admins) > 0 {
		// One row per group and email, as a statement may not update a row
		// twice; in key order, so that concurrent pages lock rows in the
		// same order.
		pairs := slices.SortedFunc(maps.Keys(admins), func(a, b [2]string) int {
			return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
		})
		groups, emails, versions := make([]string, len(pairs)), make([]string, len(pairs)), make([]int64, len(pairs))
		for i, k := range pairs {
			groups[i], emails[i], versions[i] = k[0], k[1], admins[k]
		}
		if _, err := w.tx.Exec(ctx, `
			INSERT INTO group_admins AS g (connector_id, group_id, email, seen_at, version)
			SELECT $1, x.g, x.e, $5, x.v FROM unnest($2::text[], $3::text[], $4::bigint[]) AS x(g, e, v)
			ON CONFLICT (connector_id, group_id, email) DO UPDATE SET
				seen_at = GREATEST(g.seen_at, excluded.seen_at),
				deleted = CASE WHEN g.version > excluded.version THEN g.deleted ELSE false END,
				version = GREATEST(g.version, excluded.version)`,
			w.cid, groups, emails, versions, gen); err != nil {
			return false, fmt.Errorf("write group admins: %w", err)
		}
	}
	if _, err := w.tx.Exec(ctx, `
		INSERT INTO run_pages (connector_id, run_id, listing, listing_key, page)
		SELECT $1, $2, x.l, x.k, x.p FROM unnest($3::smallint[], $4::text[], $5::int[]) AS x(l, k, p)
		ON CONFLICT DO NOTHING`,
		w.cid, run.RunId, listings, keys, numbers); err != nil {
		return false, fmt.Errorf("record page: %w", err)
	}
	if w.stats == (stats{}) && len(w.changes) == 0 {
		// Nothing to count or publish (a group's admins, say): the run only
		// learns that it is alive, at most once a second, without waiting
		// for the sequence lock.
		if _, err := w.tx.Exec(ctx, `
			UPDATE runs SET progress_at = now()
			WHERE connector_id = $1 AND run_id = $2 AND progress_at < now() - interval '1 second'`,
			w.cid, run.RunId); err != nil {
			return false, fmt.Errorf("record progress: %w", err)
		}
		return r.fetched, s.commit(ctx, w)
	}
	// The run's counters are shared by every page: updated under the
	// sequence lock, at the very end.
	w.final = func(ctx context.Context) error {
		if _, err := w.tx.Exec(ctx, `
			UPDATE runs SET created = created + $3, updated = updated + $4, unchanged = unchanged + $5,
			       progress_at = now()
			WHERE connector_id = $1 AND run_id = $2`,
			w.cid, run.RunId, w.stats.created, w.stats.updated, w.stats.unchanged); err != nil {
			return fmt.Errorf("count run: %w", err)
		}
		return nil
	}
	return r.fetched, s.commit(ctx, w)
}

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

// Fetched records that the fetcher published every page of the run, and
// the final list of triggers the run serves.
func (s *Store) Fetched(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFetched) error {
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
			       api_requests = $6, request_ids = $7, progress_at = now()
			WHERE connector_id = $1 AND run_id = $2`,
			w.cid, f.Run.RunId, listings, keys, pages, f.ApiRequests, requests); err != nil {
			return fmt.Errorf("record fetched run: %w", err)
		}
		return nil
	})
}

// Fail ends a run as failed. It deletes nothing.
func (s *Store) Fail(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFailed) error {
	return s.whileRunning(ctx, c, f.Run, func(w *wtx, r runRow) error {
		if f.ApiRequests > r.apiReqs {
			r.apiReqs = f.ApiRequests
		}
		if len(f.Run.RequestIds) > len(r.requests) {
			r.requests = f.Run.RequestIds
		}
		return w.endRun(ctx, f.Run.RunId, RunFailed, f.Error, r)
	})
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

func (w *wtx) endRun(ctx context.Context, runID, status, msg string, r runRow) error {
	now := time.Now()
	r.err = msg
	r.status = status
	w.ended = &endedRun{id: runID, status: status, err: msg, stats: r.stats, held: r.held, took: now.Sub(r.startedAt)}
	if _, err := w.tx.Exec(ctx, `
		UPDATE runs SET status = $3, error = $4, finished_at = $5, api_requests = $6, request_ids = $7,
		       deleted = $8, held_users = $9, held_entitlements = $10, deletions = $11
		WHERE connector_id = $1 AND run_id = $2`,
		w.cid, runID, status, msg, now, r.apiReqs, r.requests, r.stats.deleted,
		r.held.users, r.held.entitlements, r.deletions); err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	op := clarity.OpCompleted
	if status == RunFailed {
		op = clarity.OpFailed
	}
	return w.emitSync(runID, op, r, now)
}

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
	done, err := w.finalize(ctx, runID, r, s.deleteThreshold)
	if err != nil || !done {
		return false, err
	}
	if err := s.commit(ctx, w); err != nil {
		return false, err
	}
	return true, nil
}

// finalize completes the fetched run r within the transaction when every
// page of its manifest has been applied, and reports whether it did. A run
// that would delete more than threshold (a fraction; 0 is no limit) of the
// connector's users or entitlements holds those deletions (see guard).
func (w *wtx) finalize(ctx context.Context, runID string, r runRow, threshold float64) (bool, error) {
	var missing int64
	err := w.tx.QueryRow(ctx, `SELECT `+missingPages+` FROM runs r WHERE r.connector_id = $1 AND r.run_id = $2`,
		w.cid, runID).Scan(&missing)
	if err != nil {
		return false, fmt.Errorf("count pages: %w", err)
	}
	if missing > 0 {
		return false, nil
	}
	gen := r.startedMs
	// The passes over the account below are cheaper alone than shared with
	// parallel workers: at 100,000 users the pass finding users going took
	// 0.82 s in one process, and 0.95 s in three, each of them busy for
	// most of it. The transaction is exclusive: every other one of the
	// connector waits for it, and the workers' CPU is taken from them.
	if _, err := w.tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return false, fmt.Errorf("complete run: %w", err)
	}
	if err := w.analyzeIfStale(ctx); err != nil {
		return false, err
	}
	// Group admins the run did not list are gone, as of the run: an older
	// add arriving later leaves them gone.
	if _, err := w.tx.Exec(ctx, `
		UPDATE group_admins SET deleted = true, version = $2
		WHERE connector_id = $1 AND NOT deleted AND seen_at < $2 AND version < $2`, w.cid, gen); err != nil {
		return false, fmt.Errorf("expire group admins: %w", err)
	}
	grants, _, err := w.adminGrantsFor(ctx, nil, gen)
	if err != nil {
		return false, err
	}
	if err := w.upsert(ctx, grants, gen, gen); err != nil {
		return false, err
	}
	// The generation of the last completed run before this one: users
	// compared record by record since then, in this run or in one that
	// failed, may hold grants and attributes their page no longer gave.
	var prev int64
	if err := w.tx.QueryRow(ctx, `
		SELECT COALESCE(max(started_at_ms), 0) FROM runs
		WHERE connector_id = $1 AND status = 'completed' AND started_at_ms < $2`, w.cid, gen).Scan(&prev); err != nil {
		return false, fmt.Errorf("find the previous run: %w", err)
	}
	held, err := w.expireUnseen(ctx, gen, prev, threshold)
	if err != nil {
		return false, err
	}
	if held != (heldCounts{}) {
		r.held, r.deletions = held, DeletionsHeld
	}
	if _, err := w.tx.Exec(ctx, `
		DELETE FROM records WHERE connector_id = $1 AND deleted AND version < $2`,
		w.cid, gen-tombstoneTTL.Milliseconds()); err != nil {
		return false, fmt.Errorf("purge tombstones: %w", err)
	}
	if _, err := w.tx.Exec(ctx, `DELETE FROM run_pages WHERE connector_id = $1 AND run_id = $2`, w.cid, runID); err != nil {
		return false, fmt.Errorf("purge run pages: %w", err)
	}
	r.stats.created += w.stats.created
	r.stats.updated += w.stats.updated
	r.stats.deleted += w.stats.deleted
	r.stats.unchanged += w.stats.unchanged
	if _, err := w.tx.Exec(ctx, `UPDATE runs SET created = $3, updated = $4, unchanged = $5 WHERE connector_id = $1 AND run_id = $2`,
		w.cid, runID, r.stats.created, r.stats.updated, r.stats.unchanged); err != nil {
		return false, fmt.Errorf("count run: %w", err)
	}
	if err := w.endRun(ctx, runID, RunCompleted, "", r); err != nil {
		return false, err
	}
	return true, nil
}

// expireUnseen deletes what neither the run of generation gen nor a newer
// event touched: users and entitlements; group-admin grants not derived
// again; the grants and attributes that the last page comparing their user
// record by record did not give (an unchanged user's records are not marked
// one by one, so a grant of such a user is stale only if older than that
// page; prev is the generation of the last completed run before this one);
// and the grants and attributes of every user and entitlement going now.
//
// It works through the account in chunks, in key order: a run may delete
// most of an account, and the writer holds one chunk's deleted records at
// a time (spill writes them to the outbox). Each record is deleted after
// the records that depend on it, and its event follows theirs, so no
// consumer sees a dangling grant.
//
// When the users or the entitlements going are more than threshold (a
// fraction of those stored; 0 is no limit) the users and entitlements stay,
// with their grants and attributes, and expireUnseen returns how many it
// held; the rest expires as usual.
func (w *wtx) expireUnseen(ctx context.Context, gen, prev int64, threshold float64) (heldCounts, error) {
	// One pass over the users and entitlements counts those going, and
	// the users compared record by record since the last completed run (a
	// first sync compares every user; a no-op resync none).
	var going heldCounts
	var diffed int64
	if err := w.tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE r.kind = $4 AND `+goingNow+`),
		       count(*) FILTER (WHERE r.kind = $5 AND `+goingNow+`),
		       count(*) FILTER (WHERE r.kind = $4 AND r.diffed_at > $3)
		FROM records r
		WHERE r.connector_id = $1 AND r.kind IN ($4, $5) AND ((`+goingNow+`) OR (r.kind = $4 AND r.diffed_at > $3))`,
		w.cid, gen, prev, pb.Kind_KIND_SERVICE_USER, pb.Kind_KIND_ENTITLEMENT).
		Scan(&going.users, &going.entitlements, &diffed); err != nil {
		return heldCounts{}, fmt.Errorf("find unseen records: %w", err)
	}
	held, err := w.guard(ctx, going, threshold)
	if err != nil {
		return heldCounts{}, err
	}
	owners := held == (heldCounts{})
	usersGoing, entsGoing := owners && going.users > 0, owners && going.entitlements > 0
	return held, w.expireRest(ctx, gen, prev, diffed, owners, usersGoing, entsGoing)
}

// expireRest is expireUnseen past the guard: owners says whether users and
// entitlements may go, and usersGoing and entsGoing whether any do.
func (w *wtx) expireRest(ctx context.Context, gen, prev, diffed int64, owners, usersGoing, entsGoing bool) error {
	if err := w.expireAdminGrants(ctx, gen); err != nil {
		return err
	}
	if diffed > 0 {
		// Stale records are few but for a change of Zoom's data that
		// affects most users: one statement joining records with the users
		// compared finds up to spillAt of them; more go user by user. The
		// join hashes the records on their user when the users are many,
		// as in a first sync; a few users' records are probed for.
		//
		// The same pass finds the records a user's page did not give that
		// stay all the same, because an event newer than the run's start
		// gave them: what is stored for the user is then not what its page
		// gave, and the user's digest goes, so that the next run compares
		// the user again.
		find := `SELECT d.ctid AS rid, u.ctid AS uid, d.version >= $2 AS kept
				FROM records u JOIN records d ON d.connector_id = $1 AND d.user_key = u.key
				WHERE u.connector_id = $1 AND u.kind = ` + userKindSQL + ` AND u.diffed_at > $3 AND ` + unseenOfUser
		if diffed <= probeUsers {
			find = `SELECT t.rid, u.ctid AS uid, t.kept FROM records u
				CROSS JOIN LATERAL (SELECT d.ctid AS rid, d.version >= $2 AS kept FROM records d
					WHERE d.connector_id = $1 AND ` + dependentsOf("d", "u.key") + ` AND ` + unseenOfUser + ` OFFSET 0) t
				WHERE u.connector_id = $1 AND u.kind = ` + userKindSQL + ` AND u.diffed_at > $3`
		}
		stale, err := w.expire(ctx, `
			WITH s AS MATERIALIZED (`+find+`),
			undigested AS (
				UPDATE records u SET digest = NULL
				WHERE u.ctid = ANY(ARRAY(SELECT DISTINCT uid FROM s WHERE kept)) AND u.digest IS NOT NULL
			)
			`+setDeleted+`
			WHERE r.ctid = ANY(ARRAY(SELECT rid FROM s WHERE NOT kept LIMIT $4))
			RETURNING `+goneColumns, w.cid, gen, prev, spillAt)
		if err != nil {
			return err
		}
		if err := w.expired(ctx, stale); err != nil {
			return err
		}
		if len(stale) == spillAt {
			if err := w.expireUsers(ctx, gen, prev, owners); err != nil {
				return err
			}
			usersGoing = false // done too
		}
	}
	if usersGoing {
		if err := w.expireUsers(ctx, gen, math.MaxInt64, true); err != nil {
			return err
		}
	}
	if entsGoing {
		return w.expireEntitlements(ctx, gen)
	}
	return nil
}

// The chunks of expireUnseen: users and entitlements per statement, and
// dependents per statement when one entitlement may have any number.
var (
	userChunk        = 1000
	entitlementChunk = 100
)

// probeUsers is how many users' records at most a statement probes for,
// one key range each, rather than hashing the records of the connector on
// their user: about what one pass over 100,000 users' records costs.
var probeUsers int64 = 10000

// dependents is a LATERAL join to the grants and attributes d of each user
// u (a relation with a key column) that meet cond, probed for in the
// user's key range: their ctid as t.rid. OFFSET 0 keeps the planner from
// turning the probes into a pass over every record, which it would choose
// for want of an estimate of a key range.
func dependents(u, cond string) string {
	return `CROSS JOIN LATERAL (SELECT d.ctid AS rid FROM records d
					WHERE d.connector_id = $1 AND ` + dependentsOf("d", u+".key") + ` AND ` + cond + ` OFFSET 0) t`
}

// holders is a LATERAL join to the grants d of each entitlement e (a
// relation with a key column) that meet cond, probed for in the ent_key
// index: their ctid as t.rid.
func holders(e, cond string) string {
	return `CROSS JOIN LATERAL (SELECT d.ctid AS rid FROM records d
					WHERE d.connector_id = $1 AND d.ent_key = ` + e + `.key AND d.kind = ` + grantKindSQL + ` AND ` + cond + ` OFFSET 0) t`
}

const (
	setDeleted = `UPDATE records r SET deleted = true, version = GREATEST(r.version, $2)`
	// goingNow selects the records of generation $2's run that it did not
	// see and that no newer event touched.
	goingNow = `NOT r.deleted AND r.seen_at < $2 AND r.version < $2`
	// staleOfUser selects the grants and attributes d of a user u compared
	// record by record at u.diffed_at that its page no longer gave, and
	// that no event of generation $2 or newer touched. Group-admin grants
	// come from the admin listings instead.
	staleOfUser = `d.version < $2 AND ` + unseenOfUser
	// unseenOfUser selects the live grants and attributes d of a user u
	// compared record by record at u.diffed_at that its page did not give.
	unseenOfUser = `d.kind IN ` + dependentKindsSQL + ` AND NOT d.deleted AND d.seen_at < u.diffed_at
		AND COALESCE(d.ent_key, '') NOT LIKE 'group_admin:%'`
)

// expireAdminGrants deletes the group-admin grants the run did not derive
// again. Every one derives from a group_admins row: one probe of the
// ent_key index per group.
func (w *wtx) expireAdminGrants(ctx context.Context, gen int64) error {
	_, err := w.expireAll(ctx, setDeleted+`
		WHERE r.ctid = ANY(ARRAY(
			SELECT t.rid
			FROM (SELECT DISTINCT 'group_admin:' || g.group_id AS key FROM group_admins g WHERE g.connector_id = $1) e
			`+holders("e", `NOT d.deleted AND d.seen_at < $2 AND d.version < $2`)+`
			LIMIT $3))
		RETURNING `+goneColumns, w.cid, gen)
	return err
}

// expireUsers deletes the users going (when owners is set), with their
// grants and attributes, and the stale grants and attributes of the users
// compared record by record since the generation prev (diffed_at > prev;
// none when prev is math.MaxInt64), userChunk users at a time.
func (w *wtx) expireUsers(ctx context.Context, gen, prev int64, owners bool) error {
	last := ""
	for {
		rows, err := w.tx.Query(ctx, `
			SELECT r.key, `+goingNow+`, r.diffed_at
			FROM records r
			WHERE r.connector_id = $1 AND r.kind = `+userKindSQL+` AND r.key > $4
			  AND ((`+goingNow+`) OR r.diffed_at > $3)
			ORDER BY r.key LIMIT $5`, w.cid, gen, prev, last, userChunk)
		if err != nil {
			return fmt.Errorf("find unseen users: %w", err)
		}
		var going, diffed []string
		var diffedAt []int64
		n := 0
		for rows.Next() {
			var key string
			var isGoing bool
			var at int64
			if err := rows.Scan(&key, &isGoing, &at); err != nil {
				rows.Close()
				return fmt.Errorf("find unseen users: %w", err)
			}
			if isGoing && owners {
				going = append(going, key)
			}
			if at > prev {
				diffed = append(diffed, key)
				diffedAt = append(diffedAt, at)
			}
			last = key
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find unseen users: %w", err)
		}
		if len(diffed) > 0 {
			if _, err := w.expireAll(ctx, setDeleted+`
				WHERE r.ctid = ANY(ARRAY(
					SELECT t.rid FROM unnest($3::text[], $4::bigint[]) AS u(key, diffed_at)
					`+dependents("u", staleOfUser)+`
					LIMIT $5))
				RETURNING `+goneColumns, w.cid, gen, diffed, diffedAt); err != nil {
				return err
			}
		}
		if len(going) > 0 {
			if err := w.expireOwners(ctx, pb.Kind_KIND_SERVICE_USER, gen, going, dependents("k", `NOT d.deleted`)); err != nil {
				return err
			}
		}
		if n < userChunk {
			return nil
		}
	}
}

// expireEntitlements deletes the entitlements going, after their grants,
// entitlementChunk entitlements at a time; their grants, of which one
// entitlement may have any number, go spillAt at a time.
func (w *wtx) expireEntitlements(ctx context.Context, gen int64) error {
	last := ""
	for {
		rows, err := w.tx.Query(ctx, `
			SELECT r.key FROM records r
			WHERE r.connector_id = $1 AND r.kind = `+entitlementKindSQL+` AND r.key > $3 AND `+goingNow+`
			ORDER BY r.key LIMIT $4`, w.cid, gen, last, entitlementChunk)
		if err != nil {
			return fmt.Errorf("find unseen entitlements: %w", err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("find unseen entitlements: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		if err := w.expireOwners(ctx, pb.Kind_KIND_ENTITLEMENT, gen, keys, holders("k", `NOT d.deleted`)); err != nil {
			return err
		}
		if len(keys) < entitlementChunk {
			return nil
		}
		last = keys[len(keys)-1]
	}
}

// expireOwners deletes the users or entitlements (kind) with these keys,
// after the records that depend on them, which lateral (a LATERAL join from
// k(key) giving t.rid) finds.
func (w *wtx) expireOwners(ctx context.Context, kind pb.Kind, gen int64, keys []string, lateral string) error {
	if _, err := w.expireAll(ctx, setDeleted+`
		WHERE r.ctid = ANY(ARRAY(
			SELECT t.rid FROM unnest($3::text[]) AS k(key) `+lateral+`
			LIMIT $4))
		RETURNING `+goneColumns, w.cid, gen, keys); err != nil {
		return err
	}
	owners, err := w.expireKeys(ctx, kind, gen, keys)
	if err != nil {
		return err
	}
	return w.expired(ctx, owners)
}

// expireKeys deletes the records of kind with these keys.
func (w *wtx) expireKeys(ctx context.Context, kind pb.Kind, gen int64, keys []string) ([]gone, error) {
	return w.expire(ctx, setDeleted+`
		FROM unnest($3::text[]) AS k(key)
		CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, `$4`, `k.key`, "")+`) t
		WHERE r.ctid = t.rid
		RETURNING `+goneColumns, w.cid, gen, keys, int16(kind))
}

// expireAll runs an UPDATE that deletes at most spillAt records, given as
// its last argument, until it deletes fewer, and emits and spills the
// deletions of each round. It returns how many it deleted.
//
// Such an UPDATE names its rows as r.ctid = ANY(ARRAY(SELECT … LIMIT n)),
// a TID scan. Joined to the subquery instead (FROM (…) t WHERE r.ctid =
// t.rid), the rows were found by hashing every row of the table: 175 ms
// instead of 113 for a chunk of 1,000 users in a 160,000-record table,
// and growing with the table.
func (w *wtx) expireAll(ctx context.Context, sql string, args ...any) (int64, error) {
	args = append(args, spillAt)
	var n int64
	for {
		gone, err := w.expire(ctx, sql, args...)
		if err != nil {
			return n, err
		}
		n += int64(len(gone))
		if err := w.expired(ctx, gone); err != nil || len(gone) < spillAt {
			return n, err
		}
	}
}

// expired emits the deleted events of one chunk and spills them to the
// outbox when enough are held.
func (w *wtx) expired(ctx context.Context, gone []gone) error {
	w.emitGone(gone)
	return w.spill(ctx)
}

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

// passKey names one pass of a listing in run_pages: pages of an abandoned
// pass must not count towards the completion of the pass that replaced it.
func passKey(key string, pass int32) string {
	if pass == 0 {
		return key
	}
	return fmt.Sprintf("%s#%d", key, pass)
}

func grantRecord(userKey, entKey string) (*pb.Record, error) {
	data, err := clarity.Marshal(clarity.Grant{UserID: userKey, EntitlementID: entKey})
	if err != nil {
		return nil, err
	}
	return &pb.Record{
		Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: clarity.GrantKey(userKey, entKey),
		Data: data, Hash: clarity.Hash(data), UserKey: userKey, EntitlementKey: entKey,
	}, nil
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
