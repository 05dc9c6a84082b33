package cli

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestConnectDBNeverShowsThePassword: zoomctl's commands that read the
// database report a DATABASE_URL that does not parse, or a database that
// does not answer, without the password the URL carries.
func TestConnectDBNeverShowsThePassword(t *testing.T) {
	for _, url := range []string{
		"postgres://user:s3cret@127.0.0.1:1/db",
		"postgres://user:s3cret@host:port:bad/db",
		"postgres://user:s3cret@[::1/db",
		"postgres://user:s3c%zzret@127.0.0.1:1/db",
		"postgres://user@127.0.0.1:1/db?password=s3cret",
		"host=127.0.0.1 port=bad password=s3cret",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := connectDB(ctx, url)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			t.Errorf("connectDB(%q) succeeded, want an error", url)
			continue
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("connectDB(%q) = %q, shows the password", url, err)
		}
	}
}
