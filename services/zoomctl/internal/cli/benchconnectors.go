package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// The many-connectors section of zoomctl bench (--connectors): what the
// services cost with many registered connectors and nothing to do, and
// whether many connectors synced at once share the machine as well as one
// connector of the same total size uses it.
//
// Connectors are registered as Clarity registers them: s2s connectors added
// through the admin API, each on its own simulator account, against a stack
// that has no connector of its own (devstack's OAuth mode, not connected).
// Each add checks its credentials against Zoom and triggers the
// connector's first sync; the fetcher is stopped meanwhile, so that the
// Zoom requests counted are registration's alone and the first syncs all
// wait in the trigger stream for the fetcher's start, which starts the
// clock.

// ConnectorsOptions sizes the section.
type ConnectorsOptions struct {
	// Idle connectors are registered for the idle figures (0: none).
	Idle int
	// IdleUsers is the size of each idle connector's account.
	IdleUsers int
	// Many connectors of ManyUsers users each are synced at once (0:
	// none), and compared with one connector of Many×ManyUsers users.
	Many, ManyUsers int
	// Settle is how long the services idle before their memory is read.
	Settle time.Duration
}

// BenchConnectors holds the section's figures.
type BenchConnectors struct {
	Idle *IdleFigures `json:"idle,omitempty"`
	Many *ManyFigures `json:"many,omitempty"`
}

// IdleFigures are the services' memory with no connector and with many,
// idle.
type IdleFigures struct {
	Connectors    int     `json:"connectors"`
	UsersEach     int     `json:"users_per_connector"`
	SettleSeconds float64 `json:"settle_seconds"`
	// RegisterSeconds is the time the admin API took to add them all (four
	// callers at once; the webhook service answers adds one at a time),
	// and ZoomRequests what the adds asked of Zoom (by route: the token
	// and the first page of users of each check).
	RegisterSeconds     float64        `json:"register_seconds"`
	ZoomRequests        int            `json:"registration_zoom_requests"`
	ZoomRequestsPerConn float64        `json:"registration_zoom_requests_per_connector"`
	ZoomRequestsByRoute map[string]int `json:"registration_zoom_requests_by_route"`
	FirstSyncsSeconds   float64        `json:"first_syncs_seconds"`
	FirstSyncsFailed    int            `json:"first_syncs_failed"`
	RSSNone             map[string]RSS `json:"rss_mib_no_connector"`
	RSSRegistered       map[string]RSS `json:"rss_mib_registered"`
}

// RSS is a process's resident memory, in MiB: now (VmRSS) and its peak
// since it started (VmHWM).
type RSS struct {
	Current float64 `json:"current"`
	Peak    float64 `json:"peak"`
}

