package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/postgres"
)

// TestOpenNeverShowsThePassword: a DATABASE_URL that does not parse, or
// names a database that does not answer, is reported (and logged while
// the writer waits for its database) without the password it carries.
func TestOpenNeverShowsThePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://user:s3cret@127.0.0.1:1/db",
		"postgres://user@127.0.0.1:1/db?password=s3cret",
		"host=127.0.0.1 port=1 user=u password=s3cret dbname=db",
		"postgres://user:s3cret@host:port:bad/db",
		"postgres://user:s3cret@[::1/db",
		"postgres://user:s3c%zzret@127.0.0.1:1/db",
		"postgres://user:s3cret@127.0.0.1:1/db?sslmode=bogus",
		"host=127.0.0.1 port=bad password=s3cret",
	} {
		var logs bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		pool, err := postgres.Open(ctx, url, 1, zerolog.New(&logs))
		cancel()
		if err == nil {
			pool.Close()
			t.Errorf("Open(%q) succeeded, want an error", url)
			continue
		}
		if strings.Contains(err.Error(), "s3") || strings.Contains(logs.String(), "s3cret") {
			t.Errorf("Open(%q): error %q, log %q; want neither to show the password", url, err, logs.String())
		}
	}
}
