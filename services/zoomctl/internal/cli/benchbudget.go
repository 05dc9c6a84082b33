package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// BudgetBenchResult is the figures of the rate-budget bench: several fetcher
// replicas serve one connector whose full sync runs, against the simulator
// enforcing the Pro plan's limits, while a bulk change in Zoom sends a
// webhook per user.
type BudgetBenchResult struct {
	Users    int     `json:"users"`
	Replicas int     `json:"fetcher_replicas"`
	Share    float64 `json:"rate_share"`
	Changes  int     `json:"changes"`
	// ChangeSeconds is how long the changes (and their webhooks) took.
	ChangeSeconds   float64 `json:"changes_seconds"`
	FullSyncSeconds float64 `json:"full_sync_seconds"`
	// PeakPerSecond is the most requests of each rate category the
	// simulator saw in one second, Budget the budget of a second.
	PeakPerSecond map[string]int `json:"peak_requests_per_second"`
	Budget        map[string]int `json:"budget_per_second"`
	Status429     int            `json:"responses_429"`
	// Rereads and HintListingPages are the Zoom requests spent on the
	// changes' hints: GET /users/{userId}, and the pages of the listings
	// that served batches of hints instead; HintBatches counts the
	// batches by how they were served.
	Rereads          int                `json:"rereads"`
	HintListingPages int                `json:"hint_listing_pages"`
	HintBatches      map[string]float64 `json:"hint_batches"`
	RequestsPerUser  float64            `json:"hint_requests_per_change"`
	// Published counts the changes whose event came out; LastSeconds is
	// the longest time from a change's webhook to its event, P50Seconds
	// the median.
	Published   int     `json:"changes_published"`
	LastSeconds float64 `json:"change_to_event_max_seconds"`
	P50Seconds  float64 `json:"change_to_event_p50_seconds"`
	P90Seconds  float64 `json:"change_to_event_p90_seconds"`
	P99Seconds  float64 `json:"change_to_event_p99_seconds"`
	// ByArrival is, for each sixth of the changes in webhook order, the
	// longest time from a change's webhook to its event: which changes
	// wait longest (the first, served after the bulk change ends, or the
	// last, behind the listing of the others).
	ByArrival []float64 `json:"change_to_event_max_by_arrival_seconds"`
	// ToRead is the time from a change's webhook until a read of Zoom
	// (a listing page or a re-read, the full sync's included) first
	// returned the user changed, ReadToEvent from then until its event
	// was stored: the wait for Zoom's budget against the pipeline's.
	// Median / 99th percentile / longest.
	ToRead      [3]float64 `json:"change_to_read_seconds"`
	ReadToEvent [3]float64 `json:"read_to_event_seconds"`
	// OutboxMaxSeconds and OutboxP50Seconds are the longest and the
	// median time from a change's event being written (its time) to its
	// being stored in the stream: the part of the wait spent in the
	// writer's outbox, behind the full sync's events.
	OutboxMaxSeconds float64 `json:"event_written_to_stored_max_seconds"`
	OutboxP50Seconds float64 `json:"event_written_to_stored_p50_seconds"`
	// SingleSeconds are the times from a single change's webhook to its
	// event, made one at a time while the sync ran, before the bulk.
	SingleSeconds []float64 `json:"single_change_to_event_seconds"`
}

