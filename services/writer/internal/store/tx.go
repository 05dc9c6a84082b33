package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
)

// lockMode says how a write transaction holds its connector.
type lockMode int

const (
	// exclusive transactions (webhook changes, run bookkeeping, run
	// completion) run alone: they may delete, and deletions must see every
	// record a concurrent transaction could add.
	exclusive lockMode = iota
	// shared transactions (the pages of a full sync) run side by side. They
	// only create and update records, lock the rows they read, and are
	// retried when two of them race to create the same record.
	shared
)

// wtx is one write transaction of one connector. It holds the connector's
// row lock, shared or exclusive, from its first statement to commit, and
// the connector's sequence lock from the moment it numbers its changes to
// commit, so that sequences follow commit order.
//
// It holds only what is its own from begin to commit: what one operation
// needs on its way (a users page's digests, the bookkeeping a page
// transaction does at commit, the run it ends) is passed as values.
type wtx struct {
	tx        pgx.Tx
	mode      lockMode
	cid       int64
	connector pipeline.ConnectorRef
	now       func() time.Time
	lim       limits
	// changes and stats are what the transaction did so far: the changes
	// it holds for the outbox, and their counts.
	changes []change
	stats   stats
	// changedUsers, when not nil, collects the users whose records the
	// transaction created, updated or deleted, as changes and stats do
	// their changes: every statement that writes records adds to it. An
	// incremental change sets it, since those users' digests no longer
	// describe what is stored (see forgetDigests).
	changedUsers map[string]bool
	// seqLocked says the transaction holds the sequence lock; seq is then
	// the last sequence it numbered, and written how many changes it
	// wrote to the outbox.
	seqLocked bool
	seq       int64
	written   int
	// removal is why the service users the transaction deletes now go:
	// set by a deletion a webhook names (deleteCascade), empty otherwise,
	// which is clarity.RemovalAbsent (see emitGone).
	removal string
}

// stats counts the records a transaction or a run created, updated,
// deleted and found unchanged.
type stats struct {
	created, updated, deleted, unchanged int64
}

// change is one change held for the outbox. removal is set on the
// deletion of a service user only (see emitGone).
type change struct {
	kind    string
	op      string
	subject string
	data    []byte
	removal string
}

// begin starts a write transaction of connector c, holding its row in mode.
func (s *Store) begin(ctx context.Context, c pipeline.ConnectorRef, mode lockMode) (*wtx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	w := &wtx{tx: tx, mode: mode, connector: c, now: s.now, lim: s.lim}
	// A row lock, not an update: a transaction that changes nothing writes
	// nothing. The row is created on first use (ON CONFLICT waits for a
	// writer creating it at the same moment).
	q := `SELECT id FROM connectors WHERE tenant = $1 AND connector = $2 FOR UPDATE`
	if mode == shared {
		q = `SELECT id FROM connectors WHERE tenant = $1 AND connector = $2 FOR KEY SHARE`
	}
	lock := func() error { return tx.QueryRow(ctx, q, c.Tenant, c.ID).Scan(&w.cid) }
	err = lock()
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err = tx.Exec(ctx, `
			WITH c AS (INSERT INTO connectors (tenant, connector) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id)
			INSERT INTO sequences (connector_id) SELECT id FROM c`,
			c.Tenant, c.ID); err == nil {
			err = lock()
		}
	}
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("lock connector: %w", err)
	}
	return w, nil
}

// attempts bounds the tries of a shared transaction.
const attempts = 5

// retry runs fn until it succeeds, fails for good, or has been tried
// attempts times. A new attempt helps only a transaction that lost a race
// with a concurrent one (two creating the same record, a deadlock): see
// postgres.Retryable.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for i := range attempts {
		if err = fn(); err == nil || !postgres.Retryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 10 * time.Millisecond):
		}
	}
	return err
}

// emit holds a change for the outbox.
func (w *wtx) emit(kind, op, subject string, data []byte) {
	w.changes = append(w.changes, change{kind: kind, op: op, subject: subject, data: data})
}

