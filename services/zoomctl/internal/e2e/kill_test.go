package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// killOrg is the organisation of the crash tests: large enough that a full
// sync runs for many seconds, so that kills land in every phase of it.
func killOrg() *zoomtest.Org {
	return zoomtest.Generate(2026, zoomtest.Size{Users: 20000, Groups: 400, Roles: 20})
}

// slowZoom makes the listings take a few seconds, so that the fetcher and
// the normalizer can be killed while pages are still coming.
func slowZoom(s *devstack.Stack) {
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Latency: 40 * time.Millisecond})
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /groups/{groupId}/admins", Latency: 25 * time.Millisecond})
}

// TestKillServicesDuringFullSync runs full syncs of 20,000 users while the
// fetcher, the normalizer and the writer (with its outbox relay) are killed
// with SIGKILL, again and again, at moments spread over the run, each one
// restarted at once. Every sync must end as if nothing had happened: the
// records rebuilt from the change events and zoomctl snapshot equal the
// organisation, every change of the sync is published exactly once (the
// (op, kind, key) set is the one the organisation implies, one event each),
// no event id reaches a consumer twice, and sequences grow strictly.
func TestKillServicesDuringFullSync(t *testing.T) {
	s := startStackEnv(t, killOrg(), zoomtest.Options{}, map[string]int{"webhook": 0},
		// Each fetcher kill resumes the run once more; the default of 3
		// attempts would fail a run that is killed that often.
		map[string]string{"MAX_RUN_ATTEMPTS": "20"})
	c := collect(t, s)
	slowZoom(s)
	k := newKiller(t, s)
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	plans := []killPlan{
		// The first sync creates every record: about 180,000 change events,
		// so the relay is busy for most of the run. The writer is killed as
		// shares of them have been published (in the first half, so that
		// what the killed writers held comes back before the run could end
		// anyway).
		// Twice it waits for the relay to be between reading outbox rows and
		// deleting them, so that events are published and not yet marked.
		{fetcher: []int{30, 160, 320}, normalizer: 3, writerAt: []float64{0.02, 0.1, 0.35}, relayAt: []float64{0.2, 0.5}},
		// The second one mostly confirms records; about 1,500 change, most
		// of them deletions made when the run completes. The writer is
		// killed at random moments before the fetcher's last kill (whose
		// new attempt publishes every page again, so the pages the killed
		// writers held are not waited for), then while it completes the
		// run, deletions included.
		{fetcher: []int{60, 250}, normalizer: 3, writer: 4, writerFinalize: true},
	}
	before := map[string]json.RawMessage{}
	checked := 0
	for i, plan := range plans {
		if i > 0 {
			if _, err := s.Sim.RandomMutations(ctx, rng, 400); err != nil {
				t.Fatal(err)
			}
		}
		want := expected(s)
		mark := c.mark()
		began := time.Now()
		op, d := k.syncWithKills(c, plan, len(implied(before, want)), rng)
		if op != clarity.OpCompleted {
			t.Fatalf("sync %d: got %s (%s), want completed", i+1, op, d.Error)
		}
		res := checkSync(t, fmt.Sprintf("sync %d with kills", i+1), s, c, mark, before, want, d)
		if len(res.runs) != 1 {
			t.Errorf("sync %d with kills: runs %v; want the one run to complete despite the kills", i+1, res.runs)
		}
		n := res.changes
		checked += n
		t.Logf("sync %d: completed in %s, %d change events checked, run fetched %d times, stats %+v",
			i+1, time.Since(began).Round(time.Millisecond), n, k.attempts(), d.Stats)
		before = want
	}
	checkStream(t, c)
	checkRuns(t, c)
	k.report(len(plans), checked)
}

