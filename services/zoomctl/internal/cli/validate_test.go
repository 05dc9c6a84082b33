package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// granularAll are the granular scopes that stand for every classic scope the
// connector needs.
var granularAll = []string{
	"user:read:list_users:admin", "user:read:user:admin",
	"group:read:list_groups:admin", "group:read:administrator:admin",
	"role:read:list_roles:admin",
	"user:update:status:admin", "user:delete:user:admin",
	"group:delete:member:admin", "group:delete:administrator:admin",
	"role:delete:member:admin",
}

func TestValidate(t *testing.T) {
	org := zoomtest.Generate(1, zoomtest.Size{Users: 5, Groups: 2, Roles: 3})
	tests := []struct {
		name   string
		scopes []string // nil: the simulator's default, every classic scope
		env    map[string]string
		// closed points the OAuth and API URLs at a port nobody listens on.
		closed   bool
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{
			name:     "every classic scope",
			wantCode: ExitOK,
			wantOut: []string{"ok       credentials", "ok       user:read:admin", "ok       user:write:admin",
				"ok       group:read:admin", "ok       group:write:admin", "ok       role:read:admin",
				"ok       role:write:admin", "ok       GET /users", "all checks passed"},
		},
		{
			name:     "write scopes include read scopes",
			scopes:   []string{"user:write:admin", "group:write:admin", "role:write:admin"},
			wantCode: ExitOK,
			wantOut:  []string{"ok       user:read:admin", "ok       group:read:admin", "ok       role:read:admin", "all checks passed"},
		},
		{
			name:     "every granular scope",
			scopes:   granularAll,
			wantCode: ExitOK,
			wantOut:  []string{"ok       user:read:admin", "ok       role:write:admin", "ok       GET /users", "all checks passed"},
		},
		{
			name:     "write scopes withheld",
			scopes:   []string{"user:read:admin", "group:read:admin", "role:read:admin"},
			wantCode: ExitFailed,
			wantOut: []string{"ok       user:read:admin", "missing  user:write:admin", "missing  group:write:admin",
				"missing  role:write:admin", "ok       GET /users"},
			wantErr: "zoomctl: validate: missing scopes: user:write:admin, group:write:admin, role:write:admin (",
		},
		{
			name: "granular scopes withheld",
			scopes: slices.DeleteFunc(slices.Clone(granularAll), func(s string) bool {
				return strings.Contains(s, "administrator") || strings.HasPrefix(s, "role:delete")
			}),
			wantCode: ExitFailed,
			wantOut: []string{"missing  group:read:admin", "add group:read:administrator:admin",
				"missing  group:write:admin", "add group:delete:administrator:admin",
				"missing  role:write:admin", "add role:delete:member:admin", "ok       GET /users"},
			wantErr: "zoomctl: validate: missing scopes: group:read:administrator:admin, group:delete:administrator:admin, role:delete:member:admin (",
		},
		{
			name:     "users withheld: the API call is refused too",
			scopes:   []string{"group:read:admin", "role:read:admin"},
			wantCode: ExitFailed,
			wantOut: []string{"missing  user:read:admin", "refused  GET /users",
				"400 code 4711: Invalid access token, does not contain scopes:[user:read:list_users:admin]"},
			wantErr: "zoomctl: validate: missing scopes: user:read:admin, user:write:admin, group:write:admin, role:write:admin (",
		},
		{
			name:     "wrong secret",
			env:      map[string]string{"ZOOM_CLIENT_SECRET": "not-the-secret"},
			wantCode: ExitFailed,
			wantOut:  []string{"failed   credentials"},
			wantErr:  "zoomctl: validate: zoom: POST /oauth/token: 401 invalid_client code 4704: Invalid client_id or client_secret (check ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET",
		},
		{
			name:     "wrong account",
			env:      map[string]string{"ZOOM_ACCOUNT_ID": "another-account"},
			wantCode: ExitFailed,
			wantErr:  "Account ID is invalid. (check ZOOM_ACCOUNT_ID",
		},
		{
			name:     "Zoom unreachable",
			closed:   true,
			wantCode: ExitError,
			wantOut:  []string{"failed   credentials"},
			wantErr:  "zoomctl: validate: cannot reach Zoom at http://127.0.0.1:1/oauth/token",
		},
		{
			name:     "API unreachable",
			env:      map[string]string{"ZOOM_API_URL": "http://127.0.0.1:1/v2"},
			wantCode: ExitError,
			wantOut:  []string{"ok       credentials", "failed   GET /users"},
			wantErr:  "connect: connection refused",
		},
		{
			name:     "credentials missing",
			env:      map[string]string{"ZOOM_CLIENT_ID": "", "ZOOM_CLIENT_SECRET": ""},
			wantCode: ExitUsage,
			wantErr:  "zoomctl: validate: ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET are required",
		},
		{
			name:     "bad URL",
			env:      map[string]string{"ZOOM_API_URL": "api.zoom.us/v2"},
			wantCode: ExitUsage,
			wantErr:  `zoomctl: validate: ZOOM_API_URL is not an http(s) URL with a host`,
		},
		{
			// The URL is not echoed: it may carry a password.
			name:     "bad URL with credentials",
			env:      map[string]string{"ZOOM_OAUTH_URL": "ftp://user:s3cret@zoom.us"},
			wantCode: ExitUsage,
			wantErr:  `zoomctl: validate: ZOOM_OAUTH_URL is not an http(s) URL with a host`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := zoomtest.NewServer(t, org, zoomtest.Options{Scopes: tt.scopes})
			env := map[string]string{
				"ZOOM_ACCOUNT_ID": sim.AccountID(), "ZOOM_CLIENT_ID": sim.ClientID(), "ZOOM_CLIENT_SECRET": sim.ClientSecret(),
				"ZOOM_OAUTH_URL": sim.URL(), "ZOOM_API_URL": sim.APIBase(),
			}
			if tt.closed {
				env["ZOOM_OAUTH_URL"], env["ZOOM_API_URL"] = "http://127.0.0.1:1", "http://127.0.0.1:1/v2"
			}
			for k, v := range tt.env {
				env[k] = v
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			code, out, errw := zoomctl(t, context.Background(), "validate")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errw)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q; got:\n%s", w, out)
				}
			}
			if strings.Contains(errw+out, "s3cret") {
				t.Errorf("output names a password: %q %q", out, errw)
			}
			if !strings.Contains(errw, tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errw, tt.wantErr)
			}
			if code != ExitOK && strings.Count(errw, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", errw)
			}
			// Neither the secret nor a token (a JWT, "eyJ…") may ever be printed.
			for _, secret := range []string{sim.ClientSecret(), "not-the-secret", "eyJ"} {
				if strings.Contains(out+errw, secret) {
					t.Errorf("output shows %q:\n%s%s", secret, out, errw)
				}
			}
			if tt.wantCode == ExitOK && sim.TotalRequests() != 2 {
				t.Errorf("Zoom got %d requests, want 2 (one token, one API call)", sim.TotalRequests())
			}
		})
	}
}

