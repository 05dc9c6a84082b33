package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// RequestedByHeader names who asked for a provisioning request; the audit
// keeps it.
const RequestedByHeader = "Clarity-Requested-By"

func runProvision(ctx context.Context, args []string, out, errw io.Writer) int {
	if len(args) > 0 && args[0] == "log" {
		return runProvisionLog(ctx, args[1:], out, errw)
	}
	fs, tenant, connector := flags("provision", errw)
	var req clarity.ProvisionRequest
	fs.StringVar(&req.RequestID, "request-id", "", "request id (default: a new random id)")
	fs.StringVar(&req.Action, "action", "", "add_grant, remove_grant, deactivate_user, activate_user, remove_user or invite_user")
	fs.StringVar(&req.User, "user", "", "the user's key (a Zoom user id, or pending:<email>)")
	fs.StringVar(&req.Entitlement, "entitlement", "", "add_grant, remove_grant: the entitlement key (group:…, group_admin:…, role:…, license:…)")
	fs.StringVar(&req.Mode, "mode", "", "remove_user: disassociate (default) or delete")
	fs.StringVar(&req.TransferTo, "transfer-to", "", "remove_user: the user key that receives the user's meetings and recordings")
	fs.StringVar(&req.Email, "email", "", "invite_user: the email to invite")
	fs.StringVar(&req.License, "license", "", "invite_user: basic (default), licensed or unassigned")
	by := fs.String("requested-by", envOr("USER", "zoomctl"), "who asks, for the audit ("+RequestedByHeader+")")
	timeout := fs.Duration("timeout", time.Minute, "give up waiting for the result after this long (exit 3)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if req.Action == "" {
		return fail(errw, ExitUsage, "--action is required")
	}
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	nc, js, err := connectNATS(ctx, *natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()
	if err := natsx.CreateMissingStreams(ctx, js, pipeline.Streams(1)...); err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	res, err := Provision(ctx, nc, js, ref, req, map[string]string{RequestedByHeader: *by})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(errw, ExitError, "no result for request %s within %s (the request is stored and will still be served)", req.RequestID, *timeout)
		}
		return fail(errw, ExitError, "%v", err)
	}
	if *asJSON {
		b, _ := json.Marshal(res) // a struct of strings and ints always encodes
		fmt.Fprintln(out, string(b))
	} else {
		fmt.Fprintf(out, "request %s: %s %s\n", res.RequestID, res.Action, res.Result)
		if res.ZoomStatus != 0 {
			fmt.Fprintf(out, "zoom: %d code %d\n", res.ZoomStatus, res.ZoomCode)
		}
		if res.Error != "" {
			fmt.Fprintf(out, "error: %s\n", res.Error)
		}
	}
	if res.Result == clarity.ResultFailed {
		return ExitFailed
	}
	return ExitOK
}

// Provision publishes one provisioning request of connector ref, with
// headers, and waits for its result on a reply subject of its own.
func Provision(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, ref pipeline.ConnectorRef, req clarity.ProvisionRequest, headers map[string]string) (clarity.ProvisionResult, error) {
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return clarity.ProvisionResult{}, fmt.Errorf("subscribe to the reply: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	body, err := json.Marshal(req)
	if err != nil {
		return clarity.ProvisionResult{}, err
	}
	if err := PublishProvision(ctx, js, ref, body, inbox, headers); err != nil {
		return clarity.ProvisionResult{}, err
	}
	m, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return clarity.ProvisionResult{}, fmt.Errorf("wait for the result: %w", err)
	}
	var res clarity.ProvisionResult
	if err := json.Unmarshal(m.Data, &res); err != nil {
		return clarity.ProvisionResult{}, fmt.Errorf("result is not JSON: %w", err)
	}
	return res, nil
}

// PublishProvision publishes a provisioning request body as is, with the
// reply subject replyTo when not empty, and waits for JetStream to store it.
func PublishProvision(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef, body []byte, replyTo string, headers map[string]string) error {
	m := nats.NewMsg(pipeline.ProvisionSubject(ref))
	m.Data = body
	m.Header.Set("Content-Type", "application/json")
	if replyTo != "" {
		m.Header.Set(clarity.ReplyToHeader, replyTo)
	}
	for k, v := range headers {
		m.Header.Set(k, v)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish provisioning request: %w", err)
	}
	return nil
}

