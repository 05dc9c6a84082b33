package cli

import (
	"context"
	"strings"
	"testing"
)

// TestConnectorFlags: every command that acts on one connector refuses a
// --tenant or --connector that is not a valid name as a usage error naming
// the flag, before it connects to anything.
func TestConnectorFlags(t *testing.T) {
	// Nothing listens at these: a command that got as far as connecting
	// would fail otherwise, with ExitError.
	const natsURL, dbURL = "nats://127.0.0.1:1", "postgres://nobody@127.0.0.1:1/none"
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"sync, tenant", []string{"sync", "--nats-url", natsURL, "--tenant", "Acme"}, `--tenant "Acme" must be 1 to 63 of a-z`},
		{"sync, connector", []string{"sync", "--nats-url", natsURL, "--connector", "zoom.eu"}, `--connector "zoom.eu" must be`},
		{"sync, empty connector", []string{"sync", "--nats-url", natsURL, "--connector", ""}, `--connector "" must be`},
		{"events", []string{"events", "--nats-url", natsURL, "--tenant", "a*"}, `--tenant "a*" must be`},
		{"snapshot", []string{"snapshot", "--database-url", dbURL, "--connector", "Zoom"}, `--connector "Zoom" must be`},
		{"status", []string{"status", "--database-url", dbURL, "--tenant", "-acme"}, `--tenant "-acme" must be`},
		{"dev", []string{"dev", "--bin", t.TempDir(), "--tenant", strings.Repeat("t", 64)}, `--tenant "tttt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errw := zoomctl(t, context.Background(), tt.args...)
			if code != ExitUsage || !strings.Contains(errw, tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, errw, ExitUsage, tt.wantErr)
			}
		})
	}
}
