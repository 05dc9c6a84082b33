package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// BenchSnapshot is the snapshot section of zoomctl bench --snapshot: a
// downstream consumer (zoomctl follow, its own process) loads the snapshot
// of an account from the writer while no-op full resyncs run one after
// another, against the same resyncs without it.
type BenchSnapshot struct {
	Users   int `json:"users"`
	Records int `json:"records"`
	// SnapshotSeconds runs from the consumer's start to its copy loaded
	// over clarity.snapshot and saved to its state file.
	SnapshotSeconds          float64 `json:"snapshot_seconds"`
	SnapshotRecordsPerSecond float64 `json:"snapshot_records_per_second"`
	// ConsumerPeakRSSMiB is the consumer's peak resident memory (VmHWM),
	// StateFileMiB the size of the copy it saved.
	ConsumerPeakRSSMiB float64 `json:"consumer_peak_rss_mib"`
	StateFileMiB       float64 `json:"state_file_mib"`
	// ResyncSeconds is the median no-op resync alone; DuringSeconds each
	// resync that ran while the snapshot was read (the first starts just
	// before the consumer, the last ends after its snapshot), and Slowdown
	// their mean against ResyncSeconds.
	ResyncSeconds float64   `json:"resync_seconds"`
	DuringSeconds []float64 `json:"resync_during_snapshot_seconds"`
	Slowdown      float64   `json:"writer_slowdown"`
	WriterPeakMiB int64     `json:"writer_peak_rss_mib"`
}

// benchSnapshot measures the snapshot section for an account of users.
func benchSnapshot(ctx context.Context, users int, binDir, dbURL string, errw io.Writer) (BenchSnapshot, error) {
	r := BenchSnapshot{Users: users}
	dir, err := os.MkdirTemp("", "zoom-bench-snapshot-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	var release func()
	if dbURL, release, err = benchDatabase(ctx, dir, dbURL, users); err != nil {
		return r, err
	}
	defer release()
	org := zoomtest.Generate(int64(users), zoomtest.Size{Users: users, Groups: max(1, users/50), Roles: 20})
	s, err := devstack.Start(ctx, devstack.Config{BinDir: binDir, DatabaseURL: dbURL, Dir: dir, Org: org, NATSProcess: true,
		Env: map[string]string{"LOG_LEVEL": "warn"}})
	if err != nil {
		return r, err
	}
	defer s.Close()
	for _, name := range devstack.Services {
		if _, err := s.Run(name); err != nil {
			return r, err
		}
	}
	ref := s.Config().Connector
	w, err := NewSyncWatcher(ctx, s.JS, ref)
	if err != nil {
		return r, err
	}
	defer w.Stop()
	sync := func() (time.Duration, error) {
		id := NewRequestID()
		start := time.Now()
		if err := Trigger(ctx, s.JS, ref, id); err != nil {
			return 0, err
		}
		res, err := w.Wait(ctx, id, nil)
		if err == nil && res.Op != clarity.OpCompleted {
			err = fmt.Errorf("sync %s: %s", res.Op, res.Data.Error)
		}
		return time.Since(start), err
	}
	if _, err := sync(); err != nil {
		return r, fmt.Errorf("full sync: %w", err)
	}
	var alone []float64
	for range 2 {
		d, err := sync()
		if err != nil {
			return r, fmt.Errorf("resync: %w", err)
		}
		alone = append(alone, d.Seconds())
	}
	r.ResyncSeconds = medianOf(alone)
	fmt.Fprintf(errw, "  snapshot section: resync alone %.1fs\n", r.ResyncSeconds)

	// Resyncs one after another until the consumer has its copy.
	stop := make(chan struct{})
	type resyncs struct {
		d   []float64
		err error
	}
	done := make(chan resyncs, 1)
	go func() {
		var out resyncs
		for {
			d, err := sync()
			if err != nil {
				out.err = err
				break
			}
			out.d = append(out.d, math.Round(d.Seconds()*1000)/1000)
			select {
			case <-stop:
				done <- out
				return
			default:
			}
		}
		done <- out
	}()
	time.Sleep(200 * time.Millisecond) // the first resync is under way

	state := filepath.Join(dir, "copy")
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "zoomctl"), "follow", "--quiet", "--counts-every", "0",
		"--state", state, "--tenant", ref.Tenant, "--connector", ref.ID)
	cmd.Env = append(os.Environ(), "NATS_URL="+s.NATSURL)
	cmd.Stderr = errw
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	loaded := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// "snapshot sequence=N records=M next=Q"
			f := strings.Fields(sc.Text())
			if len(f) >= 3 && f[0] == "snapshot" {
				n, _ := strconv.Atoi(strings.TrimPrefix(f[2], "records="))
				loaded <- n
				break
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case n := <-loaded:
		r.SnapshotSeconds = time.Since(start).Seconds()
		r.Records = n
	case <-time.After(15 * time.Minute):
		close(stop)
		return r, errors.New("the consumer loaded no snapshot within 15 minutes")
	case <-ctx.Done():
		close(stop)
		return r, ctx.Err()
	}
	close(stop)
	res := <-done
	if res.err != nil {
		return r, fmt.Errorf("resync during the snapshot: %w", res.err)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return r, err
	}
	_, peak, err := parseRSS(st)
	if err != nil {
		return r, err
	}
	r.ConsumerPeakRSSMiB = mib(peak)
	if fi, err := os.Stat(state); err == nil {
		r.StateFileMiB = mib(fi.Size())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	r.DuringSeconds = res.d
	sum := 0.0
	for _, d := range res.d {
		sum += d
	}
	r.Slowdown = math.Round(100*sum/float64(len(res.d))/r.ResyncSeconds) / 100
	r.SnapshotRecordsPerSecond = float64(r.Records) / r.SnapshotSeconds
	for _, p := range s.Procs() {
		if p.Name == "writer" {
			r.WriterPeakMiB = max(r.WriterPeakMiB, p.PeakRSS()>>20)
		}
	}
	return r, nil
}