// ManyFigures compare Connectors connectors of UsersEach users, triggered
// at once, with one connector of all their users.
type ManyFigures struct {
	Connectors      int     `json:"connectors"`
	UsersEach       int     `json:"users_per_connector"`
	Records         int     `json:"records"`
	RegisterSeconds float64 `json:"register_seconds"`
	// The times count from the fetcher's start, with every trigger
	// waiting: TotalSeconds until the last sync.completed, First and
	// Median the first and the median one.
	TotalSeconds     float64 `json:"total_seconds"`
	FirstSeconds     float64 `json:"first_completed_seconds"`
	MedianSeconds    float64 `json:"median_completed_seconds"`
	RecordsPerSecond float64 `json:"records_per_second"`
	// LastStartSeconds is when the last run began (the fetcher claimed
	// it), StartedAfterMedian how many runs began only once half of the
	// connectors had completed: runs that waited for others.
	FirstStartSeconds  float64 `json:"first_run_start_seconds"`
	MedianStartSeconds float64 `json:"median_run_start_seconds"`
	LastStartSeconds   float64 `json:"last_run_start_seconds"`
	StartedAfterMedian int     `json:"runs_started_after_median_completion"`
	// MedianRunSeconds and MaxRunSeconds are each run's own time, from
	// its start to its sync.completed; MaxAtOnce the most runs under way
	// at one moment.
	MedianRunSeconds float64            `json:"median_run_seconds"`
	MaxRunSeconds    float64            `json:"max_run_seconds"`
	MaxAtOnce        int                `json:"max_runs_at_once"`
	ZoomRequests     int                `json:"zoom_requests"`
	CPU              map[string]float64 `json:"cpu_seconds"`
	// Busy is the share of the machine's CPU time (every core's, over
	// TotalSeconds) that the measured processes spent.
	Busy float64 `json:"cpu_busy_share"`
	// One is the same machine's time for one connector of
	// Connectors×UsersEach users: the full sync of that bench size when it
	// ran, else one registered connector synced as the many were.
	OneUsers   int                `json:"one_connector_users"`
	OneSource  string             `json:"one_connector_source"`
	OneSeconds float64            `json:"one_connector_seconds"`
	OneRecords int                `json:"one_connector_records"`
	OneCPU     map[string]float64 `json:"one_connector_cpu_seconds,omitempty"`
	OneZoom    int                `json:"one_connector_zoom_requests"`
	OneBusy    float64            `json:"one_connector_cpu_busy_share"`
	// Ratio is TotalSeconds / OneSeconds; the target is at most 1.5.
	Ratio float64 `json:"total_to_one_connector_ratio"`
}

// manyRatioTarget is the most the many connectors may take, as a multiple
// of one connector of the same size.
const manyRatioTarget = 1.5

func benchConnectors(ctx context.Context, o ConnectorsOptions, sizes []BenchResult, binDir, dbURL string, errw io.Writer) (BenchConnectors, error) {
	var out BenchConnectors
	if o.Idle > 0 {
		fmt.Fprintf(errw, "bench: %d idle connectors…\n", o.Idle)
		idle, err := benchIdle(ctx, o, binDir, dbURL, errw)
		if err != nil {
			return out, fmt.Errorf("idle connectors: %w", err)
		}
		out.Idle = &idle
	}
	if o.Many > 0 {
		fmt.Fprintf(errw, "bench: %d connectors of %d users at once…\n", o.Many, o.ManyUsers)
		run, err := syncConnectors(ctx, o.Many, o.ManyUsers, binDir, dbURL, errw)
		if err != nil {
			return out, fmt.Errorf("%d connectors: %w", o.Many, err)
		}
		m := run.figures(o.Many, o.ManyUsers)
		m.OneUsers = o.Many * o.ManyUsers
		for _, r := range sizes {
			if r.Users == m.OneUsers {
				m.OneSource = "full sync of the bench's " + strconv.Itoa(r.Users) + "-user size"
				m.OneSeconds, m.OneRecords, m.OneCPU, m.OneZoom = r.FullSyncSeconds, r.Records, r.FullSyncCPU, r.ZoomRequests
			}
		}
		if m.OneSource == "" {
			fmt.Fprintf(errw, "bench: one connector of %d users, for comparison…\n", m.OneUsers)
			one, err := syncConnectors(ctx, 1, m.OneUsers, binDir, dbURL, errw)
			if err != nil {
				return out, fmt.Errorf("one connector of %d users: %w", m.OneUsers, err)
			}
			m.OneSource = "one registered connector, synced as the many"
			m.OneSeconds, m.OneRecords, m.OneCPU, m.OneZoom = one.total, one.records, one.cpu, one.zoom
		}
		m.OneBusy = busyShare(m.OneCPU, m.OneSeconds, runtime.NumCPU())
		m.Ratio = m.TotalSeconds / m.OneSeconds
		out.Many = &m
	}
	return out, nil
}

