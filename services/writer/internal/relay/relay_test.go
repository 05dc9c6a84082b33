package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/relay"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

func migrate(ctx context.Context, url string) error {
	pool, err := postgres.Open(ctx, url, 2, zerolog.Nop())
	if err != nil {
		return err
	}
	defer pool.Close()
	return store.Migrate(ctx, pool)
}

// defaultZoom is the connector of most tests.
var defaultZoom = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// env is a fresh database and a JetStream server with the connector's streams.
type env struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
}

func newEnv(t testing.TB) env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.New(t, migrate), 4, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return env{pool: pool, js: natstest.JetStream(t, pipeline.Streams(1)...)}
}

func record(t testing.TB, kind pb.Kind, key string, v any) *pb.Record {
	t.Helper()
	data, err := clarity.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Record{Kind: kind, Key: key, Data: data, Hash: clarity.Hash(data)}
}

// completeRun writes a whole run of one connector through the store: its
// outbox then holds sync.started, one created per record, sync.completed.
func completeRun(t testing.TB, s *store.Store, c pipeline.ConnectorRef, users ...string) {
	t.Helper()
	ctx := context.Background()
	run := &pb.Run{RunId: "run-" + c.ID, StartedAtMs: time.Now().UnixMilli(), Mode: "full", RequestIds: []string{"req"}}
	var recs []*pb.Record
	for _, u := range users {
		r := record(t, pb.Kind_KIND_SERVICE_USER, u, clarity.ServiceUser{ID: u, Email: u + "@example.com", FirstName: "R&D <" + u + ">", Status: clarity.StatusActive})
		r.UserKey = u
		recs = append(recs, r)
	}
	recs = append(recs, record(t, pb.Kind_KIND_ENTITLEMENT, "group:g1", clarity.Entitlement{ID: "group:g1", Type: clarity.EntitlementGroup, ZoomID: "g1", Name: "Sales"}))
	b := &pb.RecordBatch{Run: run, Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_ACTIVE, Page: 1, Last: true}, VersionMs: run.StartedAtMs, Records: recs}
	if err := s.ApplyPage(ctx, c, b); err != nil {
		t.Fatal(err)
	}
	f := &pb.RunFetched{Run: run, Listings: []*pb.ListingCount{{Listing: pb.Listing_LISTING_USERS_ACTIVE, Pages: 1}}}
	if err := s.Fetched(ctx, c, f); err != nil {
		t.Fatal(err)
	}
	if done, err := s.Finalize(ctx, c, run.RunId); err != nil || !done {
		t.Fatalf("finalize: got %v, %v, want true, nil", done, err)
	}
}

// outboxRow is one change held by the outbox.
type outboxRow struct {
	ConnectorID       int64
	Seq               int64
	Kind, Op, Subject string
	Data              string
	At                time.Time
	Tenant, Connector string
}

// storedBatch is one outbox row as stored: the changes of one transaction.
type storedBatch struct {
	ConnectorID, First, Last int64
	Changes                  []byte
	Encoding                 string
	At                       time.Time
}

