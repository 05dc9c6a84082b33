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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// SnapshotLine is one line of zoomctl snapshot.
type SnapshotLine struct {
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
}

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

// SnapshotChunk is one reply of the writer's request-reply
// clarity.snapshot.<tenant>.<connector> (see the README): the records of
// one chunk, the sequence every chunk of the snapshot carries, and the
// cursor of the next chunk ("" after the last).
type SnapshotChunk struct {
	Sequence string         `json:"sequence,omitempty"`
	Records  []SnapshotLine `json:"records"`
	Next     string         `json:"next"`
	Error    string         `json:"error,omitempty"`
	Code     string         `json:"code,omitempty"`
}

// ErrSnapshotExpired reports a snapshot the writer no longer holds (the
// client was idle too long, or read past the snapshot's lifetime): start
// again.
var ErrSnapshotExpired = errors.New("snapshot expired")

// RequestSnapshot reads a connector's snapshot from the writer over NATS,
// chunk by chunk (limit records at most each, 0 for the writer's default),
// asking for the next chunk only once fn has taken the previous one. It
// calls seqFn once with the snapshot's sequence, before any record. A
// refused request is an error; ErrSnapshotExpired means start again.
func RequestSnapshot(ctx context.Context, nc *nats.Conn, ref pipeline.ConnectorRef, limit int, seqFn func(int64) error, fn func(SnapshotLine) error) error {
	subject := "clarity.snapshot." + ref.Key()
	cursor := ""
	seq := int64(-1)
	for {
		req, err := json.Marshal(struct {
			Cursor string `json:"cursor,omitempty"`
			Limit  int    `json:"limit,omitempty"`
		}{cursor, limit})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := nc.RequestWithContext(rctx, subject, req)
		cancel()
		if err != nil {
			return fmt.Errorf("request %s: %w", subject, err)
		}
		var c SnapshotChunk
		if err := json.Unmarshal(m.Data, &c); err != nil {
			return fmt.Errorf("decode snapshot chunk: %w", err)
		}
		switch {
		case c.Code == "expired":
			return fmt.Errorf("%w: %s", ErrSnapshotExpired, c.Error)
		case c.Error != "":
			return fmt.Errorf("snapshot refused (%s): %s", c.Code, c.Error)
		}
		n, err := strconv.ParseInt(c.Sequence, 10, 64)
		if err != nil {
			return fmt.Errorf("snapshot chunk: sequence %q: %w", c.Sequence, err)
		}
		switch {
		case seq < 0:
			seq = n
			if seqFn != nil {
				if err := seqFn(seq); err != nil {
					return err
				}
			}
		case n != seq:
			return fmt.Errorf("snapshot chunk at sequence %d, the snapshot's is %d", n, seq)
		}
		for _, r := range c.Records {
			if err := fn(r); err != nil {
				return err
			}
		}
		if c.Next == "" {
			return nil
		}
		cursor = c.Next
	}
}
