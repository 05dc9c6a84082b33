package store

import (
	"context"
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// withoutOrphans returns the records of an incremental change without the
// grants and attributes of users that neither the change nor the store
// holds (a deleted user's tombstone holds none), and how many it left out.
//
// A group.member_added event names its members by id and email, and does
// not say whether a member's invitation is pending: the normalizer grants
// both the id and the invitee key of the email, and only the key of a user
// that exists keeps its grant. A grant of a user not yet known (its re-read
// or the listing that brings it is still to come) waits for the next full
// sync or re-read, which brings the user with all of its grants.
//
// recs is not changed; the result shares its records.
func (w *wtx) withoutOrphans(ctx context.Context, recs []*pb.Record) ([]*pb.Record, int, error) {
	users := map[string]bool{}
	var owners []string
	for _, r := range recs {
		if r.Kind == pb.Kind_KIND_SERVICE_USER {
			users[r.Key] = true
		}
	}
	asked := map[string]bool{}
	for _, r := range recs {
		if r.UserKey == "" || r.Kind == pb.Kind_KIND_SERVICE_USER || users[r.UserKey] || asked[r.UserKey] {
			continue
		}
		asked[r.UserKey] = true
		owners = append(owners, r.UserKey)
	}
	if len(owners) == 0 {
		return recs, 0, nil
	}
	rows, err := w.tx.Query(ctx, `
		SELECT u.key FROM unnest($2::text[]) AS u(key)
		WHERE EXISTS (SELECT 1 FROM records r
			WHERE r.connector_id = $1 AND r.kind = `+userKindSQL+` AND r.key = u.key AND NOT r.deleted)`, w.cid, owners)
	if err != nil {
		return nil, 0, fmt.Errorf("find users of grants: %w", err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("find users of grants: %w", err)
		}
		users[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("find users of grants: %w", err)
	}
	kept := make([]*pb.Record, 0, len(recs))
	for _, r := range recs {
		if r.UserKey != "" && r.Kind != pb.Kind_KIND_SERVICE_USER && !users[r.UserKey] {
			continue
		}
		kept = append(kept, r)
	}
	return kept, len(recs) - len(kept), nil
}
