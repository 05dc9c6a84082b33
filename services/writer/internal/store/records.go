package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// existing is the stored state of a record that a batch touches.
type existing struct {
	hash    []byte
	version int64
	deleted bool
	seenAt  int64
}

type rkey struct {
	kind int16
	key  string
}

// hashRecords sets the Hash of every record that arrived without one.
func hashRecords(recs []*pb.Record) {
	for _, r := range recs {
		if len(r.Hash) == 0 {
			h := sha256.Sum256(r.Data)
			r.Hash = h[:]
		}
	}
}

// upsert applies records observed at version (Zoom time, ms). seenAt, when
// non-zero, is the run generation that saw them. Each record is created,
// updated, left as it is (same hash: only its seen mark moves), or skipped
// when the store already holds a newer state. A shared transaction locks
// the rows it reads (see forUpdate). page is the users page being applied,
// nil for any other input: records of its fresh users are not looked up
// (nothing is stored for them), and a user created takes the page's digest.
//
// observed says that version is when the records were asked of Zoom (a
// page, a user read back), not when they changed (an event): Zoom answered
// with its state at some moment at or after version, maybe just before a
// deletion dated the same millisecond, so a tombstone as new as version
// keeps the records dead. An event as new as a tombstone is later than it.
func (w *wtx) upsert(ctx context.Context, recs []*pb.Record, version, seenAt int64, observed bool, page *usersPage) error {
	if len(recs) == 0 {
		return nil
	}
	// Later duplicates in one batch win; one statement must not touch a row twice.
	idx := make(map[rkey]int, len(recs))
	uniq := recs[:0:0]
	for _, r := range recs {
		if pipeline.KindName(r.Kind) == "" || r.Key == "" || len(r.Data) == 0 {
			return fmt.Errorf("%w: record kind %v key %q", ErrBadBatch, r.Kind, r.Key)
		}
		k := rkey{int16(r.Kind), r.Key}
		if i, ok := idx[k]; ok {
			uniq[i] = r
			continue
		}
		idx[k] = len(uniq)
		uniq = append(uniq, r)
	}
	lookup := uniq
	if page != nil && len(page.fresh) > 0 {
		lookup = make([]*pb.Record, 0, len(uniq))
		for _, r := range uniq {
			if !page.fresh[r.UserKey] {
				lookup = append(lookup, r)
			}
		}
	}
	old, err := w.lookup(ctx, lookup)
	if err != nil {
		return err
	}

	// A tombstone newer than deadAt wins over the input.
	deadAt := version
	if observed {
		deadAt = version - 1
	}
	gone, err := w.deletedOwners(ctx, uniq, old, deadAt, page)
	if err != nil {
		return err
	}
	var create, write, touch []*pb.Record
	for _, r := range uniq {
		k := rkey{int16(r.Kind), r.Key}
		e, found := old[k]
		kind := pipeline.KindName(r.Kind)
		switch {
		case (!found || e.deleted) && (gone[r.UserKey] || gone[r.EntitlementKey]):
			// The user or entitlement it belongs to was deleted after the
			// input was read: it is stale, and must not come back as an
			// orphan.
			w.countUnchanged(e, seenAt)
			page.unshaped(r.UserKey)
		case !found:
			create = append(create, r)
			w.emit(kind, clarity.OpCreated, r.Key, r.Data)
			w.stats.created++
		case e.version > version || (e.deleted && e.version > deadAt):
			// A newer event already shaped this record; the input is stale.
			// A live record was still seen by the run; a tombstone stays dead.
			if !e.deleted && seenAt > e.seenAt {
				touch = append(touch, r)
			}
			w.countUnchanged(e, seenAt)
			page.unshaped(r.UserKey)
		case e.deleted:
			write = append(write, r)
			w.emit(kind, clarity.OpCreated, r.Key, r.Data)
			w.stats.created++
		case !bytes.Equal(e.hash, r.Hash):
			write = append(write, r)
			w.emit(kind, clarity.OpUpdated, r.Key, r.Data)
			w.stats.updated++
		default:
			// The same state at a newer time still moves the version, so
			// that an event older than this confirmation cannot undo it.
			if seenAt > e.seenAt || version > e.version {
				touch = append(touch, r)
			}
			w.countUnchanged(e, seenAt)
		}
	}
	if err := w.create(ctx, create, version, seenAt, page); err != nil {
		return err
	}
	if err := w.write(ctx, write, version, seenAt); err != nil {
		return err
	}
	return w.touch(ctx, touch, version, seenAt)
}

