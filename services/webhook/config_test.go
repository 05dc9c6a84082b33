package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
)

func TestReadConfig(t *testing.T) {
	secret := map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	key32 := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // a part of the error; empty for none
		check   func(config) bool
	}{
		{"defaults", secret, "", func(c config) bool {
			return c.Addr == ":8080" && c.HTTPAddr == ":8084" && c.Connector == pipeline.ConnectorRef{Tenant: "default", ID: "zoom"} &&
				c.NATSURL == "nats://127.0.0.1:4222" && c.Secret == "s3cret" &&
				c.MaxConcurrent == 256 && c.MaxBody == 64<<10
		}},
		{"set", with("WEBHOOK_ADDR", ":9999", "WEBHOOK_OPS_ADDR", "127.0.0.1:9998", "CLARITY_TENANT", "acme", "CONNECTOR_ID", "z2",
			"WEBHOOK_MAX_CONCURRENT", "16", "WEBHOOK_MAX_BODY", "131072"), "", func(c config) bool {
			return c.Addr == ":9999" && c.HTTPAddr == "127.0.0.1:9998" && c.Connector == pipeline.ConnectorRef{Tenant: "acme", ID: "z2"} &&
				c.MaxConcurrent == 16 && c.MaxBody == 128<<10
		}},
		// Without a secret token the environment's connector is not
		// served; the registry's may be.
		{"no secret", map[string]string{}, "", func(c config) bool { return c.Secret == "" && c.Keys == nil }},
		{"blank secret", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "  "}, "", func(c config) bool { return c.Secret == "" }},
		{"secrets key", with("CONNECTOR_SECRETS_KEY", "k1:"+base64.StdEncoding.EncodeToString(make([]byte, 32))), "",
			func(c config) bool { return c.Keys != nil && c.Keys.CurrentKeyID() == "k1" }},
		{"secrets key malformed", with("CONNECTOR_SECRETS_KEY", "k1:s3cret"), "CONNECTOR_SECRETS_KEY", nil},
		{"redirect without connector", with("OAUTH_REDIRECT_URL", "https://x.example/cb"), "OAUTH_REDIRECT_URL must contain {connector}", nil},
		{"oauth url with password", with("ZOOM_OAUTH_URL", "ftp://u:s3cret@zoom.us"), "ZOOM_OAUTH_URL", nil},
		{"tenant not a token", with("CLARITY_TENANT", "a.b"), "CLARITY_TENANT", nil},
		{"connector not a token", with("CONNECTOR_ID", "z*"), "CONNECTOR_ID", nil},
		{"tenant not a valid name", with("CLARITY_TENANT", "Acme"), "CLARITY_TENANT", nil},
		{"connector too long", with("CONNECTOR_ID", strings.Repeat("z", 64)), "CONNECTOR_ID", nil},
		{"one address for both", with("WEBHOOK_ADDR", ":8084"), "WEBHOOK_OPS_ADDR must differ from WEBHOOK_ADDR", nil},
		{"no admin console", secret, "", func(c config) bool { return c.AdminAddr == "" && c.AdminToken == "" && c.AdminURL == "" }},
		{"admin console", with("ADMIN_ADDR", "127.0.0.1:8085", "ADMIN_TOKEN", "s3cret-admin-token-1", "CONNECTOR_SECRETS_KEY", key32), "",
			func(c config) bool {
				return c.AdminAddr == "127.0.0.1:8085" && c.AdminToken == "s3cret-admin-token-1" && c.AdminURL == "http://127.0.0.1:8085"
			}},
		{"admin console behind TLS", with("ADMIN_ADDR", ":8085", "ADMIN_TOKEN", "s3cret-admin-token-1", "CONNECTOR_SECRETS_KEY", key32,
			"ADMIN_URL", "https://admin.example/"), "", func(c config) bool { return c.AdminURL == "https://admin.example" }},
		{"admin console without a token", with("ADMIN_ADDR", ":8085", "CONNECTOR_SECRETS_KEY", key32), "ADMIN_TOKEN or ADMIN_TOKEN_FILE is required", nil},
		{"admin token too short", with("ADMIN_ADDR", ":8085", "ADMIN_TOKEN", "s3cret", "CONNECTOR_SECRETS_KEY", key32), "ADMIN_TOKEN must be at least 16", nil},
		{"admin token file missing", with("ADMIN_ADDR", ":8085", "ADMIN_TOKEN_FILE", "/nonexistent/s3cret", "CONNECTOR_SECRETS_KEY", key32), "ADMIN_TOKEN_FILE cannot be read", nil},
		{"admin console without a secrets key", with("ADMIN_ADDR", ":8085", "ADMIN_TOKEN", "s3cret-admin-token-1"), "needs CONNECTOR_SECRETS_KEY", nil},
		{"admin console on the public address", with("ADMIN_ADDR", ":8080", "ADMIN_TOKEN", "s3cret-admin-token-1", "CONNECTOR_SECRETS_KEY", key32),
			"ADMIN_ADDR must differ", nil},
		{"no concurrency", with("WEBHOOK_MAX_CONCURRENT", "0"), "WEBHOOK_MAX_CONCURRENT must be at least 1", nil},
		{"concurrency not a number", with("WEBHOOK_MAX_CONCURRENT", "many"), "WEBHOOK_MAX_CONCURRENT must be an integer", nil},
		{"no body", with("WEBHOOK_MAX_BODY", "0"), "WEBHOOK_MAX_BODY must be between 1 and", nil},
		{"body JetStream cannot store", with("WEBHOOK_MAX_BODY", "1048576"), "WEBHOOK_MAX_BODY must be between 1 and", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := readConfig(service.EnvFrom(tt.env))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q spans lines, want one line", err)
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("config got %+v", c)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

// The admin token is trimmed as the console trims the token posted to
// sign in: whitespace around it in the environment, or a file's trailing
// newline, is not part of it.
func TestAdminTokenTrimmed(t *testing.T) {
	key32 := "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	const token = "s3cret-admin-token-1"
	file := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(file, []byte(token+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"environment": {"ADMIN_TOKEN": " " + token + "\n"},
		"file":        {"ADMIN_TOKEN_FILE": file},
	} {
		env["ADMIN_ADDR"], env["CONNECTOR_SECRETS_KEY"] = ":8085", key32
		c, err := readConfig(service.EnvFrom(env))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.AdminToken != token {
			t.Errorf("%s: admin token of %d bytes, want the %d of the token", name, len(c.AdminToken), len(token))
		}
	}
}
