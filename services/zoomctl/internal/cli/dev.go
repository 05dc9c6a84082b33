package cli

import (
	"context"
	"io"
)

func runDev(ctx context.Context, args []string, out, errw io.Writer) int {
	return fail(errw, ExitUsage, "dev: not available in this build")
}