// budgetBench runs the rate-budget bench: users users, replicas fetcher
// replicas, changes user.updated webhooks spread over spread.
func budgetBench(ctx context.Context, users, replicas, changes int, spread time.Duration, binDir, dbURL string, errw io.Writer) (BudgetBenchResult, error) {
	const share = 0.5
	r := BudgetBenchResult{Users: users, Replicas: replicas, Share: share, Changes: changes, Budget: map[string]int{}}
	dir, err := os.MkdirTemp("", "zoom-bench-budget-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	var release func()
	if dbURL, release, err = benchDatabase(ctx, dir, dbURL, users); err != nil {
		return r, err
	}
	defer release()
	pro := zoomtest.RateLimits{
		Light:  int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryLight)),
		Medium: int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryMedium)),
		Heavy:  int(zoom.PlanLimit(zoom.PlanPro, zoom.CategoryHeavy)),
	}
	for cat, n := range map[string]int{"Light": pro.Light, "Medium": pro.Medium, "Heavy": pro.Heavy} {
		r.Budget[cat] = int(float64(n) * share)
	}
	org := zoomtest.Generate(int64(users), zoomtest.Size{Users: users, Groups: max(1, users/50), Roles: 20})
	// BENCH_LOGS=<dir> keeps the services' logs, at info level (each
	// listing round's batches, users and time gathered), in dir.
	logLevel, keepLogs := "warn", os.Getenv("BENCH_LOGS")
	if keepLogs != "" {
		logLevel = "info"
	}
	s, err := devstack.Start(ctx, devstack.Config{BinDir: binDir, DatabaseURL: dbURL, Dir: dir, Org: org, NATSProcess: true,
		Sim: zoomtest.Options{RateLimits: pro},
		Env: map[string]string{"LOG_LEVEL": logLevel, "ZOOM_PACING": "true", "ZOOM_PLAN": "pro",
			"ZOOM_RATE_SHARE": strconv.FormatFloat(share, 'f', -1, 64), "ZOOM_BUDGET_REPLICAS": strconv.Itoa(replicas)}})
	if err != nil {
		return r, err
	}
	defer s.Close()
	if keepLogs != "" {
		defer func() {
			if err := os.CopyFS(filepath.Join(keepLogs, strconv.Itoa(users)), os.DirFS(filepath.Join(dir, "logs"))); err != nil {
				fmt.Fprintf(errw, "  BENCH_LOGS: %v\n", err)
			}
		}()
	}
	for _, name := range devstack.Services {
		n := 1
		if name == "fetcher" {
			n = replicas
		}
		for range n {
			if _, err := s.Run(name); err != nil {
				return r, err
			}
		}
	}
	cfg := s.Config()
	w, err := NewSyncWatcher(ctx, s.JS, cfg.Connector)
	if err != nil {
		return r, err
	}
	defer w.Stop()
	start := time.Now()
	id := NewRequestID()
	if err := Trigger(ctx, s.JS, cfg.Connector, id); err != nil {
		return r, err
	}
	for s.Sim.Requests()["GET /users"] < 3 {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
	}
	s.Sim.SetWebhookURL(s.WebhookURL)
	var active []zoomtest.User
	for _, u := range s.Sim.Org().Users {
		if u.Status == "active" && u.RoleID != "0" {
			active = append(active, u)
		}
	}
	if len(active) < changes+10 {
		return r, fmt.Errorf("%d active users, fewer than %d changes", len(active), changes)
	}
	first := s.Sim.Requests()
	// Single changes first, one at a time, while the sync runs.
	changed := map[string]time.Time{} // last name → webhook answered
	ids := map[string]string{}        // last name → user id, of the bulk change
	var singles []string
	for i := range 5 {
		name := fmt.Sprintf("Single %d", i)
		if _, err := s.Sim.UpdateUser(ctx, active[len(active)-1-i].ID, zoomtest.Profile{LastName: zoomtest.Ptr(name)}); err != nil {
			return r, err
		}
		changed[name] = time.Now()
		singles = append(singles, name)
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return r, err
		}
	}
	before := s.Sim.Requests()
	fmt.Fprintf(errw, "  %d changes over %s while the sync runs…\n", changes, spread)
	bulkStart := time.Now()
	every := spread / time.Duration(changes)
	// Users anywhere in the account, in no order, as an administrator's
	// import or group move would pick them; the same ones every run.
	pick := rand.New(rand.NewPCG(uint64(users), uint64(changes))).Perm(len(active) - 10)
	for i := range changes {
		name := fmt.Sprintf("Budget %d", i)
		u := active[pick[i]]
		if _, err := s.Sim.UpdateUser(ctx, u.ID, zoomtest.Profile{LastName: zoomtest.Ptr(name)}); err != nil {
			return r, err
		}
		changed[name] = time.Now()
		ids[name] = u.ID
		if d := time.Until(bulkStart.Add(time.Duration(i+1) * every)); d > 0 {
			if err := sleepCtx(ctx, d); err != nil {
				return r, err
			}
		}
	}
	r.ChangeSeconds = time.Since(bulkStart).Seconds()
	res, err := w.Wait(ctx, id, nil)
	if err != nil {
		return r, err
	}
	if res.Op != clarity.OpCompleted {
		return r, fmt.Errorf("full sync: %s", res.Data.Error)
	}
	r.FullSyncSeconds = time.Since(start).Seconds()
	fmt.Fprintf(errw, "  full sync %.1fs\n", r.FullSyncSeconds)

	// Every change's event, waiting at most two more minutes for them.
	published, outbox, err := changeEvents(ctx, s.JS, cfg.Connector, start, changed, time.Now().Add(2*time.Minute))
	if err != nil {
		return r, err
	}
	after := s.Sim.Requests()
	r.Rereads = after["GET /users/{userId}"] - before["GET /users/{userId}"]
	r.HintBatches = fetcherMetric(s, "fetcher_hint_batches_total")
	// fetcher_hint_requests_total counts every request of the hints, the
	// single changes' re-reads too: the listing pages are what is left.
	hintRequests := 0
	for _, n := range fetcherMetric(s, "fetcher_hint_requests_total") {
		hintRequests += int(n)
	}
	r.HintListingPages = max(0, hintRequests-(after["GET /users/{userId}"]-first["GET /users/{userId}"]))
	r.RequestsPerUser = float64(r.Rereads+r.HintListingPages) / float64(changes)
	r.PeakPerSecond = map[string]int{}
	for cat, n := range s.Sim.PeakPerSecond() {
		r.PeakPerSecond[string(cat)] = n
	}
	for k, n := range s.Sim.RequestsByStatus() {
		if strings.HasSuffix(k, " 429") {
			r.Status429 += n
		}
	}
	var lat, toRead, readToEvent []float64
	r.ByArrival = make([]float64, 6)
	for name, id := range ids {
		p, ok := published[name]
		read, readOK := s.Sim.ReadAfterChange(id)
		if ok && readOK {
			toRead = append(toRead, read.Sub(changed[name]).Seconds())
			readToEvent = append(readToEvent, p.Sub(read).Seconds())
		}
	}
	r.ToRead, r.ReadToEvent = spreadOf(toRead), spreadOf(readToEvent)
	for name, at := range changed {
		if p, ok := published[name]; ok {
			d := p.Sub(at).Seconds()
			i, err := strconv.Atoi(strings.TrimPrefix(name, "Budget "))
			if err != nil {
				continue // a single change
			}
			lat = append(lat, d)
			k := i * len(r.ByArrival) / changes
			r.ByArrival[k] = max(r.ByArrival[k], d)
		}
	}
	for _, name := range singles {
		if p, ok := published[name]; ok {
			r.SingleSeconds = append(r.SingleSeconds, p.Sub(changed[name]).Seconds())
		} else {
			r.SingleSeconds = append(r.SingleSeconds, -1)
		}
	}
	r.Published = len(lat)
	if len(lat) > 0 {
		sort.Float64s(lat)
		r.LastSeconds = lat[len(lat)-1]
		r.P50Seconds = lat[len(lat)/2]
		r.P90Seconds = lat[len(lat)*9/10]
		r.P99Seconds = lat[len(lat)*99/100]
	}
	var waits []float64
	for name, d := range outbox {
		if !strings.HasPrefix(name, "Single ") {
			waits = append(waits, d.Seconds())
		}
	}
	if len(waits) > 0 {
		sort.Float64s(waits)
		r.OutboxMaxSeconds = waits[len(waits)-1]
		r.OutboxP50Seconds = waits[len(waits)/2]
	}
	return r, nil
}

