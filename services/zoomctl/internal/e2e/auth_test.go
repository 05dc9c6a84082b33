package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/follow"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	snapshotclient "github.com/claritysecurity/zoom-connector/pkg/snapshot"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// startSecuredStack runs the stack as a deployment runs it: NATS with
// authorization on, each service with its own credentials, and the writer
// on its own PostgreSQL login in a schema its owner migrated.
func startSecuredStack(t *testing.T, org *zoomtest.Org, oauth bool) *devstack.Stack {
	t.Helper()
	s, err := devstack.Start(context.Background(), devstack.Config{
		BinDir: binDir(t), DatabaseURL: roleDatabase(t).writer, OAuth: oauth,
		Dir: t.TempDir(), Org: org, Secured: true, Env: map[string]string{"TRIGGER_ACK_WAIT": "3s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			dumpLogs(t, s)
		}
	})
	for _, name := range devstack.Services {
		if _, err := s.Run(name); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// refusedInLogs returns the log lines of the stack's services where the
// server refused them something.
func refusedInLogs(t *testing.T, s *devstack.Stack) []string {
	t.Helper()
	var out []string
	for _, p := range s.Procs() {
		b, err := os.ReadFile(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(strings.ToLower(line), "permission") || strings.Contains(line, "authorization violation") {
				out = append(out, p.Name+": "+line)
			}
		}
	}
	return out
}

// TestSecuredSyncWebhookProvisioning: with authorization on and each
// service on its own credentials, a full sync, webhooks, a provisioning
// request from Clarity's backend and a tenant's snapshot all work, and no
// service is refused anything on the way.
func TestSecuredSyncWebhookProvisioning(t *testing.T) {
	org := zoomtest.Generate(23, zoomtest.Size{Users: 60, Groups: 5, Roles: 4})
	s := startSecuredStack(t, org, false)
	for _, name := range devstack.Services {
		env, err := s.Env(name)
		if err != nil {
			t.Fatal(err)
		}
		want := "NATS_CREDS=" + s.CredsFile(natsauth.Role(name))
		if !containsLast(env, want) {
			t.Fatalf("%s runs without its own credentials file", name)
		}
	}
	c := collect(t, s)
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	requireSame(t, "records after the sync", c.snapshot(), expected(s))

	s.Sim.SetWebhookURL(s.WebhookURL)
	ctx := context.Background()
	if _, _, err := s.Sim.AddUser(ctx, zoomtest.User{Email: "secured.hook@example.com", FirstName: "Se", LastName: "Cured", Type: 1}); err != nil {
		t.Fatal(err)
	}
	converge(t, s, c, "after a webhook")

	// Clarity's backend asks for a provisioning; the fetcher answers on
	// its inbox.
	var target string
	for _, u := range s.Sim.Org().Users {
		if u.Status == "active" && u.RoleID != "0" && u.RoleID != "1" {
			target = u.ID
			break
		}
	}
	nc, js, err := natsx.ConnectAuth(ctx, s.NATSURL, "clarity", natsx.Auth{CredsFile: filepath.Join(s.CredsDir(), natsauth.CredsFile(natsauth.RoleClarity))}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := cli.Provision(pctx, nc, js, s.Config().Connector, clarity.ProvisionRequest{
		RequestID: "secured-1", Action: clarity.ActionDeactivateUser, User: target}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != clarity.ResultSucceeded {
		t.Fatalf("provisioning: %+v, want succeeded", res)
	}
	converge(t, s, c, "after a provisioning")

	// A tenant's consumer reads its snapshot from the writer.
	dir := s.CredsDir()
	tenant := s.Config().Connector.Tenant
	credsPath, err := natsauth.IssueTenant(dir, tenant, "app")
	if err != nil {
		t.Fatal(err)
	}
	tnc, _, err := natsx.ConnectAuth(ctx, s.NATSURL, "tenant", natsx.Auth{CredsFile: credsPath}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tnc.Close()
	got := 0
	if err := snapshotclient.Request(pctx, tnc, s.Config().Connector, 50, func(int64) error { return nil }, func(snapshotclient.Record) error {
		got++
		return nil
	}); err != nil {
		t.Fatalf("tenant snapshot: %v", err)
	}
	if want := len(expected(s)); got != want {
		t.Fatalf("tenant snapshot: %d records, want %d", got, want)
	}
	// and keeps a copy with the follower: a snapshot, then the events.
	f, err := follow.New(follow.Config{Conn: tnc, Connector: s.Config().Connector,
		Store: follow.NewFileStore(filepath.Join(t.TempDir(), "copy"))})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() { followed <- f.Run(fctx) }()
	if _, _, err := s.Sim.AddUser(ctx, zoomtest.User{Email: "followed@example.com", FirstName: "Fol", LastName: "Lowed", Type: 1}); err != nil {
		t.Fatal(err)
	}
	converge(t, s, c, "after a webhook the follower sees")
	for deadline := time.Now().Add(15 * time.Second); f.Len() != len(expected(s)); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tenant's follower holds %d records, want %d", f.Len(), len(expected(s)))
		}
	}
	stopFollow()
	if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("follower: %v", err)
	}

	if lines := refusedInLogs(t, s); len(lines) > 0 {
		t.Fatalf("the server refused the services:\n%s", strings.Join(lines, "\n"))
	}
}

// TestSecuredOAuthConnector: with authorization on, the operator registers
// a connector through the admin API, the OAuth redirect authorizes it and
// its first sync runs, webhooks signed with its secret flow, Clarity's
// backend reads it through the admin API, and no service is refused
// anything on the way.
func TestSecuredOAuthConnector(t *testing.T) {
	org := zoomtest.Generate(29, zoomtest.Size{Users: 40, Groups: 4, Roles: 3})
	s := startSecuredStack(t, org, true)
	c := collect(t, s)
	ctx := context.Background()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	converge(t, s, c, "after the authorization's first sync")
	s.Sim.SetWebhookURL(s.WebhookURL)
	if _, _, err := s.Sim.AddUser(ctx, zoomtest.User{Email: "oauth.hook@example.com", FirstName: "O", LastName: "Auth", Type: 1}); err != nil {
		t.Fatal(err)
	}
	converge(t, s, c, "after a webhook")

	nc, _, err := natsx.ConnectAuth(ctx, s.NATSURL, "clarity", natsx.Auth{CredsFile: s.CredsFile(natsauth.RoleClarity)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r, err := connector.Client{NC: nc, Timeout: 10 * time.Second}.Call(ctx, connector.AdminSubject(s.Config().Connector, connector.OpShow), struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Connector == nil || r.Connector.State != connector.StateActive {
		t.Fatalf("Clarity's backend shows the connector as %+v, want active", r.Connector)
	}
	if lines := refusedInLogs(t, s); len(lines) > 0 {
		t.Fatalf("the server refused the services:\n%s", strings.Join(lines, "\n"))
	}
}

func containsLast(env []string, kv string) bool {
	key, _, _ := strings.Cut(kv, "=")
	last := ""
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			last = e
		}
	}
	return last == kv
}

// TestServiceWithUnusableCredentialsStops: a service whose credentials the
// server refuses, or whose NATS_CREDS is no credentials file, exits at once
// with one line that says so and shows no secret.
func TestServiceWithUnusableCredentialsStops(t *testing.T) {
	s := startSecuredStack(t, zoomtest.Generate(3, zoomtest.Size{Users: 5, Groups: 1, Roles: 1}), false)
	other := t.TempDir()
	if _, err := natsauth.Init(other); err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(s.CredsDir(), natsauth.FileAccountSeed))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, creds, want string
	}{
		{"another deployment's", filepath.Join(other, natsauth.CredsFile(natsauth.RoleNormalizer)), "refused the connection with the credentials of NATS_CREDS"},
		{"a seed, not credentials", filepath.Join(s.CredsDir(), natsauth.FileAccountSeed), "is not a NATS credentials file"},
		{"none", "", "refused the connection without credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := s.Env("normalizer")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(s.Config().BinDir, "normalizer"))
			cmd.Env = append(env, "NATS_CREDS="+tc.creds)
			done := make(chan struct{})
			var out []byte
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("the normalizer kept running with %s credentials; output:\n%s", tc.name, out)
			}
			if err == nil {
				t.Fatalf("the normalizer exited 0 with %s credentials", tc.name)
			}
			var fatal []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if strings.Contains(line, tc.want) {
					fatal = append(fatal, line)
				}
			}
			if len(fatal) != 1 {
				t.Fatalf("want one line saying %q; output:\n%s", tc.want, out)
			}
			t.Logf("%s", fatal[0])
			if strings.Count(string(out), "\n") > 3 {
				t.Errorf("a loop of errors rather than one line:\n%s", out)
			}
			secrets := []string{strings.TrimSpace(string(seed))}
			if tc.creds != "" {
				b, err := os.ReadFile(tc.creds)
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(string(b), "\n") {
					if len(line) > 20 && !strings.HasPrefix(line, "---") {
						secrets = append(secrets, line)
					}
				}
			}
			for _, secret := range secrets {
				if strings.Contains(string(out), secret) {
					t.Fatalf("the output shows a secret of the credentials:\n%s", out)
				}
			}
		})
	}
}

