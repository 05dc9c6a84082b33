package counts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/counts"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

var (
	ref   = pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	other = pipeline.ConnectorRef{Tenant: "acme", ID: "other"}
)

func newStore(t *testing.T) *store.Store {
	t.Helper()
	url := pgtest.New(t, func(ctx context.Context, url string) error {
		pool, err := postgres.Open(ctx, url, 2, zerolog.Nop())
		if err != nil {
			return err
		}
		defer pool.Close()
		return store.Migrate(ctx, pool)
	})
	pool, err := postgres.Open(context.Background(), url, 4, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool, zerolog.Nop(), store.Options{})
}

// users stores n users of c, each with an attribute and a grant of one
// entitlement, at Zoom time version.
func users(t *testing.T, st *store.Store, c pipeline.ConnectorRef, from, n int, version int64) {
	t.Helper()
	e, _ := clarity.Marshal(clarity.Entitlement{ID: "role:1", Name: "Admin", Type: "role"})
	recs := []*pb.Record{{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "role:1", Data: e, EntitlementKey: "role:1"}}
	for i := from; i < from+n; i++ {
		id := fmt.Sprintf("u%05d", i)
		u, _ := clarity.Marshal(clarity.ServiceUser{ID: id, Email: id + "@example.com", Status: clarity.StatusActive, License: "basic"})
		a, _ := clarity.Marshal(clarity.Attribute{UserID: id, Name: "department", Value: "sales"})
		g, _ := clarity.Marshal(clarity.Grant{UserID: id, EntitlementID: "role:1"})
		recs = append(recs,
			&pb.Record{Kind: pb.Kind_KIND_SERVICE_USER, Key: id, Data: u, UserKey: id, Email: id + "@example.com"},
			&pb.Record{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: clarity.AttributeKey(id, "department"), Data: a, UserKey: id},
			&pb.Record{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: clarity.GrantKey(id, "role:1"), Data: g, UserKey: id, EntitlementKey: "role:1"})
	}
	if err := st.ApplyChange(context.Background(), c, &pb.RecordBatch{VersionMs: version, Records: recs, Source: "test"}); err != nil {
		t.Fatal(err)
	}
}

// serve runs a responder on a real NATS server with the deployment's
// maximum payload and returns a client connection.
func serve(t *testing.T, r *counts.Responder) *nats.Conn {
	t.Helper()
	srv := natstest.Run(t)
	wnc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wnc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, wnc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if got := nc.MaxPayload(); got != natstest.MaxPayload {
		t.Fatalf("server max payload %d, want %d", got, natstest.MaxPayload)
	}
	if err := wnc.Flush(); err != nil { // the subscription is in place
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	return nc
}

func ask(t *testing.T, nc *nats.Conn, subject string) pipeline.RecordCounts {
	t.Helper()
	return askWith(t, nc, subject, nil)
}

func askWith(t *testing.T, nc *nats.Conn, subject string, body []byte) pipeline.RecordCounts {
	t.Helper()
	m, err := nc.Request(subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if len(m.Data) > pipeline.MaxCountsReply {
		t.Errorf("reply of %d bytes, want at most %d", len(m.Data), pipeline.MaxCountsReply)
	}
	var r pipeline.RecordCounts
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply to %s: %v (%s)", subject, err, m.Data)
	}
	return r
}

func want(users, ents, grants, attrs int64) map[string]int64 {
	return map[string]int64{clarity.KindServiceUser: users, clarity.KindEntitlement: ents,
		clarity.KindServiceUserEntitlement: grants, clarity.KindServiceUserAttribute: attrs}
}

func TestCountsAfterCreatesAndDeletes(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	known := func(_ context.Context, c pipeline.ConnectorRef) (bool, error) { return c == ref || c == other, nil }
	// Fresh is short, so that each step counts again.
	nc := serve(t, counts.New(st, counts.Config{Known: known, Fresh: time.Nanosecond}))

	if r := ask(t, nc, pipeline.CountsSubject(ref)); r.Error != "" || !maps.Equal(r.Records, want(0, 0, 0, 0)) {
		t.Errorf("before any record: got %+v, want every kind at 0", r)
	}
	before := time.Now()
	users(t, st, ref, 0, 25, 1)
	users(t, st, other, 0, 3, 1) // another connector's records are not counted
	r := ask(t, nc, pipeline.CountsSubject(ref))
	if r.Error != "" || !maps.Equal(r.Records, want(25, 1, 25, 25)) {
		t.Errorf("after creates: got %+v, want 25/1/25/25", r)
	}
	if r.CountedAt.Before(before.Add(-time.Second)) || r.CountedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("counted at %v, want between %v and now", r.CountedAt, before)
	}
	// Delete 5 users (and with them their grants and attributes): their
	// tombstones stay in the table and are not counted.
	var dels []*pb.RecordRef
	for i := range 5 {
		dels = append(dels, &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER, Key: fmt.Sprintf("u%05d", i)})
	}
	if err := st.ApplyChange(context.Background(), ref, &pb.RecordBatch{VersionMs: 2, Deletes: dels, Source: "test"}); err != nil {
		t.Fatal(err)
	}
	if r := ask(t, nc, pipeline.CountsSubject(ref)); r.Error != "" || !maps.Equal(r.Records, want(20, 1, 20, 20)) {
		t.Errorf("after deletes: got %+v, want 20/1/20/20", r)
	}
	if r := ask(t, nc, pipeline.CountsSubject(other)); r.Error != "" || !maps.Equal(r.Records, want(3, 1, 3, 3)) {
		t.Errorf("other connector: got %+v, want 3/1/3/3", r)
	}
}

