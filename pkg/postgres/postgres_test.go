package postgres_test

import (
	"context"
	"strings"
	"testing"

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