// AuditEntry is one line of zoomctl provision log.
type AuditEntry struct {
	Tenant      string              `json:"tenant"`
	Connector   string              `json:"connector"`
	RequestID   string              `json:"request_id"`
	Action      string              `json:"action"`
	User        string              `json:"user"`
	Entitlement string              `json:"entitlement"`
	Request     json.RawMessage     `json:"request"`
	RequestedBy map[string]string   `json:"requested_by"`
	ReceivedAt  time.Time           `json:"received_at"`
	FinishedAt  time.Time           `json:"finished_at"`
	Result      string              `json:"result"`
	Error       string              `json:"error"`
	ZoomStatus  int                 `json:"zoom_status"`
	ZoomCode    int                 `json:"zoom_code"`
	Calls       []pipeline.ZoomCall `json:"calls"`
}

// AuditFilter selects entries of the provisioning audit; zero fields
// select all.
type AuditFilter struct {
	Tenant, Connector, User string
	Since                   time.Time
	Limit                   int
}

func runProvisionLog(ctx context.Context, args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("zoomctl provision log", flag.ContinueOnError)
	fs.SetOutput(errw)
	var f AuditFilter
	fs.StringVar(&f.Tenant, "tenant", "", "only this tenant's requests")
	fs.StringVar(&f.Connector, "connector", "", "only this connector's requests")
	fs.StringVar(&f.User, "user", "", "only requests for this user key")
	since := fs.String("since", "", "only requests received since then: RFC 3339 time, or a duration such as 24h")
	fs.IntVar(&f.Limit, "limit", 1000, "at most this many entries, the newest")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	dbURL := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *dbURL == "" {
		return fail(errw, ExitUsage, "DATABASE_URL is required")
	}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			f.Since = t
		} else {
			return fail(errw, ExitUsage, "--since %q is neither an RFC 3339 time nor a duration", *since)
		}
	}
	entries, err := ProvisionLog(ctx, *dbURL, f)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	for _, e := range entries {
		if *asJSON {
			b, _ := json.Marshal(e)
			fmt.Fprintln(out, string(b))
			continue
		}
		line := fmt.Sprintf("%s %s/%s %s %s %s", e.ReceivedAt.Format(time.RFC3339), e.Tenant, e.Connector, e.RequestID, e.Action, e.User)
		if e.Entitlement != "" {
			line += " " + e.Entitlement
		}
		line += ": " + e.Result
		if e.ZoomStatus != 0 {
			line += fmt.Sprintf(" (zoom %d code %d)", e.ZoomStatus, e.ZoomCode)
		}
		if by := e.RequestedBy[RequestedByHeader]; by != "" {
			line += " by " + by
		}
		if e.Error != "" {
			line += ": " + e.Error
		}
		fmt.Fprintln(out, line)
	}
	return ExitOK
}

// ProvisionLog reads the provisioning audit, oldest first.
func ProvisionLog(ctx context.Context, dbURL string, f AuditFilter) ([]AuditEntry, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	rows, err := conn.Query(ctx, `
		SELECT * FROM (
			SELECT tenant, connector, request_id, action, user_key, entitlement, request, requested_by,
			       received_at, finished_at, result, error, zoom_status, zoom_code, calls
			FROM provisioning_audit
			WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR connector = $2) AND ($3 = '' OR user_key = $3)
			  AND received_at >= $4
			ORDER BY received_at DESC, audit_key DESC LIMIT $5) x
		ORDER BY received_at, request_id`,
		f.Tenant, f.Connector, f.User, f.Since, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("read the provisioning audit: %w", err)
	}
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var by, calls []byte
		if err := rows.Scan(&e.Tenant, &e.Connector, &e.RequestID, &e.Action, &e.User, &e.Entitlement, &e.Request, &by,
			&e.ReceivedAt, &e.FinishedAt, &e.Result, &e.Error, &e.ZoomStatus, &e.ZoomCode, &calls); err != nil {
			return nil, fmt.Errorf("read the provisioning audit: %w", err)
		}
		_ = json.Unmarshal(by, &e.RequestedBy)
		_ = json.Unmarshal(calls, &e.Calls)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the provisioning audit: %w", err)
	}
	return out, nil
}
