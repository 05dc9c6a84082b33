package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// BenchResult is one row of zoomctl bench.
type BenchResult struct {
	Users            int     `json:"users"`
	Records          int     `json:"records"`
	FullSyncSeconds  float64 `json:"full_sync_seconds"`
	RecordsPerSecond float64 `json:"records_per_second"`
	ResyncSeconds    float64 `json:"noop_resync_seconds"`
	ResyncChanges    int     `json:"noop_resync_change_events"`
	ZoomRequests     int     `json:"zoom_requests"`
	ProSeconds       float64 `json:"zoom_time_at_pro_limits_seconds"`
	BusinessSeconds  float64 `json:"zoom_time_at_business_limits_seconds"`
	CopySeconds      float64 `json:"copy_floor_seconds"`
	FloorRatio       float64 `json:"full_sync_to_copy_ratio"`
	// JetStreamSeconds is the JetStream floor (see jetStreamFloor), and
	// FloorsRatio the full sync against both floors one after the other.
	JetStreamSeconds float64          `json:"jetstream_floor_seconds"`
	FloorsRatio      float64          `json:"full_sync_to_floors_ratio"`
	JetStreamCPU     float64          `json:"jetstream_floor_cpu_seconds"`
	WebhookEvents    int              `json:"webhook_events"`
	WebhookP50Millis float64          `json:"webhook_latency_p50_ms"`
	WebhookP99Millis float64          `json:"webhook_latency_p99_ms"`
	PeakRSSMiB       map[string]int64 `json:"peak_rss_mib"`
	// NATSSyncsPeakMiB is the NATS server's peak RSS through the full sync
	// and the resync, before the floors and the webhooks (its process's
	// VmHWM then); PeakRSSMiB has its peak over the whole run.
	NATSSyncsPeakMiB int64 `json:"nats_server_peak_rss_through_syncs_mib,omitempty"`
	// FullSyncCPU and ResyncCPU are the CPU seconds each process spent
	// during the full sync and the resync (see cpuMeter).
	FullSyncCPU map[string]float64 `json:"full_sync_cpu_seconds,omitempty"`
	ResyncCPU   map[string]float64 `json:"noop_resync_cpu_seconds,omitempty"`
	// SettleSeconds and SettleCPU are the time and the CPU seconds of each
	// process of the VACUUM and CHECKPOINT between the full sync and the
	// resync (see settleDatabase).
	SettleSeconds float64            `json:"settle_seconds"`
	SettleCPU     map[string]float64 `json:"settle_cpu_seconds,omitempty"`
	// Repeats is how many times the size was measured; the timings above
	// are the medians, the peak RSS the highest, and Runs holds each.
	Repeats int           `json:"repeats"`
	Runs    []BenchResult `json:"runs,omitempty"`
}

// median combines repeated measurements of one size: the median of every
// timing (shared machines are noisy), the highest peak RSS.
func median(runs []BenchResult) BenchResult {
	if len(runs) == 1 {
		r := runs[0]
		r.Repeats = 1
		return r
	}
	mid := func(f func(BenchResult) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		return medianOf(v)
	}
	out := runs[0]
	out.Runs = runs
	out.Repeats = len(runs)
	out.FullSyncSeconds = mid(func(r BenchResult) float64 { return r.FullSyncSeconds })
	out.RecordsPerSecond = float64(out.Records) / out.FullSyncSeconds
	out.ResyncSeconds = mid(func(r BenchResult) float64 { return r.ResyncSeconds })
	out.SettleSeconds = mid(func(r BenchResult) float64 { return r.SettleSeconds })
	out.CopySeconds = mid(func(r BenchResult) float64 { return r.CopySeconds })
	out.FloorRatio = out.FullSyncSeconds / out.CopySeconds
	out.JetStreamSeconds = mid(func(r BenchResult) float64 { return r.JetStreamSeconds })
	out.FloorsRatio = out.FullSyncSeconds / (out.CopySeconds + out.JetStreamSeconds)
	out.JetStreamCPU = mid(func(r BenchResult) float64 { return r.JetStreamCPU })
	out.WebhookP50Millis = mid(func(r BenchResult) float64 { return r.WebhookP50Millis })
	out.WebhookP99Millis = mid(func(r BenchResult) float64 { return r.WebhookP99Millis })
	var full, settle, resync []map[string]float64
	for _, r := range runs {
		full, settle, resync = append(full, r.FullSyncCPU), append(settle, r.SettleCPU), append(resync, r.ResyncCPU)
	}
	out.FullSyncCPU, out.SettleCPU, out.ResyncCPU = medianCPU(full), medianCPU(settle), medianCPU(resync)
	out.PeakRSSMiB = map[string]int64{}
	for _, r := range runs {
		out.ResyncChanges = max(out.ResyncChanges, r.ResyncChanges)
		out.NATSSyncsPeakMiB = max(out.NATSSyncsPeakMiB, r.NATSSyncsPeakMiB)
		for name, mib := range r.PeakRSSMiB {
			out.PeakRSSMiB[name] = max(out.PeakRSSMiB[name], mib)
		}
	}
	return out
}