// benchStack starts a stack without a connector of its own (the
// registered connectors' services hold a secrets key) against a fresh
// database, and the named services. closeAll stops everything and cleans
// up.
func benchStack(ctx context.Context, binDir, dbURL string, services []string) (s *devstack.Stack, pgURL string, closeAll func(), err error) {
	var undo []func()
	closeAll = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	dir, err := os.MkdirTemp("", "zoom-bench-")
	if err != nil {
		return nil, "", nil, err
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	var release func()
	if dbURL, release, err = benchDatabase(ctx, dir, dbURL, 0); err != nil {
		return nil, "", nil, err
	}
	undo = append(undo, release)
	// The default account is not synced: a one-user organisation.
	s, err = devstack.Start(ctx, devstack.Config{BinDir: binDir, DatabaseURL: dbURL, Dir: dir, OAuth: true, NATSProcess: true,
		Org: zoomtest.Generate(1, zoomtest.Size{Users: 1}), Env: map[string]string{"LOG_LEVEL": "warn"}})
	if err != nil {
		return nil, "", nil, err
	}
	undo = append(undo, s.Close)
	for _, name := range services {
		if _, err := s.Run(name); err != nil {
			return nil, "", nil, err
		}
	}
	return s, dbURL, closeAll, nil
}

// servicesBut returns devstack.Services without skip.
func servicesBut(skip string) []string {
	var out []string
	for _, name := range devstack.Services {
		if name != skip {
			out = append(out, name)
		}
	}
	return out
}

// benchAccounts adds n simulator accounts of users users each, and returns
// them with the connectors they are registered under.
func benchAccounts(s *devstack.Stack, n, users int, seed int64) ([]*zoomtest.Account, []pipeline.ConnectorRef, error) {
	accts := make([]*zoomtest.Account, n)
	refs := make([]pipeline.ConnectorRef, n)
	for i := range n {
		id := fmt.Sprintf("bench-%05d", i)
		org := zoomtest.Generate(seed+int64(i), zoomtest.Size{Users: users, Groups: max(1, users/50), Roles: 20})
		a, err := s.Sim.AddAccount(id, org, zoomtest.AccountOptions{WebhookSecret: "wh-" + id})
		if err != nil {
			return nil, nil, err
		}
		accts[i], refs[i] = a, pipeline.ConnectorRef{Tenant: id, ID: "zoom"}
	}
	return accts, refs, nil
}

// registerConnectors adds one s2s connector per account through the admin
// API, a few callers at once, and returns the time it took.
func registerConnectors(ctx context.Context, s *devstack.Stack, accts []*zoomtest.Account, refs []pipeline.ConnectorRef, schedule string) (time.Duration, error) {
	c := connector.Client{NC: s.NC, Timeout: time.Minute}
	// The admin API answers once the webhook service has read its key.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := c.Call(ctx, connector.SubjectTransportKey, struct{}{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, err
		}
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, a := range accts {
		ref := refs[i]
		g.Go(func() error {
			secret, err := c.SealSecret(gctx, ref, connector.FieldClientSecret, a.ClientSecret())
			if err != nil {
				return err
			}
			webhook, err := c.SealSecret(gctx, ref, connector.FieldWebhookSecret, a.WebhookSecret())
			if err != nil {
				return err
			}
			r, err := c.Call(gctx, connector.AdminSubject(ref, connector.OpAdd), connector.SettingsRequest{
				Auth: connector.AuthS2S, ClientID: a.ClientID(), AccountID: a.ID(), Schedule: schedule,
				ClientSecret: secret, WebhookSecret: webhook})
			if err != nil {
				return fmt.Errorf("add %s: %w", ref, err)
			}
			if r.Connector == nil || r.Connector.State != connector.StateActive {
				return fmt.Errorf("add %s: not active after its add", ref)
			}
			return nil
		})
	}
	err := g.Wait()
	return time.Since(start), err
}

// syncEnd is one connector's run, in seconds since the clock started.
type syncEnd struct {
	start, end float64
	failed     string
}

