package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/follow"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// TestFollow runs consumers of package follow around a full sync of 20,000
// users while webhooks change the account: one started before the sync,
// one during it, one after it, and zoomctl follow killed with SIGKILL
// mid-stream and restarted. Each must end with exactly the writer's
// records, having applied each event after its snapshot exactly once (the
// killed one: none twice across its kill); every event published is valid
// against proto/clarity/v1/events.schema.json, and so is every record.
func TestFollow(t *testing.T) {
	org := zoomtest.Generate(19, zoomtest.Size{Users: 20000, Groups: 200, Roles: 12})
	s := startStack(t, org, zoomtest.Options{}, nil)
	c := collect(t, s)
	schema := checkSchema(t, s)
	dir := t.TempDir()
	ctx := context.Background()

	before := startFollower(t, s, filepath.Join(dir, "before"))
	killed := startFollowProc(t, s, filepath.Join(dir, "killed"))
	waitFor(t, 30*time.Second, func() bool { return before.f.Loads() == 1 && killed.loaded() })

	slowZoom(s)
	s.Sim.SetWebhookURL(s.WebhookURL)
	id := "follow-during-sync"
	if _, err := s.JS.Publish(ctx, pipeline.SyncSubject(s.Config().Connector), []byte(`{"mode":"full","request_id":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { return s.Sim.Requests()["GET /users"] > 0 })
	hooks := changeByWebhooks(ctx, s, 60)

	// During: once a tenth of the sync's changes are published.
	waitFor(t, 3*time.Minute, func() bool { return c.mark() > 18000 })
	during := startFollower(t, s, filepath.Join(dir, "during"))
	// zoomctl follow dies with SIGKILL mid-stream, and starts again.
	waitFor(t, 3*time.Minute, func() bool { return killed.maxApplied() > 30000 })
	killed.kill(t)
	firstRun := killed.count()
	killed.start(t)

	if op, d := c.waitEnd(t, id, 5*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	if err := <-hooks; err != nil {
		t.Fatalf("webhooks: %v", err)
	}
	seq, final := settled(t, s)
	t.Logf("writer at sequence %d with %d records", seq, len(final))
	// A provisioning request: its result event, and the record changes it
	// caused, reach the consumers too.
	provisionOne(t, s)
	seq, final = settled(t, s)
	// Changes published again past JetStream's duplicate window (another
	// message id), as a relay could after a long outage: the consumers
	// drop them by their sequence, and apply no event twice. (The
	// collector, which requires the message id to be the event's, is done.)
	c.cc.Stop()
	republish(t, s, 100)
	// One more change after them: a consumer that applied it has read the
	// repeats.
	if _, err := s.Sim.UpdateUser(ctx, s.Sim.Org().Users[5].ID, zoomtest.Profile{LastName: zoomtest.Ptr("After the repeats")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { n, _ := writerRecords(t, s); return n > seq })
	seq, final = settled(t, s)

	after := startFollower(t, s, filepath.Join(dir, "after"))
	for _, fw := range []struct {
		name string
		f    *followed
	}{{"before", before}, {"during", during}, {"after", after}} {
		fw.f.waitAt(t, seq)
		requireRecords(t, "consumer started "+fw.name, fw.f.records(), final)
		if d := fw.f.twice(); len(d) > 0 {
			t.Errorf("consumer started %s applied %d events twice, e.g. %s", fw.name, len(d), d[0])
		}
		// One snapshot, then every event after it, once.
		if fw.f.f.Loads() != 1 || int64(fw.f.count()) != seq-fw.f.loadedAt() {
			t.Errorf("consumer started %s: %d snapshots, the last at sequence %d, and %d events applied; want one snapshot and the %d events after it",
				fw.name, fw.f.f.Loads(), fw.f.loadedAt(), fw.f.count(), seq-fw.f.loadedAt())
		}
		t.Logf("consumer started %s: snapshot at sequence %d, %d events applied", fw.name, fw.f.loadedAt(), fw.f.count())
	}
	if at := during.loadedAt(); at == 0 || at >= seq {
		t.Errorf("the consumer started during the sync loaded its snapshot at sequence %d (the sync ended at %d)", at, seq)
	}
	for _, fw := range []*followed{before, during, after} {
		if err := fw.stop(); err != nil {
			t.Errorf("follower: %v", err)
		}
	}

	// zoomctl follow, killed once: its saved copy is the writer's records,
	// it resumed from it, and across both runs no event was applied twice.
	waitFor(t, 2*time.Minute, func() bool { return killed.maxApplied() >= seq })
	killed.stop(t)
	if d := killed.twice(); len(d) > 0 {
		t.Errorf("zoomctl follow applied %d events twice across its kill, e.g. %s", len(d), d[0])
	}
	if firstRun == 0 || killed.count() == firstRun || killed.snapshots() != 1 {
		t.Errorf("zoomctl follow applied %d events before its kill and %d after, with %d snapshots: want some in both runs, one snapshot (the restart resumes)",
			firstRun, killed.count()-firstRun, killed.snapshots())
	}
	requireRecords(t, "zoomctl follow's saved copy", loadState(t, filepath.Join(dir, "killed")), final)
	t.Logf("zoomctl follow: %d events applied before SIGKILL, %d after", firstRun, killed.count()-firstRun)

	schema.records(final)
}

// TestFollowAfterRetention runs consumers on a stack whose
// CLARITY_ENTITLEMENTS keeps at most 1 MiB of events, far less than a full
// sync of 3,000 users publishes: a copy saved before the sync and resumed
// once retention has dropped the events it needs loads a snapshot again
// and ends with exactly the writer's records, as do a consumer that runs
// throughout (falling behind further than the stream keeps, it starts
// again from a snapshot) and one started after the sync; they all go on
// after NATS restarts.
func TestFollowAfterRetention(t *testing.T) {
	org := zoomtest.Generate(23, zoomtest.Size{Users: 3000, Groups: 30, Roles: 6})
	s := startStackEnv(t, org, zoomtest.Options{}, nil, map[string]string{"EVENTS_MAX_BYTES": strconv.Itoa(1 << 20)})
	c := collect(t, s)
	dir := t.TempDir()
	ctx := context.Background()

	stale := startFollower(t, s, filepath.Join(dir, "stale"))
	waitFor(t, 30*time.Second, func() bool { return stale.f.Loads() == 1 })
	if err := stale.stop(); err != nil {
		t.Fatalf("stale follower: %v", err)
	}
	stalePos := stale.f.Position()
	live := startFollower(t, s, filepath.Join(dir, "live"))

	s.Sim.SetWebhookURL(s.WebhookURL)
	id := "follow-retention"
	if _, err := s.JS.Publish(ctx, pipeline.SyncSubject(s.Config().Connector), []byte(`{"mode":"full","request_id":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	hooks := changeByWebhooks(ctx, s, 30)
	if op, d := c.waitEnd(t, id, 3*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	if err := <-hooks; err != nil {
		t.Fatalf("webhooks: %v", err)
	}
	seq, final := settled(t, s)
	st, err := s.JS.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.FirstSeq <= stalePos.Next {
		t.Fatalf("retention dropped nothing the saved copy needs: the stream starts at %d, the copy goes on from %d", si.State.FirstSeq, stalePos.Next)
	}
	t.Logf("writer at sequence %d with %d records; the stream keeps %d events from stream sequence %d (%d bytes)",
		seq, len(final), si.State.Msgs, si.State.FirstSeq, si.State.Bytes)

	resumed := startFollower(t, s, filepath.Join(dir, "stale"))
	after := startFollower(t, s, filepath.Join(dir, "after"))
	for _, fw := range []struct {
		name string
		f    *followed
	}{{"resumed after retention", resumed}, {"throughout", live}, {"after", after}} {
		fw.f.waitAt(t, seq)
		requireRecords(t, "consumer "+fw.name, fw.f.records(), final)
		if d := fw.f.twice(); len(d) > 0 {
			t.Errorf("consumer %s applied %d events twice, e.g. %s", fw.name, len(d), d[0])
		}
		t.Logf("consumer %s: %d snapshots loaded, the last at sequence %d; %d events applied", fw.name, fw.f.f.Loads(), fw.f.loadedAt(), fw.f.count())
	}
	// A connector no fetcher serves: its trigger is refused with a
	// sync.failed of sequence 0, which its consumer drops (nothing was
	// ever committed), going on.
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	refused := startFollowerOf(t, s, acme, filepath.Join(dir, "acme"))
	waitFor(t, 30*time.Second, func() bool { return refused.f.Loads() == 1 })
	if err := cli.Trigger(ctx, s.JS, acme, "follow-refused"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool {
		_, err := st.GetLastMsgForSubject(ctx, pipeline.EventSubject(acme, clarity.KindSync))
		return err == nil
	})
	time.Sleep(500 * time.Millisecond) // the consumer's turn to read it
	select {
	case <-refused.ended:
		t.Fatalf("the consumer of a connector whose trigger was refused ended: %v", refused.err)
	default:
	}
	if pos := refused.f.Position(); pos.Sequence != 0 || refused.count() != 0 || refused.f.Len() != 0 {
		t.Errorf("the consumer of a connector whose trigger was refused: position %+v, %d events applied, %d records; want nothing", pos, refused.count(), refused.f.Len())
	}
	if resumed.f.Loads() != 1 || resumed.loadedAt() == 0 {
		t.Errorf("the copy resumed after retention dropped its events loaded %d snapshots (the last at sequence %d), want one, after the sync", resumed.f.Loads(), resumed.loadedAt())
	}

	// NATS restarts under the running consumers: they go on, and follow
	// the changes made after it.
	if err := s.RestartNATS(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Sim.UpdateUser(ctx, s.Sim.Org().Users[10+i].ID, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("After the restart %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Minute, func() bool { n, _ := writerRecords(t, s); return n > seq })
	seq, final = settled(t, s)
	for _, fw := range []struct {
		name string
		f    *followed
	}{{"resumed after retention", resumed}, {"throughout", live}, {"after", after}} {
		fw.f.waitAt(t, seq)
		requireRecords(t, "consumer "+fw.name+", after NATS restarted", fw.f.records(), final)
		if d := fw.f.twice(); len(d) > 0 {
			t.Errorf("consumer %s applied %d events twice, e.g. %s", fw.name, len(d), d[0])
		}
	}
	select {
	case <-refused.ended:
		t.Errorf("the consumer of connector acme/zoom ended when NATS restarted: %v", refused.err)
	default:
	}

	// A consumer started while no writer answers snapshot requests waits
	// for one, and loads its snapshot once the writer is back.
	for _, p := range s.Procs() {
		if p.Name == "writer" {
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
	waiting := startFollower(t, s, filepath.Join(dir, "waiting"))
	time.Sleep(3 * time.Second)
	select {
	case <-waiting.ended:
		t.Fatalf("a consumer started while no writer runs ended: %v", waiting.err)
	default:
	}
	if n := waiting.f.Loads(); n != 0 {
		t.Fatalf("a consumer started while no writer runs loaded %d snapshots", n)
	}
	if _, err := s.Run("writer"); err != nil {
		t.Fatal(err)
	}
	waiting.waitAt(t, seq)
	requireRecords(t, "consumer started while no writer ran", waiting.records(), final)
}

// provisionOne adds an active user to a group it is not in, through a
// provisioning request, and requires it to succeed.
func provisionOne(t *testing.T, s *devstack.Stack) {
	t.Helper()
	org := s.Sim.Org()
	for _, u := range org.Users[300:] {
		if u.Status != "active" {
			continue
		}
		for _, g := range org.Groups {
			if slices.Contains(u.GroupIDs, g.ID) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			req := clarity.ProvisionRequest{RequestID: "follow-provision", Action: clarity.ActionAddGrant, User: u.ID, Entitlement: "group:" + g.ID}
			res, err := cli.Provision(ctx, s.NC, s.JS, s.Config().Connector, req, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Result != clarity.ResultSucceeded {
				t.Fatalf("provisioning %+v: %+v", req, res)
			}
			return
		}
	}
	t.Fatal("no active user outside a group to provision")
}

// republish publishes the last n events of the stream again, each under
// another message id so that JetStream keeps them.
func republish(t *testing.T, s *devstack.Stack, n uint64) {
	t.Helper()
	ctx := context.Background()
	st, err := s.JS.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	for q := last - n + 1; q <= last; q++ {
		m, err := st.GetMsg(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Data
		msg.Header.Set("Content-Type", clarity.ContentType)
		msg.Header.Set(jetstream.MsgIDHeader, m.Header.Get(jetstream.MsgIDHeader)+"/again")
		if _, err := s.JS.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
}

// changeByWebhooks changes n users of the account, Zoom telling the
// webhook receiver, one every 40 ms; the channel gets the first error or
// nil.
func changeByWebhooks(ctx context.Context, s *devstack.Stack, n int) <-chan error {
	users := s.Sim.Org().Users
	out := make(chan error, 1)
	go func() {
		for i := range n {
			u := users[200+7*i]
			var err error
			switch i % 3 {
			case 0:
				_, err = s.Sim.UpdateUser(ctx, u.ID, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("Followed %d", i))})
			case 1:
				_, err = s.Sim.RemoveUser(ctx, u.ID, "delete")
			default:
				_, _, err = s.Sim.AddUser(ctx, zoomtest.User{Email: fmt.Sprintf("follow%d@example.com", i), FirstName: "Follow", Type: 1})
			}
			if err != nil {
				out <- err
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		out <- nil
	}()
	return out
}

// settled waits until the writer's records are the organisation's (the
// webhooks are all applied) and returns them with their sequence.
func settled(t *testing.T, s *devstack.Stack) (int64, map[string]json.RawMessage) {
	t.Helper()
	want := expected(s)
	deadline := time.Now().Add(90 * time.Second)
	for {
		seq, got := writerRecords(t, s)
		d := diffRecords(got, want)
		if len(d) == 0 {
			return seq, got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer's records never matched the organisation: %d differences, first:\n%s", len(d), strings.Join(d[:min(15, len(d))], "\n"))
		}
		time.Sleep(time.Second)
	}
}

// writerRecords reads the writer's records and their sequence, as zoomctl
// snapshot --with-sequence does.
func writerRecords(t *testing.T, s *devstack.Stack) (int64, map[string]json.RawMessage) {
	t.Helper()
	cfg := s.Config()
	var seq int64
	out := map[string]json.RawMessage{}
	err := cli.SnapshotAt(context.Background(), cfg.DatabaseURL, cfg.Connector, func(n int64) error {
		seq = n
		return nil
	}, func(l cli.SnapshotLine) error {
		out[l.Kind+"|"+l.Key] = l.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seq, out
}

func requireRecords(t *testing.T, what string, got, want map[string]json.RawMessage) {
	t.Helper()
	if d := diffRecords(got, want); len(d) > 0 {
		t.Errorf("%s differs from the writer's records in %d places (%d records, want %d); first:\n%s",
			what, len(d), len(got), len(want), strings.Join(d[:min(15, len(d))], "\n"))
	}
}

// followed is a follower running in the test's process.
type followed struct {
	f      *follow.Follower
	store  *follow.FileStore
	cancel context.CancelFunc
	ended  chan struct{} // closed when Run has returned err
	err    error
	once   sync.Once

	mu      sync.Mutex
	applied map[string]int
	n       int
	at      int64 // the sequence of the last snapshot loaded
}

func startFollower(t *testing.T, s *devstack.Stack, path string) *followed {
	t.Helper()
	return startFollowerOf(t, s, s.Config().Connector, path)
}

// startFollowerOf follows connector ref of the stack.
func startFollowerOf(t *testing.T, s *devstack.Stack, ref pipeline.ConnectorRef, path string) *followed {
	t.Helper()
	fw := &followed{store: follow.NewFileStore(path), ended: make(chan struct{}), applied: map[string]int{}}
	f, err := follow.New(follow.Config{
		Conn: s.NC, Connector: ref, Store: fw.store,
		Apply: func(c follow.Change) {
			fw.mu.Lock()
			fw.applied[c.ID]++
			fw.n++
			fw.mu.Unlock()
		},
		Loaded: func(pos follow.Position, _ int) {
			fw.mu.Lock()
			fw.at = pos.Sequence
			fw.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fw.f = f
	ctx, cancel := context.WithCancel(context.Background())
	fw.cancel = cancel
	go func() {
		fw.err = f.Run(ctx)
		close(fw.ended)
	}()
	t.Cleanup(func() { _ = fw.stop() })
	return fw
}

// stop ends the follower and returns its error, nil when it was only
// stopped.
func (fw *followed) stop() error {
	fw.cancel()
	<-fw.ended
	fw.once.Do(func() { fw.store.Close() })
	if errors.Is(fw.err, context.Canceled) {
		return nil
	}
	return fw.err
}

func (fw *followed) waitAt(t *testing.T, seq int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for fw.f.Position().Sequence < seq {
		select {
		case <-fw.ended:
			t.Fatalf("follower ended at sequence %d of %d: %v", fw.f.Position().Sequence, seq, fw.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower at sequence %d, not %d, after two minutes", fw.f.Position().Sequence, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (fw *followed) records() map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for r := range fw.f.Records() {
		out[r.Kind+"|"+r.Key] = r.Data
	}
	return out
}

func (fw *followed) loadedAt() int64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.at
}

func (fw *followed) count() int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.n
}

func (fw *followed) twice() []string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return repeated(fw.applied)
}

func repeated(m map[string]int) []string {
	var out []string
	for id, n := range m {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

// followProc is zoomctl follow run as a process, its applied lines counted
// across restarts.
type followProc struct {
	s     *devstack.Stack
	state string
	cmd   *exec.Cmd
	read  chan struct{}

	mu       sync.Mutex
	applied  map[string]int
	n        int
	max      int64
	snapshot bool
	loads    int // "snapshot" lines: snapshots loaded
}

func startFollowProc(t *testing.T, s *devstack.Stack, state string) *followProc {
	t.Helper()
	p := &followProc{s: s, state: state, applied: map[string]int{}}
	p.start(t)
	t.Cleanup(func() {
		if p.cmd != nil && p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

func (p *followProc) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir(t), "zoomctl"), "follow", "--state", p.state, "--counts-every", "0",
		"--tenant", p.s.Config().Connector.Tenant, "--connector", p.s.Config().Connector.ID)
	cmd.Env = append(os.Environ(), "NATS_URL="+p.s.NATSURL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.read = cmd, make(chan struct{})
	go func() {
		defer close(p.read)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			p.mu.Lock()
			switch {
			case len(f) >= 3 && f[0] == "applied":
				p.applied[f[2]]++
				p.n++
				if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					p.max = max(p.max, n)
				}
			case len(f) > 1 && (f[0] == "snapshot" || f[0] == "resumed"):
				// "snapshot sequence=N records=M next=Q": the copy is at N.
				p.snapshot = true
				if f[0] == "snapshot" {
					p.loads++
				}
				if n, err := strconv.ParseInt(strings.TrimPrefix(f[1], "sequence="), 10, 64); err == nil {
					p.max = max(p.max, n)
				}
			}
			p.mu.Unlock()
		}
	}()
}

func (p *followProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.read
	_ = p.cmd.Wait()
}

// stop ends it as Ctrl-C does, and requires a clean exit.
func (p *followProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.read
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("zoomctl follow: %v", err)
	}
}

func (p *followProc) loaded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.snapshot
}

// maxApplied is the greatest sequence its copy reached: of an event
// applied, or of a snapshot loaded.
func (p *followProc) maxApplied() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

func (p *followProc) snapshots() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loads
}

func (p *followProc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *followProc) twice() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return repeated(p.applied)
}

// loadState reads a copy saved by follow.FileStore.
func loadState(t *testing.T, path string) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	st := follow.NewFileStore(path)
	defer st.Close()
	_, err := st.Load(context.Background(), func(c follow.Change) error {
		switch {
		case !c.IsRecord():
		case c.Op == clarity.OpDeleted:
			delete(out, c.Kind+"|"+c.Key)
		default:
			out[c.Kind+"|"+c.Key] = c.Data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaChecker validates every event of the connector, as published,
// against the JSON Schema of the change events, as it comes.
type schemaChecker struct {
	t    *testing.T
	comp *jsonschema.Compiler
	sch  *jsonschema.Schema

	mu    sync.Mutex
	types map[string]int
	bad   int
}

const schemaPath = "../../../../proto/clarity/v1/events.schema.json"

func checkSchema(t *testing.T, s *devstack.Stack) *schemaChecker {
	t.Helper()
	sc := &schemaChecker{t: t, comp: jsonschema.NewCompiler(), types: map[string]int{}}
	var err error
	if sc.sch, err = sc.comp.Compile(schemaPath); err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	cons, err := s.JS.OrderedConsumer(context.Background(), clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{pipeline.EventSubject(s.Config().Connector, ">")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		_ = json.Unmarshal(m.Data(), &ev)
		sc.mu.Lock()
		sc.types[ev.Type]++
		sc.mu.Unlock()
		sc.check("event "+ev.ID, sc.sch, m.Data())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return sc
}

func (sc *schemaChecker) check(what string, s *jsonschema.Schema, b []byte) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err == nil {
		err = s.Validate(v)
	}
	if err != nil {
		sc.mu.Lock()
		sc.bad++
		n := sc.bad
		sc.mu.Unlock()
		if n <= 5 {
			sc.t.Errorf("%s is not valid against events.schema.json: %v\n%s", what, err, b)
		}
	}
}

// records validates the data of each record against its kind's
// definition, and reports what was checked.
func (sc *schemaChecker) records(records map[string]json.RawMessage) {
	t := sc.t
	t.Helper()
	defs := map[string]*jsonschema.Schema{}
	for kind, def := range map[string]string{
		clarity.KindServiceUser: "ServiceUser", clarity.KindEntitlement: "Entitlement",
		clarity.KindServiceUserEntitlement: "ServiceUserEntitlement", clarity.KindServiceUserAttribute: "ServiceUserAttribute",
	} {
		var err error
		if defs[kind], err = sc.comp.Compile(schemaPath + "#/$defs/" + def); err != nil {
			t.Fatal(err)
		}
	}
	for k, d := range records {
		kind, _, _ := strings.Cut(k, "|")
		sc.check("record "+k, defs[kind], d)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := 0
	for _, c := range sc.types {
		n += c
	}
	if sc.bad > 0 {
		t.Errorf("%d of %d events and records are not valid", sc.bad, n+len(records))
	}
	// Every record kind was created, updated (webhooks) and deleted, and
	// the sync started and completed.
	for _, typ := range []string{"clarity.service_user.created", "clarity.service_user.updated", "clarity.service_user.deleted",
		"clarity.entitlement.created", "clarity.service_user_entitlement.created", "clarity.service_user_entitlement.deleted",
		"clarity.service_user_attribute.created", "clarity.sync.started", "clarity.sync.completed", "clarity.provisioning.succeeded"} {
		if sc.types[typ] == 0 {
			t.Errorf("no %s event was validated; validated %v", typ, sc.types)
		}
	}
	t.Logf("validated %d events (%v) and %d records against events.schema.json", n, sc.types, len(records))
}

// settled waits until every event the stream holds of the connector was
// validated, and fails the test if any was not valid.
func (sc *schemaChecker) settled(s *devstack.Stack) {
	t := sc.t
	t.Helper()
	stream, err := s.JS.Stream(context.Background(), clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	subject := pipeline.EventSubject(s.Config().Connector, ">")
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		var held uint64
		for _, n := range info.State.Subjects {
			held += n
		}
		sc.mu.Lock()
		seen, bad := 0, sc.bad
		for _, c := range sc.types {
			seen += c
		}
		sc.mu.Unlock()
		if uint64(seen) >= held {
			if bad > 0 {
				t.Errorf("%d of %d events are not valid against events.schema.json", bad, seen)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("validated %d of the %d events of %s", seen, held, subject)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