func TestCountsRefused(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	users(t, st, other, 0, 2, 1) // stored, but no longer in the registry
	known := func(_ context.Context, c pipeline.ConnectorRef) (bool, error) { return c == ref, nil }
	nc := serve(t, counts.New(st, counts.Config{Known: known}))
	for _, tc := range []struct{ subject, code string }{
		{pipeline.CountsSubject(other), pipeline.CountsUnknownConnector},
		{pipeline.CountsSubject(pipeline.ConnectorRef{Tenant: "nosuch", ID: "zoom"}), pipeline.CountsUnknownConnector},
		{"zoom.counts.acme", pipeline.CountsBadSubject},
		{"zoom.counts.acme.zoom.extra", pipeline.CountsBadSubject},
		{"zoom.counts.ACME.zoom", pipeline.CountsBadSubject},
		{"zoom.counts.acme.-zoom", pipeline.CountsBadSubject},
	} {
		r := ask(t, nc, tc.subject)
		if r.Code != tc.code || r.Error == "" || r.Records != nil {
			t.Errorf("%s: got %+v, want an error with code %s and no counts", tc.subject, r, tc.code)
		}
		if len(r.Error) > 300 {
			t.Errorf("%s: error of %d bytes", tc.subject, len(r.Error))
		}
	}
	if r := ask(t, nc, pipeline.CountsSubject(ref)); r.Error != "" || !maps.Equal(r.Records, want(0, 0, 0, 0)) {
		t.Errorf("known connector without records: got %+v", r)
	}
	for _, body := range []string{"{", `{"max_age_ms":-1}`, `{"max_age_ms":"x"}`, `{"max_age_ms":1,"pad":"` + strings.Repeat("x", pipeline.MaxCountsRequest) + `"}`} {
		if r := askWith(t, nc, pipeline.CountsSubject(ref), []byte(body)); r.Code != pipeline.CountsBadRequest || r.Records != nil || len(r.Error) > 300 {
			t.Errorf("body %.30q: got %+v, want a bad_request error", body, r)
		}
	}
}

// gated counts in a real store, each count waiting for the gate to open.
type gated struct {
	st    *store.Store
	gate  chan struct{}
	calls atomic.Int32
}

func (g *gated) CountRecords(ctx context.Context, c pipeline.ConnectorRef) (map[string]int64, error) {
	g.calls.Add(1)
	<-g.gate
	return g.st.CountRecords(ctx, c)
}

func TestConcurrentRequestsShareOneCount(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	users(t, st, ref, 0, 7, 1)
	g := &gated{st: st, gate: make(chan struct{})}
	nc := serve(t, counts.New(g, counts.Config{Fresh: time.Hour}))
	const n = 8
	var wg sync.WaitGroup
	replies := make([]pipeline.RecordCounts, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = ask(t, nc, pipeline.CountsSubject(ref))
		}()
	}
	// Every request is in before the count may end.
	deadline := time.Now().Add(5 * time.Second)
	for g.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(g.gate)
	wg.Wait()
	for i, r := range replies {
		if r.Error != "" || !maps.Equal(r.Records, want(7, 1, 7, 7)) {
			t.Errorf("reply %d: got %+v", i, r)
		}
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("%d concurrent requests ran %d counts, want 1", n, got)
	}
	// A count that ended less than Fresh ago is reused: more users are not
	// seen yet.
	users(t, st, ref, 7, 3, 2)
	if r := ask(t, nc, pipeline.CountsSubject(ref)); !maps.Equal(r.Records, want(7, 1, 7, 7)) || !r.CountedAt.Equal(replies[0].CountedAt) {
		t.Errorf("within Fresh: got %+v, want the shared count %+v", r, replies[0])
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("a request within Fresh ran a count (%d in all)", got)
	}
	// A request for a count begun after a moment (a run's end) gets one.
	time.Sleep(20 * time.Millisecond)
	b, _ := json.Marshal(pipeline.CountsRequest{MaxAgeMS: 10})
	if r := askWith(t, nc, pipeline.CountsSubject(ref), b); r.Error != "" || !maps.Equal(r.Records, want(10, 1, 10, 10)) {
		t.Errorf("with max_age_ms: got %+v, want a new count 10/1/10/10", r)
	}
	if got := g.calls.Load(); got != 2 {
		t.Errorf("%d counts, want a second for max_age_ms", got)
	}
}
