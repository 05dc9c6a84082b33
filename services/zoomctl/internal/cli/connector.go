package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// maxSecretFile bounds a secret read from a file: client secrets and
// webhook secret tokens are a few dozen characters.
const maxSecretFile = 1024

// runConnector manages connectors through the admin API. It needs no
// secrets key: secrets are read from files (or standard input) and sealed
// to the services' transport key before they leave this process.
func runConnector(ctx context.Context, args []string, out, errw io.Writer) int {
	verbs := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"add": func(ctx context.Context, a []string, o, e io.Writer) int {
			return connectorSettings(ctx, "add", a, o, e)
		},
		"update": func(ctx context.Context, a []string, o, e io.Writer) int {
			return connectorSettings(ctx, "update", a, o, e)
		},
		"authorize": func(ctx context.Context, a []string, o, e io.Writer) int {
			return connectorOne(ctx, "authorize", a, o, e)
		},
		"show":       func(ctx context.Context, a []string, o, e io.Writer) int { return connectorOne(ctx, "show", a, o, e) },
		"remove":     connectorRemove,
		"list":       connectorList,
		"rotate-key": connectorRotateKey,
	}
	if len(args) == 0 || verbs[args[0]] == nil {
		fmt.Fprintln(errw, "usage: zoomctl connector add|update|authorize|show|list|remove|rotate-key [flags]")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return ExitOK
		}
		return ExitUsage
	}
	return verbs[args[0]](ctx, args[1:], out, errw)
}

// connectorFlags are the flags of every connector verb.
type connectorFlags struct {
	fs                *flag.FlagSet
	tenant, connector *string
	natsURL           *string
	json              *bool
}

func newConnectorFlags(verb string, errw io.Writer) connectorFlags {
	fs, tenant, conn := flags("connector "+verb, errw)
	return connectorFlags{fs: fs, tenant: tenant, connector: conn,
		natsURL: fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL"),
		json:    fs.Bool("json", false, "print JSON instead of text")}
}

func (f connectorFlags) ref() (pipeline.ConnectorRef, error) {
	return pipeline.NewConnectorRef(*f.tenant, *f.connector)
}

func (f connectorFlags) client(ctx context.Context) (connector.Client, func(), error) {
	nc, _, err := connectNATS(ctx, *f.natsURL, "zoomctl")
	if err != nil {
		return connector.Client{}, nil, err
	}
	return connector.Client{NC: nc, Timeout: 2 * time.Minute}, nc.Close, nil
}

// readSecret reads a secret from a file, or standard input for "-"; a final
// line break is not part of it.
func readSecret(path, what string) (string, error) {
	if path == "" {
		return "", nil
	}
	var r io.Reader
	if path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("%s file: %w", what, err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s file: %w", what, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s file holds more than %d bytes: is it the right file?", what, maxSecretFile)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s file is empty", what)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s file holds more than one line", what)
	}
	return s, nil
}

func connectorSettings(ctx context.Context, verb string, args []string, out, errw io.Writer) int {
	f := newConnectorFlags(verb, errw)
	auth := f.fs.String("auth", "", "oauth (an account-level OAuth app) or s2s (Server-to-Server OAuth)")
	clientID := f.fs.String("client-id", "", "the app's Client ID")
	secretFile := f.fs.String("client-secret-file", "", "file holding the app's Client Secret (- for standard input)")
	accountID := f.fs.String("account-id", "", "the Zoom account id (s2s)")
	webhookFile := f.fs.String("webhook-secret-file", "", "file holding the app's webhook Secret Token (- for standard input)")
	schedule := f.fs.String("schedule", "", "manual, or the interval of full syncs such as 24h (default 24h)")
	enrich := f.fs.Bool("enrich", false, "read each new or changed user's details (GET /users/{id}) for job title, location, company, manager, cost center, language and login types, at the lowest priority of the account's rate budget; --enrich=false turns it off (default off)")
	if code, ok := parse(f.fs, args); !ok {
		return code
	}
	ref, err := f.ref()
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if verb == "add" {
		switch {
		case *auth != connector.AuthOAuth && *auth != connector.AuthS2S:
			return fail(errw, ExitUsage, "--auth must be oauth or s2s")
		case *clientID == "":
			return fail(errw, ExitUsage, "--client-id is required")
		case *secretFile == "":
			return fail(errw, ExitUsage, "--client-secret-file is required (the secret is never taken from the command line)")
		case *auth == connector.AuthS2S && *accountID == "":
			return fail(errw, ExitUsage, "--account-id is required for an s2s connector")
		}
	}
	if *secretFile == "-" && *webhookFile == "-" {
		return fail(errw, ExitUsage, "only one of --client-secret-file and --webhook-secret-file can be standard input")
	}
	if *schedule != "" {
		if _, err := connector.ParseSchedule(*schedule); err != nil {
			return fail(errw, ExitUsage, "--schedule: %v", err)
		}
	}
	secret, err := readSecret(*secretFile, "client secret")
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	webhook, err := readSecret(*webhookFile, "webhook secret")
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	c, done, err := f.client(ctx)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer done()
	req := connector.SettingsRequest{Auth: *auth, ClientID: *clientID, AccountID: *accountID, Schedule: *schedule}
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "enrich" {
			req.Enrich = enrich
		}
	})
	if req.ClientSecret, err = c.SealSecret(ctx, ref, connector.FieldClientSecret, secret); err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	if req.WebhookSecret, err = c.SealSecret(ctx, ref, connector.FieldWebhookSecret, webhook); err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	r, err := c.Call(ctx, connector.AdminSubject(ref, verb), req)
	if err != nil {
		return adminFail(errw, err)
	}
	return printConnector(out, *f.json, r)
}

