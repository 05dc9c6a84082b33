package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

func runDev(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("dev", errw)
	users := fs.Int("users", 5000, "users in the simulated organisation")
	groups := fs.Int("groups", 0, "groups (default users/50; none on a free plan)")
	roles := fs.Int("roles", 10, "roles")
	plan := fs.String("plan", "pro", "the simulated account's plan: free (basic), pro or business; a free account syncs its users without groups and roles")
	seed := fs.Int64("seed", 1, "seed of the generated organisation")
	changes := fs.Int("changes", 5, "simulator changes made after the sync, sent as webhooks")
	dir := fs.String("dir", "", "working directory for NATS, Postgres and logs (default: a temporary one, removed at exit)")
	binDir := fs.String("bin", "", "directory of the service binaries (default: zoomctl's own)")
	serve := fs.Bool("serve", false, "keep the stack running after the summary, until Ctrl-C")
	verbose := fs.Bool("v", false, "show the services' logs")
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL for the writer (default $DATABASE_URL; unset: a throwaway cluster in --dir)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	simPlan, err := devPlan(*plan)
	if err != nil {
		return fail(errw, ExitUsage, "dev: %v", err)
	}
	// A free account has no groups: Zoom offers them on paid plans only.
	if *groups == 0 && simPlan != zoomtest.PlanBasic {
		*groups = max(1, *users/50)
	}
	if *binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return fail(errw, ExitError, "find binaries: %v", err)
		}
		*binDir = filepath.Dir(exe)
	}
	for _, s := range devstack.Services {
		if _, err := os.Stat(filepath.Join(*binDir, s)); err != nil {
			return fail(errw, ExitUsage, "dev: %s not found in %s; run `make build` first or pass --bin", s, *binDir)
		}
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "zoom-dev-")
		if err != nil {
			return fail(errw, ExitError, "%v", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	d := &dev{out: out, errw: errw, start: time.Now()}
	if err := d.run(ctx, devOptions{
		connector: ref, users: *users, groups: *groups, roles: *roles, seed: *seed, plan: simPlan,
		changes: *changes, dir: *dir, binDir: *binDir, serve: *serve, verbose: *verbose, dbURL: *dbURL,
	}); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(out, "\nstopped")
			return ExitOK
		}
		return fail(errw, ExitError, "dev: %v", err)
	}
	return ExitOK
}

type devOptions struct {
	connector                     pipeline.ConnectorRef
	users, groups, roles, changes int
	seed                          int64
	plan                          zoomtest.Plan
	dir, binDir, dbURL            string
	serve, verbose                bool
}

type dev struct {
	out, errw io.Writer
	start     time.Time
}