func TestCheckScopes(t *testing.T) {
	tests := []struct {
		name   string
		scopes []string
		want   []string // what the checks lack, in check order
	}{
		{"classic", []string{"user:read:admin", "user:write:admin", "group:read:admin", "group:write:admin", "role:read:admin", "role:write:admin"}, nil},
		{"classic, read only", []string{"user:read:admin", "group:read:admin", "role:read:admin"},
			[]string{"user:write:admin", "group:write:admin", "role:write:admin"}},
		{"granular", granularAll, nil},
		{"granular, users only", []string{"user:read:list_users:admin", "user:read:user:admin"},
			[]string{"group:read:list_groups:admin", "group:read:administrator:admin", "role:read:list_roles:admin",
				"user:update:status:admin", "user:delete:user:admin", "group:delete:member:admin",
				"group:delete:administrator:admin", "role:delete:member:admin"}},
		{"mixed: a classic scope covers its granular ones", append([]string{"group:write:admin"}, "user:read:list_users:admin"),
			[]string{"user:read:user:admin", "role:read:list_roles:admin", "user:update:status:admin", "user:delete:user:admin", "role:delete:member:admin"}},
		{"none", nil, []string{"user:read:admin", "group:read:admin", "role:read:admin", "user:write:admin", "group:write:admin", "role:write:admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range checkScopes(tt.scopes) {
				got = append(got, r.lack...)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got missing %v, want %v", got, tt.want)
			}
		})
	}
}