// dbLogins are the URLs of a database's logins, one per role of
// deploy/postgres/roles.sql.
type dbLogins struct{ admin, owner, writer, reader string }

// roleDatabase creates an empty database with the deployment's roles
// (deploy/postgres/roles.sql, under names of this test's own), checks that
// the writer's login may not migrate it, migrates it as the owner through
// the writer binary (WRITER_MIGRATE_ONLY, as the deployment's migration
// job does), and returns the logins.
func roleDatabase(t *testing.T) dbLogins {
	t.Helper()
	ctx := context.Background()
	admin := pgtest.New(t, func(context.Context, string) error { return nil })
	script, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "deploy", "postgres", "roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ToLower(rand.Text()[:8])
	names := map[string]string{"owner": "zoom_owner_" + suffix, "writer": "zoom_writer_" + suffix, "reader": "zoom_reader_" + suffix, "schema": "zoom"}
	var sql []string
	for _, line := range strings.Split(string(script), "\n") {
		if strings.HasPrefix(line, "\\") {
			continue // psql's own commands
		}
		for v, name := range names {
			line = strings.ReplaceAll(line, `:"`+v+`"`, `"`+name+`"`)
		}
		sql = append(sql, line)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, strings.Join(sql, "\n")); err != nil {
		t.Fatalf("roles.sql: %v", err)
	}
	logins := dbLogins{admin: admin}
	for _, r := range []string{"owner", "writer", "reader"} {
		password := rand.Text()
		if _, err := conn.Exec(ctx, `ALTER ROLE "`+names[r]+`" PASSWORD '`+password+`'`); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(names[r], password)
		switch r {
		case "owner":
			logins.owner = u.String()
		case "writer":
			logins.writer = u.String()
		case "reader":
			logins.reader = u.String()
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), `DROP SCHEMA zoom CASCADE`)
		for _, r := range []string{"owner", "writer", "reader"} {
			_, _ = c.Exec(context.Background(), `DROP OWNED BY "`+names[r]+`"`)
			_, _ = c.Exec(context.Background(), `DROP ROLE "`+names[r]+`"`)
		}
	})

	migrate := func(dbURL string) (string, error) {
		cmd := exec.Command(filepath.Join(binDir(t), "writer"))
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "WRITER_MIGRATE_ONLY=true", "WRITER_ADDR=127.0.0.1:0", "LOG_FORMAT=json")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := migrate(logins.writer); err == nil || !strings.Contains(out, "apply the migrations as the schema's owner") {
		t.Fatalf("the writer's login migrated, or failed without saying why (%v):\n%s", err, out)
	}
	if out, err := migrate(logins.owner); err != nil {
		t.Fatalf("the owner's migration: %v\n%s", err, out)
	}
	return logins
}

