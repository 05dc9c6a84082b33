// Package store is the writer's PostgreSQL side: it applies normalized record
// batches idempotently, keeps the run bookkeeping of full syncs, deletes what
// a complete run did not see, and writes every change to the outbox in the
// same transaction as the record.
//
// Its files follow the concepts: tx.go is the write transaction of one
// connector (locks, sequences, the outbox rows it writes); records.go
// creates, updates and marks records; users.go applies a users page by
// digest; pages.go applies the pages of a full sync; runs.go keeps the runs;
// completion.go completes a run; expiry.go finds what a completed run
// deletes, and tombstones.go deletes it; change.go applies incremental
// changes; admins.go derives group-admin grants; guard.go is the
// accidental-deletion guard; kinds.go names the record kinds.
package store

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

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
	// deleteThreshold is Options.DeleteThreshold.
	deleteThreshold float64
	lim             limits
}

// Options tunes a Store.
type Options struct {
	// Committed is called after every transaction that added outbox rows,
	// so that the relay publishes them without waiting for its next poll.
	// It may be nil.
	Committed func()
	// DeleteThreshold is the accidental-deletion guard: a full sync that
	// would delete more than this fraction of a connector's users, or of
	// its entitlements, holds those deletions until they are confirmed
	// (ConfirmDeletions). Zero turns the guard off.
	DeleteThreshold float64

	// The sizes below bound what one transaction or statement holds at a
	// time; zero is the default. Tests shrink them to cross their
	// boundaries with a few records.

	// SpillAt is how many changes an exclusive transaction holds before it
	// writes them to the outbox ahead of its commit, and how many records
	// one of its deleting statements deletes at most: an outbox row it
	// writes holds fewer than twice as many changes. Default 10,000.
	SpillAt int
	// UserChunk is how many users one statement of a run's completion
	// looks at, in key order. Default 1,000.
	UserChunk int
	// EntitlementChunk is how many entitlements one statement of a run's
	// completion deletes, after their grants (of which one entitlement
	// may have any number: they go SpillAt at a time). Default 100.
	EntitlementChunk int
	// ProbeUsers is how many users compared record by record a run's
	// completion probes for their stale records at most, one key range
	// each, rather than hashing the records of the connector on their
	// user: about what one pass over 100,000 users' records costs. Default
	// 10,000; a negative value never probes.
	ProbeUsers int64
}

// limits are the sizes of Options, defaults applied.
type limits struct {
	spillAt, userChunk, entitlementChunk int
	probeUsers                           int64
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool, log zerolog.Logger, opts Options) *Store {
	committed := opts.Committed
	if committed == nil {
		committed = func() {}
	}
	or := func(v, def int) int {
		if v == 0 {
			return def
		}
		return v
	}
	lim := limits{
		spillAt:          or(opts.SpillAt, 10000),
		userChunk:        or(opts.UserChunk, 1000),
		entitlementChunk: or(opts.EntitlementChunk, 100),
		probeUsers:       opts.ProbeUsers,
	}
	if lim.probeUsers == 0 {
		lim.probeUsers = 10000
	}
	return &Store{pool: pool, log: log, committed: committed, now: time.Now, deleteThreshold: opts.DeleteThreshold, lim: lim}
}

// ErrBadBatch reports input no retry can apply.
var ErrBadBatch = errors.New("store: invalid batch")

// Ping checks the database, for /readyz.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
