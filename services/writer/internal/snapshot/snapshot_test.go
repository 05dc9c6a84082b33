package snapshot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/snapshot"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

var ref = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// setup stores users (each with a large attribute, so that a few thousand
// records need several chunks) and runs replicas of the server on a
// real NATS server with the deployment's maximum payload.
func setup(t *testing.T, users, replicas int, cfg snapshot.Config) (*nats.Conn, *store.Store, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	url := pgtest.New(t, func(ctx context.Context, url string) error {
		pool, err := postgres.Open(ctx, url, 2, zerolog.Nop())
		if err != nil {
			return err
		}
		defer pool.Close()
		return store.Migrate(ctx, pool)
	})
	pool, err := postgres.Open(ctx, url, 4, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool, zerolog.Nop(), store.Options{})
	var recs []*pb.Record
	pad := strings.Repeat("x", 600)
	for i := range users {
		id := fmt.Sprintf("u%05d", i)
		u, _ := clarity.Marshal(clarity.ServiceUser{ID: id, Email: id + "@example.com", Status: clarity.StatusActive, License: "basic"})
		a, _ := clarity.Marshal(clarity.Attribute{UserID: id, Name: "department", Value: pad + " <&> " + id})
		recs = append(recs,
			&pb.Record{Kind: pb.Kind_KIND_SERVICE_USER, Key: id, Data: u, UserKey: id, Email: id + "@example.com"},
			&pb.Record{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: clarity.AttributeKey(id, "department"), Data: a, UserKey: id})
	}
	if err := st.ApplyChange(ctx, ref, &pb.RecordBatch{VersionMs: 1, Records: recs, Source: "test"}); err != nil {
		t.Fatal(err)
	}

	srv := natstest.Run(t)
	done := make(chan error, replicas)
	for range replicas {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		go func() { done <- snapshot.Serve(ctx, nc, pool, zerolog.Nop(), cfg) }()
	}
	t.Cleanup(func() {
		cancel()
		for range replicas {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
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
	// The replicas' subscriptions reach the server before the first request.
	time.Sleep(100 * time.Millisecond)
	return nc, st, pool
}

func ask(t *testing.T, nc *nats.Conn, req string) (snapshot.Reply, int) {
	t.Helper()
	m, err := nc.Request(snapshot.Subject(ref), []byte(req), 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", req, err)
	}
	var r snapshot.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("reply to %s: %v", req, err)
	}
	return r, len(m.Data)
}

// fetch reads a whole snapshot chunk by chunk, as a client does.
func fetch(t *testing.T, nc *nats.Conn, limit int, between func()) (seq string, recs []snapshot.Record, chunks int) {
	t.Helper()
	cursor := ""
	for {
		b, _ := json.Marshal(snapshot.Request{Cursor: cursor, Limit: limit})
		r, size := ask(t, nc, string(b))
		if r.Error != "" {
			t.Fatalf("chunk %d: %s (%s)", chunks, r.Error, r.Code)
		}
		if size > natstest.MaxPayload/2 {
			t.Errorf("chunk %d: %d bytes, want at most %d", chunks, size, natstest.MaxPayload/2)
		}
		if chunks > 0 && r.Sequence != seq {
			t.Fatalf("chunk %d: got sequence %s, want %s as the first chunk's", chunks, r.Sequence, seq)
		}
		seq = r.Sequence
		recs = append(recs, r.Records...)
		chunks++
		if r.Next == "" {
			return seq, recs, chunks
		}
		cursor = r.Next
		if between != nil {
			between()
		}
	}
}

// direct reads the records straight from the store.
func direct(t *testing.T, st *store.Store) (string, []snapshot.Record) {
	t.Helper()
	ctx := context.Background()
	sn, err := st.Snapshot(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close(ctx) //nolint:errcheck
	var out []snapshot.Record
	if err := sn.Each(ctx, func(r store.SnapshotRecord) error {
		out = append(out, snapshot.Record{Kind: pipeline.KindName(r.Kind), Key: r.Key, Data: r.Data})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(sn.Sequence()), out
}

func same(t *testing.T, got, want []snapshot.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		var g, w any
		_ = json.Unmarshal(got[i].Data, &g)
		_ = json.Unmarshal(want[i].Data, &w)
		if got[i].Kind != want[i].Kind || got[i].Key != want[i].Key || fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("record %d: got %s %s %s, want %s %s %s", i, got[i].Kind, got[i].Key, got[i].Data, want[i].Kind, want[i].Key, want[i].Data)
		}
	}
}

// The records of a connector too large for one reply come in several
// chunks, across two replicas, all at the first chunk's sequence, even
// while the connector changes between chunks, and equal a direct read
// taken before the changes.
func TestChunks(t *testing.T) {
	nc, st, _ := setup(t, 1500, 2, snapshot.Config{})
	wantSeq, want := direct(t, st)
	ctx := context.Background()
	i := 0
	seq, got, chunks := fetch(t, nc, 0, func() {
		i++
		id := fmt.Sprintf("new%03d", i)
		u, _ := clarity.Marshal(clarity.ServiceUser{ID: id, Email: id + "@example.com"})
		if err := st.ApplyChange(ctx, ref, &pb.RecordBatch{VersionMs: int64(10 + i), Source: "test",
			Records: []*pb.Record{{Kind: pb.Kind_KIND_SERVICE_USER, Key: id, Data: u, UserKey: id}},
			Deletes: []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: fmt.Sprintf("u%05d", i)}}}); err != nil {
			t.Fatal(err)
		}
	})
	if chunks < 3 {
		t.Errorf("got %d chunks, want several", chunks)
	}
	if seq != wantSeq {
		t.Errorf("got sequence %s, want %s", seq, wantSeq)
	}
	same(t, got, want)

	// A small limit bounds chunks by count; afterwards the snapshot is
	// the current one.
	wantSeq, want = direct(t, st)
	seq, got, chunks = fetch(t, nc, 700, nil)
	if seq != wantSeq || chunks < 4 {
		t.Errorf("limit 700: got sequence %s in %d chunks, want %s in 4 or more", seq, chunks, wantSeq)
	}
	same(t, got, want)
}

// Bad requests, an unknown connector, an expired session and the cap on
// sessions are answered, not dropped.
func TestRefusals(t *testing.T) {
	nc, _, _ := setup(t, 3000, 1, snapshot.Config{MaxSessions: 1, Idle: 300 * time.Millisecond})
	for _, tt := range []struct{ req, code string }{
		{`{"limit":-1}`, snapshot.CodeBadRequest},
		{`{"limit":10001}`, snapshot.CodeBadRequest},
		{`[1]`, snapshot.CodeBadRequest},
		{`{"cursor":"nope"}`, snapshot.CodeBadRequest},
		{`{"cursor":"00000003-0000001B-1'/1/1/x"}`, snapshot.CodeBadRequest},
		{`{"cursor":"` + strings.Repeat("a", 3000) + `"}`, snapshot.CodeBadRequest},
		{`{"cursor":"00000003-0000001B-1/1/1/x"}`, snapshot.CodeExpired},
	} {
		if r, _ := ask(t, nc, tt.req); r.Code != tt.code {
			t.Errorf("%.60s: got code %q (%s), want %q", tt.req, r.Code, r.Error, tt.code)
		}
	}
	m, err := nc.Request("clarity.snapshot.acme.zoom", []byte(`{}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r snapshot.Reply
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Sequence != "0" || len(r.Records) != 0 || r.Next != "" || r.Code != "" {
		t.Errorf("unknown connector: got %s, want sequence 0, no records, no next", m.Data)
	}

	// A replica of one session refuses a second while the first is open;
	// an idle one expires and frees its place.
	first, _ := ask(t, nc, `{}`)
	second, _ := ask(t, nc, `{}`)
	if first.Next == "" || second.Code != snapshot.CodeBusy {
		t.Errorf("sessions: got next %q, code %q; want a session, then busy", first.Next, second.Code)
	}
	time.Sleep(time.Second)
	b, _ := json.Marshal(snapshot.Request{Cursor: first.Next})
	if r, _ := ask(t, nc, string(b)); r.Code != snapshot.CodeExpired {
		t.Errorf("idle session: got code %q, want expired", r.Code)
	}
	if r, _ := ask(t, nc, `{}`); r.Code != "" {
		t.Errorf("after expiry: got %s (%s), want a session", r.Code, r.Error)
	}
}
