package service

import (
	"math"
	"runtime/debug"
	"testing"
)

// gcSettings returns the collector's percent and soft memory limit.
func gcSettings() (int, int64) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p, debug.SetMemoryLimit(-1)
}

func TestTuneGC(t *testing.T) {
	p0, l0 := gcSettings()
	t.Cleanup(func() { debug.SetGCPercent(p0); debug.SetMemoryLimit(l0) })

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
	tuneGC()
	if p, l := gcSettings(); p != defaultGCPercent || l != defaultMemoryLimit {
		t.Errorf("unset: got GOGC %d, limit %d; want %d, %d", p, l, defaultGCPercent, defaultMemoryLimit)
	}

	// What the environment sets (and the runtime read at start) stays.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(1 << 30)
	tuneGC()
	if p, l := gcSettings(); p != 50 || l != 1<<30 {
		t.Errorf("set: got GOGC %d, limit %d; want 50, %d", p, l, 1<<30)
	}
}