func printSnapshotBench(w io.Writer, r BenchSnapshot) {
	fmt.Fprintf(w, "\nSnapshot of %d users (%d records) by a consumer (zoomctl follow) while no-op resyncs run:\n", r.Users, r.Records)
	fmt.Fprintf(w, "  snapshot loaded and saved   %.1fs (%.0f records/s)\n", r.SnapshotSeconds, r.SnapshotRecordsPerSecond)
	fmt.Fprintf(w, "  consumer peak RSS           %.0f MiB (state file %.0f MiB)\n", r.ConsumerPeakRSSMiB, r.StateFileMiB)
	fmt.Fprintf(w, "  resync alone                %.2fs (median of 2)\n", r.ResyncSeconds)
	during := make([]string, len(r.DuringSeconds))
	for i, d := range r.DuringSeconds {
		during[i] = fmt.Sprintf("%.2fs", d)
	}
	fmt.Fprintf(w, "  resyncs during the snapshot %s\n", strings.Join(during, " "))
	fmt.Fprintf(w, "  writer slowdown             x%.2f (writer peak RSS %d MiB)\n", r.Slowdown, r.WriterPeakMiB)
}

// runSnapshotBench runs the snapshot section and writes its figures to
// snapshot.json beside the bench's JSON.
func runSnapshotBench(ctx context.Context, users int, binDir, dbURL, jsonPath string, out, errw io.Writer) error {
	fmt.Fprintf(errw, "bench: snapshot of %d users…\n", users)
	r, err := benchSnapshot(ctx, users, binDir, dbURL, errw)
	if err != nil {
		return fmt.Errorf("snapshot section: %w", err)
	}
	printSnapshotBench(out, r)
	if jsonPath != "" {
		path := filepath.Join(filepath.Dir(jsonPath), "snapshot.json")
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "snapshot figures written to %s\n", path)
	}
	return nil
}