// medianOf returns the median of v, which it sorts.
func medianOf(v []float64) float64 {
	sort.Float64s(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func runBench(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, _, _ := flags("bench", errw)
	sizes := fs.String("users", "10000,100000", "comma-separated organisation sizes")
	webhooks := fs.Int("webhooks", 300, "webhook events for the latency figure")
	repeat := fs.Int("repeat", 1, "measurements of each size; the table shows their medians")
	jsonPath := fs.String("json", "bench-results/bench.json", "where to write the figures as JSON")
	binDir := fs.String("bin", "", "directory of the service binaries (default: zoomctl's own)")
	conns := fs.Bool("connectors", false, "also measure many connectors: idle memory, and many synced at once against one of their total size")
	snapshotUsers := fs.Int("snapshot", 0, "also measure a consumer's snapshot of an account of this many users while resyncs run (0: skip; see benchsnapshot.go)")
	var co ConnectorsOptions
	fs.IntVar(&co.Idle, "idle-connectors", 1000, "with --connectors: connectors registered for the idle memory figures (0: skip)")
	fs.IntVar(&co.IdleUsers, "idle-connector-users", 5, "with --connectors: users of each idle connector's account")
	fs.IntVar(&co.Many, "sync-connectors", 200, "with --connectors: connectors synced at once (0: skip)")
	fs.IntVar(&co.ManyUsers, "sync-connector-users", 500, "with --connectors: users of each of them")
	fs.DurationVar(&co.Settle, "settle", 10*time.Second, "with --connectors: idle time before memory is read")
	budget := fs.Bool("budget", false, "measure the account-wide rate budget instead: fetcher replicas sharing one connector's budget under the Pro plan's limits during a full sync of each size, while webhooks change users")
	budgetReplicas := fs.Int("budget-replicas", 3, "with --budget: fetcher replicas")
	budgetChanges := fs.Int("budget-changes", 10000, "with --budget: user.updated webhooks during the sync")
	budgetSpread := fs.Duration("budget-spread", time.Minute, "with --budget: how long the webhooks take")
	provision := fs.Bool("provision", false, "measure provisioning instead: requests per second through the worker under the Pro plan's limits, and one request's latency during a full sync (benchprovision.go)")
	provisionRequests := fs.Int("provision-requests", 300, "with --provision: requests for the rate")
	provisionSync := fs.Int("provision-sync-users", 100000, "with --provision: users of the account fully synced during the latency figure (0: skip)")
	provisionShare := fs.Float64("provision-share", 1, "with --provision: the fetcher's ZOOM_RATE_SHARE")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *provision {
		return runProvisionBench(ctx, *provisionRequests, *provisionSync, *provisionShare, *binDir, *jsonPath, out, errw)
	}
	if *budget {
		return runBudgetBench(ctx, *sizes, *budgetReplicas, *budgetChanges, *budgetSpread, *binDir, *jsonPath, out, errw)
	}
	if *conns && (co.Idle < 0 || co.IdleUsers < 1 || co.Many < 0 || co.ManyUsers < 10 || co.Settle < 0) {
		return fail(errw, ExitUsage, "bench: bad --connectors sizes")
	}
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		// zoomctl hosts the simulator (the NATS server runs apart and
		// profiles itself, see benchOne): its share of the machine is part
		// of what the bench measures.
		f, err := os.Create(path)
		if err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if *binDir == "" {
		exe, _ := os.Executable()
		*binDir = filepath.Dir(exe)
	}
	dbURL := os.Getenv("DATABASE_URL")
	var results []BenchResult
	var fields []string
	// "none" runs no size: the many-connectors section alone.
	if s := strings.TrimSpace(*sizes); s != "none" && (s != "" || !*conns) {
		fields = strings.Split(s, ",")
	} else if !*conns && *snapshotUsers == 0 {
		return fail(errw, ExitUsage, "bench: --users none measures nothing without --connectors or --snapshot")
	}
	for _, f := range fields {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			return fail(errw, ExitUsage, "bench: bad size %q", f)
		}
		fmt.Fprintf(errw, "bench: %d users…\n", n)
		var runs []BenchResult
		for i := range max(1, *repeat) {
			if *repeat > 1 {
				fmt.Fprintf(errw, "  run %d of %d\n", i+1, *repeat)
			}
			r, err := benchOne(ctx, n, *webhooks, *binDir, dbURL, errw)
			if err != nil {
				return fail(errw, ExitError, "bench %d users: %v", n, err)
			}
			runs = append(runs, r)
		}
		results = append(results, median(runs))
	}
	if len(results) > 0 {
		printBench(out, results)
	}
	if *snapshotUsers > 0 {
		if err := runSnapshotBench(ctx, *snapshotUsers, *binDir, dbURL, *jsonPath, out, errw); err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
	}
	var section *BenchConnectors
	if *conns {
		c, err := benchConnectors(ctx, co, results, *binDir, dbURL, errw)
		if err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		section = &c
		printConnectors(out, c)
	}
	if *jsonPath != "" {
		_ = os.MkdirAll(filepath.Dir(*jsonPath), 0o755)
		// Without the section the file is the list of sizes, as it was.
		var v any = results
		if section != nil {
			results = append([]BenchResult{}, results...)
			v = struct {
				Sizes      []BenchResult    `json:"sizes"`
				Connectors *BenchConnectors `json:"connectors"`
			}{results, section}
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(*jsonPath, b, 0o644); err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		fmt.Fprintf(out, "\nfigures written to %s\n", *jsonPath)
	}
	return ExitOK
}

func benchOne(ctx context.Context, users, webhooks int, binDir, dbURL string, errw io.Writer) (BenchResult, error) {
	r := BenchResult{Users: users, PeakRSSMiB: map[string]int64{}}
	if err := resetOwnPeakRSS(); err != nil {
		fmt.Fprintf(errw, "  %v: zoomctl's peak RSS counts from its start\n", err)
	}
	dir, err := os.MkdirTemp("", "zoom-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	var release func()
	if dbURL, release, err = benchDatabase(ctx, dir, dbURL, users); err != nil {
		return r, err
	}
	defer release() // runs after s.Close below: deferred calls run last first
	org := zoomtest.Generate(int64(users), zoomtest.Size{Users: users, Groups: max(1, users/50), Roles: 20})
	// With BENCH_CPUPROFILE the NATS server profiles itself too, each
	// size to a file of its own.
	var natsProfile string
	if path := os.Getenv("BENCH_CPUPROFILE"); path != "" {
		natsProfile = fmt.Sprintf("%s.nats.%d", path, users)
	}
	s, err := devstack.Start(ctx, devstack.Config{BinDir: binDir, DatabaseURL: dbURL, Dir: dir, Org: org,
		Env: map[string]string{"LOG_LEVEL": "warn"}, NATSProcess: true, NATSCPUProfile: natsProfile})
	if err != nil {
		return r, err
	}
	defer s.Close()
	for _, name := range devstack.Services {
		if _, err := s.Run(name); err != nil {
			return r, err
		}
	}
	cfg := s.Config()
	// The bench follows sync events only: reading every change event would
	// load the machine it measures. The stream's sequence counts them.
	w, err := NewSyncWatcher(ctx, s.JS, cfg.Connector)
	if err != nil {
		return r, err
	}
	defer w.Stop()
	stream, err := s.JS.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return r, err
	}
	lastSeq := func() (uint64, error) {
		info, err := stream.Info(ctx)
		if err != nil {
			return 0, err
		}
		return info.State.LastSeq, nil
	}

	meter := cpuMeter{procs: benchProcs(s), postmaster: findPostmaster(ctx, dbURL)}
	var cpu map[string]float64       // of the last timed sync
	var firstEvent, lastEvent uint64 // stream sequences of the last timed sync
	timed := func() (time.Duration, int, Result, error) {
		id := NewRequestID()
		before, err := lastSeq()
		if err != nil {
			return 0, 0, Result{}, err
		}
		cpuBefore := meter.sample()
		start := time.Now()
		if err := Trigger(ctx, s.JS, cfg.Connector, id); err != nil {
			return 0, 0, Result{}, err
		}
		res, err := w.Wait(ctx, id, nil)
		d := time.Since(start)
		cpu = cpuSince(cpuBefore, meter.sample())
		if err != nil {
			return d, 0, res, err
		}
		// sync.completed comes after every change of the run; nothing else
		// publishes meanwhile. Two of the new events are the run's own.
		after, err := lastSeq()
		firstEvent, lastEvent = before+1, after
		return d, int(after-before) - 2, res, err
	}
	d, events, res, err := timed()
	if err != nil || res.Op != clarity.OpCompleted {
		return r, fmt.Errorf("full sync: %v %s", err, res.Data.Error)
	}
	r.Records = events
	r.FullSyncSeconds = d.Seconds()
	r.FullSyncCPU = cpu
	r.RecordsPerSecond = float64(events) / d.Seconds()
	r.ZoomRequests = s.Sim.TotalRequests()
	// Every listing of a full sync is labelled MEDIUM: 20/s on Pro, 60/s on Business+.
	r.ProSeconds = float64(r.ZoomRequests) / 20
	r.BusinessSeconds = float64(r.ZoomRequests) / 60
	fmt.Fprintf(errw, "  full sync %.1fs, %d records\n", r.FullSyncSeconds, r.Records)
	samples, err := sampleEvents(ctx, stream, firstEvent, lastEvent, floorSamples)
	if err != nil {
		return r, err
	}
	if path := os.Getenv("BENCH_MEMPROFILE"); path != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.%d", path, users)); err != nil {
			return r, err
		}
	}

	cpuBefore := meter.sample()
	start := time.Now()
	if err := settleDatabase(ctx, dbURL, errw); err != nil {
		return r, err
	}
	r.SettleSeconds = time.Since(start).Seconds()
	r.SettleCPU = cpuSince(cpuBefore, meter.sample())
	fmt.Fprintf(errw, "  vacuum and checkpoint %.1fs\n", r.SettleSeconds)

	stmts := statementMeter{dbURL: dbURL, path: os.Getenv("BENCH_PG_STATEMENTS")}
	if err := stmts.reset(ctx); err != nil {
		return r, err
	}
	d, events, res, err = timed()
	if err != nil || res.Op != clarity.OpCompleted {
		return r, fmt.Errorf("resync: %v %s", err, res.Data.Error)
	}
	if err := stmts.write(ctx, fmt.Sprintf(".%d.json", users)); err != nil {
		return r, err
	}
	r.ResyncSeconds, r.ResyncChanges = d.Seconds(), events
	r.ResyncCPU = cpu
	if s.NATSProc != nil {
		r.NATSSyncsPeakMiB = s.NATSProc.PeakRSS() >> 20
	}
	fmt.Fprintf(errw, "  no-op resync %.1fs\n", r.ResyncSeconds)

	if r.CopySeconds, err = copyFloor(ctx, dbURL, r.Records); err != nil {
		return r, err
	}
	r.FloorRatio = r.FullSyncSeconds / r.CopySeconds
	cpuBefore = meter.sample()
	r.JetStreamSeconds, err = jetStreamFloor(ctx, s.NC, s.JS, samples, r.Records)
	for _, v := range cpuSince(cpuBefore, meter.sample()) {
		r.JetStreamCPU += v
	}
	if err != nil {
		return r, fmt.Errorf("JetStream floor: %w", err)
	}
	r.FloorsRatio = r.FullSyncSeconds / (r.CopySeconds + r.JetStreamSeconds)

	if webhooks > 0 {
		all, err := NewWatcher(ctx, s.JS, cfg.Connector)
		if err != nil {
			return r, err
		}
		defer all.Stop()
		lat, err := webhookLatency(ctx, s, all, webhooks)
		if err != nil {
			return r, err
		}
		r.WebhookEvents = len(lat)
		r.WebhookP50Millis = percentile(lat, 0.50)
		r.WebhookP99Millis = percentile(lat, 0.99)
	}
	for _, p := range benchProcs(s)() {
		if mib := p.PeakRSS() >> 20; mib > r.PeakRSSMiB[p.Name] {
			r.PeakRSSMiB[p.Name] = mib
		}
	}
	// zoomctl's own: the simulator, its organisation and the bench.
	peak, err := ownPeakRSS()
	if err != nil {
		return r, err
	}
	r.PeakRSSMiB[cpuZoomctl] = peak >> 20
	return r, nil
}