func readBatches(t testing.TB, pool *pgxpool.Pool) []storedBatch {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT connector_id, first_seq, last_seq, changes, encoding, at FROM outbox ORDER BY connector_id, first_seq`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedBatch])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readOutbox returns every change the outbox holds, in sequence order.
func readOutbox(t testing.TB, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	names := map[int64]pipeline.ConnectorRef{}
	rows, err := pool.Query(context.Background(), `SELECT id, tenant, connector FROM connectors`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var c pipeline.ConnectorRef
		if err := rows.Scan(&id, &c.Tenant, &c.ID); err != nil {
			t.Fatal(err)
		}
		names[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var out []outboxRow
	for _, b := range readBatches(t, pool) {
		batch, err := outbox.DecodeChanges(b.Changes, b.Encoding)
		if err != nil {
			t.Fatalf("outbox row %d: %v", b.First, err)
		}
		if got, want := int64(len(batch.Changes)), b.Last-b.First+1; got != want {
			t.Fatalf("outbox row %d: got %d changes, want %d", b.First, got, want)
		}
		for i, c := range batch.Changes {
			n := names[b.ConnectorID]
			out = append(out, outboxRow{ConnectorID: b.ConnectorID, Seq: b.First + int64(i), Kind: c.Kind, Op: c.Op,
				Subject: c.Subject, Data: string(c.Data), At: b.At, Tenant: n.Tenant, Connector: n.ID})
		}
	}
	return out
}

// restore puts rows back in the outbox, as if the relay had crashed between
// publishing them and deleting them.
func restore(t testing.TB, pool *pgxpool.Pool, rows []storedBatch) {
	t.Helper()
	for _, r := range rows {
		if err := outbox.Insert(context.Background(), pool, outbox.Row{
			ConnectorID: r.ConnectorID, First: r.First, Last: r.Last, Changes: r.Changes, Encoding: r.Encoding, At: r.At,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// drain runs the relay until the outbox is empty and returns how many rows
// it published.
func drain(t testing.TB, r *relay.Relay) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := r.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("relay did not drain the outbox in 100 rounds")
	return total
}

// streamMsgs returns every message of CLARITY_ENTITLEMENTS in stream order.
func streamMsgs(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	return natstest.StreamMsgs(t, js, clarity.StreamEntitlements)
}

type counter struct {
	mu        sync.Mutex
	published int
}

func (c *counter) Published(_, _ string, n int) { c.mu.Lock(); c.published += n; c.mu.Unlock() }
func (c *counter) Lag(time.Duration)            {}

func TestPublishesOutboxAsCloudEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := store.New(e.pool, zerolog.Nop(), store.Options{})
	completeRun(t, s, defaultZoom, "u1", "u2", "u3")
	completeRun(t, s, pipeline.ConnectorRef{Tenant: "acme", ID: "zoom2"}, "v1")
	rows := readOutbox(t, e.pool)
	batches := readBatches(t, e.pool)
	if len(rows) != 10 {
		t.Fatalf("got %d outbox rows, want 10", len(rows))
	}

	obs := &counter{}
	// A batch smaller than the outbox makes the relay go round several times.
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Batch: 2, Interval: time.Minute, Observer: obs})
	if got := drain(t, r); got != len(rows) {
		t.Errorf("got %d published, want %d", got, len(rows))
	}
	if obs.published != len(rows) {
		t.Errorf("got %d reported to the observer, want %d", obs.published, len(rows))
	}
	if left := readOutbox(t, e.pool); len(left) != 0 {
		t.Errorf("got %d rows left in the outbox, want none", len(left))
	}

	msgs := streamMsgs(t, e.js)
	if len(msgs) != len(rows) {
		t.Fatalf("got %d messages in %s, want %d", len(msgs), clarity.StreamEntitlements, len(rows))
	}
	byID := map[string]outboxRow{}
	for _, r := range rows {
		byID[fmt.Sprintf("%s/%s/%d", r.Tenant, r.Connector, r.Seq)] = r
	}
	last := map[string]int64{}
	for _, m := range msgs {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("message %d: not JSON: %v", m.Sequence, err)
		}
		str := func(name string) string {
			var s string
			if err := json.Unmarshal(ev[name], &s); err != nil {
				t.Errorf("message %d: field %q is %s, want a string", m.Sequence, name, ev[name])
			}
			return s
		}
		id := str("id")
		row, ok := byID[id]
		if !ok {
			t.Errorf("message %d: got id %q, want one of the outbox rows", m.Sequence, id)
			continue
		}
		delete(byID, id)
		want := map[string]string{
			"specversion":     "1.0",
			"id":              fmt.Sprintf("%s/%s/%d", row.Tenant, row.Connector, row.Seq),
			"source":          "zoom/" + row.Tenant + "/" + row.Connector,
			"type":            "clarity." + row.Kind + "." + row.Op,
			"subject":         row.Subject,
			"time":            row.At.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano),
			"datacontenttype": "application/json",
			"tenant":          row.Tenant,
			"connector":       row.Connector,
			"sequence":        strconv.FormatInt(row.Seq, 10),
		}
		for name, w := range want {
			if got := str(name); got != w {
				t.Errorf("event %s: got %s %q, want %q", id, name, got, w)
			}
		}
		// A change event is a structured CloudEvent with these fields and
		// data, and nothing else (README, "Subjects and events").
		if len(ev) != len(want)+1 {
			t.Errorf("event %s: got fields %v, want exactly %d: the CloudEvent attributes above and data", id, keys(ev), len(want)+1)
		}
		var gotData, wantData any
		if err := json.Unmarshal(ev["data"], &gotData); err != nil {
			t.Errorf("event %s: data %s: %v", id, ev["data"], err)
		}
		if err := json.Unmarshal([]byte(row.Data), &wantData); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotData, wantData) {
			t.Errorf("event %s: got data %s, want %s", id, ev["data"], row.Data)
		}
		if got, w := m.Subject, clarity.EventSubject(row.Tenant, row.Connector, row.Kind); got != w {
			t.Errorf("event %s: got subject %q, want %q", id, got, w)
		}
		if got := m.Header.Get("Content-Type"); got != "application/cloudevents+json" {
			t.Errorf("event %s: got Content-Type %q, want application/cloudevents+json", id, got)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != id {
			t.Errorf("event %s: got Nats-Msg-Id %q, want the event id", id, got)
		}
		// Each connector's events reach the stream in sequence order.
		if row.Seq <= last[row.Connector] {
			t.Errorf("event %s: got sequence %d after %d, want increasing", id, row.Seq, last[row.Connector])
		}
		last[row.Connector] = row.Seq
	}
	for id := range byID {
		t.Errorf("outbox row %s: got no message", id)
	}

	// A crash between publishing and deleting leaves the rows to be published
	// again: the stream's duplicate window drops them.
	restore(t, e.pool, batches)
	if got := drain(t, r); got != len(rows) {
		t.Errorf("second pass: got %d published, want %d", got, len(rows))
	}
	if got := len(streamMsgs(t, e.js)); got != len(rows) {
		t.Errorf("after publishing the same rows again: got %d messages, want %d", got, len(rows))
	}
	if left := readOutbox(t, e.pool); len(left) != 0 {
		t.Errorf("got %d rows left in the outbox, want none", len(left))
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRunPublishesOnCommit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A poll interval longer than the test: only the wake-up can publish.
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Batch: 100, Interval: time.Hour})
	s := store.New(e.pool, zerolog.Nop(), store.Options{Committed: r.Wake})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: got %v, want nil", err)
		}
	})

	completeRun(t, s, defaultZoom, "u1")
	deadline := time.Now().Add(5 * time.Second)
	for {
		msgs := streamMsgs(t, e.js)
		if len(msgs) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages within 5s, want 4", len(msgs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKeepsRowsWhenPublishFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := store.New(e.pool, zerolog.Nop(), store.Options{})
	completeRun(t, s, defaultZoom, "u1", "u2")
	rows := readOutbox(t, e.pool)
	// Without the stream, JetStream acknowledges nothing.
	if err := e.js.DeleteStream(ctx, clarity.StreamEntitlements); err != nil {
		t.Fatal(err)
	}
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Batch: 100, Interval: time.Minute})
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := r.Once(short); err == nil || !strings.Contains(err.Error(), "no responders") {
		t.Errorf("got %d published and error %v without a stream, want a no-responders error", n, err)
	}
	if got := len(readOutbox(t, e.pool)); got != len(rows) {
		t.Fatalf("got %d rows in the outbox after a failed publish, want all %d", got, len(rows))
	}
	if err := natsx.EnsureStreams(ctx, e.js, pipeline.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, r); got != len(rows) {
		t.Errorf("got %d published once the stream is back, want %d", got, len(rows))
	}
	msgs := streamMsgs(t, e.js)
	if len(msgs) != len(rows) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(rows))
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("default/zoom/%d", rows[i].Seq); m.Header.Get(jetstream.MsgIDHeader) != want {
			t.Errorf("message %d: got id %q, want %q", i, m.Header.Get(jetstream.MsgIDHeader), want)
		}
	}
}

// A round of more changes than may await acknowledgement at once keeps
// publishing while the older ones are acknowledged, in sequence order.
func TestPublishesBeyondThePendingBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := store.New(e.pool, zerolog.Nop(), store.Options{})
	users := make([]string, 5000)
	for i := range users {
		users[i] = fmt.Sprintf("u%05d", i)
	}
	completeRun(t, s, defaultZoom, users...)
	want := len(users) + 3 // the users, the group, sync.started and sync.completed
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Batch: 10000, Interval: time.Minute})
	if got := drain(t, r); got != want {
		t.Fatalf("got %d published, want %d", got, want)
	}
	msgs := streamMsgs(t, e.js)
	if len(msgs) != want {
		t.Fatalf("got %d messages, want %d", len(msgs), want)
	}
	for i, m := range msgs {
		if got, w := m.Header.Get(jetstream.MsgIDHeader), fmt.Sprintf("default/zoom/%d", i+1); got != w {
			t.Fatalf("message %d: got id %q, want %q", i, got, w)
		}
	}
}

// A connector whose outbox cannot be published does not hold back the
// others: they are published, and its failure is reported.
func TestOneConnectorFailingHoldsBackNoOther(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := store.New(e.pool, zerolog.Nop(), store.Options{})
	completeRun(t, s, pipeline.ConnectorRef{Tenant: "default", ID: "broken"}, "u1") // the first connector the relay visits
	completeRun(t, s, defaultZoom, "u1", "u2")
	if _, err := e.pool.Exec(ctx, `UPDATE outbox SET changes = '\x00ff'::bytea
		WHERE connector_id = (SELECT id FROM connectors WHERE connector = 'broken')`); err != nil {
		t.Fatal(err)
	}
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Batch: 100, Interval: time.Minute})
	total := 0
	var lastErr error
	for range 10 {
		n, err := r.Once(ctx)
		total += n
		lastErr = err
		if n == 0 {
			break
		}
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "outbox row") {
		t.Errorf("got error %v, want the broken connector's outbox row reported", lastErr)
	}
	if want := 2 + 3; total != want { // the users, the group, sync.started and sync.completed
		t.Errorf("published %d changes of the healthy connector, want %d", total, want)
	}
	for _, m := range streamMsgs(t, e.js) {
		if !strings.HasPrefix(m.Subject, "clarity.entitlements.default.zoom.") {
			t.Errorf("published %s", m.Subject)
		}
	}
	left := map[string]int{}
	rows, err := e.pool.Query(ctx, `SELECT c.connector, count(*) FROM outbox o JOIN connectors c ON c.id = o.connector_id GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		left[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if left["zoom"] != 0 || left["broken"] == 0 {
		t.Errorf("outbox rows left per connector: %v, want the broken connector's only", left)
	}
}