// TestKillWebhookDuringDeliveries kills the webhook receiver with SIGKILL
// while Zoom delivers a stream of notifications, five times, restarting it
// at once. A notification answered 200 was stored before the answer, so it
// must not be lost; one that got no 200 is retried, as Zoom does, after the
// kills. The records must then follow the organisation without a full
// sync, with no event id twice and sequences growing.
func TestKillWebhookDuringDeliveries(t *testing.T) {
	s, c := webhookStack(t, 400)
	k := newKiller(t, s)
	ctx := context.Background()
	mark := c.mark()
	rng := rand.New(rand.NewPCG(44, 44))

	var mu sync.Mutex
	var deliveries []zoomtest.Delivery
	stop := make(chan struct{})
	var wg sync.WaitGroup
	mrng := rand.New(rand.NewPCG(45, 45))
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			d, err := webhookMutation(ctx, s.Sim, mrng)
			var ae *zoomtest.APIError
			switch {
			case errors.As(err, &ae):
				continue // Zoom refused this one (say, the owner); draw another
			case err != nil:
				t.Error(err)
				return
			}
			if d.Event != "" {
				mu.Lock()
				deliveries = append(deliveries, d)
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	for range 5 {
		time.Sleep(time.Duration(400+rng.IntN(800)) * time.Millisecond)
		k.kill("webhook")
		if err := k.restart("webhook"); err != nil {
			t.Error(err)
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Zoom retries what got no 200, in order, with the same body and
	// signature.
	retried := 0
	why := map[string]int{}
	for _, d := range deliveries {
		switch {
		case d.Status == http.StatusOK:
			continue
		case d.Err != nil && strings.Contains(d.Err.Error(), "connection refused"):
			why["receiver down"]++
		case d.Err != nil:
			why["cut off mid-request"]++
		default:
			why[fmt.Sprintf("answered %d", d.Status)]++
		}
		if code := post(t, s.WebhookURL, d.Body, d.Timestamp, d.Signature); code != http.StatusOK {
			t.Errorf("retry of %s: got %d, want 200", d.Event, code)
		}
		retried++
	}
	t.Logf("webhook killed %d times during %d deliveries; %d got no 200 (%v) and were retried",
		k.kills["webhook"], len(deliveries), retried, why)
	if retried == 0 {
		t.Logf("NOTE: no delivery failed; the kills fell between deliveries")
	}
	// On failure, show what happened to each record that differs: the
	// deliveries that mention its user and the events of that user.
	defer func() {
		if !t.Failed() {
			return
		}
		for _, diff := range diffRecords(c.snapshot(), expected(s)) {
			key := strings.Fields(diff)[1]
			user := strings.Split(key, "|")[1]
			t.Logf("%s:", diff)
			for i, d := range deliveries {
				if strings.Contains(string(d.Body), user) {
					t.Logf("  delivery %d: answered %d (%v), body %s", i, d.Status, d.Err, d.Body)
				}
			}
			for _, ev := range c.since(0) {
				if strings.HasPrefix(ev.Subject, user) {
					t.Logf("  event %s: %s %s", ev.Sequence, ev.Type, ev.Subject)
				}
			}
		}
	}()
	converge(t, s, c, "webhooks with the receiver killed")
	requireSame(t, "snapshot after webhooks with the receiver killed", snapshot(t, s), expected(s))
	noSyncSince(t, c, mark)
	checkStream(t, c)
}

// TestLateWebhookAfterDeletion replays what a receiver outage leads to:
// Zoom could not deliver a group.member_added, the receiver came back, the
// user (or the group) was deleted and that was delivered, then Zoom retried
// the member_added. The retry is older than the deletion: it must not bring
// back a grant of the deleted user or group.
func TestLateWebhookAfterDeletion(t *testing.T) {
	tests := []struct {
		name   string
		delete func(ctx context.Context, s *devstack.Stack, user, group string) (zoomtest.Delivery, error)
	}{
		{"user deleted", func(ctx context.Context, s *devstack.Stack, user, _ string) (zoomtest.Delivery, error) {
			return s.Sim.RemoveUser(ctx, user, "delete")
		}},
		{"group deleted", func(ctx context.Context, s *devstack.Stack, _, group string) (zoomtest.Delivery, error) {
			return s.Sim.DeleteGroup(ctx, group)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := webhookStack(t, 100)
			ctx := context.Background()
			org := s.Sim.Org()
			// A user and a group it is not a member of.
			var u zoomtest.User
			for _, x := range org.Users {
				if x.Status == "active" && x.RoleID != zoomtest.RoleOwner && x.RoleID != "1" {
					u = x
					break
				}
			}
			var g zoomtest.Group
			for _, x := range org.Groups {
				if !slices.Contains(u.GroupIDs, x.ID) {
					g = x
					break
				}
			}
			// The receiver is away: the delivery fails.
			s.Sim.SetWebhookURL("http://127.0.0.1:1/webhooks/zoom")
			added, err := s.Sim.AddGroupMember(ctx, g.ID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if added.Event != "group.member_added" || added.Status == http.StatusOK {
				t.Fatalf("adding a member: got %q answered %d, want a group.member_added that was not delivered", added.Event, added.Status)
			}
			s.Sim.SetWebhookURL(s.WebhookURL)
			time.Sleep(5 * time.Millisecond) // the deletion is newer
			del, err := tc.delete(ctx, s, u.ID, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if del.Status != http.StatusOK {
				t.Fatalf("%s: answered %d (%v), want 200", del.Event, del.Status, del.Err)
			}
			converge(t, s, c, tc.name)
			// Zoom retries the failed delivery.
			if code := post(t, s.WebhookURL, added.Body, added.Timestamp, added.Signature); code != http.StatusOK {
				t.Fatalf("retried member_added: got %d, want 200", code)
			}
			time.Sleep(1500 * time.Millisecond)
			requireSame(t, "records after the late member_added", c.snapshot(), expected(s))
		})
	}
}

// webhookMutation makes one random change that Zoom notifies by webhook.
// Role changes send none, so they are left out; so are deletions, since an
// older event retried after a deletion is TestLateWebhookAfterDeletion's
// business.
func webhookMutation(ctx context.Context, sim *zoomtest.Server, rng *rand.Rand) (zoomtest.Delivery, error) {
	org := sim.Org()
	var users []zoomtest.User
	for _, u := range org.Users {
		if (u.Status == "active" || u.Status == "inactive") && u.RoleID != zoomtest.RoleOwner {
			users = append(users, u)
		}
	}
	u := users[rng.IntN(len(users))]
	g := org.Groups[rng.IntN(len(org.Groups))]
	switch rng.IntN(7) {
	case 0:
		return sim.UpdateUser(ctx, u.ID, zoomtest.Profile{Dept: zoomtest.Ptr(fmt.Sprintf("Dept %d", rng.IntN(50)))})
	case 1:
		return sim.SetUserType(ctx, u.ID, 1+rng.IntN(2))
	case 2:
		if u.Status == "active" {
			return sim.DeactivateUser(ctx, u.ID)
		}
		return sim.ActivateUser(ctx, u.ID)
	case 3:
		return sim.AddGroupMember(ctx, g.ID, u.ID)
	case 4:
		if len(u.GroupIDs) == 0 {
			return sim.AddGroupMember(ctx, g.ID, u.ID)
		}
		return sim.RemoveGroupMember(ctx, u.GroupIDs[0], u.ID)
	case 5:
		return sim.RenameGroup(ctx, g.ID, fmt.Sprintf("Group %d", rng.IntN(1_000_000)))
	default:
		_, d, err := sim.AddUser(ctx, zoomtest.User{Email: fmt.Sprintf("hook.%d@example.com", rng.IntN(1_000_000_000)),
			FirstName: "Web", LastName: "Hook", Type: zoomtest.TypeBasic})
		return d, err
	}
}

// killPlan says what to kill during one sync: the fetcher after each of the
// given numbers of Zoom requests into its attempt; the normalizer that many
// times, at moments drawn at random while it holds pages; the writer at
// random moments (writer; all before the fetcher's last kill), when shares
// of the sync's change events have been published (writerAt; relayAt: then
// as soon as the relay is publishing), and while it completes the run
// (writerFinalize).
//
// A killed writer's messages come back only after its ack wait (60 s), and
// the run cannot complete without them unless a later fetch attempt
// publishes the same pages again; the plans are laid out so that each sync
// waits for that at most once.
type killPlan struct {
	fetcher        []int
	normalizer     int
	writer         int
	writerAt       []float64
	relayAt        []float64
	writerFinalize bool
}

// killer kills and restarts the services of a stack and keeps the evidence
// of where each kill landed.
type killer struct {
	t  *testing.T
	s  *devstack.Stack
	db *pgxpool.Pool

	mu     sync.Mutex
	procs  map[string]*devstack.Proc // the running replica of each service
	kills  map[string]int            // by service
	points map[string]int            // "<service>: <where the kill landed>"
	// fetcherBase is the simulator's request count when the running fetcher
	// started.
	fetcherBase int
}

func newKiller(t *testing.T, s *devstack.Stack) *killer {
	t.Helper()
	db, err := pgxpool.New(context.Background(), s.Config().DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	k := &killer{t: t, s: s, db: db, procs: map[string]*devstack.Proc{}, kills: map[string]int{}, points: map[string]int{}}
	for _, p := range s.Procs() {
		if !p.Exited() {
			k.procs[p.Name] = p
		}
	}
	return k
}

func (k *killer) proc(name string) *devstack.Proc {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.procs[name]
}

func (k *killer) point(service, where string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.points[service+": "+where]++
}

// kill kills the service's running replica with SIGKILL; between calls
// evidence can be gathered from the dead process's leftovers; restart then
// starts a new replica.
func (k *killer) kill(name string) {
	p := k.proc(name)
	p.Kill()
	k.mu.Lock()
	k.kills[name]++
	k.mu.Unlock()
}

func (k *killer) restart(name string) error {
	base := k.s.Sim.TotalRequests()
	p, err := k.s.Run(name)
	if err != nil {
		return fmt.Errorf("start a new %s: %w", name, err)
	}
	k.mu.Lock()
	k.procs[name] = p
	if name == "fetcher" {
		k.fetcherBase = base
	}
	k.mu.Unlock()
	return nil
}

// syncWithKills triggers a full sync, runs the plan's kills side by side
// (one goroutine per service) and waits for the end of the sync.
func (k *killer) syncWithKills(c *collector, plan killPlan, changes int, rng *rand.Rand) (string, clarity.SyncData) {
	t := k.t
	t.Helper()
	cfg := k.s.Config()
	id := cli.NewRequestID()
	mark := c.mark()
	k.mu.Lock()
	k.fetcherBase = k.s.Sim.TotalRequests()
	k.mu.Unlock()
	if err := cli.Trigger(context.Background(), k.s.JS, cfg.Connector, id); err != nil {
		t.Fatal(err)
	}
	// Each goroutine gets its own random source: rand.Rand is not safe for
	// concurrent use.
	nseed, wseed := rng.Uint64(), rng.Uint64()
	var wg sync.WaitGroup
	writerRandomDone := make(chan struct{})
	wg.Go(func() { k.killFetcher(plan.fetcher, writerRandomDone) })
	wg.Go(func() { k.killNormalizer(plan.normalizer, rand.New(rand.NewPCG(nseed, 1))) })
	wg.Go(func() {
		wrng := rand.New(rand.NewPCG(wseed, 2))
		var moments []func() bool
		for i := range plan.writer {
			moments = append(moments, func() bool {
				time.Sleep(time.Duration(300+wrng.IntN(1200)) * time.Millisecond)
				if i == plan.writer-1 {
					defer close(writerRandomDone)
				}
				return true
			})
		}
		if plan.writer == 0 {
			close(writerRandomDone)
		}
		type at struct {
			share float64
			relay bool
		}
		var shares []at
		for _, share := range plan.writerAt {
			shares = append(shares, at{share, false})
		}
		for _, share := range plan.relayAt {
			shares = append(shares, at{share, true})
		}
		sort.Slice(shares, func(i, j int) bool { return shares[i].share < shares[j].share })
		for _, a := range shares {
			moments = append(moments, func() bool {
				if !k.await(fmt.Sprintf("%.0f%% of the changes published", a.share*100), func() bool {
					return float64(c.mark()-mark) >= a.share*float64(changes)
				}) {
					return false
				}
				if a.relay {
					deadline := time.Now().Add(10 * time.Second)
					for !k.relaying() && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
				}
				return true
			})
		}
		if plan.writerFinalize {
			moments = append(moments, func() bool { return k.await("the run being completed", k.finalizing) })
		}
		k.killWriter(moments)
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// A killed writer's messages come back after the writer's ack wait
	// (60 s), a killed normalizer's after 30 s.
	return c.waitEnd(t, id, 4*time.Minute)
}

// killFetcher kills the fetcher after each number of requests into the
// current attempt of the run: mid-listing, since each attempt makes every
// request of the run again. The last kill waits for last first.
func (k *killer) killFetcher(after []int, last <-chan struct{}) {
	for i, n := range after {
		if i == len(after)-1 {
			<-last
		}
		deadline := time.Now().Add(45 * time.Second)
		for {
			k.mu.Lock()
			done := k.s.Sim.TotalRequests() - k.fetcherBase
			k.mu.Unlock()
			if done >= n {
				break
			}
			if time.Now().After(deadline) {
				k.t.Errorf("fetcher kill after request %d: the fetcher made only %d requests in 45s", n, done)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		k.mu.Lock()
		into := k.s.Sim.TotalRequests() - k.fetcherBase
		k.mu.Unlock()
		k.kill("fetcher")
		k.point("fetcher", "mid-listing (Zoom requests still coming)")
		k.t.Logf("killed the fetcher %d requests into its attempt", into)
		if err := k.restart("fetcher"); err != nil {
			k.t.Error(err)
			return
		}
	}
}

// killNormalizer kills the normalizer n times while it holds raw pages
// (unacknowledged deliveries of the new process), 0.3–2 s apart.
func (k *killer) killNormalizer(n int, rng *rand.Rand) {
	dead := 0 // deliveries still held by killed replicas
	for i := range n {
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		deadline := time.Now().Add(45 * time.Second)
		var pending int
		for {
			pending = k.ackPending(pipeline.StreamRaw, "normalizer")
			if pending > dead {
				break
			}
			if time.Now().After(deadline) {
				k.t.Logf("normalizer kill %d: no raw page in flight within 45s; not killed", i+1)
				k.point("normalizer", "skipped (nothing in flight)")
				return
			}
			time.Sleep(time.Millisecond)
		}
		k.kill("normalizer")
		after := k.ackPending(pipeline.StreamRaw, "normalizer")
		k.point("normalizer", "mid-batch (raw pages delivered, not acknowledged)")
		k.t.Logf("killed the normalizer holding %d raw pages", after-dead)
		dead = after
		if err := k.restart("normalizer"); err != nil {
			k.t.Error(err)
			return
		}
	}
}

// killWriter kills the writer at each moment (a wait that reports whether
// the moment came). Before each kill it notes the open transactions of the
// writer's database sessions; after it, the outbox rows left and the last
// event in the stream: together they say in which phase the writer died
// (mid-transaction, completing the run, committed but not published,
// published but not marked sent).
func (k *killer) killWriter(moments []func() bool) {
	ctx := context.Background()
	for _, moment := range moments {
		if !moment() {
			continue
		}
		apply, relay, finalize, err := k.openTransactions(ctx)
		if err != nil {
			k.t.Error(err)
			return
		}
		k.kill("writer")
		// Let NATS take in what the dead writer had already sent.
		time.Sleep(150 * time.Millisecond)
		rows, minSeq, maxSeq, err := k.outbox(ctx)
		if err != nil {
			k.t.Error(err)
			return
		}
		last, err := lastEventSeq(ctx, k.s)
		if err != nil {
			k.t.Error(err)
			return
		}
		var where []string
		if finalize > 0 {
			k.point("writer", "completing the run (deriving admin grants, deleting what the run did not see)")
			where = append(where, "completing the run")
		}
		if apply > 0 {
			k.point("writer", "mid-transaction (a write transaction open)")
			where = append(where, "mid-transaction")
		}
		if relay > 0 {
			k.point("writer", "relay mid-publish (outbox rows read, not deleted)")
			where = append(where, "relay mid-publish")
		}
		if rows > 0 && maxSeq > last {
			k.point("writer", "after commit, before publish (outbox rows not in the stream)")
			where = append(where, "committed, unpublished")
		}
		if rows > 0 && minSeq <= last {
			k.point("writer", "after publish, before marking sent (outbox rows already in the stream)")
			where = append(where, "published, unmarked")
		}
		if len(where) == 0 {
			k.point("writer", "idle (between transactions, outbox empty)")
			where = append(where, "idle")
		}
		k.t.Logf("killed the writer (%s): %d transactions open, outbox seq %d–%d (%d changes), stream at seq %d",
			strings.Join(where, ", "), apply+relay+finalize, minSeq, maxSeq, rows, last)
		if err := k.restart("writer"); err != nil {
			k.t.Error(err)
			return
		}
	}
}

// await polls cond until it holds (true) or three minutes pass (false,
// with an error).
func (k *killer) await(what string, cond func() bool) bool {
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			k.t.Errorf("waited 3 minutes for %s", what)
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// relaying reports whether the relay is between reading outbox rows and
// deleting them (publishing them, or waiting for their acknowledgements).
func (k *killer) relaying() bool {
	_, n, _, err := k.openTransactions(context.Background())
	return err == nil && n > 0
}

// finalizing reports whether a writer session is completing a run: past
// the page count, deriving admin grants or deleting unseen records.
func (k *killer) finalizing() bool {
	_, _, n, err := k.openTransactions(context.Background())
	return err == nil && n > 0
}

// openTransactions counts the writer's sessions inside a transaction:
// record writes and run bookkeeping (apply), the relay between reading and
// deleting outbox rows (relay), and the completion of a run (finalize).
func (k *killer) openTransactions(ctx context.Context) (apply, relay, finalize int, err error) {
	err = k.db.QueryRow(ctx, `
		WITH s AS (
			SELECT CASE
				WHEN query LIKE '%FROM outbox o JOIN%' THEN 'relay'
				WHEN query LIKE '%pg_try_advisory_xact_lock%' OR query LIKE '%DELETE FROM outbox WHERE%' THEN 'relay-edge'
				WHEN query LIKE '%UPDATE group_admins SET deleted = true%' OR query LIKE '%SELECT DISTINCT g.group_id, u.key%'
				  OR query LIKE '%UPDATE records r SET deleted = true%' OR query LIKE '%DELETE FROM run_pages%'
				  OR query LIKE '%purge%' THEN 'finalize'
				ELSE 'apply' END AS what
			FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
			  AND backend_type = 'client backend')
		SELECT count(*) FILTER (WHERE what = 'apply'), count(*) FILTER (WHERE what = 'relay'),
		       count(*) FILTER (WHERE what = 'finalize')
		FROM s`).Scan(&apply, &relay, &finalize)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read sessions: %w", err)
	}
	return apply, relay, finalize, nil
}

// outbox returns the changes the outbox holds and their lowest and highest
// sequences.
func (k *killer) outbox(ctx context.Context) (changes, minSeq, maxSeq int64, err error) {
	err = k.db.QueryRow(ctx, `SELECT COALESCE(sum(last_seq - first_seq + 1), 0), COALESCE(min(first_seq), 0), COALESCE(max(last_seq), 0) FROM outbox`).
		Scan(&changes, &minSeq, &maxSeq)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("read outbox: %w", err)
	}
	return changes, minSeq, maxSeq, nil
}

// ackPending is the number of messages a consumer delivered that are not
// acknowledged yet.
func (k *killer) ackPending(stream, durable string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := k.s.JS.Consumer(ctx, stream, durable)
	if err != nil {
		return 0
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return 0
	}
	return info.NumAckPending
}

// attempts is how many times the connector's last run was fetched.
func (k *killer) attempts() int {
	ctx := context.Background()
	kv, err := k.s.JS.KeyValue(ctx, pipeline.RunsBucket)
	if err != nil {
		return 0
	}
	cfg := k.s.Config()
	e, err := kv.Get(ctx, cfg.Connector.Key())
	if err != nil {
		return 0
	}
	var st struct {
		Attempt int `json:"attempt"`
	}
	_ = json.Unmarshal(e.Value(), &st)
	return st.Attempt
}

func (k *killer) report(syncs, events int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	total := 0
	for _, n := range k.kills {
		total += n
	}
	k.t.Logf("kills: %d in %d syncs (fetcher %d, normalizer %d, writer %d); %d change events checked",
		total, syncs, k.kills["fetcher"], k.kills["normalizer"], k.kills["writer"], events)
	var lines []string
	for p, n := range k.points {
		lines = append(lines, fmt.Sprintf("  %3d × %s", n, p))
	}
	sort.Strings(lines)
	k.t.Logf("where the kills landed:\n%s", strings.Join(lines, "\n"))
	// Where a kill lands depends on timing; say so when a phase the test is
	// meant to cover was missed this time (the next run will likely hit it).
	for _, p := range []string{
		"fetcher: mid-listing", "normalizer: mid-batch", "writer: mid-transaction",
		"writer: after commit, before publish", "writer: after publish, before marking sent",
	} {
		hit := false
		for q := range k.points {
			hit = hit || strings.HasPrefix(q, p)
		}
		if !hit {
			k.t.Logf("NOTE: no kill landed in phase %q in this run", p)
		}
	}
}

// lastEventSeq is the sequence of the last event stored in the stream.
func lastEventSeq(ctx context.Context, s *devstack.Stack) (int64, error) {
	str, err := s.JS.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		return 0, err
	}
	info, err := str.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.LastSeq == 0 {
		return 0, nil
	}
	m, err := str.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		return 0, err
	}
	var ev clarity.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return 0, err
	}
	return strconv.ParseInt(ev.Sequence, 10, 64)
}

// syncCheck is what checkSync found.
type syncCheck struct {
	changes int      // change events
	runs    []string // the runs with sync events after mark: "<run> <ops> <request ids>"
	failed  int      // runs that failed after mark
}

// checkSync checks the syncs whose events follow mark, the last of which
// completed with d: the records rebuilt from every event and zoomctl
// snapshot equal want (the organisation), the changes are exactly the ones
// that turn before into want, one event each, and the completed run started
// after mark. When one run did it all, its stats must count the changes.
// (That every run starts once and ends once is checkRuns' business.)
func checkSync(t *testing.T, what string, s *devstack.Stack, c *collector, mark int, before, want map[string]json.RawMessage, d clarity.SyncData) syncCheck {
	t.Helper()
	requireSame(t, what+": records rebuilt from the events", c.snapshot(), want)
	requireSame(t, what+": zoomctl snapshot", snapshot(t, s), want)
	events := c.since(mark)
	perChange := map[string]int{}
	runOps := map[string][]string{}
	var runs []string
	ops := map[string]int64{}
	var res syncCheck
	for _, ev := range events {
		parts := strings.Split(ev.Type, ".")
		if parts[1] == clarity.KindSync {
			var sd clarity.SyncData
			_ = json.Unmarshal(ev.Data, &sd)
			if runOps[sd.RunID] == nil {
				runs = append(runs, sd.RunID)
			}
			runOps[sd.RunID] = append(runOps[sd.RunID], parts[2])
			if parts[2] == clarity.OpFailed {
				res.failed++
			}
			if parts[2] != clarity.OpStarted {
				res.runs = append(res.runs, fmt.Sprintf("%s %v %v", sd.RunID, runOps[sd.RunID], sd.RequestIDs))
			}
			continue
		}
		perChange[parts[2]+" "+parts[1]+"|"+ev.Subject]++
		ops[parts[2]]++
		res.changes++
	}
	for _, run := range runs {
		if ops := runOps[run]; len(ops) == 1 && ops[0] == clarity.OpStarted {
			res.runs = append(res.runs, fmt.Sprintf("%s %v (not ended)", run, ops))
		}
	}
	if diffs := diffSets(changeSet(events), implied(before, want)); len(diffs) > 0 {
		t.Fatalf("%s: the events differ from the changes in %d places:\n%s", what, len(diffs), strings.Join(diffs[:min(20, len(diffs))], "\n"))
	}
	var repeated []string
	for ch, n := range perChange {
		if n > 1 {
			repeated = append(repeated, fmt.Sprintf("%s (%d events)", ch, n))
		}
	}
	sort.Strings(repeated)
	if len(repeated) > 0 {
		t.Errorf("%s: %d changes published more than once under different ids; first: %v", what, len(repeated), repeated[:min(10, len(repeated))])
	}
	if got := runOps[d.RunID]; len(got) != 2 || got[0] != clarity.OpStarted || got[1] != clarity.OpCompleted {
		t.Errorf("%s: sync events of the completed run %s after the mark: got %v, want [started completed]", what, d.RunID, got)
	}
	if len(runs) == 1 {
		got := clarity.SyncStats{Created: ops[clarity.OpCreated], Updated: ops[clarity.OpUpdated], Deleted: ops[clarity.OpDeleted]}
		if d.Stats.Created != got.Created || d.Stats.Updated != got.Updated || d.Stats.Deleted != got.Deleted {
			t.Errorf("%s: stats count %d created, %d updated, %d deleted; the events %d, %d, %d",
				what, d.Stats.Created, d.Stats.Updated, d.Stats.Deleted, got.Created, got.Updated, got.Deleted)
		}
	}
	return res
}

// checkRuns checks the sync events of the whole stream: each run has one
// started event and, after it, one completed or failed event, and serves
// at least one trigger (every test here triggers each run it waits for).
func checkRuns(t *testing.T, c *collector) {
	t.Helper()
	type run struct {
		ops      []string
		requests []string
	}
	runs := map[string]*run{}
	var order []string
	for _, ev := range c.since(0) {
		parts := strings.Split(ev.Type, ".")
		if parts[1] != clarity.KindSync {
			continue
		}
		var sd clarity.SyncData
		if err := json.Unmarshal(ev.Data, &sd); err != nil {
			t.Errorf("sync event %s: %v", ev.ID, err)
			continue
		}
		r := runs[sd.RunID]
		if r == nil {
			r = &run{}
			runs[sd.RunID] = r
			order = append(order, sd.RunID)
		}
		r.ops = append(r.ops, parts[2])
		r.requests = sd.RequestIDs
	}
	for _, id := range order {
		r := runs[id]
		if len(r.ops) != 2 || r.ops[0] != clarity.OpStarted || (r.ops[1] != clarity.OpCompleted && r.ops[1] != clarity.OpFailed) {
			t.Errorf("run %s: sync events %v, want started then completed or failed", id, r.ops)
		}
		if len(r.requests) == 0 {
			t.Errorf("run %s (%v) served no trigger: request_ids is empty, a full sync nobody asked for", id, r.ops)
		}
	}
}

// checkStream checks every event the collector received: no id twice, and
// sequences strictly growing in arrival order (the order of the stream).
func checkStream(t *testing.T, c *collector) {
	t.Helper()
	if dup := c.duplicates(); len(dup) > 0 {
		sort.Strings(dup)
		t.Errorf("event ids delivered more than once: %d, first: %v", len(dup), dup[:min(10, len(dup))])
	}
	var prev int64
	var prevID string
	bad := 0
	for _, ev := range c.since(0) {
		seq, err := strconv.ParseInt(ev.Sequence, 10, 64)
		if err != nil {
			t.Errorf("event %s: sequence %q is not a number", ev.ID, ev.Sequence)
			continue
		}
		if seq <= prev {
			if bad < 10 {
				t.Errorf("event %s (sequence %d) arrived after %s (sequence %d): sequences must grow strictly", ev.ID, seq, prevID, prev)
			}
			bad++
		}
		prev, prevID = seq, ev.ID
	}
	if bad > 0 {
		t.Errorf("%d events arrived out of sequence order", bad)
	}
}
