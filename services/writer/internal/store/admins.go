package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// adminGrantsFor derives the group-admin grants of the users with these
// emails (of every user when emails is nil) from the live group admins,
// matched to live users by lower-case email, with the version of the admin
// row each derives from. Only users seen or changed at or after liveSince
// count: a run's finalize passes its generation, so that a user it is
// about to delete gets no grant.
func (w *wtx) adminGrantsFor(ctx context.Context, emails []string, liveSince int64) ([]*pb.Record, []int64, error) {
	rows, err := w.tx.Query(ctx, `
		SELECT g.group_id, u.key, max(g.version)
		FROM group_admins g
		JOIN records u ON u.connector_id = g.connector_id AND u.kind = `+userKindSQL+` AND u.email = g.email AND NOT u.deleted
		  AND (u.seen_at >= $3 OR u.version >= $3)
		WHERE g.connector_id = $1 AND NOT g.deleted AND ($2::text[] IS NULL OR g.email = ANY($2::text[]))
		GROUP BY g.group_id, u.key`,
		w.cid, emails, liveSince)
	if err != nil {
		return nil, nil, fmt.Errorf("derive admin grants: %w", err)
	}
	defer rows.Close()
	var out []*pb.Record
	var versions []int64
	for rows.Next() {
		var group, user string
		var version int64
		if err := rows.Scan(&group, &user, &version); err != nil {
			return nil, nil, fmt.Errorf("derive admin grants: %w", err)
		}
		rec, err := grantRecord(user, clarity.GroupAdminKey(group))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, rec)
		versions = append(versions, version)
	}
	return out, versions, rows.Err()
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

// lowerEmails returns the emails in lower case, each once: emails are
// compared in lower case, and one statement must not write a row twice.
func lowerEmails(in []string) []string {
	out := make([]string, 0, len(in))
	for _, e := range in {
		if e = strings.ToLower(e); !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}
