package cli

import (
	"context"
	"strings"
	"testing"
)

// zoomctl follow refuses a bad connector name and an empty --state as
// usage errors, before it connects to anything.
func TestFollowFlags(t *testing.T) {
	const natsURL = "nats://127.0.0.1:1" // nothing listens: connecting would be ExitError
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"follow", "--nats-url", natsURL, "--tenant", "Acme"}, `--tenant "Acme" must be`},
		{[]string{"follow", "--nats-url", natsURL, "--connector", "zoom.eu"}, `--connector "zoom.eu" must be`},
		{[]string{"follow", "--nats-url", natsURL, "--state", ""}, "--state must name a file"},
		{[]string{"follow", "--nats-url", natsURL, "extra"}, "unexpected arguments: extra"},
	} {
		code, _, errw := zoomctl(t, context.Background(), tt.args...)
		if code != ExitUsage || !strings.Contains(errw, tt.wantErr) {
			t.Errorf("%v: got exit %d, stderr %q; want exit %d, stderr containing %q", tt.args, code, errw, ExitUsage, tt.wantErr)
		}
	}
}