// TestDatabaseLoginsReachOnlyTheirOperations: the writer's login may not
// create, alter, drop or truncate a table; the reader's may not change a
// row; both read.
func TestDatabaseLoginsReachOnlyTheirOperations(t *testing.T) {
	logins := roleDatabase(t)
	ctx := context.Background()
	refused := map[string][]string{
		logins.writer: {
			`CREATE TABLE stolen (a int)`,
			`CREATE TABLE public.stolen (a int)`,
			`DROP TABLE records`,
			`TRUNCATE records`,
			`ALTER TABLE records ADD COLUMN x int`,
			`CREATE INDEX ON records (key)`,
		},
		logins.reader: {
			`DELETE FROM records`,
			`INSERT INTO schema_migrations (name) VALUES ('x')`,
			`UPDATE runs SET status = status`,
		},
	}
	for dbURL, statements := range refused {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM records`).Scan(&n); err != nil {
			t.Fatalf("%s reads records: %v", conn.Config().User, err)
		}
		for _, st := range statements {
			_, err := conn.Exec(ctx, st)
			if postgres.SQLState(err) != postgres.InsufficientPrivilege {
				t.Errorf("%s: %s: %v, want permission denied", conn.Config().User, st, err)
			}
		}
		conn.Close(ctx)
	}
}
