package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
)

// A snapshot is every live record of a connector together with the
// sequence it is consistent with: applying on top of it exactly the change
// events whose sequence is greater gives the current records (README,
// "Downstream: snapshot, then follow").
//
// Why one REPEATABLE READ transaction is enough, without any lock:
//
//   - Every write transaction that changes a record's data or deletes it
//     emits a change for it (an unchanged record emits nothing and changes
//     nothing but seen_at and version, which no snapshot reads), numbers its
//     changes under the sequence row's lock, and in the same transaction
//     sets sequences.seq to its last number (commitWith). A snapshot
//     therefore sees a transaction's records and its sequence both or
//     neither.
//   - The sequence row's lock orders the transactions that number changes:
//     the next one reads the row (SELECT … FOR UPDATE) only once the
//     previous one has committed, and PostgreSQL releases a transaction's
//     locks only after its commit is visible to new snapshots. So a
//     snapshot that sees a transaction sees every transaction numbered
//     before it: what it sees is a prefix of the sequence, and the row it
//     reads holds the last sequence of that prefix, N.
//   - Hence the snapshot's records are the changes numbered 1 to N applied
//     in order, and the changes numbered above N are exactly those of the
//     transactions it does not see.
//
// The transaction takes no lock a writer waits for (a read-only snapshot
// takes ACCESS SHARE on the tables, which only DDL conflicts with, and
// locks no row), so the writer goes on at full speed. It does hold back
// vacuum's horizon while it lasts: whoever holds one keeps it short.

// SnapshotRecord is one live record of a snapshot.
type SnapshotRecord struct {
	Kind pb.Kind
	Key  string
	// Data is the record's JSON as stored.
	Data []byte
}

// Position is a place in a snapshot's key order (kind, then key in byte
// order): Records returns what follows it. The zero Position is the start.
type Position struct {
	Kind pb.Kind
	Key  string
}

// TxBeginner starts transactions: a pool, a pooled connection or a
// connection.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Snapshot is an open read of a connector's records at one sequence: a
// read-only REPEATABLE READ transaction. Close it.
type Snapshot struct {
	tx  pgx.Tx
	cid int64 // 0: the connector never stored anything
	seq int64
}

// ErrSnapshotGone reports an exported snapshot that can no longer be
// imported: the transaction that exported it has ended.
var ErrSnapshotGone = errors.New("store: snapshot expired")

// snapshotID is the shape of pg_export_snapshot's identifiers. SET
// TRANSACTION SNAPSHOT takes no parameter, so an identifier from a request
// must have this shape before it is put into the statement.
var snapshotID = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{8}-[0-9]{1,10}$`)

// ValidSnapshotID reports whether id has the shape of a snapshot identifier.
func ValidSnapshotID(id string) bool { return snapshotID.MatchString(id) }

// readOnly is the transaction of every snapshot.
var readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// Snapshot opens a snapshot of connector c on the store's pool. It holds
// one of the pool's connections until Close: for a read that may last long
// (a request-reply session), use BeginSnapshot on a pool of its own.
func (s *Store) Snapshot(ctx context.Context, c pipeline.ConnectorRef) (*Snapshot, error) {
	return BeginSnapshot(ctx, s.pool, c)
}

// BeginSnapshot opens a snapshot of connector c on db.
func BeginSnapshot(ctx context.Context, db TxBeginner, c pipeline.ConnectorRef) (*Snapshot, error) {
	return beginSnapshot(ctx, db, c, "")
}

// ImportSnapshot opens, on db, the snapshot that Export named: the same
// records at the same sequence, as long as the exporting Snapshot is open.
// It returns ErrSnapshotGone once that one is closed.
func ImportSnapshot(ctx context.Context, db TxBeginner, c pipeline.ConnectorRef, id string) (*Snapshot, error) {
	if !ValidSnapshotID(id) {
		return nil, fmt.Errorf("%w: malformed snapshot id", ErrSnapshotGone)
	}
	return beginSnapshot(ctx, db, c, id)
}

func beginSnapshot(ctx context.Context, db TxBeginner, c pipeline.ConnectorRef, id string) (*Snapshot, error) {
	tx, err := db.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	sn := &Snapshot{tx: tx}
	if id != "" {
		// Must be the transaction's first statement; id has been checked.
		if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+id+`'`); err != nil {
			_ = tx.Rollback(ctx)
			if postgres.SQLState(err) == "22023" { // invalid_parameter_value: no such snapshot (any more)
				return nil, fmt.Errorf("%w: %w", ErrSnapshotGone, err)
			}
			return nil, fmt.Errorf("import snapshot: %w", err)
		}
	}
	// The first statement fixes the transaction's snapshot: the sequence
	// and every record read after it belong to the same one. A connector
	// never written has no row, and sequence 0.
	err = tx.QueryRow(ctx, `
		SELECT c.id, coalesce(s.seq, 0)
		FROM connectors c LEFT JOIN sequences s ON s.connector_id = c.id
		WHERE c.tenant = $1 AND c.connector = $2`, c.Tenant, c.ID).Scan(&sn.cid, &sn.seq)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("read sequence: %w", err)
	}
	return sn, nil
}