// changeEvents reads the service_user events of connector ref since start
// and returns, for each last name of changed, when the first event carrying
// it was stored, and how long after its time (when the writer wrote it),
// waiting until every one came out or until deadline.
func changeEvents(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef, start time.Time, changed map[string]time.Time, deadline time.Time) (map[string]time.Time, map[string]time.Duration, error) {
	cons, err := js.OrderedConsumer(ctx, clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{pipeline.EventSubject(ref, clarity.KindServiceUser)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, nil, err
	}
	out, waited := map[string]time.Time{}, map[string]time.Duration{}
	for len(out) < len(changed) && time.Now().Before(deadline) {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, nil, err
		}
		for m := range batch.Messages() {
			var ev clarity.Event
			if json.Unmarshal(m.Data(), &ev) != nil {
				continue
			}
			var u clarity.ServiceUser
			if json.Unmarshal(ev.Data, &u) != nil {
				continue
			}
			if _, ok := changed[u.LastName]; !ok {
				continue
			}
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if _, seen := out[u.LastName]; !seen {
				out[u.LastName] = md.Timestamp
				waited[u.LastName] = md.Timestamp.Sub(ev.Time)
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() != nil {
			return nil, nil, err
		}
	}
	return out, waited, nil
}

// fetcherMetric sums a counter with one label over every running fetcher
// of the stack, by the label's value.
func fetcherMetric(s *devstack.Stack, name string) map[string]float64 {
	out := map[string]float64{}
	for _, p := range s.Procs() {
		if p.Name != "fetcher" || p.Exited() {
			continue
		}
		resp, err := http.Get("http://" + p.Addr + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), name+"{")
			if !ok {
				continue
			}
			labels, val, ok := strings.Cut(rest, "} ")
			if !ok {
				continue
			}
			_, value, _ := strings.Cut(labels, `="`)
			value, _, _ = strings.Cut(value, `"`)
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				out[value] += v
			}
		}
		resp.Body.Close()
	}
	return out
}

