package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSettleDatabase: the settle step vacuums what a sync left (the dead
// rows go, the table is marked vacuumed) and checkpoints; a database user
// not allowed to checkpoint is told the checkpoint was skipped, and the
// vacuum still happens.
func TestSettleDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL := newDB(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`CREATE TABLE settled (n int)`)
	exec(`INSERT INTO settled SELECT generate_series(1, 10000)`)
	exec(`DELETE FROM settled WHERE n % 2 = 0`)

	var errw bytes.Buffer
	if err := settleDatabase(ctx, dbURL, &errw); err != nil {
		t.Fatalf("settle: %v", err)
	}
	if errw.Len() != 0 {
		t.Errorf("a superuser's settle said %q", errw.String())
	}
	vacuumed := func(table string) (bool, int64) {
		t.Helper()
		var at *time.Time
		var dead int64
		if err := conn.QueryRow(ctx, `SELECT last_vacuum, n_dead_tup FROM pg_stat_user_tables WHERE relname = $1`,
			table).Scan(&at, &dead); err != nil {
			t.Fatal(err)
		}
		return at != nil, dead
	}
	if ok, dead := vacuumed("settled"); !ok || dead != 0 {
		t.Errorf("after settle: vacuumed %v, %d dead rows; want vacuumed, none", ok, dead)
	}

	// A user that owns its table but may not checkpoint.
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "settle_" + hex.EncodeToString(b)
	exec(`CREATE ROLE ` + role + ` LOGIN`)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dbURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), `DROP OWNED BY `+role)
		_, _ = c.Exec(context.Background(), `DROP ROLE `+role)
	})
	exec(`GRANT CREATE ON SCHEMA public TO ` + role)
	exec(`CREATE TABLE owned (n int)`)
	exec(`INSERT INTO owned SELECT generate_series(1, 10000)`)
	exec(`DELETE FROM owned WHERE n % 2 = 0`)
	exec(`ALTER TABLE owned OWNER TO ` + role)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	errw.Reset()
	if err := settleDatabase(ctx, u.String(), &errw); err != nil {
		t.Fatalf("settle as %s: %v", role, err)
	}
	if !strings.Contains(errw.String(), "CHECKPOINT not allowed") {
		t.Errorf("settle as a user without CHECKPOINT said %q; want that it was skipped", errw.String())
	}
	if ok, dead := vacuumed("owned"); !ok || dead != 0 {
		t.Errorf("after settle as the owner: vacuumed %v, %d dead rows; want vacuumed, none", ok, dead)
	}
}
