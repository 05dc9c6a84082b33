package store

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// spared says which entitlements a run could not see because the account's
// plan does not offer their listing (a free Zoom account is refused groups
// and roles). Not listed is not gone: a run deletes none of them, nor their
// grants, until a run whose listing is available no longer shows them.
//
// Groups: the group: and group_admin: entitlements, the group admins (no
// admin listing was read) and the group: grants a user's page no longer
// gives (Zoom does not document what group_ids a downgraded account's users
// carry). Roles: the role: entitlements only. A user's role grant comes
// from the users listing's role_id, which a free account still has: it
// follows that listing as on any run, so that a role change is seen. (The
// license entitlements, which ride on the roles page, the run makes
// itself: see finalize.)
type spared struct {
	groups, roles bool
}

// sparedBy returns what a run with these unavailable listings spares.
func sparedBy(unavailable []string) spared {
	var s spared
	for _, u := range unavailable {
		switch u {
		case clarity.UnavailableGroups:
			s.groups = true
		case clarity.UnavailableRoles:
			s.roles = true
		}
	}
	return s
}

// deletable is an SQL condition on the entitlement record alias that holds
// unless the entitlement is spared. The key prefixes are this package's
// constants, never input.
func (s spared) deletable(alias string) string {
	var kept []string
	if s.groups {
		kept = append(kept, "starts_with("+alias+".key, 'group:')", "starts_with("+alias+".key, 'group_admin:')")
	}
	if s.roles {
		kept = append(kept, "starts_with("+alias+".key, 'role:')")
	}
	if len(kept) == 0 {
		return "true"
	}
	return "NOT (" + strings.Join(kept, " OR ") + ")"
}

// grantKept is an SQL condition on the grant or attribute record alias
// that holds when the grant stays although its user's page did not give it:
// a group membership while groups are unavailable.
func (s spared) grantKept(alias string) string {
	if !s.groups {
		return "false"
	}
	return "starts_with(COALESCE(" + alias + ".ent_key, ''), 'group:')"
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
//
// What spare names stays, and does not count towards the guard.
func (w *wtx) expireUnseen(ctx context.Context, gen, prev int64, threshold float64, spare spared) (heldCounts, error) {
	// One pass over the users and entitlements counts those going, and
	// the users compared record by record since the last completed run (a
	// first sync compares every user; a no-op resync none).
	var going heldCounts
	var diffed int64
	if err := w.tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE r.kind = $4 AND `+goingNow+`),
		       count(*) FILTER (WHERE r.kind = $5 AND `+goingNow+` AND `+spare.deletable("r")+`),
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
	return held, w.expireRest(ctx, gen, prev, diffed, owners, usersGoing, entsGoing, spare)
}

// expireRest is expireUnseen past the guard: owners says whether users and
// entitlements may go, and usersGoing and entsGoing whether any do.
func (w *wtx) expireRest(ctx context.Context, gen, prev, diffed int64, owners, usersGoing, entsGoing bool, spare spared) error {
	// Group-admin grants derive from the admin listings: without them,
	// none is known to be gone.
	if !spare.groups {
		if err := w.expireAdminGrants(ctx, gen); err != nil {
			return err
		}
	}
	if diffed > 0 {
		// Stale records are few but for a change of Zoom's data that
		// affects most users: one statement joining records with the users
		// compared finds up to Options.SpillAt of them; more go user by
		// user. The join hashes the records on their user when the users
		// are many, as in a first sync; a few users' records are probed
		// for.
		//
		// The same pass finds the records a user's page did not give that
		// stay all the same, because an event newer than the run's start
		// gave them: what is stored for the user is then not what its page
		// gave, and the user's digest goes, so that the next run compares
		// the user again. So do the grants spare keeps.
		kept := `(d.version >= $2 OR ` + spare.grantKept("d") + `)`
		find := `SELECT d.ctid AS rid, u.ctid AS uid, ` + kept + ` AS kept
				FROM records u JOIN records d ON d.connector_id = $1 AND d.user_key = u.key
				WHERE u.connector_id = $1 AND u.kind = ` + userKindSQL + ` AND u.diffed_at > $3 AND ` + unseenOfUser
		if diffed <= w.lim.probeUsers {
			find = `SELECT t.rid, u.ctid AS uid, t.kept FROM records u
				CROSS JOIN LATERAL (SELECT d.ctid AS rid, ` + kept + ` AS kept FROM records d
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
			RETURNING `+goneColumns, w.cid, gen, prev, w.lim.spillAt)
		if err != nil {
			return err
		}
		if err := w.expired(ctx, stale); err != nil {
			return err
		}
		if len(stale) == w.lim.spillAt {
			if err := w.expireUsers(ctx, gen, prev, owners, spare); err != nil {
				return err
			}
			usersGoing = false // done too
		}
	}
	if usersGoing {
		if err := w.expireUsers(ctx, gen, math.MaxInt64, true, spare); err != nil {
			return err
		}
	}
	if entsGoing {
		return w.expireEntitlements(ctx, gen, spare)
	}
	return nil
}

const (
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
	// Enrichment attributes are no page's.
	unseenOfUser = `d.kind IN ` + dependentKindsSQL + ` AND NOT d.deleted AND d.seen_at < u.diffed_at
		AND COALESCE(d.ent_key, '') NOT LIKE 'group_admin:%' AND ` + notEnrichmentOfUser
)

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
// none when prev is math.MaxInt64), Options.UserChunk users at a time.
// The grants spare keeps stay, but for those of users going.
func (w *wtx) expireUsers(ctx context.Context, gen, prev int64, owners bool, spare spared) error {
	last := ""
	for {
		rows, err := w.tx.Query(ctx, `
			SELECT r.key, `+goingNow+`, r.diffed_at
			FROM records r
			WHERE r.connector_id = $1 AND r.kind = `+userKindSQL+` AND r.key > $4
			  AND ((`+goingNow+`) OR r.diffed_at > $3)
			ORDER BY r.key LIMIT $5`, w.cid, gen, prev, last, w.lim.userChunk)
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
					`+dependents("u", staleOfUser+` AND NOT `+spare.grantKept("d"))+`
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
		if n < w.lim.userChunk {
			return nil
		}
	}
}

// expireEntitlements deletes the entitlements going, after their grants,
// Options.EntitlementChunk entitlements at a time; their grants, of which
// one entitlement may have any number, go Options.SpillAt at a time. The
// entitlements spare names stay.
func (w *wtx) expireEntitlements(ctx context.Context, gen int64, spare spared) error {
	last := ""
	for {
		rows, err := w.tx.Query(ctx, `
			SELECT r.key FROM records r
			WHERE r.connector_id = $1 AND r.kind = `+entitlementKindSQL+` AND r.key > $3 AND `+goingNow+`
			  AND `+spare.deletable("r")+`
			ORDER BY r.key LIMIT $4`, w.cid, gen, last, w.lim.entitlementChunk)
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
		if len(keys) < w.lim.entitlementChunk {
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
