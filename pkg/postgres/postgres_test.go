package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
)

// TestOpenTurnsJITOff: connections run without JIT compilation unless the
// URL asks for it.
func TestOpenTurnsJITOff(t *testing.T) {
	base := pgtest.URL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for url, want := range map[string]string{base: "off", base + sep + "jit=on": "on"} {
		pool, err := postgres.Open(context.Background(), url, 1, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = pool.QueryRow(context.Background(), `SHOW jit`).Scan(&got)
		pool.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("jit with URL options %q: got %s, want %s", strings.TrimPrefix(url, base), got, want)
		}
	}
}

func TestUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	_, refused := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5")
	if refused == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"wrapped connection refused", fmt.Errorf("apply page: %w", refused), true},
		{"server shutting down", &pgconn.PgError{Code: postgres.AdminShutdown}, true},
		{"server crashed", &pgconn.PgError{Code: postgres.CrashShutdown}, true},
		{"server starting", fmt.Errorf("begin: %w", &pgconn.PgError{Code: postgres.CannotConnectNow}), true},
		{"no connection slot", &pgconn.PgError{Code: postgres.TooManyConnections}, true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"deadlock", &pgconn.PgError{Code: postgres.DeadlockDetected}, false},
		{"connection cut mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"unique violation", fmt.Errorf("create: %w", &pgconn.PgError{Code: postgres.UniqueViolation}), false},
		{"other error", errors.New("bad batch"), false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		if got := postgres.Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: got %v, want %v (%v)", tt.name, got, tt.want, tt.err)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"unique violation", &pgconn.PgError{Code: postgres.UniqueViolation}, true},
		{"wrapped unique violation", fmt.Errorf("create records: %w", &pgconn.PgError{Code: postgres.UniqueViolation}), true},
		{"deadlock", &pgconn.PgError{Code: postgres.DeadlockDetected}, true},
		{"serialization failure", fmt.Errorf("commit: %w", &pgconn.PgError{Code: postgres.SerializationFailure}), true},
		{"foreign key violation", &pgconn.PgError{Code: "23503"}, false},
		{"server shutting down", &pgconn.PgError{Code: postgres.AdminShutdown}, false},
		{"connection cut", io.ErrUnexpectedEOF, false},
		{"other error", errors.New("bad batch"), false},
		{"no error", nil, false},
	}
	for _, tt := range tests {
		if got := postgres.Retryable(tt.err); got != tt.want {
			t.Errorf("%s: got %v, want %v (%v)", tt.name, got, tt.want, tt.err)
		}
	}
}

// TestRetryableFromTheServer: the classification holds for errors the
// server itself reports, not only for errors made in the test.
func TestRetryableFromTheServer(t *testing.T) {
	ctx := context.Background()
	pool, err := postgres.Open(ctx, pgtest.URL(t), 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, `SELECT 1 / 0`)
	if err == nil || postgres.Retryable(err) || postgres.SQLState(err) != "22012" {
		t.Errorf("division by zero: got %v (SQLSTATE %q), want a non-retryable 22012", err, postgres.SQLState(err))
	}
	_, err = pool.Exec(ctx, `DO $$ BEGIN RAISE unique_violation USING MESSAGE = 'duplicate'; END $$`)
	if !postgres.Retryable(err) || postgres.SQLState(err) != postgres.UniqueViolation {
		t.Errorf("unique violation: got %v (SQLSTATE %q), want a retryable %s", err, postgres.SQLState(err), postgres.UniqueViolation)
	}
}