// awaitSyncs follows the sync events of every connector from now on. The
// returned wait function collects, for each of refs, the first run that
// ends, with times relative to t0, until all have ended or timeout passes.
func awaitSyncs(ctx context.Context, js jetstream.JetStream) (wait func(refs []pipeline.ConnectorRef, t0 time.Time, timeout time.Duration) (map[pipeline.ConnectorRef]syncEnd, error), stop func(), err error) {
	cons, err := js.OrderedConsumer(ctx, clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{clarity.EventSubject("*", "*", clarity.KindSync)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("follow sync events: %w", err)
	}
	type arrival struct {
		at   time.Time
		data []byte
	}
	var mu sync.Mutex
	var got []arrival
	notify := make(chan struct{}, 1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		got = append(got, arrival{time.Now(), m.Data()})
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("follow sync events: %w", err)
	}
	wait = func(refs []pipeline.ConnectorRef, t0 time.Time, timeout time.Duration) (map[pipeline.ConnectorRef]syncEnd, error) {
		want := make(map[pipeline.ConnectorRef]bool, len(refs))
		for _, r := range refs {
			want[r] = true
		}
		out := map[pipeline.ConnectorRef]syncEnd{}
		deadline := time.After(timeout)
		seen := 0
		for len(out) < len(want) {
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-deadline:
				return out, fmt.Errorf("%d of %d syncs ended within %s", len(out), len(want), timeout)
			case <-notify:
			case <-time.After(time.Second):
			}
			mu.Lock()
			batch := got[seen:]
			seen = len(got)
			mu.Unlock()
			for _, a := range batch {
				var ev clarity.Event
				if json.Unmarshal(a.data, &ev) != nil {
					continue
				}
				ref := pipeline.ConnectorRef{Tenant: ev.Tenant, ID: ev.Connector}
				op := strings.TrimPrefix(ev.Type, "clarity.sync.")
				if !want[ref] || (op != clarity.OpCompleted && op != clarity.OpFailed) {
					continue
				}
				if _, done := out[ref]; done {
					continue
				}
				var d clarity.SyncData
				_ = json.Unmarshal(ev.Data, &d)
				e := syncEnd{end: a.at.Sub(t0).Seconds()}
				if started, err := time.Parse(time.RFC3339Nano, d.StartedAt); err == nil {
					e.start = started.Sub(t0).Seconds()
				}
				if op == clarity.OpFailed {
					e.failed = d.Error
					if e.failed == "" {
						e.failed = "failed"
					}
				}
				out[ref] = e
			}
		}
		return out, nil
	}
	return wait, cc.Stop, nil
}

// manyRun is what syncConnectors measured.
type manyRun struct {
	register time.Duration
	ends     []syncEnd
	total    float64
	records  int
	zoom     int
	cpu      map[string]float64
}

// syncConnectors registers n connectors of users users each on a fresh
// stack while its fetcher is stopped, then starts the fetcher, with every
// first sync waiting, and times them until all completed.
func syncConnectors(ctx context.Context, n, users int, binDir, dbURL string, errw io.Writer) (manyRun, error) {
	var r manyRun
	s, pgURL, closeAll, err := benchStack(ctx, binDir, dbURL, servicesBut("fetcher"))
	if err != nil {
		return r, err
	}
	defer closeAll()
	accts, refs, err := benchAccounts(s, n, users, 1000)
	if err != nil {
		return r, err
	}
	// Manual: no scheduled sync may start during the measurement.
	if r.register, err = registerConnectors(ctx, s, accts, refs, connector.ScheduleManual); err != nil {
		return r, err
	}
	fmt.Fprintf(errw, "  %d connectors registered in %.1fs\n", n, r.register.Seconds())
	wait, stop, err := awaitSyncs(ctx, s.JS)
	if err != nil {
		return r, err
	}
	defer stop()
	stream, err := s.JS.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return r, err
	}
	before, err := stream.Info(ctx)
	if err != nil {
		return r, err
	}
	meter := cpuMeter{procs: benchProcs(s), postmaster: findPostmaster(ctx, pgURL)}
	zoomBefore := s.Sim.TotalRequests()
	cpuBefore := meter.sample()
	t0 := time.Now()
	if _, err := s.Run("fetcher"); err != nil {
		return r, err
	}
	ends, err := wait(refs, t0, 20*time.Minute)
	r.cpu = cpuSince(cpuBefore, meter.sample())
	r.zoom = s.Sim.TotalRequests() - zoomBefore
	if err != nil {
		return r, err
	}
	for ref, e := range ends {
		if e.failed != "" {
			return r, fmt.Errorf("sync of %s failed: %s", ref, e.failed)
		}
		r.ends = append(r.ends, e)
		r.total = max(r.total, e.end)
	}
	after, err := stream.Info(ctx)
	if err != nil {
		return r, err
	}
	// Each run adds its sync.started and sync.completed to its changes.
	r.records = int(after.State.LastSeq-before.State.LastSeq) - 2*n
	fmt.Fprintf(errw, "  all %d synced in %.1fs, %d records\n", n, r.total, r.records)
	return r, nil
}

