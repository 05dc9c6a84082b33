// Package cli implements zoomctl's commands.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1 // the operation ran and failed (a sync ended in sync.failed)
	ExitUsage  = 2 // bad command line or configuration
	ExitError  = 3 // could not do it (NATS or Postgres unreachable, timeout)
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, out, errw io.Writer) int
}

func commands() []command {
	return []command{
		{"sync", "trigger a full sync; with --wait, follow it to its end", runSync},
		{"snapshot", "print the current records from Postgres, one JSON object per line", runSnapshot},
		{"follow", "keep a local copy of the records: a snapshot, then the change events; print each change", runFollow},
		{"status", "show the recent sync runs of a connector from Postgres", runStatus},
		{"events", "print the change events of CLARITY_ENTITLEMENTS; with --follow, new ones as they come", runEvents},
		{"validate", "check the Zoom credentials: token, scopes and one API call", runValidate},
		{"dlq", "list dead letters, or replay them to their original subject", runDLQ},
		{"dev", "run the whole stack on this machine (embedded NATS, local Postgres, simulator)", runDev},
		{"bench", "measure the whole pipeline against the simulator (make bench)", runBench},
		{"connector", "add, authorize, list, show, update, remove connectors; rotate-key (the admin API)", runConnector},
		{"provision", "send one provisioning request and print its result; log: the provisioning audit", runProvision},
		{"creds", "issue NATS credentials: init (server configuration, one per role), tenant (a downstream consumer)", runCreds},
	}
}

// Main runs zoomctl with args and returns the process exit code.
func Main(ctx context.Context, args []string, out, errw io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errw)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range append(commands(), hiddenCommands()...) {
		if c.name == args[0] {
			return c.run(ctx, args[1:], out, errw)
		}
	}
	fmt.Fprintf(errw, "zoomctl: unknown command %q (see zoomctl --help)\n", args[0])
	return ExitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zoomctl <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run zoomctl <command> --help for its flags. Environment: NATS_URL, NATS_CREDS (a credentials")
	fmt.Fprintln(w, "file), NATS_CA_FILE, DATABASE_URL, CLARITY_TENANT (default \"default\"), CONNECTOR_ID (default \"zoom\").")
}

// flags returns a flag set for a command with the shared connector flags,
// --tenant and --connector; connectorRef makes them one connector once they
// are parsed.
func flags(name string, errw io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("zoomctl "+name, flag.ContinueOnError)
	fs.SetOutput(errw)
	tenant := fs.String("tenant", envOr("CLARITY_TENANT", "default"), "tenant of the connector")
	connector := fs.String("connector", envOr("CONNECTOR_ID", "zoom"), "connector id")
	return fs, tenant, connector
}

// connectorRef returns the connector that the values of --tenant and
// --connector name. Its error, for a name that is not valid, names the flag
// to fix; commands report it as a usage error.
func connectorRef(tenant, connector string) (pipeline.ConnectorRef, error) {
	if err := pipeline.CheckName("--tenant", tenant); err != nil {
		return pipeline.ConnectorRef{}, err
	}
	if err := pipeline.CheckName("--connector", connector); err != nil {
		return pipeline.ConnectorRef{}, err
	}
	return pipeline.NewConnectorRef(tenant, connector)
}

// parse parses args and reports the exit code to return when parsing ends
// the command (help or a bad flag).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return ExitUsage, false
	}
	return 0, true
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func fail(errw io.Writer, code int, format string, args ...any) int {
	fmt.Fprintf(errw, "zoomctl: "+format+"\n", args...)
	return code
}