// userChanged notes that a user's record set changed, when the
// transaction collects such users.
func (w *wtx) userChanged(userKey string) {
	if userKey != "" && w.changedUsers != nil {
		w.changedUsers[userKey] = true
	}
}

// spill writes the changes held so far to the outbox when they are
// Options.SpillAt or more, so that a transaction making many changes (a run
// completion deleting much of an account) holds a bounded number at a
// time. Only an exclusive transaction spills: it holds the sequence lock
// from its first spill to commit, which no concurrent transaction of the
// connector is waiting for.
func (w *wtx) spill(ctx context.Context) error {
	if w.mode != exclusive || len(w.changes) < w.lim.spillAt {
		return nil
	}
	return w.writeChanges(ctx)
}

// lockSequence takes the connector's sequence lock, once per transaction,
// and reads the sequence into w.seq. From then to commit no other
// transaction of the connector can number changes: sequences follow
// commit order.
func (w *wtx) lockSequence(ctx context.Context) error {
	if w.seqLocked {
		return nil
	}
	lock := func() error {
		return w.tx.QueryRow(ctx, `SELECT seq FROM sequences WHERE connector_id = $1 FOR UPDATE`, w.cid).Scan(&w.seq)
	}
	err := lock()
	if errors.Is(err, pgx.ErrNoRows) {
		// A connector row made without its sequence row (begin makes both;
		// an operator may not) starts one now.
		if _, err = w.tx.Exec(ctx, `INSERT INTO sequences (connector_id) VALUES ($1) ON CONFLICT DO NOTHING`, w.cid); err == nil {
			err = lock()
		}
	}
	if err != nil {
		return fmt.Errorf("lock sequence: %w", err)
	}
	w.seqLocked = true
	return nil
}

// writeChanges numbers the changes held and writes them to the outbox as
// one row. They are encoded before the sequence is locked: other
// transactions wait on that lock.
func (w *wtx) writeChanges(ctx context.Context) error {
	n := len(w.changes)
	if n == 0 {
		return nil
	}
	batch := &pb.ChangeBatch{Changes: make([]*pb.Change, n)}
	for i, c := range w.changes {
		batch.Changes[i] = &pb.Change{Kind: c.kind, Op: c.op, Subject: c.subject, Data: c.data, Removal: c.removal}
	}
	body, encoding, err := outbox.EncodeChanges(batch)
	if err != nil {
		return err
	}
	if err := w.lockSequence(ctx); err != nil {
		return err
	}
	if err := outbox.Insert(ctx, w.tx, outbox.Row{
		ConnectorID: w.cid, First: w.seq + 1, Last: w.seq + int64(n), Changes: body, Encoding: encoding, At: w.now().UTC(),
	}); err != nil {
		return err
	}
	w.seq += int64(n)
	w.written += n
	clear(w.changes) // the data of the changes written can go
	w.changes = w.changes[:0]
	return nil
}

// commit writes the transaction's remaining changes to the outbox,
// advances the sequence and commits.
func (s *Store) commit(ctx context.Context, w *wtx) error { return s.commitWith(ctx, w, nil) }

// commitWith commits as commit does, and runs final, when not nil, under
// the sequence lock just before: bookkeeping that concurrent page
// transactions share (the run's counters) is updated there, one
// transaction at a time.
func (s *Store) commitWith(ctx context.Context, w *wtx, final func(ctx context.Context) error) error {
	defer w.tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if len(w.changes) == 0 && final == nil && w.written == 0 {
		return w.tx.Commit(ctx)
	}
	if err := w.writeChanges(ctx); err != nil {
		return err
	}
	if final != nil {
		if err := w.lockSequence(ctx); err != nil {
			return err
		}
		if err := final(ctx); err != nil {
			return err
		}
	}
	if w.written > 0 {
		if _, err := w.tx.Exec(ctx, `UPDATE sequences SET seq = $2 WHERE connector_id = $1`, w.cid, w.seq); err != nil {
			return fmt.Errorf("advance sequence: %w", err)
		}
	}
	if err := w.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if w.written > 0 {
		s.committed()
	}
	return nil
}
