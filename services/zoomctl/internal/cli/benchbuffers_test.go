package cli

import "testing"

func TestBenchSharedBuffers(t *testing.T) {
	const gib = uint64(1) << 30
	for _, tc := range []struct {
		users  int
		memory uint64
		want   int
	}{
		{10000, 24 * gib, 1024},   // the default floor
		{100000, 24 * gib, 1024},  // 586 MiB of working set
		{1000000, 24 * gib, 5860}, // 6 KB a user
		{1000000, 8 * gib, 2048},  // a quarter of the machine
		{1000000, 0, 5860},        // memory unknown: no cap
		{1000000, 2 * gib, 1024},  // never below the default
	} {
		if got := benchSharedBuffers(tc.users, tc.memory); got != tc.want {
			t.Errorf("benchSharedBuffers(%d, %d GiB) = %d MiB, want %d", tc.users, tc.memory/gib, got, tc.want)
		}
	}
	if physicalMemory() == 0 {
		t.Error("physicalMemory read nothing from /proc/meminfo")
	}
}
