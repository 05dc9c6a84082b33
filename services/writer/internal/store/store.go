// Package store is the writer's PostgreSQL side: it applies normalized record
// batches idempotently, keeps the run bookkeeping of full syncs, deletes what
// a complete run did not see, and writes every change to the outbox in the
// same transaction as the record.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the schema migrations, for tests that prepare a template.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}

// Migrate applies the writer's schema to the database at url.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return postgres.Migrate(ctx, pool, Migrations())
}

// Store writes records, runs and outbox rows.
type Store struct {
	pool *pgxpool.Pool
	log  zerolog.Logger
	// committed is called after every transaction that added outbox rows,
	// so that the relay publishes them without waiting for its next poll.
	committed func()
	now       func() time.Time
}

// New returns a Store on pool. committed may be nil.
func New(pool *pgxpool.Pool, log zerolog.Logger, committed func()) *Store {
	if committed == nil {
		committed = func() {}
	}
	return &Store{pool: pool, log: log, committed: committed, now: time.Now}
}

// ErrBadBatch reports input no retry can apply.
var ErrBadBatch = errors.New("store: invalid batch")

// kindNames maps record kinds to their contract names.
var kindNames = map[pb.Kind]string{
	pb.Kind_KIND_SERVICE_USER:             clarity.KindServiceUser,
	pb.Kind_KIND_ENTITLEMENT:              clarity.KindEntitlement,
	pb.Kind_KIND_SERVICE_USER_ENTITLEMENT: clarity.KindServiceUserEntitlement,
	pb.Kind_KIND_SERVICE_USER_ATTRIBUTE:   clarity.KindServiceUserAttribute,
}

// KindName returns the contract name of a record kind stored as a number.
func KindName(k int16) string { return kindNames[pb.Kind(k)] }

// change is one outbox row to be written.
type change struct {
	kind    string
	op      string
	subject string
	data    []byte
}

// wtx is one write transaction of one connector. It holds the connector's
// row lock from its first statement to commit, so that the sequences it hands
// out follow commit order.
type wtx struct {
	tx        pgx.Tx
	cid       int64
	seq       int64
	tenant    string
	connector string
	changes   []change
	stats     stats
	// dirtyUsers are the users whose records this transaction changed.
	dirtyUsers map[string]bool
	// userDigests, while a users page is applied, holds the digest of each
	// user it compares record by record; create takes out those it stores.
	userDigests map[string][]byte
	// ended is the run this transaction ended, if any, for the log.
	ended *endedRun
}

type endedRun struct {
	id, status, err string
	stats           stats
	took            time.Duration
}

// dirty notes that a user's record set changed.
func (w *wtx) dirty(userKey string) {
	if userKey == "" {
		return
	}
	if w.dirtyUsers == nil {
		w.dirtyUsers = map[string]bool{}
	}
	w.dirtyUsers[userKey] = true
}

type stats struct {
	created, updated, deleted, unchanged int64
}

func (s *Store) begin(ctx context.Context, tenant, connector string) (*wtx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	w := &wtx{tx: tx, tenant: tenant, connector: connector}
	// A row lock, not an update: a transaction that changes nothing writes
	// nothing. The row is created on first use (ON CONFLICT waits for a
	// writer creating it at the same moment).
	lock := func() error {
		return tx.QueryRow(ctx, `SELECT id, seq FROM connectors WHERE tenant = $1 AND connector = $2 FOR UPDATE`,
			tenant, connector).Scan(&w.cid, &w.seq)
	}
	err = lock()
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err = tx.Exec(ctx, `INSERT INTO connectors (tenant, connector) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			tenant, connector); err == nil {
			err = lock()
		}
	}
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("lock connector: %w", err)
	}
	return w, nil
}

func (w *wtx) emit(kind, op, subject string, data []byte) {
	w.changes = append(w.changes, change{kind: kind, op: op, subject: subject, data: data})
}

// commit writes the transaction's changes to the outbox as one row,
// advances the connector's sequence and commits.
func (s *Store) commit(ctx context.Context, w *wtx) error {
	defer w.tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if n := len(w.changes); n > 0 {
		batch := &pb.ChangeBatch{Changes: make([]*pb.Change, n)}
		for i, c := range w.changes {
			batch.Changes[i] = &pb.Change{Kind: c.kind, Op: c.op, Subject: c.subject, Data: c.data}
		}
		body, err := proto.Marshal(batch)
		if err != nil {
			return fmt.Errorf("encode outbox: %w", err)
		}
		if _, err := w.tx.Exec(ctx, `INSERT INTO outbox (connector_id, first_seq, last_seq, changes, at) VALUES ($1, $2, $3, $4, $5)`,
			w.cid, w.seq+1, w.seq+int64(n), body, s.now().UTC()); err != nil {
			return fmt.Errorf("write outbox: %w", err)
		}
		if _, err := w.tx.Exec(ctx, `UPDATE connectors SET seq = $2 WHERE id = $1`, w.cid, w.seq+int64(n)); err != nil {
			return fmt.Errorf("advance sequence: %w", err)
		}
	}
	if err := w.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(w.changes) > 0 {
		s.committed()
	}
	if e := w.ended; e != nil {
		ev := s.log.Info()
		if e.status != RunCompleted {
			ev = s.log.Warn().Str("error", e.err)
		}
		ev.Str("tenant", w.tenant).Str("connector", w.connector).Str("run_id", e.id).
			Int64("created", e.stats.created).Int64("updated", e.stats.updated).Int64("deleted", e.stats.deleted).
			Int64("unchanged", e.stats.unchanged).Dur("took", e.took).Msg("sync " + e.status)
	}
	return nil
}

// Ping checks the database, for /readyz.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
