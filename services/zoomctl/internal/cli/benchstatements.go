package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
)

// StatementCost is one statement's share of PostgreSQL's work during a
// measured phase, from pg_stat_statements.
type StatementCost struct {
	Query       string  `json:"query"`
	Calls       int64   `json:"calls"`
	TotalMillis float64 `json:"total_ms"`
	Rows        int64   `json:"rows"`
	SharedHit   int64   `json:"shared_blks_hit"`
	SharedRead  int64   `json:"shared_blks_read"`
	Dirtied     int64   `json:"shared_blks_dirtied"`
	WALBytes    int64   `json:"wal_bytes"`
}

// RelationSize is a table's or index's size after a measured phase.
type RelationSize struct {
	Name       string `json:"name"`
	Bytes      int64  `json:"bytes"`
	LiveTuples int64  `json:"live_tuples"`
	DeadTuples int64  `json:"dead_tuples"`
}

// statementMeter reads pg_stat_statements, when the database has it
// (shared_preload_libraries), to show which statements a phase of the
// bench spent its database time on. BENCH_PG_STATEMENTS names the file the
// no-op resync's statements go to; unset, nothing is read.
type statementMeter struct {
	dbURL string
	path  string
}

// reset zeroes the counts of every statement.
func (m statementMeter) reset(ctx context.Context) error {
	if m.path == "" {
		return nil
	}
	conn, err := connectDB(ctx, m.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	_, err = conn.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}

// write stores the statements counted since reset, dearest first, in the
// file named by suffix added to the meter's path.
func (m statementMeter) write(ctx context.Context, suffix string) error {
	if m.path == "" {
		return nil
	}
	conn, err := connectDB(ctx, m.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT left(query, 600), calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied, wal_bytes::bigint
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT 40`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var out []StatementCost
	for rows.Next() {
		var s StatementCost
		if err := rows.Scan(&s.Query, &s.Calls, &s.TotalMillis, &s.Rows, &s.SharedHit, &s.SharedRead, &s.Dirtied, &s.WALBytes); err != nil {
			return err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	rel, err := conn.Query(ctx, `
		SELECT c.relname, pg_relation_size(c.oid), coalesce(s.n_live_tup, 0), coalesce(s.n_dead_tup, 0)
		FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i')
		ORDER BY pg_relation_size(c.oid) DESC LIMIT 20`)
	if err != nil {
		return err
	}
	defer rel.Close()
	var sizes []RelationSize
	for rel.Next() {
		var r RelationSize
		if err := rel.Scan(&r.Name, &r.Bytes, &r.LiveTuples, &r.DeadTuples); err != nil {
			return err
		}
		sizes = append(sizes, r)
	}
	if err := rel.Err(); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(struct {
		Statements []StatementCost `json:"statements"`
		Relations  []RelationSize  `json:"relations"`
	}{out, sizes}, "", "  ")
	return os.WriteFile(m.path+suffix, b, 0o644)
}
