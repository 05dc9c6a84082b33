// Package pgtest gives each test its own PostgreSQL database, created in
// milliseconds WITH TEMPLATE from a database migrated once per test binary.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// URL returns DATABASE_URL. Without it the test fails when CI=true (a
// missing dependency there is a failure) and is skipped otherwise.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("DATABASE_URL is not set; CI must start PostgreSQL (scripts/pg.sh)")
		}
		t.Skip("DATABASE_URL is not set; run the tests with `make test`, which starts PostgreSQL")
	}
	return u
}

// New creates a fresh database for the test from a template that migrate
// prepared, and returns its URL; the database is dropped when the test ends.
// migrate receives the template database's URL.
func New(t testing.TB, migrate func(ctx context.Context, url string) error) string {
	t.Helper()
	base := URL(t)
	ctx := context.Background()
	templateOnce.Do(func() {
		templateName = "tmpl_" + randomSuffix()
		templateErr = createDB(ctx, base, templateName, "")
		if templateErr == nil {
			templateErr = migrate(ctx, withDB(base, templateName))
		}
	})
	if templateErr != nil {
		t.Fatalf("prepare template database: %v", templateErr)
	}
	name := "test_" + randomSuffix()
	if err := createDB(ctx, base, name, templateName); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	})
	return withDB(base, name)
}

func createDB(ctx context.Context, base, name, template string) error {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	q := `CREATE DATABASE ` + name
	if template != "" {
		q += ` TEMPLATE ` + template
	}
	_, err = conn.Exec(ctx, q)
	return err
}

func withDB(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	return u.String()
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
