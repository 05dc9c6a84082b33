package e2e

import (
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestFetcherStopsMidRun stops the fetcher in the middle of a run, once
// gracefully (SIGTERM: the trigger is handed back at once) and once abruptly
// (SIGKILL: the trigger comes back after its ack wait). Each time a new
// fetcher resumes the run, which completes with exactly the organisation.
func TestFetcherStopsMidRun(t *testing.T) {
	org := zoomtest.Generate(11, zoomtest.Size{Users: 3000, Groups: 40, Roles: 8})
	s := startStack(t, org, zoomtest.Options{}, map[string]int{"webhook": 0, "fetcher": 0})
	c := collect(t, s)
	// Slow Zoom down so that the run is still fetching when it is stopped.
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /groups/{groupId}/admins", Latency: 100 * time.Millisecond})

	for _, how := range []string{"sigterm", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			f, err := s.Run("fetcher")
			if err != nil {
				t.Fatal(err)
			}
			id := cli.NewRequestID()
			start := s.Sim.TotalRequests()
			cfg := s.Config()
			if err := cli.Trigger(t.Context(), s.JS, cfg.Connector, id); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, func() bool { return s.Sim.TotalRequests()-start > 20 })
			switch how {
			case "sigterm":
				began := time.Now()
				if err := f.Stop(); err != nil {
					t.Fatalf("fetcher on SIGTERM: %v", err)
				}
				if d := time.Since(began); d > 10*time.Second {
					t.Errorf("fetcher took %s to stop, want under 10s", d)
				}
			case "sigkill":
				f.Kill()
			}
			if _, err := s.Run("fetcher"); err != nil {
				t.Fatal(err)
			}
			op, d := c.waitEnd(t, id, 2*time.Minute)
			if op != clarity.OpCompleted {
				t.Fatalf("resumed run: got %s (%s), want completed", op, d.Error)
			}
			requireSame(t, "records after a resumed run", c.snapshot(), expected(s))
			requireSame(t, "snapshot after a resumed run", snapshot(t, s), expected(s))
		})
	}
	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
