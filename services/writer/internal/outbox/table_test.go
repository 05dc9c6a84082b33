package outbox_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
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

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, pgtest.New(t, migrate), 4, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// connectorRow makes the connectors row of ref and returns its id.
func connectorRow(t testing.TB, pool *pgxpool.Pool, ref pipeline.ConnectorRef) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO connectors (tenant, connector) VALUES ($1, $2) RETURNING id`,
		ref.Tenant, ref.ID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// row is an outbox row of n changes numbered from first.
func row(t testing.TB, id, first int64, n int) outbox.Row {
	t.Helper()
	b := &pb.ChangeBatch{}
	for range n {
		b.Changes = append(b.Changes, &pb.Change{Kind: clarity.KindServiceUser, Op: clarity.OpCreated, Subject: "u", Data: []byte(`{}`)})
	}
	body, enc, err := outbox.EncodeChanges(b)
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Row{ConnectorID: id, First: first, Last: first + int64(n) - 1, Changes: body, Encoding: enc,
		At: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
}

// TestTable: rows written by Insert are listed by Pending and read back by
// Read in sequence order, as many as a round may take, and go with Delete;
// one holder of a connector's lock at a time.
func TestTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	idle := connectorRow(t, pool, pipeline.ConnectorRef{Tenant: "acme", ID: "idle"})
	id := connectorRow(t, pool, acme)
	// Rows of 3, 5, 2 and 4 changes, inserted out of order.
	rows := []outbox.Row{row(t, id, 9, 2), row(t, id, 1, 3), row(t, id, 4, 5), row(t, id, 11, 4)}
	for _, r := range rows {
		if err := outbox.Insert(ctx, pool, r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := outbox.Pending(ctx, pool); err != nil || len(got) != 1 || got[0] != id {
		t.Fatalf("pending: got %v, %v, want [%d] (not the idle connector %d)", got, err, id, idle)
	}

	for _, tc := range []struct {
		name                string
		maxRows, maxChanges int
		want                []int64 // first sequences
	}{
		{"all", 16, 100, []int64{1, 4, 9, 11}},
		{"a row more than needed is never read", 16, 8, []int64{1, 4}},
		{"at least one row", 16, 1, []int64{1}},
		{"at most maxRows", 2, 100, []int64{1, 4}},
	} {
		got, err := outbox.Read(ctx, pool, id, tc.maxRows, tc.maxChanges)
		if err != nil {
			t.Fatal(err)
		}
		var firsts []int64
		for _, r := range got {
			firsts = append(firsts, r.First)
			if r.Connector != acme {
				t.Errorf("%s: row %d: got connector %v, want %v", tc.name, r.First, r.Connector, acme)
			}
		}
		if !slices.Equal(firsts, tc.want) {
			t.Errorf("%s: got rows from %v, want %v", tc.name, firsts, tc.want)
		}
	}
	got, _ := outbox.Read(ctx, pool, id, 1, 100)
	if b, err := outbox.DecodeChanges(got[0].Changes, got[0].Encoding); err != nil || len(b.Changes) != 3 || !got[0].At.Equal(rows[1].At) {
		t.Errorf("row 1: got %d changes at %v (%v), want 3 at %v", len(b.GetChanges()), got[0].At, err, rows[1].At)
	}

	// One holder of the lock at a time, until its transaction ends.
	lock := func() (pgx.Tx, bool) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := outbox.TryLock(ctx, tx, id)
		if err != nil {
			t.Fatal(err)
		}
		return tx, ok
	}
	tx1, ok1 := lock()
	tx2, ok2 := lock()
	if !ok1 || ok2 {
		t.Errorf("two transactions locking: got %v and %v, want true and false", ok1, ok2)
	}
	if err := outbox.Delete(ctx, tx1, id, 4); err != nil {
		t.Fatal(err)
	}
	if err := tx1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_ = tx2.Rollback(ctx)
	tx3, ok3 := lock()
	_ = tx3.Rollback(ctx)
	if !ok3 {
		t.Error("after the holder committed: got the lock refused, want it taken")
	}
	left, err := outbox.Read(ctx, pool, id, 16, 100)
	if err != nil || len(left) != 2 || left[0].First != 9 {
		t.Errorf("after deleting through row 4: got %d rows (%v), want rows 9 and 11", len(left), err)
	}
}
