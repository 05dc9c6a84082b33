package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

// zoomCredentials are the environment connector's credentials, set so that
// the tests reach what they test.
var zoomCredentials = map[string]string{
	"ZOOM_ACCOUNT_ID": "acct", "ZOOM_CLIENT_ID": "client", "ZOOM_CLIENT_SECRET": "client-secret-value",
}

// TestStartNeverShowsAPassword: the fetcher, started with a URL that
// carries a password (mistyped or unreachable), stops with an error that
// names the variable or the URL redacted, never the password.
func TestStartNeverShowsAPassword(t *testing.T) {
	for _, tc := range []struct {
		name, value string
	}{
		{"NATS_URL", "nats://user:s3cret@127.0.0.1:1"},
		{"NATS_URL", "nats://user:s3cret@host:port:bad"},
		{"NATS_URL", "nats://user:s3cret@[::1"},
		{"ZOOM_API_URL", "https://user:s3cret@host:port:bad/v2"},
		{"ZOOM_API_URL", "https://user:s3cret@[::1/v2"},
		{"ZOOM_API_URL", "user:s3cret@api.zoom.us/v2"},
		{"ZOOM_OAUTH_URL", "https://user:s3cret@host:port:bad"},
		{"ZOOM_OAUTH_URL", "ftp://zoom.us?token=s3cret"},
		// A key of 31 bytes, then one whose id is fine and whose value
		// is no base64: neither may be quoted.
		{"CONNECTOR_SECRETS_KEY", "k1:s3AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
		{"CONNECTOR_SECRETS_KEY", "k1:s3cret-not-base64"},
		{"CONNECTOR_SECRETS_KEY", "s3cret"},
	} {
		for k, v := range zoomCredentials {
			t.Setenv(k, v)
		}
		t.Setenv("NATS_URL", "nats://127.0.0.1:1")
		t.Setenv("ZOOM_API_URL", "https://api.zoom.us/v2")
		t.Setenv("ZOOM_OAUTH_URL", "https://zoom.us")
		t.Setenv("SYNC_INTERVAL", "0")
		t.Setenv("FETCHER_ADDR", "127.0.0.1:0")
		t.Setenv("LOG_LEVEL", "error")
		t.Setenv(tc.name, tc.value)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := run(ctx)
		cancel()
		if err == nil {
			t.Errorf("%s=%s: started, want an error", tc.name, tc.value)
			continue
		}
		if strings.Contains(err.Error(), "s3") || strings.Contains(err.Error(), "client-secret-value") {
			t.Errorf("%s=%s: error %q shows a secret", tc.name, tc.value, err)
		}
	}
}

func TestReadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // in the error; "" for none
	}{
		{"defaults", nil, ""},
		{"tenant upper case", map[string]string{"CLARITY_TENANT": "Acme"}, "CLARITY_TENANT"},
		{"connector with a dot", map[string]string{"CONNECTOR_ID": "z.1"}, "CONNECTOR_ID"},
		{"connector too long", map[string]string{"CONNECTOR_ID": strings.Repeat("z", 64)}, "CONNECTOR_ID"},
		{"api url not http", map[string]string{"ZOOM_API_URL": "ftp://api.zoom.us/v2"}, "ZOOM_API_URL"},
		{"oauth url without host", map[string]string{"ZOOM_OAUTH_URL": "https://"}, "ZOOM_OAUTH_URL"},
		{"nats url malformed", map[string]string{"NATS_URL": "nats://a:b@[::1"}, "NATS_URL"},
		{"secrets key", map[string]string{"CONNECTOR_SECRETS_KEY": testKey}, ""},
		{"secrets key malformed", map[string]string{"CONNECTOR_SECRETS_KEY": "k1:AAAA"}, "CONNECTOR_SECRETS_KEY"},
		{"secrets key without id", map[string]string{"CONNECTOR_SECRETS_KEY": testKey[3:]}, "CONNECTOR_SECRETS_KEY"},
		{"a credential missing", map[string]string{"ZOOM_CLIENT_SECRET": ""}, "ZOOM_CLIENT_SECRET missing"},
		{"two credentials missing", map[string]string{"ZOOM_CLIENT_SECRET": "", "ZOOM_ACCOUNT_ID": " "}, "ZOOM_ACCOUNT_ID and ZOOM_CLIENT_SECRET missing"},
		{"syncs at once", map[string]string{"SYNC_CONCURRENCY": "16"}, ""},
		{"no syncs at once", map[string]string{"SYNC_CONCURRENCY": "0"}, "SYNC_CONCURRENCY 0 is below 1"},
		{"no listings at once", map[string]string{"FETCH_CONCURRENCY": "0"}, "FETCH_CONCURRENCY 0 is below 1"},
		{"no hints held", map[string]string{"HINT_CONCURRENCY": "-1"}, "HINT_CONCURRENCY -1 is below 1"},
		{"no details waiting", map[string]string{"ENRICH_CONCURRENCY": "0"}, "ENRICH_CONCURRENCY 0 is below 1"},
		{"no run attempts", map[string]string{"MAX_RUN_ATTEMPTS": "0"}, "MAX_RUN_ATTEMPTS 0 is below 1"},
	} {
		env := map[string]string{}
		for k, v := range zoomCredentials {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		_, err := readConfig(service.EnvFrom(env))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

// testKey is a valid CONNECTOR_SECRETS_KEY.
const testKey = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// TestConfigConnectors: the environment's connector is defined by its
// three credentials, or not at all; CONNECTOR_SECRETS_KEY is optional.
func TestConfigConnectors(t *testing.T) {
	t.Parallel()
	c, err := readConfig(service.EnvFrom(zoomCredentials))
	if err != nil {
		t.Fatal(err)
	}
	if c.Connector.String() != "default/zoom" || c.Keys != nil {
		t.Errorf("with credentials and no key: connector %q, keys %v; want default/zoom and none", c.Connector, c.Keys)
	}
	c, err = readConfig(service.EnvFrom(map[string]string{"CONNECTOR_SECRETS_KEY": testKey, "CLARITY_TENANT": "acme"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Connector.IsZero() || c.Keys == nil || c.Keys.CurrentKeyID() != "k1" {
		t.Errorf("without credentials, with a key: connector %q, keys %v; want none and k1", c.Connector, c.Keys)
	}
	if c.Zoom.AccountID != "" || c.Zoom.ClientSecret != "" {
		t.Error("credentials set without the environment's connector")
	}
	if _, err := readConfig(service.EnvFrom(nil)); err != nil {
		t.Errorf("nothing set: %v, want the defaults", err)
	}
}

// TestSyncConcurrency: SYNC_CONCURRENCY sets the syncs a replica serves at
// once, 4 unless set.
func TestSyncConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set  string
		want int
	}{{"", 4}, {"16", 16}} {
		env := map[string]string{}
		for k, v := range zoomCredentials {
			env[k] = v
		}
		if tc.set != "" {
			env["SYNC_CONCURRENCY"] = tc.set
		}
		c, err := readConfig(service.EnvFrom(env))
		if err != nil {
			t.Fatal(err)
		}
		if c.SyncWorkers != tc.want {
			t.Errorf("SYNC_CONCURRENCY %q: %d syncs at once, want %d", tc.set, c.SyncWorkers, tc.want)
		}
	}
}