// figures summarises the run of n connectors of users users.
func (r manyRun) figures(n, users int) ManyFigures {
	m := ManyFigures{Connectors: n, UsersEach: users, Records: r.records, RegisterSeconds: round2(r.register.Seconds()),
		ZoomRequests: r.zoom, CPU: r.cpu, Busy: busyShare(r.cpu, r.total, runtime.NumCPU())}
	starts, ends, own := make([]float64, len(r.ends)), make([]float64, len(r.ends)), make([]float64, len(r.ends))
	for i, e := range r.ends {
		starts[i], ends[i], own[i] = e.start, e.end, e.end-e.start
	}
	done := summarize(ends)
	began := summarize(starts)
	m.TotalSeconds, m.FirstSeconds, m.MedianSeconds = round2(done.last), round2(done.first), round2(done.median)
	m.FirstStartSeconds, m.MedianStartSeconds, m.LastStartSeconds = round2(began.first), round2(began.median), round2(began.last)
	for _, s := range starts {
		if s > done.median {
			m.StartedAfterMedian++
		}
	}
	runs := summarize(own)
	m.MedianRunSeconds, m.MaxRunSeconds = round2(runs.median), round2(runs.last)
	m.MaxAtOnce = maxAtOnce(r.ends)
	if r.total > 0 {
		m.RecordsPerSecond = math.Round(float64(r.records) / r.total)
	}
	return m
}

// busyShare returns the share of cores×seconds of CPU time that cpu adds
// up to, rounded to a hundredth (0 without a duration).
func busyShare(cpu map[string]float64, seconds float64, cores int) float64 {
	if seconds <= 0 || cores <= 0 {
		return 0
	}
	total := 0.0
	for _, v := range cpu {
		total += v
	}
	return round2(total / (seconds * float64(cores)))
}

// spread is the first, median and last of some times.
type spread struct{ first, median, last float64 }

// summarize returns the first, median and last of v (zero when empty),
// leaving v as it was.
func summarize(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return spread{first: s[0], median: medianOf(s), last: s[len(s)-1]}
}