// Sequence is the connector's last committed change sequence the snapshot
// is consistent with.
func (sn *Snapshot) Sequence() int64 { return sn.seq }

// ConnectorID is the connector's row id, 0 for a connector that never
// stored anything: a cursor carries it, so that a cursor of one connector
// is not taken for another's.
func (sn *Snapshot) ConnectorID() int64 { return sn.cid }

// Export makes the snapshot importable by other transactions
// (ImportSnapshot), until Close, and returns its identifier.
func (sn *Snapshot) Export(ctx context.Context) (string, error) {
	var id string
	if err := sn.tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&id); err != nil {
		return "", fmt.Errorf("export snapshot: %w", err)
	}
	return id, nil
}

// Records calls fn with the live records after pos, in key order, at most
// limit of them, and returns how many it passed. It stops early, without an
// error, when fn returns false (that record was not taken). One statement
// reads them along the primary key, so that a snapshot read in chunks holds
// one chunk at a time, however many records the connector has.
func (sn *Snapshot) Records(ctx context.Context, after Position, limit int, fn func(SnapshotRecord) bool) (int, error) {
	if sn.cid == 0 || limit <= 0 {
		return 0, nil
	}
	// The row comparison is an index condition of the primary key
	// (connector_id, kind, key); key collates "C", the byte order the
	// position is in.
	rows, err := sn.tx.Query(ctx, `
		SELECT kind, key, data::text FROM records
		WHERE connector_id = $1 AND (kind, key) > ($2, $3) AND NOT deleted
		ORDER BY kind, key
		LIMIT $4`, sn.cid, int16(after.Kind), after.Key, limit)
	if err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var kind int16
		var r SnapshotRecord
		var data string
		if err := rows.Scan(&kind, &r.Key, &data); err != nil {
			return n, fmt.Errorf("read records: %w", err)
		}
		r.Kind, r.Data = pb.Kind(kind), []byte(data)
		if !fn(r) {
			return n, nil
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read records: %w", err)
	}
	return n, nil
}

// snapshotChunk is how many records Each reads per statement.
const snapshotChunk = 1000

// Each calls fn with every live record of the snapshot, in key order,
// snapshotChunk at a time; it stops at fn's first error and returns it.
func (sn *Snapshot) Each(ctx context.Context, fn func(SnapshotRecord) error) error {
	var pos Position
	for {
		var ferr error
		n, err := sn.Records(ctx, pos, snapshotChunk, func(r SnapshotRecord) bool {
			if ferr = fn(r); ferr != nil {
				return false
			}
			pos = Position{Kind: r.Kind, Key: r.Key}
			return true
		})
		if ferr != nil {
			return ferr
		}
		if err != nil {
			return err
		}
		if n < snapshotChunk {
			return nil
		}
	}
}

// Close ends the snapshot's transaction (and so the export of it).
func (sn *Snapshot) Close(ctx context.Context) error {
	// A read-only transaction commits nothing; rollback also works on a
	// transaction a failed statement aborted.
	if err := sn.tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("close snapshot: %w", err)
	}
	return nil
}
