package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// runCreds issues the deployment's NATS credentials: init makes a
// directory with the signing keys, the server's authorization
// configuration and one credentials file per role; tenant issues a tenant
// downstream consumer's; tls a server certificate signed by the
// directory's CA (made on first use); revoke revokes a credentials file
// (in force once the servers reload the configuration); table prints the
// permissions of each role.
func runCreds(_ context.Context, args []string, out, errw io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(errw, "usage: zoomctl creds init --dir D | tenant --dir D --tenant T [--name N] | tls --dir D --name nats --hosts H,… | revoke --dir D --creds F | table")
		return ExitUsage
	}
	sub, args := args[0], args[1:]
	fs, tenant, _ := flags("creds "+sub, errw)
	dir := fs.String("dir", envOr("NATS_CREDS_DIR", "nats-creds"), "the credentials directory (its keys and .creds files are secrets)")
	name := fs.String("name", "consumer", "tenant: the consumer's name (an application of the tenant); tls: the certificate's file name")
	hosts := fs.String("hosts", "", "tls: the server's DNS names and IP addresses, comma-separated")
	creds := fs.String("creds", "", "revoke: the credentials file to revoke")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch sub {
	case "init":
		paths, err := natsauth.Init(*dir)
		if err != nil {
			return fail(errw, ExitError, "creds init: %v", err)
		}
		for _, p := range paths {
			fmt.Fprintln(out, p)
		}
		return ExitOK
	case "tenant":
		if err := pipeline.CheckName("--tenant", *tenant); err != nil {
			return fail(errw, ExitUsage, "creds tenant: %v", err)
		}
		if err := pipeline.CheckName("--name", *name); err != nil {
			return fail(errw, ExitUsage, "creds tenant: %v", err)
		}
		path, err := natsauth.IssueTenant(*dir, *tenant, *name)
		if err != nil {
			return fail(errw, ExitError, "creds tenant: %v", err)
		}
		fmt.Fprintln(out, path)
		return ExitOK
	case "tls":
		var hs []string
		for _, h := range strings.Split(*hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hs = append(hs, h)
			}
		}
		if len(hs) == 0 {
			return fail(errw, ExitUsage, "creds tls: --hosts is required")
		}
		if err := pipeline.CheckName("--name", *name); err != nil {
			return fail(errw, ExitUsage, "creds tls: %v", err)
		}
		paths, err := natsauth.IssueServerCert(*dir, *name, hs)
		if err != nil {
			return fail(errw, ExitError, "creds tls: %v", err)
		}
		for _, p := range paths {
			fmt.Fprintln(out, p)
		}
		return ExitOK
	case "revoke":
		if *creds == "" {
			return fail(errw, ExitUsage, "creds revoke: --creds is required")
		}
		name, err := natsauth.Revoke(*dir, *creds)
		if err != nil {
			return fail(errw, ExitError, "creds revoke: %v", err)
		}
		fmt.Fprintf(out, "revoked %s; reload the NATS servers with %s\n", name, filepath.Join(*dir, natsauth.FileServerConfig))
		return ExitOK
	case "table":
		if err := natsauth.WriteTable(out); err != nil {
			return fail(errw, ExitError, "creds table: %v", err)
		}
		return ExitOK
	}
	return fail(errw, ExitUsage, "creds: unknown subcommand %q (init, tenant, tls, revoke, table)", sub)
}
