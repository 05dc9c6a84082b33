package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// ApplyChange applies an incremental change (from a webhook, or from
// re-reading one user) at the batch's Zoom time. Nothing in it overwrites or
// deletes state newer than that time, so events may arrive late, twice or out
// of order.
func (s *Store) ApplyChange(ctx context.Context, c pipeline.ConnectorRef, b *pb.RecordBatch) error {
	return s.ApplyChanges(ctx, c, []*pb.RecordBatch{b})
}

// ApplyChanges applies incremental changes in one transaction, in order,
// each at its own Zoom time as ApplyChange applies one: the users one
// listing page read back for their hints, which then cost one lock of the
// connector and one commit rather than one each.
func (s *Store) ApplyChanges(ctx context.Context, c pipeline.ConnectorRef, bs []*pb.RecordBatch) error {
	if len(bs) == 0 {
		return fmt.Errorf("%w: no changes", ErrBadBatch)
	}
	for _, b := range bs {
		if b.VersionMs <= 0 {
			return fmt.Errorf("%w: change without a Zoom time", ErrBadBatch)
		}
		if b.Run != nil {
			return fmt.Errorf("%w: a page of a run among changes", ErrBadBatch)
		}
		hashRecords(b.Records)
	}
	w, err := s.begin(ctx, c, exclusive)
	if err != nil {
		return err
	}
	w.changedUsers = map[string]bool{}
	orphans := 0
	for _, b := range bs {
		n, err := w.applyChange(ctx, b)
		if err != nil {
			_ = w.tx.Rollback(ctx)
			return err
		}
		orphans += n
	}
	// Once for every change: the users they touched.
	if err := w.forgetDigests(ctx); err != nil {
		_ = w.tx.Rollback(ctx)
		return err
	}
	if orphans > 0 {
		s.log.Debug().Str("tenant", c.Tenant).Str("connector", c.ID).Int("records", orphans).
			Msg("grants and attributes of users not stored left for the next full sync")
	}
	return s.commit(ctx, w)
}

// applyChange applies b and returns how many of its records it left out
// because their user does not exist (see withoutOrphans).
func (w *wtx) applyChange(ctx context.Context, b *pb.RecordBatch) (int, error) {
	v := b.VersionMs
	for _, d := range b.Deletes {
		if err := w.deleteCascade(ctx, d, v); err != nil {
			return 0, err
		}
	}
	recs, orphans, err := w.withoutOrphans(ctx, b.Records)
	if err != nil {
		return 0, err
	}
	// A user read back is an observation of Zoom at v; an event's records
	// changed at v.
	if err := w.upsert(ctx, recs, v, 0, b.ReplaceUser != "", nil); err != nil {
		return 0, err
	}
	if b.ReplaceUser != "" {
		// A user read by id gives no enrichment attribute: those stay.
		keep := enrichmentKeys(b.ReplaceUser)
		for _, r := range b.Records {
			if r.UserKey == b.ReplaceUser && r.Kind != pb.Kind_KIND_SERVICE_USER {
				keep = append(keep, r.Key)
			}
		}
		// Group-admin grants come from the admin listing, not from the user.
		if _, err := w.tombstone(ctx, v, dependentsOf("r", "$3")+` AND r.version <= $2
			AND r.key <> ALL($4::text[]) AND COALESCE(r.ent_key, '') NOT LIKE 'group_admin:%'`,
			b.ReplaceUser, keep); err != nil {
			return 0, err
		}
	}
	for _, ga := range b.AdminsRemoved {
		if err := w.removeAdmins(ctx, ga, v); err != nil {
			return 0, err
		}
	}
	for _, ga := range b.AdminsAdded {
		if err := w.addAdmins(ctx, ga, v); err != nil {
			return 0, err
		}
	}
	// New admins, and new users who are admins already, get their grants.
	var emails []string
	for _, ga := range b.AdminsAdded {
		emails = append(emails, ga.Emails...)
	}
	for _, r := range b.Records {
		if r.Kind == pb.Kind_KIND_SERVICE_USER && r.Email != "" {
			emails = append(emails, r.Email)
		}
	}
	if len(emails) > 0 {
		grants, versions, err := w.adminGrantsFor(ctx, lowerEmails(emails), 0)
		if err != nil {
			return 0, err
		}
		// A grant is as new as the admin row it derives from, not as the
		// change that led to it (a re-read user, say): an older removal
		// of the admin arriving later must still take it away.
		byVersion := map[int64][]*pb.Record{}
		for i, g := range grants {
			byVersion[versions[i]] = append(byVersion[versions[i]], g)
		}
		for _, at := range slices.Sorted(maps.Keys(byVersion)) {
			if err := w.upsert(ctx, byVersion[at], at, 0, false, nil); err != nil {
				return 0, err
			}
		}
	}
	return orphans, nil
}

