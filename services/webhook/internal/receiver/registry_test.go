package receiver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// registryHarness serves the test connector from the environment and two
// connectors of the registry, acme/zoom and globex/zoom, with their own
// webhook secret tokens.
type registryHarness struct {
	*harness
	reg  *connector.Registry
	keys *connector.Keyring
}

var (
	acme   = pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	globex = pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}
)

const (
	acmeSecret   = "acme-webhook-secret-token"
	globexSecret = "globex-webhook-secret-token"
)

func newRegistryHarness(t *testing.T) *registryHarness {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	keys, err := connector.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	var conns Registry
	h := newHarness(t, func(c *Config) {
		conns = Registry{Static: NewStatic(Connector{Ref: testRef, Secret: testSecret}), Keys: keys}
		c.Connectors = &conns
		c.Deauthorized = func(ctx context.Context, ref pipeline.ConnectorRef, clientID string, at time.Time) error {
			return conns.Deauthorize(ctx, ref, clientID, at)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := connector.Open(ctx, h.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	conns.Registry = reg
	done := make(chan struct{})
	go func() { defer close(done); _ = reg.Watch(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-reg.Synced()
	for _, c := range []struct {
		ref    pipeline.ConnectorRef
		secret string
	}{{acme, acmeSecret}, {globex, globexSecret}} {
		ws, err := keys.Seal(c.secret, connector.SecretAD(c.ref, connector.FieldWebhookSecret))
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := keys.Seal("access-token", connector.SecretAD(c.ref, connector.FieldAccessToken))
		if _, err := reg.Create(ctx, connector.Record{Tenant: c.ref.Tenant, Connector: c.ref.ID, Auth: connector.AuthOAuth,
			ClientID: "client-" + c.ref.Tenant, WebhookSecret: ws, Schedule: "24h", State: connector.StateActive,
			Tokens: connector.Tokens{Access: tok, Expiry: time.Now().Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := reg.Lookup(globex); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("registry watch did not see the connectors")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &registryHarness{harness: h, reg: reg, keys: keys}
}

func (h *registryHarness) send(t *testing.T, ref pipeline.ConnectorRef, secret string, body []byte) int {
	t.Helper()
	resp, _ := h.post(t, http.MethodPost, "/webhooks/zoom/"+ref.Tenant+"/"+ref.ID, testTS, Sign(Secret(secret), testTS, body), body)
	return resp.StatusCode
}

func TestRegistryConnectorsSecrets(t *testing.T) {
	h := newRegistryHarness(t)
	body := []byte(`{"event":"user.updated","event_ts":1739923528000,"payload":{"object":{"id":"u1"}}}`)
	for _, tc := range []struct {
		name   string
		ref    pipeline.ConnectorRef
		secret string
		want   int
	}{
		{"acme signed with its own secret", acme, acmeSecret, http.StatusOK},
		{"globex signed with its own secret", globex, globexSecret, http.StatusOK},
		{"acme signed with globex's secret", acme, globexSecret, http.StatusUnauthorized},
		{"globex signed with the environment's secret", globex, testSecret, http.StatusUnauthorized},
		{"unknown connector", pipeline.ConnectorRef{Tenant: "initech", ID: "zoom"}, acmeSecret, http.StatusNotFound},
	} {
		if got := h.send(t, tc.ref, tc.secret, body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestAppDeauthorized(t *testing.T) {
	h := newRegistryHarness(t)
	ctx := context.Background()
	before := h.stored(t)
	ev := []byte(`{"event":"app_deauthorized","event_ts":1739923528000,"payload":{"account_id":"acc","user_id":"u","client_id":"client-acme","deauthorization_time":"2025-02-19T00:05:28Z","signature":"x"}}`)
	// Signed with another connector's secret, it changes nothing.
	if got := h.send(t, acme, globexSecret, ev); got != http.StatusUnauthorized {
		t.Fatalf("app_deauthorized signed with another secret: status %d, want 401", got)
	}
	if e, _ := h.reg.Get(ctx, acme); e.State != connector.StateActive {
		t.Fatalf("state %s after a forged app_deauthorized", e.State)
	}
	if got := h.send(t, acme, acmeSecret, ev); got != http.StatusOK {
		t.Fatalf("app_deauthorized: status %d, want 200", got)
	}
	e, err := h.reg.Get(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != connector.StateDisabled || e.Tokens.Access != "" || e.Tokens.Refresh != "" {
		t.Errorf("after app_deauthorized: state %s, tokens kept %v", e.State, e.Tokens.Access != "")
	}
	if g, _ := h.reg.Get(ctx, globex); g.State != connector.StateActive {
		t.Errorf("globex's state %s after acme's app was removed", g.State)
	}
	if got := h.stored(t); got != before {
		t.Errorf("app_deauthorized stored %d messages for the normalizer, want none", got-before)
	}
	// Disabled, the connector takes no more notifications.
	deadline := time.Now().Add(5 * time.Second)
	for h.send(t, acme, acmeSecret, []byte(`{"event":"user.updated","event_ts":1739923528000,"payload":{}}`)) != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("a disabled connector still takes notifications after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The environment's connector is not the registry's to disable.
	if resp, _ := h.signed(t, "/webhooks/zoom", ev); resp.StatusCode != http.StatusNotFound {
		t.Errorf("app_deauthorized of the environment's connector: status %d, want 404", resp.StatusCode)
	}
}
