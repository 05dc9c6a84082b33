package store

import (
	"context"
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// countRecordsSQL counts a connector's live records of each kind in one
// pass over its range of the primary key (connector_id, kind, key);
// tombstones are read and skipped. Each kind is named by its constant, in
// the order of clarity.Kinds.
const countRecordsSQL = `SELECT
	count(*) FILTER (WHERE kind = ` + userKindSQL + `),
	count(*) FILTER (WHERE kind = ` + entitlementKindSQL + `),
	count(*) FILTER (WHERE kind = ` + grantKindSQL + `),
	count(*) FILTER (WHERE kind = ` + attributeKindSQL + `)
FROM records WHERE connector_id = $1 AND NOT deleted`

// CountRecords returns the number of the connector's live records of each
// kind, by kind name (every kind of clarity.Kinds present). A connector the
// store never wrote has none of any kind.
func (s *Store) CountRecords(ctx context.Context, c pipeline.ConnectorRef) (map[string]int64, error) {
	out := make(map[string]int64, len(clarity.Kinds))
	for _, k := range clarity.Kinds {
		out[k] = 0
	}
	var cid int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT id FROM connectors WHERE tenant = $1 AND connector = $2), 0)`,
		c.Tenant, c.ID).Scan(&cid)
	if err != nil {
		return nil, fmt.Errorf("find connector: %w", err)
	}
	if cid == 0 {
		return out, nil
	}
	var users, ents, grants, attrs int64
	if err := s.pool.QueryRow(ctx, countRecordsSQL, cid).Scan(&users, &ents, &grants, &attrs); err != nil {
		return nil, fmt.Errorf("count records: %w", err)
	}
	out[clarity.KindServiceUser] = users
	out[clarity.KindEntitlement] = ents
	out[clarity.KindServiceUserEntitlement] = grants
	out[clarity.KindServiceUserAttribute] = attrs
	return out, nil
}
