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
	// A closed terminal (SIGHUP) stops zoomctl as Ctrl-C does, so that the
	// dev stack's services and throwaway database are stopped too.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// The first signal asks for a clean stop; a second one ends zoomctl at
	// once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
