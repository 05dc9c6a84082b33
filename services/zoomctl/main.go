// Command zoomctl is the connector's operator CLI: trigger a sync and watch
// it, print a snapshot of the records, and run the whole stack locally.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
