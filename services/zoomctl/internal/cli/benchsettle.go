package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgconn"
)

// settleDatabase does at once the background work a full sync leaves to
// PostgreSQL, before the no-op resync is measured: a VACUUM (ANALYZE) of
// the bench's database and a CHECKPOINT.
//
// A deployment's autovacuum does that work minutes after a full sync; its
// next sync comes hours later. Without it the bench's resync, which starts
// at once, would pay for the full sync: it is the first to read every row
// the full sync wrote and sets each one's hint bits (dirtying every page),
// and an autovacuum worker started by the full sync's inserts may run
// beside it. The work is measured all the same: bench reports its time and
// CPU apart.
//
// CHECKPOINT needs a superuser (or pg_checkpoint): against a database of
// someone else's without it, the checkpoint is skipped and errw says so.
func settleDatabase(ctx context.Context, dbURL string, errw io.Writer) error {
	conn, err := connectDB(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return fmt.Errorf("settle the database: %w", err)
	}
	if _, err := conn.Exec(ctx, `CHECKPOINT`); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
			fmt.Fprintln(errw, "  settle: CHECKPOINT not allowed for this database user; skipped")
			return nil
		}
		return fmt.Errorf("settle the database: %w", err)
	}
	return nil
}
