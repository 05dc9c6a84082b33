package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
)

// zoomctl runs the CLI with args and returns its exit code and output.
func zoomctl(t testing.TB, ctx context.Context, args ...string) (code int, out, errw string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(ctx, args, &o, &e)
	return code, o.String(), e.String()
}

// newDB returns a fresh database with the writer's schema, read from the
// writer's migration (zoomctl may not import the writer's internal package).
func newDB(t testing.TB) string {
	t.Helper()
	return pgtest.New(t, func(ctx context.Context, url string) error {
		ddl, err := os.ReadFile(filepath.Join("..", "..", "..", "writer", "internal", "store", "migrations", "001_init.sql"))
		if err != nil {
			return err
		}
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, string(ddl))
		return err
	})
}

// seedRuns stores three runs of default/zoom and one of acme/zoom.
func seedRuns(t testing.TB, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `
		INSERT INTO connectors (id, tenant, connector) VALUES (1, 'default', 'zoom'), (2, 'acme', 'zoom');
		INSERT INTO runs (connector_id, run_id, started_at_ms, request_ids, status, created, updated, deleted, unchanged,
		                  api_requests, error, started_at, finished_at) VALUES
		(1, 'run-1', 1000, '{req-a,req-b}', 'completed', 120, 3, 2, 7, 14, '',
		 '2026-11-28 12:00:00Z', '2026-11-28 12:00:05.5Z'),
		(1, 'run-2', 2000, '{req-c}', 'failed', 0, 0, 0, 0, 2, 'list users/active page 1: zoom: GET /users: 500',
		 '2026-11-28 13:00:00Z', '2026-11-28 13:00:01Z'),
		(1, 'run-3', 3000, '{req-d}', 'running', 5, 0, 0, 0, 1, '', now() - interval '4 seconds', NULL),
		(2, 'run-acme', 1500, '{}', 'completed', 1, 0, 0, 0, 1, '', '2026-11-28 12:30:00Z', '2026-11-28 12:30:02Z')`)
	if err != nil {
		t.Fatal(err)
	}
}

func TestStatus(t *testing.T) {
	db := newDB(t)
	seedRuns(t, db)
	ctx := context.Background()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in this order in the output
		notWant  []string
		wantErr  string
	}{
		{
			name: "newest first",
			args: []string{"--tenant", "default", "--connector", "zoom"},
			want: []string{"default/zoom", "RUN", "run-3", "running", "req-d",
				"run-2", "failed", "1s", "list users/active page 1: zoom: GET /users: 500",
				"run-1", "completed", "2026-11-28 12:00:00Z", "5.5s", "120", "3", "2", "7", "14", "req-a,req-b"},
			notWant: []string{"run-acme", "acme/zoom"},
		},
		{
			name:    "limit",
			args:    []string{"--tenant", "default", "--connector", "zoom", "--limit", "1"},
			want:    []string{"run-3"},
			notWant: []string{"run-2", "run-1"},
		},
		{
			name: "all connectors",
			args: []string{"--all", "--limit", "2"},
			want: []string{"acme/zoom", "run-acme", "default/zoom", "run-3", "run-2"},
			// run-1 is the third of its connector.
			notWant: []string{"run-1"},
		},
		{
			name: "no runs",
			args: []string{"--tenant", "default", "--connector", "nobody"},
			want: []string{"no runs yet for default/nobody"},
		},
		{name: "bad limit", args: []string{"--limit", "0"}, wantCode: ExitUsage, wantErr: "zoomctl: status: --limit must be at least 1"},
		{name: "extra argument", args: []string{"now"}, wantCode: ExitUsage, wantErr: "unexpected arguments: now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errw := zoomctl(t, ctx, append([]string{"status", "--database-url", db}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errw)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q after the previous expectations; got:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q; got:\n%s", w, out)
				}
			}
			if !strings.Contains(errw, tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errw, tt.wantErr)
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	db := newDB(t)
	seedRuns(t, db)
	code, out, errw := zoomctl(t, context.Background(), "status", "--database-url", db, "--tenant", "default", "--connector", "zoom", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr: %s", code, errw)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), out)
	}
	var got []RunStatus
	for _, l := range lines {
		var r RunStatus
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, r)
	}
	finished := time.Date(2026, 11, 28, 12, 0, 5, 500e6, time.UTC)
	want := RunStatus{
		Tenant: "default", Connector: "zoom", RunID: "run-1", Mode: "full", Status: "completed",
		StartedAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), FinishedAt: &finished, DurationMS: 5500,
		Stats:      clarity.SyncStats{Created: 120, Updated: 3, Deleted: 2, Unchanged: 7, APIRequests: 14},
		RequestIDs: []string{"req-a", "req-b"},
	}
	r := got[2]
	if r.RunID != want.RunID || r.Status != want.Status || r.Mode != want.Mode || !r.StartedAt.Equal(want.StartedAt) ||
		r.FinishedAt == nil || !r.FinishedAt.Equal(finished) || r.DurationMS != want.DurationMS || r.Stats != want.Stats ||
		strings.Join(r.RequestIDs, ",") != "req-a,req-b" || r.Error != "" {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if got[0].RunID != "run-3" || got[0].FinishedAt != nil || got[0].DurationMS < 4000 {
		t.Errorf("running run: got %+v, want run-3 without finished_at, running for 4s or more", got[0])
	}
	if got[1].Error == "" || got[1].Status != "failed" {
		t.Errorf("failed run: got %+v, want its error", got[1])
	}
}

func TestStatusDatabaseErrors(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		wantCode int
		wantErr  string
	}{
		{"no url", "", ExitUsage, "zoomctl: DATABASE_URL is required"},
		{"unreachable", "postgres://nobody:hunter2@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", ExitError, "zoomctl: %s: "},
		{"malformed", "postgres://nobody:hunter2@127.0.0.1:port/x", ExitError, "zoomctl: %s: parse DATABASE_URL"},
	}
	for _, cmd := range []string{"status", "snapshot"} {
		for _, tt := range tests {
			t.Run(cmd+" "+tt.name, func(t *testing.T) {
				code, _, errw := zoomctl(t, context.Background(), cmd, "--database-url="+tt.url)
				wantErr := tt.wantErr
				if strings.Contains(wantErr, "%s") {
					wantErr = fmt.Sprintf(wantErr, cmd)
				}
				if code != tt.wantCode || !strings.HasPrefix(errw, wantErr) {
					t.Errorf("got exit %d, stderr %q; want exit %d, stderr starting %q", code, errw, tt.wantCode, wantErr)
				}
				if strings.Contains(errw, "hunter2") {
					t.Errorf("stderr shows the password: %q", errw)
				}
				if strings.Count(errw, "\n") != 1 {
					t.Errorf("stderr is not one line: %q", errw)
				}
			})
		}
	}
}
