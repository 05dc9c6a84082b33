package e2e

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestDevStack runs `zoomctl dev` as a user would, on a small organisation,
// and checks its summary.
func TestDevStack(t *testing.T) {
	db := pgtest.New(t, func(context.Context, string) error { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errw bytes.Buffer
	code := cli.Main(ctx, []string{"dev", "--users", "300", "--changes", "4", "--bin", binDir(t),
		"--database-url", db, "--dir", t.TempDir()}, &out, &errw)
	if code != cli.ExitOK {
		t.Fatalf("zoomctl dev: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errw.String())
	}
	text := out.String()
	for _, want := range []string{"NATS authorization on: each service connects with its own credentials", "through the OAuth flow", "authorized: the connector is active", "sync completed", "zoom → ", "change events as they arrive", "summary"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The summary counts every record kind, and the records line adds them up.
	total, sum := 0, 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		switch f[0] {
		case "service_user", "entitlement", "service_user_entitlement", "service_user_attribute":
			if n <= 0 {
				t.Errorf("summary: %s %d, want some", f[0], n)
			}
			sum += n
		case "records":
			total = n
		}
	}
	if total == 0 || total != sum {
		t.Errorf("summary: records %d, kinds add up to %d", total, sum)
	}
	if !regexp.MustCompile(`Zoom requests\s+\d+ \(`).MatchString(text) {
		t.Errorf("summary lacks the Zoom request count:\n%s", text)
	}
}
