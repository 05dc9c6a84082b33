package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"sort"
	"strconv"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
)

// userGroup is one user of a users page with the records the page gives
// for it.
type userGroup struct {
	key     string
	records []*pb.Record
	digest  []byte
}

// groupByUser splits a users page by owner. Records without an owner (none
// are expected) belong to no group and always take the record-by-record path.
func groupByUser(recs []*pb.Record) (groups []*userGroup) {
	idx := map[string]*userGroup{}
	for _, r := range recs {
		if r.UserKey == "" {
			continue
		}
		g := idx[r.UserKey]
		if g == nil {
			g = &userGroup{key: r.UserKey}
			idx[r.UserKey] = g
			groups = append(groups, g)
		}
		g.records = append(g.records, r)
	}
	for _, g := range groups {
		g.digest = digest(g.records)
	}
	return groups
}

// digest identifies a user's whole record set: kinds, keys and data hashes,
// in key order.
func digest(recs []*pb.Record) []byte {
	sorted := append([]*pb.Record(nil), recs...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Kind != sorted[j].Kind {
			return sorted[i].Kind < sorted[j].Kind
		}
		return sorted[i].Key < sorted[j].Key
	})
	h := sha256.New()
	var buf []byte
	for _, r := range sorted {
		buf = strconv.AppendInt(buf[:0], int64(r.Kind), 10)
		buf = append(buf, 0)
		buf = append(buf, r.Key...)
		buf = append(buf, 0)
		buf = append(buf, r.Hash...)
		h.Write(buf)
	}
	return h.Sum(nil)
}

