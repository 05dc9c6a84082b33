package cli

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// comm may hold spaces and parentheses; the fields after it count from
	// the last ')'.
	line := "4242 (we (ird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 130 70 30 20 0 1 0 500 0 0\n"
	st, err := parseProcStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 17 || st.self != 3.8 || st.children != 1.0 {
		t.Errorf("got ppid %d, self %.2f s, children %.2f s; want 17, 3.80, 1.00", st.ppid, st.self, st.children)
	}
	for _, bad := range []string{"", "4242 no parenthesis", "4242 (x) S 1 2 3"} {
		if _, err := parseProcStat(4242, []byte(bad)); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}

func TestReadProcStatOfThisProcess(t *testing.T) {
	before, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.ppid != os.Getppid() {
		t.Errorf("got ppid %d, want %d", before.ppid, os.Getppid())
	}
	// Spin until the kernel has counted at least two ticks more.
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		if x%1_000_000 == 0 {
			after, err := readProcStat(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if after.self >= before.self+0.02 {
				return
			}
		}
	}
	t.Fatal("no CPU time counted for 10 s of spinning")
}

func TestCPUSinceAndMedian(t *testing.T) {
	got := cpuSince(map[string]float64{"writer": 2, "fetcher": 1}, map[string]float64{"writer": 5.5, "fetcher": 1, "postgres": 3})
	want := map[string]float64{"writer": 3.5, "fetcher": 0, "postgres": 3}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("cpuSince %s: got %v, want %v", k, got[k], v)
		}
	}
	med := medianCPU([]map[string]float64{{"a": 1, "b": 5}, {"a": 3}, {"a": 2, "b": 7}})
	if med["a"] != 2 || med["b"] != 6 || len(med) != 2 {
		t.Errorf("medianCPU: got %v, want a 2, b 6", med)
	}
}
