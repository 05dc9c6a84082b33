package cli

import (
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []float64
		want spread
	}{
		{"empty", nil, spread{}},
		{"one", []float64{3}, spread{3, 3, 3}},
		{"odd", []float64{9, 1, 4}, spread{1, 4, 9}},
		{"even", []float64{8, 2, 4, 6}, spread{2, 5, 8}},
	} {
		in := append([]float64(nil), c.in...)
		if got := summarize(c.in); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("%s: summarize reordered its input: got %v, want %v", c.name, c.in, in)
				break
			}
		}
	}
}

func TestMaxAtOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		runs []syncEnd
		want int
	}{
		{"none", nil, 0},
		{"one after another", []syncEnd{{start: 0, end: 1}, {start: 1, end: 2}, {start: 2, end: 3}}, 1},
		{"all together", []syncEnd{{start: 0, end: 5}, {start: 0.1, end: 4}, {start: 0.2, end: 6}}, 3},
		{"two waves", []syncEnd{{start: 0, end: 2}, {start: 0, end: 2}, {start: 3, end: 4}, {start: 3.5, end: 5}, {start: 3.9, end: 4.5}}, 3},
	} {
		if got := maxAtOnce(c.runs); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func TestManyFigures(t *testing.T) {
	// Four connectors: two run at once from the start, the other two only
	// once those completed.
	r := manyRun{register: 1500 * time.Millisecond, total: 8, records: 800, ends: []syncEnd{
		{start: 0.5, end: 3}, {start: 0.5, end: 4}, {start: 4, end: 7}, {start: 4.5, end: 8},
	}}
	m := r.figures(4, 100)
	want := ManyFigures{Connectors: 4, UsersEach: 100, Records: 800, RegisterSeconds: 1.5,
		TotalSeconds: 8, FirstSeconds: 3, MedianSeconds: 5.5, RecordsPerSecond: 100,
		FirstStartSeconds: 0.5, MedianStartSeconds: 2.25, LastStartSeconds: 4.5, StartedAfterMedian: 0,
		MedianRunSeconds: 3.25, MaxRunSeconds: 3.5, MaxAtOnce: 2}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v,\nwant %+v", m, want)
	}
	// A run that began after half the connectors completed waited for them.
	r.ends[3].start = 6
	if got := r.figures(4, 100).StartedAfterMedian; got != 1 {
		t.Errorf("runs started after the median completion: got %d, want 1", got)
	}
}

func TestBusyShare(t *testing.T) {
	cpu := map[string]float64{"writer": 3, "postgres": 5}
	if got := busyShare(cpu, 5, 2); got != 0.8 {
		t.Errorf("got %v, want 0.8", got)
	}
	if got := busyShare(cpu, 0, 2); got != 0 {
		t.Errorf("no duration: got %v, want 0", got)
	}
}

func TestParseRSS(t *testing.T) {
	status := "Name:\tfetcher\nVmPeak:\t 1000 kB\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	cur, peak, err := parseRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if cur != 20<<20 || peak != 30<<20 {
		t.Errorf("got current %d, peak %d; want %d, %d", cur, peak, 20<<20, 30<<20)
	}
	for _, bad := range []string{"", "VmRSS:\t20480 kB\n", "VmRSS:\t20 MB\nVmHWM:\t30 MB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, _, err := parseRSS([]byte(bad)); err == nil {
			t.Errorf("%q: got no error", bad)
		}
	}
}