// maxAtOnce returns the most runs under way at one moment: a run is under
// way from its start to its end; one ending as another starts does not
// overlap it.
func maxAtOnce(runs []syncEnd) int {
	type edge struct {
		at    float64
		delta int
	}
	edges := make([]edge, 0, 2*len(runs))
	for _, r := range runs {
		edges = append(edges, edge{r.start, 1}, edge{r.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // ends first
	})
	cur, most := 0, 0
	for _, e := range edges {
		cur += e.delta
		most = max(most, cur)
	}
	return most
}

// benchIdle measures the services' memory, settled, with no connector and
// with o.Idle registered connectors that each completed their first sync.
func benchIdle(ctx context.Context, o ConnectorsOptions, binDir, dbURL string, errw io.Writer) (IdleFigures, error) {
	f := IdleFigures{Connectors: o.Idle, UsersEach: o.IdleUsers, SettleSeconds: o.Settle.Seconds()}
	s, _, closeAll, err := benchStack(ctx, binDir, dbURL, devstack.Services)
	if err != nil {
		return f, err
	}
	defer closeAll()
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return f, err
	}
	if f.RSSNone, err = servicesRSS(s); err != nil {
		return f, err
	}
	// Registration with the fetcher stopped: the Zoom requests counted
	// are the adds' own, and the first syncs wait for the fetcher.
	for _, p := range s.Procs() {
		if p.Name == "fetcher" {
			if err := p.Stop(); err != nil {
				return f, err
			}
		}
	}
	accts, refs, err := benchAccounts(s, o.Idle, o.IdleUsers, 5000)
	if err != nil {
		return f, err
	}
	routesBefore, before := s.Sim.Requests(), s.Sim.TotalRequests()
	// The default schedule: idle connectors are on one, as most are.
	took, err := registerConnectors(ctx, s, accts, refs, "")
	if err != nil {
		return f, err
	}
	f.RegisterSeconds = round2(took.Seconds())
	f.ZoomRequests = s.Sim.TotalRequests() - before
	f.ZoomRequestsPerConn = round2(float64(f.ZoomRequests) / float64(o.Idle))
	f.ZoomRequestsByRoute = map[string]int{}
	for route, n := range s.Sim.Requests() {
		if d := n - routesBefore[route]; d > 0 {
			f.ZoomRequestsByRoute[route] = d
		}
	}
	fmt.Fprintf(errw, "  %d connectors registered in %.1fs, %d Zoom requests\n", o.Idle, f.RegisterSeconds, f.ZoomRequests)
	wait, stop, err := awaitSyncs(ctx, s.JS)
	if err != nil {
		return f, err
	}
	defer stop()
	t0 := time.Now()
	if _, err := s.Run("fetcher"); err != nil {
		return f, err
	}
	ends, err := wait(refs, t0, 20*time.Minute)
	if err != nil {
		return f, fmt.Errorf("first syncs: %w", err)
	}
	for _, e := range ends {
		f.FirstSyncsSeconds = max(f.FirstSyncsSeconds, round2(e.end))
		if e.failed != "" {
			f.FirstSyncsFailed++
		}
	}
	fmt.Fprintf(errw, "  their first syncs took %.1fs (%d failed)\n", f.FirstSyncsSeconds, f.FirstSyncsFailed)
	if err := sleepCtx(ctx, o.Settle); err != nil {
		return f, err
	}
	if f.RSSRegistered, err = servicesRSS(s); err != nil {
		return f, err
	}
	return f, nil
}

// servicesRSS reads the memory of each running service (the highest of
// its replicas, should it run several).
func servicesRSS(s *devstack.Stack) (map[string]RSS, error) {
	out := map[string]RSS{}
	for _, p := range s.Procs() {
		if p.Exited() {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Pid()) + "/status")
		if err != nil {
			return nil, err
		}
		cur, peak, err := parseRSS(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		r := out[p.Name]
		r.Current = max(r.Current, mib(cur))
		r.Peak = max(r.Peak, mib(peak))
		out[p.Name] = r
	}
	return out, nil
}