// lookup returns the stored state of recs that exist, locked in a shared
// transaction. A first sync's users pages have nothing to look up.
func (w *wtx) lookup(ctx context.Context, recs []*pb.Record) (map[rkey]existing, error) {
	old := make(map[rkey]existing, len(recs))
	if len(recs) == 0 {
		return old, nil
	}
	kinds, keys := w.lockOrder(recs)
	rows, err := w.tx.Query(ctx, `
		SELECT r.kind, r.key, r.hash, r.version, r.deleted, r.seen_at
		FROM unnest($2::smallint[], $3::text[]) AS i(kind, key)
		CROSS JOIN LATERAL (`+probe(`r.kind, r.key, r.hash, r.version, r.deleted, r.seen_at`, `i.kind`, `i.key`, w.forUpdate())+`) r`,
		w.cid, kinds, keys)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k rkey
		var e existing
		if err := rows.Scan(&k.kind, &k.key, &e.hash, &e.version, &e.deleted, &e.seenAt); err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		old[k] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return old, nil
}

// probe is a subquery for LATERAL: the columns cols of the record of
// connector $1 with the given kind and key, looked up through the primary
// key, then locked by the clause lock (may be empty). Joining unnest to
// records directly leaves the plan to the planner, which right after a bulk
// load has no statistics and may scan every record of the connector for
// each batch; a LATERAL subquery is one index probe per key. OFFSET 0 keeps
// the planner from folding it into a join; LIMIT 1 would too, but invites a
// plan that walks some other index hoping for an early match.
// A statement updating the rows it finds joins on their ctid: they cannot
// move meanwhile, being locked by this transaction (shared) or written by
// no other (exclusive).
func probe(cols, kind, key, lock string) string {
	return `SELECT ` + cols + ` FROM records r WHERE r.connector_id = $1 AND r.kind = ` + kind +
		` AND r.key = ` + key + ` OFFSET 0` + lock
}

// dependentsOf is the condition that d is a grant or attribute of the user
// whose key is the text expression user. Their keys are "<user key>|…", a
// range of the primary key in byte order (the key column collates "C"); the
// user_key test makes it exact should a user key itself hold a "|".
func dependentsOf(d, user string) string {
	return d + `.kind IN ` + dependentKindsSQL + ` AND ` + d + `.key >= (` + user + `)::text || '|' AND ` +
		d + `.key < (` + user + `)::text || '}' AND ` + d + `.user_key = ` + user
}

// lockOrder returns the kinds and keys of recs, sorted in a shared
// transaction so that transactions lock the rows they share in one order.
func (w *wtx) lockOrder(recs []*pb.Record) ([]int16, []string) {
	if w.mode == shared {
		recs = slices.Clone(recs)
		slices.SortFunc(recs, func(a, b *pb.Record) int {
			if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
				return c
			}
			return strings.Compare(a.Key, b.Key)
		})
	}
	kinds := make([]int16, len(recs))
	keys := make([]string, len(recs))
	for i, r := range recs {
		kinds[i], keys[i] = int16(r.Kind), r.Key
	}
	return kinds, keys
}

// forUpdate is the locking clause of a read of records the transaction may
// then change. A shared transaction locks them, so that of two transactions
// touching one record the second decides on the first's result; an
// exclusive transaction has no concurrent writer.
func (w *wtx) forUpdate() string {
	if w.mode == shared {
		return " FOR UPDATE"
	}
	return ""
}

// countUnchanged counts an unchanged record once per run: a redelivered page
// sees records its first delivery already marked.
func (w *wtx) countUnchanged(e existing, seenAt int64) {
	if seenAt == 0 || seenAt > e.seenAt {
		w.stats.unchanged++
	}
}