func (d *dev) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *dev) run(ctx context.Context, o devOptions) (err error) {
	dbURL := o.dbURL
	if dbURL == "" {
		d.say("• starting PostgreSQL in %s", filepath.Join(o.dir, "pg"))
		pg, err := devstack.StartPostgres(filepath.Join(o.dir, "pg"))
		if err != nil {
			return err
		}
		defer pg.Stop() //nolint:errcheck
		dbURL = pg.URL
	}
	d.say("• generating an organisation: %d users, %d groups, %d roles (seed %d), plan %s", o.users, o.groups, o.roles, o.seed, o.plan)
	org := zoomtest.Generate(o.seed, zoomtest.Size{Users: o.users, Groups: o.groups, Roles: o.roles})
	var logw io.Writer
	if o.verbose {
		logw = d.errw
	}
	s, err := devstack.Start(ctx, devstack.Config{
		BinDir: o.binDir, DatabaseURL: dbURL, Dir: o.dir, Connector: o.connector, Org: org, Log: logw, OAuth: true,
		Sim: zoomtest.Options{Plan: o.plan}, Secured: true,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	d.say("• NATS at %s, Zoom simulator at %s", s.NATSURL, s.Sim.URL())
	d.say("• NATS authorization on: each service connects with its own credentials from %s", s.CredsDir())
	for _, name := range devstack.Services {
		p, err := s.Run(name)
		if err != nil {
			return err
		}
		d.say("• %-10s up, health and metrics on http://%s", name, p.Addr)
	}
	d.say("• admin console at %s, sign-in token %s", s.AdminURL, s.AdminToken)
	// A service that dies ends the run, saying which and where its log is,
	// rather than leave the progress bar (or --serve) waiting for ever.
	ctx, died := context.WithCancelCause(ctx)
	defer died(nil)
	go watchProcs(ctx, s.Procs, died)
	defer func() {
		if cause := context.Cause(ctx); err != nil && errors.Is(cause, errServiceDied) {
			err = cause
		}
	}()

	w, err := NewWatcher(ctx, s.JS, o.connector)
	if err != nil {
		return err
	}
	defer w.Stop()
	// Connected as Clarity's guide says: an account-level OAuth app's
	// Client ID and Secret saved, then consent in the browser (the
	// simulator approves at once), whose redirect starts the first sync.
	d.say("• connecting %s through the OAuth flow (zoomctl connector add --auth oauth, then the authorize URL)", o.connector)
	if err := s.Connect(ctx); err != nil {
		return err
	}
	d.say("• authorized: the connector is active and its first full sync has started")
	id := NewRequestID()
	if err := Trigger(ctx, s.JS, o.connector, id); err != nil {
		return err
	}
	d.say("• full sync triggered (request_id %s)", id)
	pagesWant := expectedPages(org)
	bar := newBar(d.errw, pagesWant)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				bar.draw(s.Sim.TotalRequests())
			}
		}
	}()
	res, err := w.Wait(ctx, id, bar.event)
	close(stop)
	bar.draw(s.Sim.TotalRequests())
	fmt.Fprintln(d.errw)
	if err != nil {
		return err
	}
	st := res.Data.Stats
	d.say("• sync %s in %s: %d created, %d updated, %d deleted, %d unchanged, %d Zoom requests",
		res.Op, time.Since(bar.start).Round(time.Millisecond), st.Created, st.Updated, st.Deleted, st.Unchanged, st.APIRequests)
	if len(res.Data.Unavailable) > 0 {
		d.say("• not offered on the account's plan: %s", strings.Join(res.Data.Unavailable, ", "))
	}
	if res.Op != clarity.OpCompleted {
		return fmt.Errorf("sync failed: %s", res.Data.Error)
	}

	if o.changes > 0 {
		s.Sim.SetWebhookURL(s.WebhookURL)
		d.say("• making %d changes in Zoom; their webhooks flow to %s", o.changes, s.WebhookURL)
		deliveries, err := s.Sim.RandomMutations(ctx, rand.New(rand.NewPCG(uint64(o.seed), 42)), o.changes)
		if err != nil {
			return err
		}
		for _, dl := range deliveries {
			d.say("  zoom → %s (HTTP %d)", dl.Event, dl.Status)
		}
		d.say("• change events as they arrive:")
		d.follow(ctx, w, 3*time.Second)
	}
	if err := d.summary(ctx, s, dbURL, o); err != nil {
		return err
	}
	if o.serve {
		if err := d.consentApp(s); err != nil {
			return err
		}
		d.say("• the stack keeps running; NATS_URL=%s NATS_CREDS=%s DATABASE_URL=%s; Ctrl-C stops it",
			s.NATSURL, s.CredsFile(natsauth.RoleOperator), dbURL)
		<-ctx.Done()
		if cause := context.Cause(ctx); errors.Is(cause, errServiceDied) {
			return cause
		}
	}
	return nil
}

// The connector a person connects by hand in the admin console of
// zoomctl dev --serve.
const consentTenant, consentConnectorID = "demo", "zoom"

// consentApp adds an OAuth app that shows Zoom's consent page to the
// simulator's account, with the redirect of consentConnector, and says how
// to connect it in the admin console. Its credentials are the simulator's,
// printed so that they can be pasted.
func (d *dev) consentApp(s *devstack.Stack) error {
	consentConnector := pipeline.ConnectorRef{Tenant: consentTenant, ID: consentConnectorID}
	app, err := s.Sim.DefaultAccount().AddApp(zoomtest.AppOptions{Consent: true,
		RedirectURIs: []string{connector.RedirectURL(s.RedirectTemplate(), consentConnector)}})
	if err != nil {
		return err
	}
	d.say("• to connect Zoom by hand: open %s/connect?tenant=%s&connector=%s, sign in, and enter (an OAuth app)",
		s.AdminURL, consentConnector.Tenant, consentConnector.ID)
	d.say("    Client ID %s, Client Secret %s, webhook secret token %s (the simulator's)",
		app.ClientID(), app.ClientSecret(), s.Config().Sim.WebhookSecret)
	d.say("    then Save, and Authorize on the simulated Zoom's consent page")
	return nil
}

