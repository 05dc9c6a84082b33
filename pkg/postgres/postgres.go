// Package postgres opens the connector's PostgreSQL pool and applies embedded
// migrations.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Open parses url, opens a pool and waits (until ctx ends) for the database
// to answer, so that a service started before its database still comes up.
func Open(ctx context.Context, url string, maxConns int32, log zerolog.Logger) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may echo the URL, password included; say only what is wrong.
		return nil, fmt.Errorf("parse DATABASE_URL: invalid connection string")
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.Tracer = tracer{log: log}
	// The connector's statements are short; compiling one with JIT takes
	// longer than running it, and the planner, which cannot estimate a
	// range of keys bounded by another row's key, would often do so. The
	// URL may still turn it on (jit=on).
	if _, ok := cfg.ConnConfig.RuntimeParams["jit"]; !ok {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	wait := 100 * time.Millisecond
	for {
		err := pool.Ping(ctx)
		if err == nil {
			return pool, nil
		}
		log.Warn().Err(err).Msg("database not reachable; retrying")
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, fmt.Errorf("open database: %w", err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// tracer logs every query at trace level, and slow ones at debug level.
type tracer struct{ log zerolog.Logger }

type traceKey struct{}

type traceStart struct {
	sql string
	at  time.Time
}

func (t tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if t.log.GetLevel() > zerolog.DebugLevel {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, traceStart{sql: data.SQL, at: time.Now()})
}

func (t tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	s, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	d := time.Since(s.at)
	ev := t.log.Trace()
	if d > 200*time.Millisecond {
		ev = t.log.Debug()
	}
	ev.Dur("took", d).Str("sql", oneLine(s.sql, 200)).AnErr("error", data.Err).Msg("query")
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Migrate applies, in name order, every *.sql file of migrations that the
// database has not seen yet, each in its own transaction. An advisory lock
// keeps replicas that start together from applying the same file twice.
func Migrate(ctx context.Context, pool *pgxpool.Pool, migrations fs.FS) error {
	names, err := fs.Glob(migrations, "*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	const lockID = 7_466_021_337
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID) //nolint:errcheck
	// A login that may not change the schema (a service's, when the
	// schema's owner migrates it) starts on a migrated schema: it only
	// reads what was applied.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (
			name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrate: %w", notOwner(err))
		}
	}
	for _, name := range names {
		var done bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&done); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if done {
			continue
		}
		body, err := fs.ReadFile(migrations, name)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ($1)`, name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, notOwner(err))
		}
	}
	return nil
}

// InsufficientPrivilege is the SQLSTATE of a statement the login may not
// run.
const InsufficientPrivilege = "42501"

// notOwner adds to a refused schema change what to do about it.
func notOwner(err error) error {
	if SQLState(err) != InsufficientPrivilege {
		return err
	}
	return fmt.Errorf("%w (this login may not change the schema: apply the migrations as the schema's owner first)", err)
}

// SQLSTATE codes (PostgreSQL's appendix "PostgreSQL Error Codes") by which
// Retryable and Unavailable classify errors.
const (
	// UniqueViolation: a row broke a unique index or primary key.
	UniqueViolation = "23505"
	// SerializationFailure: a transaction could not be serialized with a
	// concurrent one.
	SerializationFailure = "40001"
	// DeadlockDetected: the transaction was chosen to break a deadlock.
	DeadlockDetected = "40P01"
	// TooManyConnections: the server has no connection slot left.
	TooManyConnections = "53300"
	// AdminShutdown: an administrator or a smart or fast shutdown ended
	// the session.
	AdminShutdown = "57P01"
	// CrashShutdown: the server is restarting after another backend
	// crashed.
	CrashShutdown = "57P02"
	// CannotConnectNow: the server is starting up or in recovery.
	CannotConnectNow = "57P03"
	// ClassConnectionException is the class (the first two characters)
	// of every connection exception.
	ClassConnectionException = "08"
)

// SQLState returns the SQLSTATE the server reported in err, or "" when err
// carries none.
func SQLState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// Retryable reports whether err says that a transaction lost a race with a
// concurrent one, which a new attempt of the same work resolves: a deadlock,
// a serialization failure, or a unique violation (for a transaction that
// looks a row up before it creates it, the violation means a concurrent
// transaction created the row meanwhile; a new attempt finds it).
func Retryable(err error) bool {
	switch SQLState(err) {
	case UniqueViolation, DeadlockDetected, SerializationFailure:
		return true
	}
	return false
}

// Unavailable reports whether err says that the database could not be
// reached or went away (not that a statement failed): connecting failed,
// the connection broke, or the server is shutting down, starting up or out
// of connections. Work that failed so may succeed unchanged once the
// database is back.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case AdminShutdown, CrashShutdown, CannotConnectNow, TooManyConnections:
			return true
		}
		return strings.HasPrefix(pe.Code, ClassConnectionException)
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