// deletedOwners returns the users and entitlements, among the owners of the
// grants and attributes that recs would create or revive, that were deleted
// at a time after deadAt. A fresh user of page has no tombstone.
func (w *wtx) deletedOwners(ctx context.Context, recs []*pb.Record, old map[rkey]existing, deadAt int64, page *usersPage) (map[string]bool, error) {
	var kinds []int16
	var keys []string
	seen := map[string]bool{}
	add := func(kind pb.Kind, key string) {
		if key != "" && !seen[key] {
			seen[key] = true
			kinds = append(kinds, int16(kind))
			keys = append(keys, key)
		}
	}
	for _, r := range recs {
		if r.Kind != pb.Kind_KIND_SERVICE_USER_ENTITLEMENT && r.Kind != pb.Kind_KIND_SERVICE_USER_ATTRIBUTE {
			continue
		}
		if e, found := old[rkey{int16(r.Kind), r.Key}]; found && !e.deleted {
			continue
		}
		if !page.isFresh(r.UserKey) {
			add(pb.Kind_KIND_SERVICE_USER, r.UserKey)
		}
		add(pb.Kind_KIND_ENTITLEMENT, r.EntitlementKey)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := w.tx.Query(ctx, `
		SELECT r.key FROM unnest($2::smallint[], $3::text[]) AS i(kind, key)
		CROSS JOIN LATERAL (`+probe(`r.key, r.deleted, r.version`, `i.kind`, `i.key`, "")+`) r
		WHERE r.deleted AND r.version > $4`, w.cid, kinds, keys, deadAt)
	if err != nil {
		return nil, fmt.Errorf("read deleted owners: %w", err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read deleted owners: %w", err)
	}
	out := make(map[string]bool, len(gone))
	for _, k := range gone {
		out[k] = true
	}
	return out, nil
}

// create stores records that do not exist yet with one COPY. Should another
// transaction have added one meanwhile (a run's pages are applied in
// parallel), the COPY breaks the primary key's uniqueness: a users page
// then applies its records again, each looked up (see upsertFresh), and any
// other transaction is retried.
func (w *wtx) create(ctx context.Context, recs []*pb.Record, version, seenAt int64, page *usersPage) error {
	if len(recs) == 0 {
		return nil
	}
	// Rows go in in key order: each insert into the primary key lands next
	// to the previous one of its kind, which in a random order costs an
	// eighth more. A user's grants and attributes ("<user key>|…") follow
	// it, so users stay spread one or two to a heap page: a resync marks
	// every user as seen, and only with room left in its page is that a
	// heap-only update (with users packed together, half of them were not).
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b *pb.Record) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Kind, b.Kind)
	})
	rows := make([][]any, len(recs))
	for i, r := range recs {
		w.userChanged(r.UserKey)
		// A user created from a users page stores that page's digest at
		// once (see applyUsers).
		var dig []byte
		var diffedAt int64
		if r.Kind == pb.Kind_KIND_SERVICE_USER {
			if d, ok := page.takeDigest(r.Key); ok {
				dig, diffedAt = d, seenAt
			}
		}
		rows[i] = []any{w.cid, int16(r.Kind), r.Key, r.Data, r.Hash, nullable(r.UserKey), nullable(r.EntitlementKey),
			nullable(strings.ToLower(r.Email)), seenAt, version, dig, diffedAt}
	}
	_, err := w.tx.CopyFrom(ctx, pgx.Identifier{"records"},
		[]string{"connector_id", "kind", "key", "data", "hash", "user_key", "ent_key", "email", "seen_at", "version", "digest", "diffed_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("create records: %w", err)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// write stores records whole.
func (w *wtx) write(ctx context.Context, recs []*pb.Record, version, seenAt int64) error {
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	kinds := make([]int16, n)
	keys := make([]string, n)
	datas := make([]string, n)
	hashes := make([][]byte, n)
	users := make([]string, n)
	ents := make([]string, n)
	emails := make([]string, n)
	for i, r := range recs {
		w.userChanged(r.UserKey)
		kinds[i], keys[i], datas[i], hashes[i] = int16(r.Kind), r.Key, string(r.Data), r.Hash
		users[i], ents[i], emails[i] = r.UserKey, r.EntitlementKey, strings.ToLower(r.Email)
	}
	_, err := w.tx.Exec(ctx, `
		INSERT INTO records AS r (connector_id, kind, key, data, hash, user_key, ent_key, email, seen_at, version, deleted)
		SELECT $1, k, key, d::json, h, NULLIF(u, ''), NULLIF(e, ''), NULLIF(m, ''), $9, $10, false
		FROM unnest($2::smallint[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::text[], $8::text[])
		     AS t(k, key, d, h, u, e, m)
		ON CONFLICT (connector_id, kind, key) DO UPDATE SET
			data = excluded.data, hash = excluded.hash, user_key = excluded.user_key,
			ent_key = excluded.ent_key, email = excluded.email,
			seen_at = GREATEST(r.seen_at, excluded.seen_at),
			version = GREATEST(r.version, excluded.version), deleted = false`,
		w.cid, kinds, keys, datas, hashes, users, ents, emails, seenAt, version)
	if err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	return nil
}

// touch marks unchanged records as seen by the run (seenAt, when non-zero)
// and as confirmed at version.
func (w *wtx) touch(ctx context.Context, recs []*pb.Record, version, seenAt int64) error {
	if len(recs) == 0 {
		return nil
	}
	kinds := make([]int16, len(recs))
	keys := make([]string, len(recs))
	for i, r := range recs {
		kinds[i], keys[i] = int16(r.Kind), r.Key
	}
	_, err := w.tx.Exec(ctx, `
		UPDATE records r SET seen_at = GREATEST(r.seen_at, $4), version = GREATEST(r.version, $5)
		FROM unnest($2::smallint[], $3::text[]) AS i(kind, key)
		CROSS JOIN LATERAL (`+probe(`r.ctid AS rid`, `i.kind`, `i.key`, "")+`) t
		WHERE r.ctid = t.rid AND NOT r.deleted AND (r.seen_at < $4 OR r.version < $5)`,
		w.cid, kinds, keys, seenAt, version)
	if err != nil {
		return fmt.Errorf("mark records seen: %w", err)
	}
	return nil
}