// printBudgetBench prints the rate-budget bench's figures.
func printBudgetBench(out io.Writer, r BudgetBenchResult) {
	fmt.Fprintf(out, "\n| rate budget: %d fetcher replicas, one connector, %d users, Pro limits, share %g | |\n", r.Replicas, r.Users, r.Share)
	fmt.Fprintln(out, "|---|---|")
	for _, cat := range []string{"Light", "Medium", "Heavy"} {
		fmt.Fprintf(out, "| highest %s requests in one second / budget | %d / %d |\n", cat, r.PeakPerSecond[cat], r.Budget[cat])
	}
	fmt.Fprintf(out, "| 429s drawn | %d |\n", r.Status429)
	fmt.Fprintf(out, "| full sync (s) | %.1f |\n", r.FullSyncSeconds)
	fmt.Fprintf(out, "| %d user.updated webhooks over (s) | %.1f |\n", r.Changes, r.ChangeSeconds)
	fmt.Fprintf(out, "| Zoom requests on them: re-reads + listing pages | %d + %d (%.3f a change) |\n", r.Rereads, r.HintListingPages, r.RequestsPerUser)
	fmt.Fprintf(out, "| hint batches by choice | %v |\n", r.HintBatches)
	fmt.Fprintf(out, "| changes published | %d of %d |\n", r.Published, r.Changes)
	fmt.Fprintf(out, "| webhook → event, median / 90th / 99th percentile / last (s) | %.1f / %.1f / %.1f / %.1f |\n", r.P50Seconds, r.P90Seconds, r.P99Seconds, r.LastSeconds)
	fmt.Fprintf(out, "| longest webhook → event by sixth of the changes, in webhook order (s) | %s |\n", secondsList(r.ByArrival))
	fmt.Fprintf(out, "| of which webhook → first read of the change in Zoom, median / 99th / longest (s) | %s |\n", secondsList(r.ToRead[:]))
	fmt.Fprintf(out, "| of which that read → event, median / 99th / longest (s) | %s |\n", secondsList(r.ReadToEvent[:]))
	fmt.Fprintf(out, "| of which event written → stored (the writer's outbox), median / longest (s) | %.1f / %.1f |\n", r.OutboxP50Seconds, r.OutboxMaxSeconds)
	fmt.Fprintf(out, "| single changes during the sync, webhook → event (s) | %v |\n", r.SingleSeconds)
}

// spreadOf returns the median, the 99th percentile and the largest of v
// (zeros when v is empty).
func spreadOf(v []float64) [3]float64 {
	return [3]float64{percentile(v, 0.5), percentile(v, 0.99), percentile(v, 1)}
}

// secondsList formats seconds with one decimal, separated by " / ".
func secondsList(v []float64) string {
	parts := make([]string, len(v))
	for i, f := range v {
		parts[i] = strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strings.Join(parts, " / ")
}

// runBudgetBench runs the rate-budget bench for each size of sizes and
// prints and stores its figures.
func runBudgetBench(ctx context.Context, sizes string, replicas, changes int, spread time.Duration, binDir, jsonPath string, out, errw io.Writer) int {
	if replicas < 1 || changes < 1 || spread <= 0 {
		return fail(errw, ExitUsage, "bench: bad --budget-replicas, --budget-changes or --budget-spread")
	}
	if binDir == "" {
		exe, _ := os.Executable()
		binDir = filepath.Dir(exe)
	}
	var results []BudgetBenchResult
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			return fail(errw, ExitUsage, "bench: bad size %q", f)
		}
		fmt.Fprintf(errw, "bench --budget: %d users…\n", n)
		r, err := budgetBench(ctx, n, replicas, changes, spread, binDir, os.Getenv("DATABASE_URL"), errw)
		if err != nil {
			return fail(errw, ExitError, "bench --budget %d users: %v", n, err)
		}
		printBudgetBench(out, r)
		results = append(results, r)
	}
	if jsonPath != "" {
		_ = os.MkdirAll(filepath.Dir(jsonPath), 0o755)
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
			return fail(errw, ExitError, "bench: %v", err)
		}
		fmt.Fprintf(out, "\nfigures written to %s\n", jsonPath)
	}
	return ExitOK
}
