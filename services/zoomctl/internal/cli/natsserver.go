package cli

import (
	"context"
	"flag"
	"io"

	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// hiddenCommands are verbs zoomctl runs for itself and does not list.
func hiddenCommands() []command {
	return []command{
		{devstack.NATSVerb, "run a stack's embedded NATS server as a process of its own, until SIGTERM", runNATSServer},
	}
}

// runNATSServer runs the embedded NATS server of a dev stack or bench in a
// process of its own (devstack.Config.NATSProcess): the same server, store
// and payload limit as in-process, the deployment's authorization with
// --config. It prints its client URL once ready and stops cleanly when
// zoomctl is told to stop (SIGTERM, SIGINT).
func runNATSServer(ctx context.Context, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("zoomctl "+devstack.NATSVerb, flag.ContinueOnError)
	fs.SetOutput(errw)
	var cfg devstack.NATSServerConfig
	fs.StringVar(&cfg.StoreDir, "store", "", "JetStream store directory (required)")
	fs.IntVar(&cfg.Port, "port", 0, "client port on 127.0.0.1 (0: a free one)")
	fs.StringVar(&cfg.ConfigFile, "config", "", "server configuration file read first (the deployment's authorization)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of this process, from start to stop, to this file")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if cfg.StoreDir == "" || cfg.Port < 0 || cfg.Port > 65535 {
		return fail(errw, ExitUsage, "%s: --store is required and --port between 0 and 65535", devstack.NATSVerb)
	}
	if err := devstack.ServeNATS(ctx, cfg, out); err != nil {
		return fail(errw, ExitError, "%s: %v", devstack.NATSVerb, err)
	}
	return ExitOK
}
