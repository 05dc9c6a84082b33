package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// SnapshotLine is one line of zoomctl snapshot.
type SnapshotLine struct {
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
}

func runSnapshot(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("snapshot", errw)
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if *dbURL == "" {
		return fail(errw, ExitUsage, "DATABASE_URL is required")
	}
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	if err := Snapshot(ctx, *dbURL, ref, func(l SnapshotLine) error {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		w.Write(b)
		return w.WriteByte('\n')
	}); err != nil {
		return fail(errw, ExitError, "snapshot: %v", err)
	}
	return ExitOK
}

// Snapshot streams the live records of a connector, ordered by kind and key.
func Snapshot(ctx context.Context, dbURL string, ref pipeline.ConnectorRef, fn func(SnapshotLine) error) error {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
		SELECT r.kind, r.key, r.data::text
		FROM records r JOIN connectors c ON c.id = r.connector_id
		WHERE c.tenant = $1 AND c.connector = $2 AND NOT r.deleted
		ORDER BY r.kind, r.key`, ref.Tenant, ref.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var kind int16
		var key, data string
		if err := rows.Scan(&kind, &key, &data); err != nil {
			return err
		}
		name := "unknown"
		if int(kind) >= 1 && int(kind) <= len(clarity.Kinds) {
			name = clarity.Kinds[kind-1]
		}
		if err := fn(SnapshotLine{Kind: name, Key: key, Data: json.RawMessage(data)}); err != nil {
			return err
		}
	}
	return rows.Err()
}
