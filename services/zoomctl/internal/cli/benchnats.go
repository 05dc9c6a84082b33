package cli

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// The bench runs the stack's NATS server as a process of its own
// (devstack.Config.NATSProcess): its peak memory and CPU are then read from
// /proc like a service's, and zoomctl's own figures are the simulator's
// (and the bench's, which holds little besides it).

// cpuNATS names the NATS server's figures, in the CPU and peak RSS maps.
const cpuNATS = devstack.NATSProcName

// benchProcs returns the stack's processes that the bench measures: its
// services and its NATS server when that runs apart.
func benchProcs(s *devstack.Stack) func() []*devstack.Proc {
	return func() []*devstack.Proc {
		procs := s.Procs()
		if s.NATSProc != nil {
			procs = append(procs, s.NATSProc)
		}
		return procs
	}
}

// cpuLabel is the table's name for a process's figures; apart says
// whether the NATS server ran as its own process.
func cpuLabel(name string, apart bool) string {
	switch {
	case name == cpuNATS:
		return "NATS server"
	case name == cpuZoomctl && apart:
		return "zoomctl (simulator)"
	case name == cpuZoomctl:
		return "zoomctl (NATS, sim)"
	}
	return name
}

// ownPeakRSS returns zoomctl's own peak resident memory (VmHWM), in bytes.
func ownPeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	_, peak, err := parseRSS(b)
	return peak, err
}

// resetOwnPeakRSS returns what it can of zoomctl's freed memory to the
// system and resets its peak resident memory to what it holds now (Linux's
// clear_refs "5"), so that each bench size's peak is its own.
func resetOwnPeakRSS() error {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	return nil
}