// parseRSS reads VmRSS and VmHWM, in bytes, from a /proc/<pid>/status.
func parseRSS(status []byte) (current, peak int64, err error) {
	found := 0
	for line := range bytes.Lines(status) {
		name, value, ok := strings.Cut(string(line), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status: %s: unexpected %q", name, strings.TrimSpace(value))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			current = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("status: no VmRSS and VmHWM")
	}
	return current, peak, nil
}

func mib(b int64) float64 { return round1(float64(b) / (1 << 20)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round2(v float64) float64 { return math.Round(v*100) / 100 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func printConnectors(out io.Writer, c BenchConnectors) {
	if f := c.Idle; f != nil {
		fmt.Fprintf(out, "\nIdle: %d registered connectors (%d users each, first sync done), %.0f s settled\n\n", f.Connectors, f.UsersEach, f.SettleSeconds)
		fmt.Fprintf(out, "| %-22s | %22s | %22s | %14s |\n", "service (MiB)", "no connector: now/peak", fmt.Sprintf("%d: now/peak", f.Connectors), "now, per conn.")
		fmt.Fprintf(out, "|%s|%s|%s|%s|\n", strings.Repeat("-", 24), strings.Repeat("-", 24), strings.Repeat("-", 24), strings.Repeat("-", 16))
		for _, name := range devstack.Services {
			a, b := f.RSSNone[name], f.RSSRegistered[name]
			fmt.Fprintf(out, "| %-22s | %22s | %22s | %11.1f KiB |\n", name,
				fmt.Sprintf("%.1f / %.1f", a.Current, a.Peak), fmt.Sprintf("%.1f / %.1f", b.Current, b.Peak),
				(b.Current-a.Current)*1024/float64(f.Connectors))
		}
		fmt.Fprintf(out, "\nregistration: %.1f s for %d adds; %d Zoom requests (%.2f per connector: %s)\n",
			f.RegisterSeconds, f.Connectors, f.ZoomRequests, f.ZoomRequestsPerConn, routes(f.ZoomRequestsByRoute))
		fmt.Fprintf(out, "their first syncs, all waiting at the fetcher's start: %.1f s (%d failed)\n", f.FirstSyncsSeconds, f.FirstSyncsFailed)
	}
	if m := c.Many; m != nil {
		fmt.Fprintf(out, "\n%d connectors of %d users, triggered at once (times from the fetcher's start)\n\n", m.Connectors, m.UsersEach)
		row := func(name, v string) { fmt.Fprintf(out, "| %-46s | %22s |\n", name, v) }
		row("figure", "value")
		fmt.Fprintf(out, "|%s|%s|\n", strings.Repeat("-", 48), strings.Repeat("-", 24))
		row("records", strconv.Itoa(m.Records))
		row("all completed (s)", fmt.Sprintf("%.2f", m.TotalSeconds))
		row("first / median completed (s)", fmt.Sprintf("%.2f / %.2f", m.FirstSeconds, m.MedianSeconds))
		row("records per second", fmt.Sprintf("%.0f", m.RecordsPerSecond))
		row("runs began: first / median / last (s)", fmt.Sprintf("%.2f / %.2f / %.2f", m.FirstStartSeconds, m.MedianStartSeconds, m.LastStartSeconds))
		row("runs begun after half had completed", strconv.Itoa(m.StartedAfterMedian))
		row("each run, start to end: median / max (s)", fmt.Sprintf("%.2f / %.2f", m.MedianRunSeconds, m.MaxRunSeconds))
		row("most runs under way at once", strconv.Itoa(m.MaxAtOnce))
		row("Zoom requests", strconv.Itoa(m.ZoomRequests))
		row("CPU busy (all processes / all cores)", fmt.Sprintf("%.0f%%", 100*m.Busy))
		row(fmt.Sprintf("one connector of %d users (s)", m.OneUsers), fmt.Sprintf("%.2f", m.OneSeconds))
		row("  its records", strconv.Itoa(m.OneRecords))
		row("  its Zoom requests", strconv.Itoa(m.OneZoom))
		row("  its CPU busy", fmt.Sprintf("%.0f%%", 100*m.OneBusy))
		verdict := "met"
		if m.Ratio > manyRatioTarget {
			verdict = "missed"
		}
		row(fmt.Sprintf("all / one (target ≤ %.1f×)", manyRatioTarget), fmt.Sprintf("%.2f× (%s)", m.Ratio, verdict))
		for _, name := range cpuOrder {
			if _, ok := m.CPU[name]; !ok {
				continue
			}
			_, apart := m.CPU[cpuNATS]
			row("CPU s, many / one: "+cpuLabel(name, apart), fmt.Sprintf("%.1f / %.1f", m.CPU[name], m.OneCPU[name]))
		}
		total, one := 0.0, 0.0
		for _, v := range m.CPU {
			total += v
		}
		for _, v := range m.OneCPU {
			one += v
		}
		row("CPU s, many / one: all", fmt.Sprintf("%.1f / %.1f", total, one))
		fmt.Fprintf(out, "\none connector: %s\n", m.OneSource)
	}
}

// routes prints request counts by route, most first.
func routes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