// applyUsers applies a page of users. A user whose digest matches the one
// stored is unchanged as a whole: only its row is marked as seen. Any other
// user is compared record by record, all its records are marked as seen, and
// the row remembers the new digest and that this run compared it, so that the
// run's completion deletes the grants and attributes the page no longer gave.
//
// One statement reads the users, without a lock, and marks the unchanged
// ones as seen; a user whose row another transaction changed meanwhile is
// compared record by record (under the locks upsert takes) instead. A no-op
// resync thus reads and writes each user row once.
func (w *wtx) applyUsers(ctx context.Context, recs []*pb.Record, version, gen int64) error {
	groups := groupByUser(recs)
	keys := make([]string, len(groups))
	pageDigests := make([][]byte, len(groups))
	for i, g := range groups {
		keys[i], pageDigests[i] = g.key, g.digest
	}
	type stored struct {
		version  int64
		seenAt   int64
		diffedAt int64
		deleted  bool
	}
	have := make(map[string]stored, len(groups))
	same := map[string]bool{}
	// One statement reads the page's users and marks as seen those whose
	// stored digest is the page's. It joins the rows it marks on the ctid it
	// read: a row another transaction changed meanwhile no longer joins, is
	// not marked, and is compared record by record below.
	rows, err := w.tx.Query(ctx, `
		WITH old AS (
			SELECT d.key, d.digest AS page_digest, r.rid, r.digest, r.version, r.seen_at, r.diffed_at, r.deleted
			FROM unnest($2::text[], $3::bytea[]) AS d(key, digest)
			CROSS JOIN LATERAL (`+probe(`r.ctid AS rid, r.digest, r.version, r.seen_at, r.diffed_at, r.deleted`, userKindSQL, `d.key`, "")+`) r
		), marked AS (
			UPDATE records r SET seen_at = GREATEST(r.seen_at, $4), version = GREATEST(r.version, $5)
			FROM old
			WHERE r.ctid = old.rid AND old.digest = old.page_digest AND NOT old.deleted AND old.version <= $5
			RETURNING r.key
		)
		SELECT old.key, old.version, old.seen_at, old.diffed_at, old.deleted, marked.key IS NOT NULL
		FROM old LEFT JOIN marked ON marked.key = old.key`,
		w.cid, keys, pageDigests, gen, version)
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	for rows.Next() {
		var k string
		var s stored
		var marked bool
		if err := rows.Scan(&k, &s.version, &s.seenAt, &s.diffedAt, &s.deleted, &marked); err != nil {
			rows.Close()
			return fmt.Errorf("read users: %w", err)
		}
		have[k] = s
		if marked {
			same[k] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users: %w", err)
	}

	// A user without a row, as every user of a first sync, has nothing
	// stored as a rule: its records are created without a lookup.
	fresh := map[string]bool{}
	for _, g := range groups {
		if _, ok := have[g.key]; !ok {
			fresh[g.key] = true
		}
	}

	var diffKeys []string
	var digests [][]byte
	for _, g := range groups {
		if same[g.key] {
			if have[g.key].seenAt < gen {
				w.stats.unchanged += int64(len(g.records))
			}
			continue
		}
		diffKeys = append(diffKeys, g.key)
		if have[g.key].diffedAt == gen {
			// Another page of this run compared the user (its status
			// changed while the run read the listings): the records that
			// page gave stay, and this page's digest does not cover them.
			digests = append(digests, nil)
		} else {
			digests = append(digests, g.digest)
		}
	}
	// The rest keeps the page's order, so that events follow it.
	diff := make([]*pb.Record, 0, len(recs))
	for _, r := range recs {
		if !same[r.UserKey] {
			diff = append(diff, r)
		}
	}
	// Users the upsert creates take their digest in the same COPY; the
	// others are updated below.
	page := &usersPage{digests: make(map[string][]byte, len(diffKeys)), fresh: fresh}
	for i, k := range diffKeys {
		page.digests[k] = digests[i]
	}
	if err := w.upsertFresh(ctx, diff, version, gen, page); err != nil {
		return err
	}
	left := page.digests
	if len(left) > 0 {
		diffKeys, digests = diffKeys[:0], digests[:0]
		for k, d := range left {
			diffKeys = append(diffKeys, k)
			digests = append(digests, d)
		}
		// A user whose row is newer than the page has no digest left:
		// upsert found its record newer (see unshaped).
		if _, err := w.tx.Exec(ctx, `
			UPDATE records r SET digest = d.digest, diffed_at = $4
			FROM unnest($2::text[], $3::bytea[]) AS d(key, digest)
			CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, userKindSQL, `d.key`, "")+`) t
			WHERE r.ctid = t.rid`,
			w.cid, diffKeys, digests, gen); err != nil {
			return fmt.Errorf("remember user digests: %w", err)
		}
	}
	return nil
}

// usersPage is what applying one users page shares with upsert and the
// statements under it, passed along as a value: nil for any other input.
type usersPage struct {
	// digests holds the page's digest of each user it compares record by
	// record; create takes out those it stores with the user's row. A nil
	// digest is stored as none (see unshaped).
	digests map[string][]byte
	// fresh holds the page's users of whom nothing is stored: their
	// records need no lookup (see upsertFresh).
	fresh map[string]bool
}

// isFresh reports whether the page takes nothing to be stored for the user.
func (p *usersPage) isFresh(userKey string) bool { return p != nil && p.fresh[userKey] }

// unshaped drops the page's digest of a user one of whose records the page
// did not set (a newer event shaped it, or its owner is gone): the user's
// records are then not what the page gave, and a later page giving the
// same must compare them again. Outside a users page it does nothing.
func (p *usersPage) unshaped(userKey string) {
	if p == nil {
		return
	}
	if _, ok := p.digests[userKey]; ok {
		p.digests[userKey] = nil
	}
}

// takeDigest returns the page's digest of the user keyed userKey, if it
// has one, and forgets it: the user's row is created with it.
func (p *usersPage) takeDigest(userKey string) ([]byte, bool) {
	if p == nil {
		return nil, false
	}
	d, ok := p.digests[userKey]
	if ok {
		delete(p.digests, userKey)
	}
	return d, ok
}

// upsertFresh applies recs as upsert does, taking the page's fresh users to
// have nothing stored: their records are created without being looked up.
// Such a user may have records all the same (a webhook may have given a
// grant before the user was first seen); creating one breaks the primary
// key's uniqueness, and the records are then applied again, each looked up.
func (w *wtx) upsertFresh(ctx context.Context, recs []*pb.Record, version, seenAt int64, page *usersPage) error {
	if len(page.fresh) == 0 {
		return w.upsert(ctx, recs, version, seenAt, true, page)
	}
	if _, err := w.tx.Exec(ctx, `SAVEPOINT fresh`); err != nil {
		return fmt.Errorf("create records: %w", err)
	}
	changes, stats, digests := len(w.changes), w.stats, maps.Clone(page.digests)
	err := w.upsert(ctx, recs, version, seenAt, true, page)
	if postgres.SQLState(err) == postgres.UniqueViolation {
		if _, err := w.tx.Exec(ctx, `ROLLBACK TO SAVEPOINT fresh`); err != nil {
			return fmt.Errorf("create records: %w", err)
		}
		// Again as it was before, with every record looked up.
		w.changes, w.stats = w.changes[:changes], stats
		page.digests, page.fresh = digests, nil
		err = w.upsert(ctx, recs, version, seenAt, true, page)
	}
	if err != nil {
		return err
	}
	// Released, the savepoint's work joins the transaction's: savepoints
	// kept open pile up as the transaction's pages go on.
	if _, err := w.tx.Exec(ctx, `RELEASE SAVEPOINT fresh`); err != nil {
		return fmt.Errorf("create records: %w", err)
	}
	return nil
}