// benchDatabase gives a bench run a database of its own: a throwaway
// cluster in dir when dbURL is empty, else a fresh database next to the one
// dbURL names. release stops or drops it.
func benchDatabase(ctx context.Context, dir, dbURL string, users int) (url string, release func(), err error) {
	if dbURL != "" {
		return freshDatabase(ctx, dbURL)
	}
	pg, err := devstack.StartPostgresWith(filepath.Join(dir, "pg"), devstack.PostgresOptions{
		SharedBuffersMiB: benchSharedBuffers(users, physicalMemory()),
		Statements:       os.Getenv("BENCH_PG_STATEMENTS") != "",
	})
	if err != nil {
		return "", nil, err
	}
	return pg.URL, func() { pg.Stop() }, nil //nolint:errcheck
}

// freshDatabase creates a new database next to the one dbURL names, and
// returns its URL and a function that drops it.
func freshDatabase(ctx context.Context, dbURL string) (string, func(), error) {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	cfg := conn.Config()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if c, err := connectDB(ctx, dbURL); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			_ = c.Close(ctx)
		}
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name), drop, nil
}

// copyFloor writes n rows shaped like the records table with one COPY into
// a fresh table: the floor a sync's writes are compared with.
func copyFloor(ctx context.Context, dbURL string, n int) (float64, error) {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS copy_floor;
		CREATE TABLE copy_floor (connector_id bigint, kind smallint, key text, data json, hash bytea,
			user_key text, ent_key text, email text, seen_at bigint, version bigint, deleted boolean,
			PRIMARY KEY (connector_id, kind, key))`); err != nil {
		return 0, err
	}
	data := `{"user_id":"KdYKjnimT4KPd8FFgQt9FQ","entitlement_id":"group:t-_-d56CSWG-7BF15LLrOw"}`
	hash := make([]byte, 32)
	start := time.Now()
	i := 0
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"copy_floor"},
		[]string{"connector_id", "kind", "key", "data", "hash", "user_key", "ent_key", "email", "seen_at", "version", "deleted"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= n {
				return nil, nil
			}
			i++
			return []any{int64(1), int16(3), "user" + strconv.Itoa(i) + "|group:x", data, hash, "user" + strconv.Itoa(i), "group:x", nil, int64(1), int64(1), false}, nil
		}))
	if err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

// webhookLatency makes n changes in the simulator, one after another, and
// measures from the webhook's 200 to the change event.
func webhookLatency(ctx context.Context, s *devstack.Stack, w *Watcher, n int) ([]float64, error) {
	s.Sim.SetWebhookURL(s.WebhookURL)
	defer s.Sim.SetWebhookURL("")
	org := s.Sim.Org()
	var lat []float64
	for i := range n {
		g := org.Groups[i%len(org.Groups)]
		name := fmt.Sprintf("%s (renamed %d)", g.Name, i)
		dl, err := s.Sim.RenameGroup(ctx, g.ID, name)
		if err != nil {
			return nil, err
		}
		sent := time.Now()
		if dl.Status != 200 {
			return nil, fmt.Errorf("webhook answered %d", dl.Status)
		}
		want := clarity.GroupKey(g.ID)
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-deadline:
				return nil, fmt.Errorf("no change event for %s within 10s", want)
			case m := <-w.msgs:
				var ev clarity.Event
				if json.Unmarshal(m.Data(), &ev) == nil && ev.Subject == want && strings.Contains(string(ev.Data), fmt.Sprintf("(renamed %d)", i)) {
					lat = append(lat, float64(time.Since(sent).Microseconds())/1000)
					break wait
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return lat, nil
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func printBench(out io.Writer, rs []BenchResult) {
	row := func(name string, f func(r BenchResult) string) {
		fmt.Fprintf(out, "| %-44s |", name)
		for _, r := range rs {
			fmt.Fprintf(out, " %18s |", f(r))
		}
		fmt.Fprintln(out)
	}
	row("figure (median of the runs)", func(r BenchResult) string {
		return fmt.Sprintf("%d users, %d run%s", r.Users, r.Repeats, map[bool]string{true: "s"}[r.Repeats > 1])
	})
	fmt.Fprintf(out, "|%s|%s\n", strings.Repeat("-", 46), strings.Repeat(strings.Repeat("-", 20)+"|", len(rs)))
	row("records", func(r BenchResult) string { return strconv.Itoa(r.Records) })
	row("full sync (s)", func(r BenchResult) string { return fmt.Sprintf("%.2f", r.FullSyncSeconds) })
	row("records per second", func(r BenchResult) string { return fmt.Sprintf("%.0f", r.RecordsPerSecond) })
	row("vacuum + checkpoint before it (s)", func(r BenchResult) string { return fmt.Sprintf("%.2f", r.SettleSeconds) })
	row("  its CPU s: postgres", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.SettleCPU[cpuPostgres]) })
	row("no-op resync (s)", func(r BenchResult) string { return fmt.Sprintf("%.2f", r.ResyncSeconds) })
	row("no-op resync change events", func(r BenchResult) string { return strconv.Itoa(r.ResyncChanges) })
	row("Zoom requests", func(r BenchResult) string { return strconv.Itoa(r.ZoomRequests) })
	row("  time at Pro limits (s)", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.ProSeconds) })
	row("  time at Business+ limits (s)", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.BusinessSeconds) })
	row("COPY floor (s)", func(r BenchResult) string { return fmt.Sprintf("%.2f", r.CopySeconds) })
	row("full sync / COPY floor", func(r BenchResult) string { return fmt.Sprintf("%.1f×", r.FloorRatio) })
	row("JetStream floor (s)", func(r BenchResult) string { return fmt.Sprintf("%.2f", r.JetStreamSeconds) })
	row("  its CPU s, all processes", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.JetStreamCPU) })
	row("full sync / (COPY + JetStream floors)", func(r BenchResult) string { return fmt.Sprintf("%.1f×", r.FloorsRatio) })
	row("webhook → event p50 (ms)", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.WebhookP50Millis) })
	row("webhook → event p99 (ms)", func(r BenchResult) string { return fmt.Sprintf("%.1f", r.WebhookP99Millis) })
	for _, name := range devstack.Services {
		row("peak RSS "+name+" (MiB)", func(r BenchResult) string { return strconv.FormatInt(r.PeakRSSMiB[name], 10) })
	}
	apart := false
	for _, r := range rs {
		_, ok := r.PeakRSSMiB[cpuNATS]
		apart = apart || ok
	}
	if apart {
		row("peak RSS NATS server (MiB)", func(r BenchResult) string { return strconv.FormatInt(r.PeakRSSMiB[cpuNATS], 10) })
		row("  through the full sync and resync (MiB)", func(r BenchResult) string { return strconv.FormatInt(r.NATSSyncsPeakMiB, 10) })
		row("peak RSS zoomctl: simulator, bench (MiB)", func(r BenchResult) string { return strconv.FormatInt(r.PeakRSSMiB[cpuZoomctl], 10) })
	}
	// Where the time went: CPU seconds of each process, full sync / resync.
	cpuRow := func(label string, f func(map[string]float64) (float64, bool)) {
		shown := false
		for _, r := range rs {
			_, ok := f(r.FullSyncCPU)
			shown = shown || ok
		}
		if !shown {
			return
		}
		row(label, func(r BenchResult) string {
			full, _ := f(r.FullSyncCPU)
			resync, _ := f(r.ResyncCPU)
			return fmt.Sprintf("%.1f / %.1f", full, resync)
		})
	}
	for _, name := range cpuOrder {
		cpuRow("CPU s, full / resync: "+cpuLabel(name, apart), func(m map[string]float64) (float64, bool) {
			v, ok := m[name]
			return v, ok
		})
	}
	cpuRow("CPU s, full / resync: all", func(m map[string]float64) (float64, bool) {
		total := 0.0
		for _, v := range m {
			total += v
		}
		return total, len(m) > 0
	})
}

// writeHeapProfile writes a heap profile of zoomctl (the simulator; the
// NATS server runs apart) to path, after a collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return f.Close()
}

// benchSharedBuffers is the buffer cache of a throwaway cluster for an
// account of users: about 6 KB a user, enough for the records table and its
// primary key (the working set a resync reads and marks), at least 1 GiB,
// and at most a quarter of the machine's memory (memory bytes; 0 unknown).
// Below the working set a no-op resync reads and dirties every page of the
// table from outside the cache, and its time grows faster than the account.
func benchSharedBuffers(users int, memory uint64) int {
	const perUser = 6 << 10
	mib := max(1024, (users*perUser+(1<<20)-1)>>20)
	if memory > 0 {
		mib = min(mib, max(1024, int(memory>>20)/4))
	}
	return mib
}

// physicalMemory is the machine's memory in bytes, 0 when unknown.
func physicalMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
