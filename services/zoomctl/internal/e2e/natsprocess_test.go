package e2e

import (
	"context"
	"os"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// TestStackWithNATSProcess runs a secured stack, as the bench does, with its
// NATS server in a process of its own (zoomctl nats-server): the services
// reach it with their own credentials and sync the organisation, the
// server's memory is its process's, and it stops cleanly (exit 0) on
// SIGTERM.
func TestStackWithNATSProcess(t *testing.T) {
	org := zoomtest.Generate(31, zoomtest.Size{Users: 60, Groups: 5, Roles: 4})
	s, err := devstack.Start(context.Background(), devstack.Config{
		BinDir: binDir(t), DatabaseURL: roleDatabase(t).writer, Dir: t.TempDir(), Org: org,
		Secured: true, NATSProcess: true, Env: map[string]string{"TRIGGER_ACK_WAIT": "3s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			dumpLogs(t, s)
		}
	})
	if s.NATS != nil || s.NATSProc == nil {
		t.Fatal("the NATS server runs inside the test, want a process of its own")
	}
	if s.NATSProc.Pid() == os.Getpid() || s.NATSProc.Exited() {
		t.Fatalf("NATS process %d (the test is %d), exited %v", s.NATSProc.Pid(), os.Getpid(), s.NATSProc.Exited())
	}
	for _, name := range devstack.Services {
		if _, err := s.Run(name); err != nil {
			t.Fatal(err)
		}
	}
	c := collect(t, s)
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	requireSame(t, "records after the sync", c.snapshot(), expected(s))
	if peak := s.NATSProc.PeakRSS(); peak < 1<<20 {
		t.Errorf("NATS process peak RSS %d bytes, want its own figure", peak)
	}
	if refused := refusedInLogs(t, s); len(refused) > 0 {
		t.Errorf("the server refused the services: %v", refused)
	}
	if err := s.NATSProc.Stop(); err != nil {
		t.Errorf("NATS process after SIGTERM: %v, want exit 0", err)
	}
}
