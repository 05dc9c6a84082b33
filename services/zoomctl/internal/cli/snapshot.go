package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/snapshot"
)

// SnapshotLine is one line of zoomctl snapshot: a record as the snapshot
// client reads it from the writer.
type SnapshotLine = snapshot.Record

func runSnapshot(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("snapshot", errw)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	withSeq := fs.Bool("with-sequence", false, `print {"sequence":"N"} first: the change sequence the records are consistent with`)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if *dbURL == "" {
		return fail(errw, ExitUsage, "DATABASE_URL is required")
	}
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	line := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.Write(b)
		return w.WriteByte('\n')
	}
	var seqFn func(int64) error
	if *withSeq {
		seqFn = func(seq int64) error { return line(SequenceLine{Sequence: strconv.FormatInt(seq, 10)}) }
	}
	if err := SnapshotAt(ctx, *dbURL, ref, seqFn, func(l SnapshotLine) error { return line(l) }); err != nil {
		return fail(errw, ExitError, "snapshot: %v", err)
	}
	return ExitOK
}

// SequenceLine is the first line of zoomctl snapshot --with-sequence.
type SequenceLine struct {
	Sequence string `json:"sequence"`
}

// Snapshot streams the live records of a connector, ordered by kind and key.
func Snapshot(ctx context.Context, dbURL string, ref pipeline.ConnectorRef, fn func(SnapshotLine) error) error {
	return SnapshotAt(ctx, dbURL, ref, nil, fn)
}

// snapshotChunk is how many records one statement of SnapshotAt reads.
const snapshotChunk = 1000

// SnapshotAt streams the live records of a connector, ordered by kind and
// key, as Snapshot does; when seqFn is not nil it first calls it with the
// connector's last committed change sequence, which the records are
// consistent with: applying on top of them exactly the events with a
// greater sequence gives the current records.
//
// This is the writer's store.Snapshot read, with the same statements
// (zoomctl is a module of its own and may not import the writer's internal
// packages): one read-only REPEATABLE READ transaction reads the sequence
// row and then the records. A write transaction that changes records also
// advances the sequence row, in the same transaction, after the sequence
// row's lock has ordered it after every transaction numbered before it; so
// the snapshot sees both a transaction's records and its sequence or
// neither, and what it sees is a prefix of the sequence ending at the
// value it reads. It takes no lock the writer waits for. Records are read
// snapshotChunk at a time along the primary key, never all at once.
func SnapshotAt(ctx context.Context, dbURL string, ref pipeline.ConnectorRef, seqFn func(int64) error, fn func(SnapshotLine) error) error {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only: nothing to commit
	// The first statement fixes the transaction's snapshot. Without
	// --with-sequence the sequences table is not read, so that a database
	// of an older schema still prints its records.
	var cid, seq int64
	q := `SELECT c.id, 0::bigint FROM connectors c WHERE c.tenant = $1 AND c.connector = $2`
	if seqFn != nil {
		q = `SELECT c.id, coalesce(s.seq, 0) FROM connectors c LEFT JOIN sequences s ON s.connector_id = c.id
			WHERE c.tenant = $1 AND c.connector = $2`
	}
	if err := tx.QueryRow(ctx, q, ref.Tenant, ref.ID).Scan(&cid, &seq); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read sequence: %w", err)
	}
	if seqFn != nil {
		if err := seqFn(seq); err != nil {
			return err
		}
	}
	if cid == 0 {
		return nil // a connector that never stored anything has no records
	}
	var kind int16
	var key string
	for {
		rows, err := tx.Query(ctx, `
			SELECT kind, key, data::text FROM records
			WHERE connector_id = $1 AND (kind, key) > ($2, $3) AND NOT deleted
			ORDER BY kind, key
			LIMIT $4`, cid, kind, key, snapshotChunk)
		if err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		n := 0
		for rows.Next() {
			var data string
			if err := rows.Scan(&kind, &key, &data); err != nil {
				rows.Close()
				return fmt.Errorf("read records: %w", err)
			}
			n++
			name := cmp.Or(pipeline.KindName(pb.Kind(kind)), "unknown")
			if err := fn(SnapshotLine{Kind: name, Key: key, Data: json.RawMessage(data)}); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read records: %w", err)
		}
		if n < snapshotChunk {
			return nil
		}
	}
}

// RequestSnapshot reads a connector's snapshot from the writer over
// clarity.snapshot.<tenant>.<connector>, chunk by chunk: snapshot.Request,
// the client zoomctl shares with the downstream consumer (pkg/follow).
func RequestSnapshot(ctx context.Context, nc *nats.Conn, ref pipeline.ConnectorRef, limit int, seqFn func(int64) error, fn func(SnapshotLine) error) error {
	return snapshot.Request(ctx, nc, ref, limit, seqFn, fn)
}
