package console

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// answerer answers count requests on a real NATS server as the writer
// does (its own tests are the writer's: this one checks what the console
// asks and shows), with users counting the requests it had.
type answerer struct {
	mu       sync.Mutex
	requests []pipeline.CountsRequest
	users    int64
	delay    time.Duration
}

func (a *answerer) serve(t *testing.T, nc *nats.Conn) *nats.Subscription {
	t.Helper()
	sub, err := nc.Subscribe(pipeline.CountsFilter, func(m *nats.Msg) {
		var req pipeline.CountsRequest
		if len(m.Data) > 0 {
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Errorf("request body %q: %v", m.Data, err)
			}
		}
		a.mu.Lock()
		a.requests = append(a.requests, req)
		a.users++
		n, delay := a.users, a.delay
		a.mu.Unlock()
		time.Sleep(delay)
		b, _ := json.Marshal(pipeline.RecordCounts{CountedAt: time.Now(), Records: map[string]int64{
			clarity.KindServiceUser: n, clarity.KindEntitlement: 14, clarity.KindServiceUserEntitlement: 183, clarity.KindServiceUserAttribute: 273}})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

func (a *answerer) asked() []pipeline.CountsRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]pipeline.CountsRequest(nil), a.requests...)
}

func TestCountsAskedOfTheWriter(t *testing.T) {
	nc := natsConn(t)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	clk := &clock{t: time.Now()}
	c := newCounts(nc, clk.now)
	wait := func() time.Time { return clk.now().Add(countsWait) }

	// No writer: the counts are unavailable, at once, not zeros.
	got := c.of(wait(), ref, "")
	if got.Unavailable == "" || got.Cell(clarity.KindServiceUser) != "–" {
		t.Fatalf("without a writer: %+v", got)
	}

	w := &answerer{}
	sub := w.serve(t, nc)
	// Unavailable counts are asked for again only after countsEvery.
	if got := c.of(wait(), ref, ""); got.Unavailable == "" || len(w.asked()) != 0 {
		t.Fatalf("asked again at once after a failure: %+v, %d requests", got, len(w.asked()))
	}
	clk.add(countsEvery)
	// The first page without counts waits for them.
	got = c.of(wait(), ref, "")
	if got.Unavailable != "" || got.Cell(clarity.KindServiceUser) != "1" || got.Cell(clarity.KindServiceUserAttribute) != "273" || got.At.IsZero() {
		t.Fatalf("first counts: %+v", got)
	}
	// Pages viewed within countsEvery ask nothing more.
	for range 5 {
		clk.add(time.Second)
		if got := c.of(wait(), ref, ""); got.Cell(clarity.KindServiceUser) != "1" {
			t.Fatalf("within countsEvery: %+v", got)
		}
	}
	if n := len(w.asked()); n != 1 {
		t.Fatalf("%d requests within countsEvery, want 1", n)
	}
	// A run ended: the counts are asked for again at once, begun after the
	// console saw the end, and the page waits for them.
	got = c.of(wait(), ref, "r1 completed")
	if got.Cell(clarity.KindServiceUser) != "2" {
		t.Fatalf("after a run ended: %+v, want the writer's new count", got)
	}
	if reqs := w.asked(); len(reqs) != 2 || reqs[1].MaxAgeMS != 1 {
		t.Fatalf("requests %+v, want a second one with max_age_ms 1", reqs)
	}
	// After countsEvery, a view asks again in the background and shows
	// the counts it has meanwhile.
	clk.add(countsEvery)
	if got := c.of(wait(), ref, "r1 completed"); got.Cell(clarity.KindServiceUser) != "2" && got.Cell(clarity.KindServiceUser) != "3" {
		t.Fatalf("refresh: %+v", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(w.asked()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the answer is kept
	if got := c.of(wait(), ref, "r1 completed"); got.Cell(clarity.KindServiceUser) != "3" {
		t.Fatalf("after the refresh: %+v", got)
	}
	if reqs := w.asked(); reqs[2].MaxAgeMS != 0 {
		t.Errorf("a refresh asked for max_age_ms %d, want none", reqs[2].MaxAgeMS)
	}
	// A writer slower than a page's wait after a run's end: the page does
	// not wait longer, and shows no stale counts.
	w.mu.Lock()
	w.delay = 2 * countsWait
	w.mu.Unlock()
	start := time.Now()
	got = c.of(wait(), ref, "r2 failed")
	if took := time.Since(start); took > countsWait+time.Second {
		t.Errorf("a page waited %s for the counts, want at most %s", took, countsWait)
	}
	if got.Unavailable == "" || got.Cell(clarity.KindServiceUser) != "–" {
		t.Errorf("while a count after a run's end is pending: %+v, want no stale counts", got)
	}
	// Once answered, they show.
	deadline = time.Now().Add(10 * time.Second)
	for c.of(wait(), ref, "r2 failed").Unavailable != "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.of(wait(), ref, "r2 failed"); got.Cell(clarity.KindServiceUser) != "4" {
		t.Errorf("after the slow answer: %+v", got)
	}
	// The writer stops answering: the next refresh says the counts are
	// unavailable rather than keep showing the last.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	clk.add(countsEvery)
	c.of(wait(), ref, "r2 failed") // the refresh goes out
	deadline = time.Now().Add(countsTimeout + 5*time.Second)
	for c.of(wait(), ref, "r2 failed").Unavailable == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := c.of(wait(), ref, "r2 failed"); got.Unavailable == "" || got.Cell(clarity.KindServiceUser) != "–" {
		t.Errorf("without a writer after counts were shown: %+v", got)
	}
}

// The console's start reads the sync events the stream holds, not its
// record events: those it reads from its start on, for the running sync.
func TestActivityStartReadsOnlySyncEvents(t *testing.T) {
	nc, js := entitlementsStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	t0 := time.Now().Add(-time.Hour)
	seq := int64(0)
	pub := func(kind, op string, data any) {
		t.Helper()
		seq++
		if _, err := js.PublishAsync(pipeline.EventSubject(ref, kind), event(t, ref, seq, kind, op, t0, data)); err != nil {
			t.Fatal(err)
		}
	}
	sd := func(run string, end bool) clarity.SyncData { return runData(t0, run, end) }
	// A finished run of many record events, then a running one.
	const records = 5000
	pub(clarity.KindSync, clarity.OpStarted, sd("r1", false))
	for i := range records {
		pub(clarity.Kinds[i%len(clarity.Kinds)], clarity.OpCreated, map[string]int{"i": i})
	}
	pub(clarity.KindSync, clarity.OpCompleted, sd("r1", true))
	pub(clarity.KindSync, clarity.OpStarted, sd("r2", false))
	pub(clarity.KindServiceUser, clarity.OpCreated, nil)
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("the events were not stored")
	}

	a := NewActivity()
	done := make(chan error, 1)
	go func() { done <- a.Follow(ctx, nc, js, zerolog.Nop()) }()
	defer func() { cancel(); <-done }()
	select {
	case <-a.CaughtUp():
	case <-time.After(20 * time.Second):
		t.Fatal("the console did not catch up")
	}
	s := a.Of(ref)
	if len(s.Runs) != 1 || s.Runs[0].RunID != "r1" || s.Current == nil || s.Current.RunID != "r2" {
		t.Fatalf("after the start: %+v", s)
	}
	if n := a.delivered.Load(); n != 3 {
		t.Errorf("the start read %d events, want the 3 sync events of the %d the stream holds", n, records+4)
	}
	// Record events from the start on count in the running run; the run
	// ends; a new sync event is applied once.
	pub(clarity.KindServiceUser, clarity.OpCreated, nil)
	pub(clarity.KindServiceUser, clarity.OpDeleted, nil)
	pub(clarity.KindEntitlement, clarity.OpCreated, nil)
	pub(clarity.KindSync, clarity.OpCompleted, sd("r2", true))
	<-js.PublishAsyncComplete()
	deadline := time.Now().Add(10 * time.Second)
	for len(a.Of(ref).Runs) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s = a.Of(ref)
	if len(s.Runs) != 2 || s.Current != nil {
		t.Fatalf("after the second run: %+v", s)
	}
	r2 := s.Runs[0]
	if r2.RunID != "r2" || r2.Changes[clarity.KindServiceUser] != 2 || r2.Changes[clarity.KindEntitlement] != 1 {
		t.Errorf("the second run's changes %v, want the 2 user and 1 entitlement events since the start", r2.Changes)
	}
	if n := a.delivered.Load(); n != 3+4 {
		t.Errorf("%d events read in all, want 7", n)
	}
}

// The pages show the writer's counts, and say they are unavailable when it
// does not answer.
func TestPagesShowTheWritersCounts(t *testing.T) {
	cfg, _ := activeConnector(t)
	nc := cfg.NC
	b, clk := newConsole(t, cfg)
	b.signIn()
	_, page := b.get("/connectors/acme/zoom")
	if !strings.Contains(page, `id="counts-unavailable"`) || !strings.Contains(page, `data-kind="service_user">–<`) {
		t.Errorf("without a writer the connector's page does not say the counts are unavailable:\n%s", section(page, `id="records"`))
	}
	w := &answerer{}
	w.serve(t, nc)
	clk.add(countsEvery)
	_, page = b.get("/connectors/acme/zoom")
	for kind, n := range map[string]string{clarity.KindServiceUser: "1", clarity.KindEntitlement: "14",
		clarity.KindServiceUserEntitlement: "183", clarity.KindServiceUserAttribute: "273"} {
		if !strings.Contains(page, `data-kind="`+kind+`">`+n+`<`) {
			t.Errorf("the connector's page does not show %s %s:\n%s", n, kind, section(page, `id="records"`))
		}
	}
	if strings.Contains(page, `id="counts-unavailable"`) || !strings.Contains(page, `id="counted-at"`) {
		t.Error("the connector's page says the counts are unavailable, or not when they were counted")
	}
	if _, list := b.get("/"); !strings.Contains(list, `<td class="num">183</td>`) {
		t.Errorf("the connectors page does not show the counts:\n%s", section(list, "<tbody>"))
	}
}

// section is a little of page from marker on, for a failure's message.
func section(page, marker string) string {
	i := strings.Index(page, marker)
	if i < 0 {
		return page[:min(len(page), 400)]
	}
	return page[i:min(len(page), i+600)]
}

// entitlementsStream starts a NATS server holding CLARITY_ENTITLEMENTS.
func entitlementsStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pipeline.Streams(1) {
		if c.Name == clarity.StreamEntitlements {
			if _, err := js.CreateOrUpdateStream(context.Background(), c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return nc, js
}

// infoHook calls afterInfo once the console has read the stream's
// information: what it publishes lands between the console's start and
// its first read.
type infoHook struct {
	jetstream.JetStream
	afterInfo func()
}

func (h infoHook) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := h.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return infoHookStream{Stream: s, afterInfo: h.afterInfo}, nil
}

type infoHookStream struct {
	jetstream.Stream
	afterInfo func()
}

func (h infoHookStream) Info(ctx context.Context, o ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	i, err := h.Stream.Info(ctx, o...)
	h.afterInfo()
	return i, err
}

// A run's record events published while the console starts (after it
// read where the stream ends, before its first read) count in that run,
// not in the run after it.
func TestActivityEventsDuringStartCountInTheirRun(t *testing.T) {
	nc, js := entitlementsStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	t0 := time.Now().Add(-time.Hour)
	seq := int64(0)
	pub := func(kind, op string, data any) {
		seq++
		if _, err := js.Publish(ctx, pipeline.EventSubject(ref, kind), event(t, ref, seq, kind, op, t0, data)); err != nil {
			t.Error(err)
		}
	}
	run := func(id string, end bool) clarity.SyncData { return runData(t0, id, end) }
	// One event before the start, so that the console reads sync events
	// first.
	pub(clarity.KindSync, clarity.OpStarted, run("r0", false))
	var once sync.Once
	during := func() {
		once.Do(func() {
			pub(clarity.KindSync, clarity.OpCompleted, run("r0", true))
			pub(clarity.KindSync, clarity.OpStarted, run("r1", false))
			pub(clarity.KindServiceUser, clarity.OpCreated, nil)
			pub(clarity.KindServiceUser, clarity.OpCreated, nil)
			pub(clarity.KindSync, clarity.OpCompleted, run("r1", true))
			pub(clarity.KindSync, clarity.OpStarted, run("r2", false))
		})
	}
	a := NewActivity()
	done := make(chan error, 1)
	go func() { done <- a.Follow(ctx, nc, infoHook{JetStream: js, afterInfo: during}, zerolog.Nop()) }()
	defer func() { cancel(); <-done }()
	<-a.CaughtUp()
	deadline := time.Now().Add(10 * time.Second)
	for a.delivered.Load() < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := a.Of(ref)
	if len(s.Runs) != 2 || s.Runs[0].RunID != "r1" || s.Runs[0].Changes[clarity.KindServiceUser] != 2 {
		t.Errorf("runs %+v, want r1 with its 2 users created, and r0", s.Runs)
	}
	if s.Current == nil || s.Current.RunID != "r2" || s.Current.Changes[clarity.KindServiceUser] != 0 {
		t.Errorf("running %+v, want r2 without changes", s.Current)
	}
	if n := a.delivered.Load(); n != 7 {
		t.Errorf("%d events read, want each of the 7 once", n)
	}
}

// Counts a page has not shown for longer than countsKeep are asked for
// again, and the page waits for the answer rather than say the writer is
// silent.
func TestCountsAfterIdleAreAskedAgain(t *testing.T) {
	nc := natsConn(t)
	var w answerer
	w.serve(t, nc)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	clk := &clock{t: time.Now()}
	c := newCounts(nc, clk.now)
	if got := c.of(clk.now().Add(countsWait), ref, ""); got.Unavailable != "" {
		t.Fatalf("first view: %q", got.Unavailable)
	}
	clk.add(countsKeep + time.Second)
	if got := c.of(clk.now().Add(countsWait), ref, ""); got.Unavailable != "" || got.Cell(clarity.KindServiceUser) != "2" {
		t.Errorf("a view after %s: %q, %s users; want the writer's new count, 2", countsKeep+time.Second, got.Unavailable, got.Cell(clarity.KindServiceUser))
	}
}

// The counts of connectors no page showed for a while are forgotten when
// the console holds as many as it may: a new connector is counted.
func TestCountsForgetConnectorsNotViewed(t *testing.T) {
	nc := natsConn(t)
	var w answerer
	w.serve(t, nc)
	clk := &clock{t: time.Now()}
	c := newCounts(nc, clk.now)
	c.mu.Lock()
	for i := range maxConnectors {
		c.conn[pipeline.ConnectorRef{Tenant: "acme", ID: fmt.Sprintf("c%d", i)}] = &countEntry{viewed: clk.now()}
	}
	c.mu.Unlock()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "new"}
	if got := c.of(clk.now().Add(countsWait), ref, ""); got.Unavailable != "Too many connectors to count." {
		t.Errorf("with %d connectors viewed just now: %q, want too many", maxConnectors, got.Unavailable)
	}
	clk.add(countsKeep + time.Second)
	if got := c.of(clk.now().Add(countsWait), ref, ""); got.Unavailable != "" {
		t.Errorf("with %d connectors not viewed for %s: %q, want the new one counted", maxConnectors, countsKeep+time.Second, got.Unavailable)
	}
	c.mu.Lock()
	n := len(c.conn)
	c.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connectors' counts kept, want the new one's alone", n)
	}
}

// runData is the data of run id's sync event, started at t0 and, when
// end is set, finished a minute later.
func runData(t0 time.Time, id string, end bool) clarity.SyncData {
	d := clarity.SyncData{RunID: id, StartedAt: t0.Format(time.RFC3339Nano)}
	if end {
		d.FinishedAt = t0.Add(time.Minute).Format(time.RFC3339Nano)
	}
	return d
}

// natsConn is a connection to a new NATS server.
func natsConn(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natstest.Run(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
