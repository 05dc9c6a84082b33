package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// RunStatus is one run as zoomctl status shows it; with --json, one line.
type RunStatus struct {
	Tenant     string            `json:"tenant"`
	Connector  string            `json:"connector"`
	RunID      string            `json:"run_id"`
	Mode       string            `json:"mode"`
	Status     string            `json:"status"`
	StartedAt  time.Time         `json:"started_at"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	DurationMS int64             `json:"duration_ms"`
	Stats      clarity.SyncStats `json:"stats"`
	Error      string            `json:"error,omitempty"`
	RequestIDs []string          `json:"request_ids"`
	// Unavailable names the listings the account's plan did not offer
	// ("groups", "roles"), which the run completed without.
	Unavailable []string `json:"unavailable,omitempty"`
}

func runStatus(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("status", errw)
	all := fs.Bool("all", false, "show every connector of every tenant (ignores --tenant and --connector)")
	limit := fs.Int("limit", 10, "runs per connector, newest first")
	asJSON := fs.Bool("json", false, "print one JSON object per run and line instead of a table")
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: zoomctl status [--tenant T] [--connector C | --all] [--limit 10] [--json]")
		fmt.Fprintln(fs.Output(), "\nShows the recent full-sync runs of a connector from the writer's database:")
		fmt.Fprintln(fs.Output(), "status, start, duration, what changed, Zoom requests, request ids served, error, and")
		fmt.Fprintln(fs.Output(), "the listings the account's plan does not offer (a free account: groups, roles).")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	// The zero connector, with --all, matches every connector.
	var ref pipeline.ConnectorRef
	if !*all {
		var err error
		if ref, err = connectorRef(*tenant, *connector); err != nil {
			return fail(errw, ExitUsage, "%v", err)
		}
	}
	if *limit < 1 {
		return fail(errw, ExitUsage, "status: --limit must be at least 1")
	}
	if *dbURL == "" {
		return fail(errw, ExitUsage, "DATABASE_URL is required (or --database-url)")
	}
	runs, err := Runs(ctx, *dbURL, ref, *limit)
	if err != nil {
		return fail(errw, ExitError, "status: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, r := range runs {
			if err := enc.Encode(r); err != nil {
				return fail(errw, ExitError, "status: %v", err)
			}
		}
		return ExitOK
	}
	if len(runs) == 0 {
		if *all {
			fmt.Fprintln(out, "no runs yet")
		} else {
			fmt.Fprintf(out, "no runs yet for %s\n", ref)
		}
		return ExitOK
	}
	printRuns(out, runs, time.Now())
	return ExitOK
}

// Runs returns the newest limit runs of connector ref, or of each connector
// when ref is zero, connectors in name order and runs newest first.
func Runs(ctx context.Context, dbURL string, ref pipeline.ConnectorRef, limit int) ([]RunStatus, error) {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	// started_at_ms grows strictly per connector, so it orders runs even when
	// two started within the resolution of started_at. The unavailable
	// listings are read from the row as JSON: a database the writer has not
	// migrated yet has no such column, and its runs then have none.
	rows, err := conn.Query(ctx, `
		SELECT tenant, connector, run_id, mode, status, started_at, finished_at,
		       created, updated, deleted, unchanged, api_requests, error, request_ids,
		       COALESCE(to_jsonb(x) -> 'unavailable', '[]')
		FROM (
			SELECT c.tenant, c.connector, r.*,
			       row_number() OVER (PARTITION BY r.connector_id ORDER BY r.started_at_ms DESC) AS n
			FROM runs r JOIN connectors c ON c.id = r.connector_id
			WHERE ($1 = '' OR c.tenant = $1) AND ($2 = '' OR c.connector = $2)
		) x
		WHERE n <= $3
		ORDER BY tenant, connector, started_at_ms DESC`, ref.Tenant, ref.ID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []RunStatus
	for rows.Next() {
		var r RunStatus
		if err := rows.Scan(&r.Tenant, &r.Connector, &r.RunID, &r.Mode, &r.Status, &r.StartedAt, &r.FinishedAt,
			&r.Stats.Created, &r.Stats.Updated, &r.Stats.Deleted, &r.Stats.Unchanged, &r.Stats.APIRequests,
			&r.Error, &r.RequestIDs, &r.Unavailable); err != nil {
			return nil, err
		}
		r.StartedAt = r.StartedAt.UTC()
		if r.FinishedAt != nil {
			f := r.FinishedAt.UTC()
			r.FinishedAt = &f
			r.DurationMS = f.Sub(r.StartedAt).Milliseconds()
		} else {
			r.DurationMS = time.Since(r.StartedAt).Milliseconds()
		}
		if r.RequestIDs == nil {
			r.RequestIDs = []string{}
		}
		if len(r.Unavailable) == 0 {
			r.Unavailable = nil
		}
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

// printRuns writes one table per connector.
func printRuns(out io.Writer, runs []RunStatus, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	last := ""
	for _, r := range runs {
		if name := r.Tenant + "/" + r.Connector; name != last {
			if last != "" {
				fmt.Fprintln(tw)
			}
			last = name
			fmt.Fprintf(tw, "%s\n", name)
			fmt.Fprintln(tw, "  RUN\tSTATUS\tSTARTED\tDURATION\tCREATED\tUPDATED\tDELETED\tUNCHANGED\tREQUESTS\tREQUEST IDS\tERROR\tUNAVAILABLE")
		}
		dur := time.Duration(r.DurationMS) * time.Millisecond
		d := dur.Round(time.Millisecond).String()
		if r.FinishedAt == nil {
			d = "running " + now.Sub(r.StartedAt).Round(time.Second).String()
		}
		errText := "-"
		if r.Error != "" {
			errText = strings.Join(strings.Fields(r.Error), " ")
		}
		ids := "-"
		if len(r.RequestIDs) > 0 {
			ids = strings.Join(r.RequestIDs, ",")
		}
		unavailable := "-"
		if len(r.Unavailable) > 0 {
			unavailable = strings.Join(r.Unavailable, ",")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.RunID, r.Status, r.StartedAt.Format("2006-01-02 15:04:05Z"), d,
			strconv.FormatInt(r.Stats.Created, 10), strconv.FormatInt(r.Stats.Updated, 10),
			strconv.FormatInt(r.Stats.Deleted, 10), strconv.FormatInt(r.Stats.Unchanged, 10),
			strconv.FormatInt(r.Stats.APIRequests, 10), ids, errText, unavailable)
	}
}

// connectDB connects to the database dbURL names. The error of a URL that
// does not parse may echo it, password included: it is reported without it.
func connectDB(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	if _, err := pgx.ParseConfig(dbURL); err != nil {
		return nil, errors.New("parse DATABASE_URL: invalid connection string")
	}
	return pgx.Connect(ctx, dbURL)
}