func connectorOne(ctx context.Context, verb string, args []string, out, errw io.Writer) int {
	f := newConnectorFlags(verb, errw)
	if code, ok := parse(f.fs, args); !ok {
		return code
	}
	ref, err := f.ref()
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	c, done, err := f.client(ctx)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer done()
	r, err := c.Call(ctx, connector.AdminSubject(ref, verb), struct{}{})
	if err != nil {
		return adminFail(errw, err)
	}
	return printConnector(out, *f.json, r)
}

func connectorRemove(ctx context.Context, args []string, out, errw io.Writer) int {
	f := newConnectorFlags("remove", errw)
	purge := f.fs.Bool("purge", false, "also delete the connector's records, each with a deleted event")
	if code, ok := parse(f.fs, args); !ok {
		return code
	}
	ref, err := f.ref()
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	c, done, err := f.client(ctx)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer done()
	r, err := c.Call(ctx, connector.AdminSubject(ref, connector.OpRemove), connector.RemoveRequest{Purge: *purge})
	if err != nil {
		return adminFail(errw, err)
	}
	if *f.json {
		return printJSON(out, map[string]any{"tenant": ref.Tenant, "connector": ref.ID, "removed": true, "purged": *purge, "records_deleted": r.Count})
	}
	fmt.Fprintf(out, "connector %s removed; its secrets and tokens are wiped", ref)
	if *purge {
		fmt.Fprintf(out, "; %d records deleted", r.Count)
	}
	fmt.Fprintln(out)
	return ExitOK
}

func connectorList(ctx context.Context, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("zoomctl connector list", flag.ContinueOnError)
	fs.SetOutput(errw)
	tenant := fs.String("tenant", "", "list this tenant's connectors only")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *tenant != "" {
		if err := pipeline.CheckName("tenant", *tenant); err != nil {
			return fail(errw, ExitUsage, "%v", err)
		}
	}
	f := connectorFlags{natsURL: natsURL}
	c, done, err := f.client(ctx)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer done()
	r, err := c.Call(ctx, connector.SubjectList, connector.ListRequest{Tenant: *tenant})
	if err != nil {
		return adminFail(errw, err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, v := range r.Connectors {
			if err := enc.Encode(v); err != nil {
				return fail(errw, ExitError, "%v", err)
			}
		}
		return ExitOK
	}
	if len(r.Connectors) == 0 {
		fmt.Fprintln(out, "no connectors")
		return ExitOK
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tCONNECTOR\tAUTH\tSTATE\tSCHEDULE\tLAST SYNC")
	for _, v := range r.Connectors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Tenant, v.Connector, v.Auth, v.State, v.Schedule, lastSync(v.LastSync))
	}
	_ = tw.Flush()
	return ExitOK
}

func connectorRotateKey(ctx context.Context, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("zoomctl connector rotate-key", flag.ContinueOnError)
	fs.SetOutput(errw)
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	c, done, err := connectorFlags{natsURL: natsURL}.client(ctx)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer done()
	r, err := c.Call(ctx, connector.SubjectRotateKey, struct{}{})
	if err != nil {
		return adminFail(errw, err)
	}
	if *asJSON {
		return printJSON(out, map[string]any{"resealed": r.Count})
	}
	fmt.Fprintf(out, "%d secrets re-sealed under the current key\n", r.Count)
	return ExitOK
}

func adminFail(errw io.Writer, err error) int {
	if errors.Is(err, connector.ErrAdmin) {
		return fail(errw, ExitFailed, "%v", err)
	}
	return fail(errw, ExitError, "%v", err)
}

func lastSync(l *connector.LastSync) string {
	if l == nil {
		return "never"
	}
	s := l.Result
	if l.FinishedAt != "" {
		s += " " + l.FinishedAt
	}
	return s
}

func printJSON(out io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return ExitError
	}
	fmt.Fprintln(out, string(b))
	return ExitOK
}

func printConnector(out io.Writer, asJSON bool, r connector.Reply) int {
	v := r.Connector
	if v == nil {
		return ExitError
	}
	if asJSON {
		return printJSON(out, v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, val)
		}
	}
	row("connector", v.Tenant+"/"+v.Connector)
	row("auth", v.Auth)
	row("state", v.State)
	row("reason", v.Reason)
	row("schedule", v.Schedule)
	if v.Enrich {
		row("enrichment", "on")
	}
	row("client id", v.ClientID)
	row("account id", v.AccountID)
	row("redirect url", v.RedirectURL)
	row("last sync", lastSync(v.LastSync))
	row("first sync", r.RequestID)
	_ = tw.Flush()
	if v.AuthorizeURL != "" {
		fmt.Fprintf(out, "\nOpen this URL to authorize the app in Zoom (valid for 15 minutes):\n%s\n", v.AuthorizeURL)
	}
	return ExitOK
}
