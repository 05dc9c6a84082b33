package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// newWriterDB returns a fresh database with the writer's whole schema: the
// template of this package has the first migration only (newDB), and the
// others follow here, in order.
func newWriterDB(t testing.TB) string {
	t.Helper()
	url := newDB(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "writer", "internal", "store", "migrations", "*.sql"))
	if err != nil || len(files) < 2 {
		t.Fatalf("writer migrations: %v (%d files)", err, len(files))
	}
	sort.Strings(files)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, f := range files[1:] {
		ddl, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(ddl)); err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
	}
	return url
}

// zoomctl snapshot --with-sequence prints the sequence first, then the live
// records in key order, read in several chunks; without the flag, the
// records alone.
func TestSnapshotWithSequence(t *testing.T) {
	url := newWriterDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const users = 2500
	if _, err := conn.Exec(ctx, fmt.Sprintf(`
		INSERT INTO connectors (id, tenant, connector) VALUES (1, 'default', 'zoom'), (2, 'acme', 'zoom');
		INSERT INTO sequences (connector_id, seq) VALUES (1, 4242), (2, 9);
		INSERT INTO records (connector_id, kind, key, data, hash, deleted)
		SELECT 1, 1, 'u' || lpad(i::text, 5, '0'), json_build_object('id', 'u' || lpad(i::text, 5, '0')), '\x00', i %% 10 = 0
		FROM generate_series(1, %d) i;
		INSERT INTO records (connector_id, kind, key, data, hash) VALUES
		  (1, 2, 'license:basic', '{"id":"license:basic"}', '\x00'),
		  (2, 1, 'other', '{"id":"other"}', '\x00');`, users)); err != nil {
		t.Fatal(err)
	}

	code, out, errw := zoomctl(t, ctx, "snapshot", "--database-url", url, "--with-sequence")
	if code != ExitOK {
		t.Fatalf("got exit %d (%s), want 0", code, errw)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got, want := lines[0], `{"sequence":"4242"}`; got != want {
		t.Errorf("first line: got %s, want %s", got, want)
	}
	var keys []string
	for _, l := range lines[1:] {
		var sl SnapshotLine
		if err := json.Unmarshal([]byte(l), &sl); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		keys = append(keys, sl.Kind+" "+sl.Key)
	}
	if got, want := len(keys), users-users/10+1; got != want {
		t.Fatalf("got %d records, want %d (the live ones)", got, want)
	}
	if !sort.StringsAreSorted(keys[:len(keys)-1]) || keys[0] != "service_user u00001" || keys[len(keys)-1] != "entitlement license:basic" {
		t.Errorf("records not in kind and key order: first %q, last %q", keys[0], keys[len(keys)-1])
	}

	code, plain, _ := zoomctl(t, ctx, "snapshot", "--database-url", url)
	if code != ExitOK || plain != strings.Join(lines[1:], "\n")+"\n" {
		t.Errorf("without --with-sequence: got exit %d and other lines than the records", code)
	}
	code, out, _ = zoomctl(t, ctx, "snapshot", "--database-url", url, "--with-sequence", "--tenant", "nobody")
	if code != ExitOK || out != `{"sequence":"0"}`+"\n" {
		t.Errorf("unknown connector: got exit %d, %q; want the sequence 0 alone", code, out)
	}
}