// errServiceDied is the cause of a dev run's end when one of its services
// exited.
var errServiceDied = errors.New("a service exited")

// watchProcs ends ctx, through died, when one of the processes exits.
func watchProcs(ctx context.Context, procs func() []*devstack.Proc, died context.CancelCauseFunc) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range procs() {
				if p.Exited() {
					died(fmt.Errorf("%w: %s (its log: %s)", errServiceDied, p.Name, p.LogPath()))
					return
				}
			}
		}
	}
}

// follow prints change events until none arrived for quiet.
func (d *dev) follow(ctx context.Context, w *Watcher, quiet time.Duration) {
	t := time.NewTimer(quiet)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case m := <-w.msgs:
			var ev clarity.Event
			if json.Unmarshal(m.Data(), &ev) == nil {
				d.say("  %-8s %-48s %s", ev.Sequence, ev.Type, ev.Subject)
			}
			t.Reset(quiet)
		}
	}
}

func (d *dev) summary(ctx context.Context, s *devstack.Stack, dbURL string, o devOptions) error {
	counts := map[string]int{}
	if err := Snapshot(ctx, dbURL, o.connector, func(l SnapshotLine) error {
		counts[l.Kind]++
		return nil
	}); err != nil {
		return err
	}
	d.say("")
	d.say("summary")
	total := 0
	for _, k := range clarity.Kinds {
		d.say("  %-26s %8d", k, counts[k])
		total += counts[k]
	}
	d.say("  %-26s %8d", "records", total)
	reqs := s.Sim.Requests()
	keys := make([]string, 0, len(reqs))
	for k := range reqs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d.say("  Zoom requests              %8d (%s)", s.Sim.TotalRequests(), joinCounts(keys, reqs))
	d.say("  time                       %8s", time.Since(d.start).Round(time.Millisecond))
	return nil
}

func joinCounts(keys []string, m map[string]int) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// expectedPages estimates the requests of a full sync from Zoom's
// total_records of each listing: one per page of 300, one per group's
// admins, the roles of each type, and the token.
func expectedPages(org *zoomtest.Org) int {
	by := map[string]int{}
	for _, u := range org.Users {
		by[u.Status]++
	}
	pages := func(n int) int { return max(1, (n+299)/300) }
	n := pages(by["active"]) + pages(by["inactive"]) + pages(by["pending"]) + pages(len(org.Groups)) + 3
	for _, g := range org.Groups {
		n += pages(len(g.Admins))
	}
	return n
}

// bar draws a live progress line: Zoom pages against the estimate, change
// events and their rate.
type bar struct {
	w      io.Writer
	want   int
	events int
	start  time.Time
}

func newBar(w io.Writer, want int) *bar { return &bar{w: w, want: want, start: time.Now()} }

func (b *bar) event(ev clarity.Event) {
	if !strings.HasPrefix(ev.Type, "clarity.sync.") {
		b.events++
	}
}

func (b *bar) draw(requests int) {
	const width = 30
	frac := min(1, float64(requests)/float64(max(1, b.want)))
	filled := int(frac * width)
	el := time.Since(b.start).Seconds()
	eta := "—"
	if frac > 0.02 && frac < 1 {
		eta = (time.Duration(el/frac*(1-frac)) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r  [%s%s] %3.0f%%  Zoom requests %d/%d  records %d  %.0f/s  eta %s   ",
		strings.Repeat("█", filled), strings.Repeat("░", width-filled), frac*100, requests, b.want,
		b.events, float64(b.events)/max(el, 0.001), eta)
}

// devPlan reads the --plan of zoomctl dev: "free" is Zoom's Basic plan.
func devPlan(s string) (zoomtest.Plan, error) {
	switch p := zoomtest.Plan(strings.ToLower(strings.TrimSpace(s))); p {
	case "free", zoomtest.PlanBasic:
		return zoomtest.PlanBasic, nil
	case zoomtest.PlanPro, zoomtest.PlanBusiness:
		return p, nil
	}
	return "", fmt.Errorf("--plan %.32q is not free, basic, pro or business", s)
}
