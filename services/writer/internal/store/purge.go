package store

import (
	"context"
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Purge deletes every live record of a connector removed from the registry,
// each with its deleted event: grants and attributes first, then users,
// then entitlements, so that no consumer sees a grant outlive its owner. It
// returns how many records it deleted; a connector with none stored (or
// never seen) deletes nothing and creates nothing.
func (s *Store) Purge(ctx context.Context, c pipeline.ConnectorRef) (int64, error) {
	var known bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM connectors WHERE tenant = $1 AND connector = $2)`,
		c.Tenant, c.ID).Scan(&known); err != nil {
		return 0, fmt.Errorf("find connector: %w", err)
	}
	if !known {
		return 0, nil
	}
	w, err := s.begin(ctx, c, exclusive)
	if err != nil {
		return 0, err
	}
	defer w.tx.Rollback(ctx) //nolint:errcheck
	// Tombstones carry the purge's time as their version, so that an
	// event older than the purge cannot bring a record back.
	now := s.now().UnixMilli()
	var n int64
	for _, kinds := range [][]pb.Kind{
		{pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE},
		{pb.Kind_KIND_SERVICE_USER},
		{pb.Kind_KIND_ENTITLEMENT},
	} {
		k := make([]int16, len(kinds))
		for i, kind := range kinds {
			k[i] = int16(kind)
		}
		got, err := w.expireAll(ctx, setDeleted+`
			WHERE r.ctid = ANY(ARRAY(
				SELECT d.ctid FROM records d
				WHERE d.connector_id = $1 AND NOT d.deleted AND d.kind = ANY($3::smallint[])
				LIMIT $4))
			RETURNING `+goneColumns, w.cid, now, k)
		if err != nil {
			return n, fmt.Errorf("purge %s: %w", c, err)
		}
		n += got
	}
	if _, err := w.tx.Exec(ctx, `DELETE FROM group_admins WHERE connector_id = $1`, w.cid); err != nil {
		return n, fmt.Errorf("purge %s: %w", c, err)
	}
	if err := s.commit(ctx, w); err != nil {
		return n, err
	}
	s.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("deleted", n).Msg("connector purged")
	return n, nil
}
