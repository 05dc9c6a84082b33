package store

import (
	"context"
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

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
	admins := listedAdmins{}
	for i, b := range bs {
		var err error
		switch b.Ref.Listing {
		case pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE, pb.Listing_LISTING_USERS_PENDING:
			err = w.applyUsers(ctx, b.Records, b.VersionMs, gen)
		default:
			err = w.upsert(ctx, b.Records, b.VersionMs, gen, true, nil)
		}
		if err != nil {
			return false, err
		}
		if ga := b.GroupAdmins; ga != nil {
			admins.add(ga, b.VersionMs)
		}
		listings[i], keys[i], numbers[i] = int16(b.Ref.Listing), passKey(b.Ref.ListingKey, b.Ref.Pass), b.Ref.Page
	}
	if err := w.seeAdmins(ctx, admins, gen); err != nil {
		return false, err
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
	return r.fetched, s.commitWith(ctx, w, func(ctx context.Context) error {
		if _, err := w.tx.Exec(ctx, `
			UPDATE runs SET created = created + $3, updated = updated + $4, unchanged = unchanged + $5,
			       progress_at = now()
			WHERE connector_id = $1 AND run_id = $2`,
			w.cid, run.RunId, w.stats.created, w.stats.updated, w.stats.unchanged); err != nil {
			return fmt.Errorf("count run: %w", err)
		}
		return nil
	})
}
