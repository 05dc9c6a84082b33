package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// binDir returns the directory of the service binaries: $ZOOM_BIN_DIR (make
// test builds them into bin/), or a fresh build.
func binDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ZOOM_BIN_DIR"); d != "" {
		return d
	}
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "zoom-bin-")
		if buildErr != nil {
			return
		}
		// zoomctl too: some tests run it, and a stack's NATS process is
		// its hidden verb.
		for _, s := range append(slices.Clone(devstack.Services), "zoomctl") {
			out, err := exec.Command("go", "build", "-o", filepath.Join(builtDir, s),
				"github.com/claritysecurity/zoom-connector/services/"+s).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", s, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// startStack runs NATS, the simulator and replicas of each service against a
// fresh database.
func startStack(t *testing.T, org *zoomtest.Org, sim zoomtest.Options, replicas map[string]int) *devstack.Stack {
	t.Helper()
	return startStackEnv(t, org, sim, replicas, nil)
}

// startStackEnv is startStack with more environment for the services.
func startStackEnv(t *testing.T, org *zoomtest.Org, sim zoomtest.Options, replicas map[string]int, env map[string]string) *devstack.Stack {
	t.Helper()
	return startStackOn(t, org, sim, pgtest.New(t, func(context.Context, string) error { return nil }), replicas, env)
}

// startStackOn runs the stack against the database at dbURL.
func startStackOn(t *testing.T, org *zoomtest.Org, sim zoomtest.Options, dbURL string, replicas map[string]int, env map[string]string) *devstack.Stack {
	t.Helper()
	// A fetcher that dies is replaced quickly in tests.
	all := map[string]string{"TRIGGER_ACK_WAIT": "3s"}
	for k, v := range env {
		all[k] = v
	}
	s, err := devstack.Start(context.Background(), devstack.Config{
		BinDir: binDir(t), DatabaseURL: dbURL, Dir: t.TempDir(), Org: org, Sim: sim, Env: all,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			dumpLogs(t, s)
		}
	})
	for _, name := range devstack.Services {
		n, ok := replicas[name]
		if !ok {
			n = 1
		}
		for range n {
			if _, err := s.Run(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}

func dumpLogs(t *testing.T, s *devstack.Stack) {
	files, _ := filepath.Glob(filepath.Join(s.Config().Dir, "logs", "*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (last lines)\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}

// collector reads every change event of the connector from the beginning of
// the stream and rebuilds the records from them.
type collector struct {
	mu      sync.Mutex
	events  []clarity.Event
	ids     map[string]int
	records map[string]json.RawMessage // "<kind>|<key>" → data
	cc      jetstream.ConsumeContext
}

func collect(t *testing.T, s *devstack.Stack) *collector {
	t.Helper()
	return collectRef(t, s, s.Config().Connector)
}

// collectRef collects the change events of one connector of the stack.
func collectRef(t *testing.T, s *devstack.Stack, ref pipeline.ConnectorRef) *collector {
	t.Helper()
	c := &collector{ids: map[string]int{}, records: map[string]json.RawMessage{}}
	cons, err := s.JS.OrderedConsumer(context.Background(), clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{pipeline.EventSubject(ref, ">")},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.cc, err = cons.Consume(func(m jetstream.Msg) {
		var ev clarity.Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil {
			t.Errorf("undecodable event: %v", err)
			return
		}
		if got := m.Headers().Get(jetstream.MsgIDHeader); got != ev.ID {
			t.Errorf("event %s: Nats-Msg-Id %q, want the event id", ev.ID, got)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.events = append(c.events, ev)
		c.ids[ev.ID]++
		parts := strings.Split(ev.Type, ".")
		kind, op := parts[1], parts[2]
		if kind == clarity.KindSync || kind == clarity.KindProvisioning {
			return
		}
		k := kind + "|" + ev.Subject
		if op == clarity.OpDeleted {
			delete(c.records, k)
		} else {
			c.records[k] = ev.Data
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cc.Stop)
	return c
}

// mark returns the number of events seen so far.
func (c *collector) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// since returns the events after mark.
func (c *collector) since(mark int) []clarity.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]clarity.Event(nil), c.events[mark:]...)
}

func (c *collector) snapshot() map[string]json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]json.RawMessage, len(c.records))
	for k, v := range c.records {
		out[k] = v
	}
	return out
}

// duplicates lists event ids delivered more than once.
func (c *collector) duplicates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, n := range c.ids {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

// waitEnd waits for the sync event that ends the run serving requestID.
func (c *collector) waitEnd(t *testing.T, requestID string, timeout time.Duration) (string, clarity.SyncData) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, ev := range c.events {
			if ev.Type != "clarity.sync.completed" && ev.Type != "clarity.sync.failed" {
				continue
			}
			var d clarity.SyncData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				continue
			}
			for _, id := range d.RequestIDs {
				if id == requestID {
					c.mu.Unlock()
					return strings.TrimPrefix(ev.Type, "clarity.sync."), d
				}
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no end of the sync serving %s within %s", requestID, timeout)
	return "", clarity.SyncData{}
}

// ended reports whether the end of the sync serving requestID was seen.
func (c *collector) ended(requestID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		if ev.Type != "clarity.sync.completed" && ev.Type != "clarity.sync.failed" {
			continue
		}
		var d clarity.SyncData
		if json.Unmarshal(ev.Data, &d) == nil && slices.Contains(d.RequestIDs, requestID) {
			return true
		}
	}
	return false
}

// sync triggers a full sync and waits for its end.
func sync1(t *testing.T, s *devstack.Stack, c *collector) (string, clarity.SyncData) {
	t.Helper()
	id := cli.NewRequestID()
	cfg := s.Config()
	if err := cli.Trigger(context.Background(), s.JS, cfg.Connector, id); err != nil {
		t.Fatal(err)
	}
	return c.waitEnd(t, id, 3*time.Minute)
}

// expected returns the records the simulator's organisation implies.
func expected(s *devstack.Stack) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for _, r := range zoomtest.Expected(s.Sim.Org()) {
		b, _ := json.Marshal(r.Data)
		out[r.Kind+"|"+r.Key] = b
	}
	return out
}

// snapshot returns the records zoomctl snapshot prints.
func snapshot(t *testing.T, s *devstack.Stack) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	cfg := s.Config()
	err := cli.Snapshot(context.Background(), cfg.DatabaseURL, cfg.Connector, func(l cli.SnapshotLine) error {
		out[l.Kind+"|"+l.Key] = l.Data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffRecords reports how got differs from want, comparing data as JSON
// values (field order does not matter).
func diffRecords(got, want map[string]json.RawMessage) []string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			diffs = append(diffs, "missing "+k+" "+string(w))
			continue
		}
		if !sameJSON(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k+" "+string(g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func requireSame(t *testing.T, what string, got, want map[string]json.RawMessage) {
	t.Helper()
	diffs := diffRecords(got, want)
	if len(diffs) == 0 {
		return
	}
	n := min(len(diffs), 20)
	t.Fatalf("%s differ from the organisation in %d places (got %d records, want %d); first:\n%s",
		what, len(diffs), len(got), len(want), strings.Join(diffs[:n], "\n"))
}

// changeSet is the set of "<op> <kind>|<key>" of the change events given.
func changeSet(events []clarity.Event) map[string]bool {
	out := map[string]bool{}
	for _, ev := range events {
		parts := strings.Split(ev.Type, ".")
		if parts[1] == clarity.KindSync {
			continue
		}
		out[parts[2]+" "+parts[1]+"|"+ev.Subject] = true
	}
	return out
}

// implied is the change set that turns records before into after.
func implied(before, after map[string]json.RawMessage) map[string]bool {
	out := map[string]bool{}
	for k, a := range after {
		b, ok := before[k]
		switch {
		case !ok:
			out["created "+k] = true
		case !sameJSON(a, b):
			out["updated "+k] = true
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out["deleted "+k] = true
		}
	}
	return out
}

func diffSets(got, want map[string]bool) []string {
	var d []string
	for k := range want {
		if !got[k] {
			d = append(d, "missing "+k)
		}
	}
	for k := range got {
		if !want[k] {
			d = append(d, "unexpected "+k)
		}
	}
	sort.Strings(d)
	return d
}
