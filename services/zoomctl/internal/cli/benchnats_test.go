package cli

import (
	"syscall"
	"testing"
)

// TestOwnPeakRSS: zoomctl's peak RSS counts memory it touched, and a reset
// brings it down to what it holds now, so that a bench size's peak is not
// an earlier, larger one's.
func TestOwnPeakRSS(t *testing.T) {
	// slack allows for what the runtime gives back to the system while
	// the test runs (the peak reset is the resident set at that moment):
	// more than this test binary holds in all, so the check cannot flake,
	// and less than size, so a peak that missed the touched memory fails.
	const size, slack = 128 << 20, 48 << 20
	if err := resetOwnPeakRSS(); err != nil {
		t.Fatal(err)
	}
	before, err := ownPeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < size; i += 4096 {
		mem[i] = 1
	}
	peak, err := ownPeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if peak < before+size-slack {
		t.Errorf("peak %d MiB after touching %d MiB, from %d MiB", peak>>20, size>>20, before>>20)
	}
	if err := syscall.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	if err := resetOwnPeakRSS(); err != nil {
		t.Fatal(err)
	}
	after, err := ownPeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if after > peak-size/2 {
		t.Errorf("peak %d MiB after the memory was released and the peak reset, was %d MiB", after>>20, peak>>20)
	}
}

func TestCPULabel(t *testing.T) {
	for _, c := range []struct {
		name  string
		apart bool
		want  string
	}{
		{cpuNATS, true, "NATS server"},
		{cpuZoomctl, true, "zoomctl (simulator)"},
		{cpuZoomctl, false, "zoomctl (NATS, sim)"},
		{"writer", true, "writer"},
	} {
		if got := cpuLabel(c.name, c.apart); got != c.want {
			t.Errorf("cpuLabel(%q, %v) = %q, want %q", c.name, c.apart, got, c.want)
		}
	}
}
