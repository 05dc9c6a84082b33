// Package outbox owns the writer's outbox table: the changes a transaction
// commits with its records, waiting to be published. A row holds the
// changes of one transaction, or of a part of a transaction that makes many,
// numbered with consecutive sequences of the connector. The store writes
// rows inside its transactions; the relay reads them, publishes them and
// deletes them. Every statement on the table is here.
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// DB is what the outbox's statements run on: a transaction, or a pool for
// a statement that needs none.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Row is one outbox row.
type Row struct {
	// ConnectorID is the connector's row id in the connectors table.
	ConnectorID int64
	// First and Last are the sequences of the row's first and last change.
	First, Last int64
	// Changes is a pb.ChangeBatch as EncodeChanges encoded it, with
	// Encoding.
	Changes  []byte
	Encoding string
	// At is when the changes were made, the time of their events.
	At time.Time
	// Connector names the connector; Read fills it in, Insert ignores it.
	Connector pipeline.ConnectorRef
}

// EncodeChanges encodes a row's changes, S2-compressed when that pays
// (pipeline.Encode: their JSON shrinks several times, and every byte saved
// is a byte PostgreSQL writes and the relay reads less), and returns the
// encoding for the row's encoding column.
func EncodeChanges(b *pb.ChangeBatch) ([]byte, string, error) {
	body, err := proto.Marshal(b)
	if err != nil {
		return nil, "", fmt.Errorf("encode outbox: %w", err)
	}
	body, enc := pipeline.Encode(body)
	return body, enc, nil
}

// DecodeChanges decodes what EncodeChanges encoded.
func DecodeChanges(body []byte, encoding string) (*pb.ChangeBatch, error) {
	body, err := pipeline.DecodeData(encoding, body)
	if err != nil {
		return nil, fmt.Errorf("decompress changes: %w", err)
	}
	var b pb.ChangeBatch
	if err := proto.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("decode changes: %w", err)
	}
	return &b, nil
}

// Insert writes r (but its Connector) to the outbox.
func Insert(ctx context.Context, db DB, r Row) error {
	if _, err := db.Exec(ctx, `INSERT INTO outbox (connector_id, first_seq, last_seq, changes, encoding, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ConnectorID, r.First, r.Last, r.Changes, r.Encoding, r.At); err != nil {
		return fmt.Errorf("write outbox: %w", err)
	}
	return nil
}

// Pending returns the ids of the connectors whose outbox holds rows, in id
// order.
func Pending(ctx context.Context, db DB) ([]int64, error) {
	// One index probe per connector: the outbox churns through every change,
	// and a scan of it would also read the dead rows vacuum has not reclaimed.
	rows, err := db.Query(ctx, `
		SELECT c.id FROM connectors c
		WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.connector_id = c.id)
		ORDER BY c.id`)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	return ids, nil
}

// lockSpace keeps the outbox's advisory locks apart from any other use.
const lockSpace = 0x5a4f4f4d

// TryLock takes, for the rest of the transaction tx, the lock on the outbox
// of connector id that one publisher holds at a time, so that its rows are
// published in sequence order. It reports false, at once, when another
// transaction holds it.
func TryLock(ctx context.Context, tx pgx.Tx, id int64) (bool, error) {
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, lockSpace, int32(id)).Scan(&locked); err != nil {
		return false, fmt.Errorf("lock outbox: %w", err)
	}
	return locked, nil
}

// Read returns the oldest rows of connector id, in sequence order: at least
// one, at most maxRows, and no more once they hold maxChanges changes. Rows
// hold consecutive sequences, so those that start within maxChanges of the
// oldest are all a reader needs: the database reads and sends no row's
// changes in vain.
func Read(ctx context.Context, db DB, id int64, maxRows, maxChanges int) ([]Row, error) {
	q, err := db.Query(ctx, `
		SELECT o.first_seq, o.last_seq, o.changes, o.encoding, o.at, c.tenant, c.connector
		FROM outbox o JOIN connectors c ON c.id = o.connector_id
		WHERE o.connector_id = $1
		  AND o.first_seq <= (SELECT min(first_seq) FROM outbox WHERE connector_id = $1) + $3
		ORDER BY o.first_seq LIMIT $2`, id, maxRows, maxChanges)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer q.Close()
	var list []Row
	changes := int64(0)
	for changes < int64(maxChanges) && q.Next() {
		r := Row{ConnectorID: id}
		// The names were validated when the connector's row was made.
		if err := q.Scan(&r.First, &r.Last, &r.Changes, &r.Encoding, &r.At, &r.Connector.Tenant, &r.Connector.ID); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		list = append(list, r)
		changes += r.Last - r.First + 1
	}
	q.Close()
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return list, nil
}

// Delete deletes the rows of connector id up to the one whose first change
// is first, once they are published.
func Delete(ctx context.Context, db DB, id, first int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM outbox WHERE connector_id = $1 AND first_seq <= $2`, id, first); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}