// forgetDigests drops the stored digest of every user whose records the
// transaction's changes touched: the next users page must compare them
// record by record, since the digest no longer describes what is stored.
func (w *wtx) forgetDigests(ctx context.Context) error {
	if len(w.changedUsers) == 0 {
		return nil
	}
	keys := make([]string, 0, len(w.changedUsers))
	for k := range w.changedUsers {
		keys = append(keys, k)
	}
	if _, err := w.tx.Exec(ctx, `
		UPDATE records r SET digest = NULL FROM unnest($2::text[]) AS u(key)
		CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, userKindSQL, `u.key`, "")+`) t
		WHERE r.ctid = t.rid AND r.digest IS NOT NULL`, w.cid, keys); err != nil {
		return fmt.Errorf("forget user digests: %w", err)
	}
	return nil
}

// deleteCascade deletes a record and what depends on it: a user's grants and
// attributes, an entitlement's grants.
func (w *wtx) deleteCascade(ctx context.Context, d *pb.RecordRef, v int64) error {
	if pipeline.KindName(d.Kind) == "" || d.Key == "" {
		return fmt.Errorf("%w: delete of kind %v key %q", ErrBadBatch, d.Kind, d.Key)
	}
	switch d.Removal {
	case "", clarity.RemovalDeleted, clarity.RemovalDisassociated, clarity.RemovalAbsent:
	default:
		return fmt.Errorf("%w: delete of %q with removal %.32q", ErrBadBatch, d.Key, d.Removal)
	}
	var dependents string
	switch d.Kind {
	case pb.Kind_KIND_SERVICE_USER:
		dependents = dependentsOf("r", "$3")
	case pb.Kind_KIND_ENTITLEMENT:
		dependents = `r.ent_key = $3`
	}
	if d.Kind == pb.Kind_KIND_SERVICE_USER {
		w.removal = d.Removal
		defer func() { w.removal = "" }()
	}
	// A record newer than the deletion stays, and so do its dependents: a
	// full sync that found a user unchanged confirmed its records with it,
	// without raising their versions one by one. Otherwise its dependents
	// follow the same rule one by one, and go first.
	if dependents != "" {
		if _, err := w.tombstone(ctx, v, `r.version <= $2 AND r.kind IN `+dependentKindsSQL+` AND `+dependents+`
			AND NOT EXISTS (SELECT 1 FROM records o WHERE o.connector_id = $1 AND o.kind = $4 AND o.key = $3 AND o.version > $2)`,
			d.Key, int16(d.Kind)); err != nil {
			return err
		}
	}
	if _, err := w.tombstone(ctx, v, `r.version <= $2 AND r.kind = $3 AND r.key = $4`, int16(d.Kind), d.Key); err != nil {
		return err
	}
	if d.Kind == pb.Kind_KIND_ENTITLEMENT && strings.HasPrefix(d.Key, "group_admin:") {
		if err := w.dropAdmins(ctx, strings.TrimPrefix(d.Key, "group_admin:"), v); err != nil {
			return err
		}
	}
	// A tombstone remembers the deletion time even for a record never seen,
	// so that an older create arriving later stays dead.
	if _, err := w.tx.Exec(ctx, `
		INSERT INTO records (connector_id, kind, key, data, hash, version, deleted)
		VALUES ($1, $2, $3, '{}', '\x'::bytea, $4, true)
		ON CONFLICT (connector_id, kind, key) DO UPDATE SET version = GREATEST(records.version, excluded.version)
		WHERE records.deleted`, w.cid, int16(d.Kind), d.Key, v); err != nil {
		return fmt.Errorf("write tombstone: %w", err)
	}
	return nil
}
