package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
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
	for _, r := range sorted {
		fmt.Fprintf(h, "%d\x00%s\x00", r.Kind, r.Key)
		h.Write(r.Hash)
	}
	return h.Sum(nil)
}

// applyUsers applies a page of users. A user whose digest matches the one
// stored is unchanged as a whole: only its row is marked as seen. Any other
// user is compared record by record, all its records are marked as seen, and
// the row remembers the new digest and that this run compared it, so that the
// run's completion deletes the grants and attributes the page no longer gave.
func (w *wtx) applyUsers(ctx context.Context, recs []*pb.Record, version, gen int64) error {
	groups := groupByUser(recs)
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = g.key
	}
	type stored struct {
		digest  []byte
		version int64
		seenAt  int64
		deleted bool
	}
	have := make(map[string]stored, len(groups))
	// Joined to unnest rather than "key = ANY": a generic plan for ANY scans
	// every user of the connector for each page.
	if w.mode == shared {
		slices.Sort(keys) // the lock order, see lockOrder
	}
	rows, err := w.tx.Query(ctx, `
		SELECT r.key, r.digest, r.version, r.seen_at, r.deleted
		FROM unnest($2::text[]) AS u(key)
		CROSS JOIN LATERAL (`+probe(`r.key, r.digest, r.version, r.seen_at, r.deleted`, `1`, `u.key`, w.forUpdate())+`) r`,
		w.cid, keys)
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	for rows.Next() {
		var k string
		var s stored
		if err := rows.Scan(&k, &s.digest, &s.version, &s.seenAt, &s.deleted); err != nil {
			rows.Close()
			return fmt.Errorf("read users: %w", err)
		}
		have[k] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users: %w", err)
	}

	var same []string
	var diffKeys []string
	var digests [][]byte
	skip := map[string]bool{}
	for _, g := range groups {
		s, ok := have[g.key]
		if ok && !s.deleted && s.version <= version && bytes.Equal(s.digest, g.digest) {
			same = append(same, g.key)
			skip[g.key] = true
			if s.seenAt < gen {
				w.stats.unchanged += int64(len(g.records))
			}
			continue
		}
		diffKeys = append(diffKeys, g.key)
		digests = append(digests, g.digest)
	}
	// The rest keeps the page's order, so that events follow it.
	diff := make([]*pb.Record, 0, len(recs))
	for _, r := range recs {
		if !skip[r.UserKey] {
			diff = append(diff, r)
		}
	}
	// Users the upsert creates take their digest in the same COPY; the
	// others are updated below.
	w.userDigests = make(map[string][]byte, len(diffKeys))
	for i, k := range diffKeys {
		w.userDigests[k] = digests[i]
	}
	err = w.upsert(ctx, diff, version, gen)
	left := w.userDigests
	w.userDigests = nil
	if err != nil {
		return err
	}
	diffKeys, digests = diffKeys[:0], digests[:0]
	for k, d := range left {
		diffKeys = append(diffKeys, k)
		digests = append(digests, d)
	}
	if len(same) > 0 {
		if _, err := w.tx.Exec(ctx, `
			UPDATE records r SET seen_at = $3, version = GREATEST(r.version, $4)
			FROM unnest($2::text[]) AS u(key)
			CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, `1`, `u.key`, "")+`) t
			WHERE r.ctid = t.rid AND (r.seen_at < $3 OR r.version < $4)`,
			w.cid, same, gen, version); err != nil {
			return fmt.Errorf("mark users seen: %w", err)
		}
	}
	if len(diffKeys) > 0 {
		// A user whose row is newer than the page keeps its digest: the
		// page did not shape it.
		if _, err := w.tx.Exec(ctx, `
			UPDATE records r SET digest = d.digest, diffed_at = $4
			FROM unnest($2::text[], $3::bytea[]) AS d(key, digest)
			CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, `1`, `d.key`, "")+`) t
			WHERE r.ctid = t.rid AND r.version <= $5`,
			w.cid, diffKeys, digests, gen, version); err != nil {
			return fmt.Errorf("remember user digests: %w", err)
		}
	}
	return nil
}
