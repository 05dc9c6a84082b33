package cli

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// The bench reports the CPU time each process spent on a sync, which says
// where the time went on a machine the pipeline saturates: each service,
// the NATS server (a process of its own, cpuNATS), zoomctl itself (it hosts
// the simulator, and the NATS server too when a stack runs it inside) and
// PostgreSQL when it runs on this machine.
const (
	cpuZoomctl  = "zoomctl"
	cpuPostgres = "postgres"
)

// cpuOrder is the order of the table's CPU rows.
var cpuOrder = append([]string{cpuPostgres, cpuNATS, cpuZoomctl}, devstack.Services...)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture).
const userHZ = 100

// procStat is what the bench reads of /proc/<pid>/stat.
type procStat struct {
	ppid     int
	self     float64 // user and system CPU seconds of the process
	children float64 // the same of its children that exited and were waited for
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, b)
}

func parseProcStat(pid int, b []byte) (procStat, error) {
	var err error
	// "pid (comm) state ppid …": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	n := make([]int64, 4)
	for j, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		if n[j], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{ppid: ppid, self: float64(n[0]+n[1]) / userHZ, children: float64(n[2]+n[3]) / userHZ}, nil
}

// cpuMeter samples the CPU time of the processes a bench run measures.
type cpuMeter struct {
	procs      func() []*devstack.Proc
	postmaster int // 0 when PostgreSQL is not on this machine
}

// findPostmaster returns the pid of the PostgreSQL server dbURL names, when
// it runs on this machine, else 0: the parent of the connection's backend.
func findPostmaster(ctx context.Context, dbURL string) int {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var backend int
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0
	}
	st, err := readProcStat(backend)
	if err != nil {
		return 0
	}
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(st.ppid) + "/comm"); err != nil ||
		!strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres") {
		return 0
	}
	return st.ppid
}

// sample returns the CPU seconds spent so far by name. PostgreSQL's are its
// server process's, its exited children's, and its live children's.
func (m cpuMeter) sample() map[string]float64 {
	out := map[string]float64{}
	for _, p := range m.procs() {
		if st, err := readProcStat(p.Pid()); err == nil {
			out[p.Name] += st.self
		}
	}
	if st, err := readProcStat(os.Getpid()); err == nil {
		out[cpuZoomctl] = st.self
	}
	if m.postmaster == 0 {
		return out
	}
	pm, err := readProcStat(m.postmaster)
	if err != nil {
		return out
	}
	total := pm.self + pm.children
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == m.postmaster {
			continue
		}
		if st, err := readProcStat(pid); err == nil && st.ppid == m.postmaster {
			total += st.self
		}
	}
	out[cpuPostgres] = total
	return out
}

// cpuSince returns the CPU seconds spent since before, by name.
func cpuSince(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for name, v := range after {
		out[name] = math.Round(max(0, v-before[name])*100) / 100
	}
	return out
}

// medianCPU is the median of each name's CPU seconds over runs.
func medianCPU(runs []map[string]float64) map[string]float64 {
	values := map[string][]float64{}
	for _, r := range runs {
		for name, v := range r {
			values[name] = append(values[name], v)
		}
	}
	out := map[string]float64{}
	for name, v := range values {
		out[name] = medianOf(v)
	}
	return out
}
