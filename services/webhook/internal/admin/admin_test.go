package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

func key(t *testing.T, id string) string {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}

// serve runs an admin server with the keyring of CONNECTOR_SECRETS_KEY v
// and returns a client of it and its registry.
func serve(t *testing.T, v string) (connector.Client, *connector.Registry, *connector.Keyring) {
	t.Helper()
	srv := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc, js, err := natsx.Connect(ctx, srv.ClientURL(), "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := natsx.EnsureStreams(ctx, js, pipeline.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	keys, err := connector.ParseKeyring(v)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := connector.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := connector.NewAuthorizer(ctx, js, keys, connector.AuthorizerConfig{OAuthURL: "http://127.0.0.1:1", RedirectTemplate: "https://{tenant}.clarity.test/cb/{connector}"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = reg.Watch(ctx); done <- struct{}{} }()
	go func() {
		_ = New(Config{Registry: reg, Keys: keys, Authorizer: auth, NC: nc, JS: js, Log: zerolog.Nop()}).Serve(ctx)
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done; nc.Close() })
	<-reg.Synced()
	c := connector.Client{NC: nc, Timeout: 5 * time.Second}
	// Until the subscriptions are in place.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := c.Call(ctx, connector.SubjectList, connector.ListRequest{}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	return c, reg, keys
}

func add(t *testing.T, c connector.Client, ref pipeline.ConnectorRef, secret string) connector.Reply {
	t.Helper()
	ctx := context.Background()
	sealed, err := c.SealSecret(ctx, ref, connector.FieldClientSecret, secret)
	if err != nil {
		t.Fatal(err)
	}
	wh, err := c.SealSecret(ctx, ref, connector.FieldWebhookSecret, "wh-"+secret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Call(ctx, connector.AdminSubject(ref, connector.OpAdd), connector.SettingsRequest{
		Auth: connector.AuthOAuth, ClientID: "cid-" + ref.Tenant, ClientSecret: sealed, WebhookSecret: wh})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAddUpdateListRemove(t *testing.T) {
	c, reg, _ := serve(t, key(t, "k1"))
	ctx := context.Background()
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	r := add(t, c, acme, "s3cret-acme")
	v := r.Connector
	if v == nil || v.State != connector.StatePendingAuthorization || v.Schedule != DefaultSchedule ||
		!strings.Contains(v.AuthorizeURL, "code_challenge_method=S256") || v.RedirectURL != "https://acme.clarity.test/cb/zoom" {
		t.Fatalf("add: %+v", v)
	}
	if _, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpAdd), connector.SettingsRequest{Auth: "oauth", ClientID: "x"}); err == nil {
		t.Error("a second add of acme/zoom succeeded")
	}
	// A secret not sealed to this deployment's key is refused, and so is
	// one sealed for another connector.
	other, _ := connector.ParseKeyring(key(t, "k9"))
	pub, _ := other.TransportPublicKey()
	foreign, _ := connector.SealForTransport(pub, "x", "s")
	globex := pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}
	if _, err := c.Call(ctx, connector.AdminSubject(globex, connector.OpAdd), connector.SettingsRequest{
		Auth: "oauth", ClientID: "x", ClientSecret: foreign}); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("add with a foreign secret: %v", err)
	}
	acmeSealed, _ := c.SealSecret(ctx, acme, connector.FieldClientSecret, "s")
	if _, err := c.Call(ctx, connector.AdminSubject(globex, connector.OpAdd), connector.SettingsRequest{
		Auth: "oauth", ClientID: "x", ClientSecret: acmeSealed}); err == nil {
		t.Error("a secret sealed for acme was taken for globex")
	}
	// Update: a new schedule keeps the state; a new client secret asks
	// for a new authorization.
	if r, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpUpdate), connector.SettingsRequest{Schedule: "1h"}); err != nil ||
		r.Connector.Schedule != "1h" {
		t.Errorf("update schedule: %+v %v", r.Connector, err)
	}
	if _, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpUpdate), connector.SettingsRequest{Schedule: "5s"}); err == nil {
		t.Error("a 5-second schedule was taken")
	}
	if _, err := reg.Modify(ctx, acme, func(r *connector.Record) error { r.State = connector.StateActive; return nil }); err != nil {
		t.Fatal(err)
	}
	newSecret, _ := c.SealSecret(ctx, acme, connector.FieldClientSecret, "s3cret-2")
	r, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpUpdate), connector.SettingsRequest{ClientSecret: newSecret})
	if err != nil || r.Connector.State != connector.StatePendingAuthorization || r.Connector.AuthorizeURL == "" {
		t.Errorf("update of the client secret: %+v %v", r.Connector, err)
	}
	add(t, c, globex, "s3cret-globex")
	if r, err := c.Call(ctx, connector.SubjectList, connector.ListRequest{Tenant: "globex"}); err != nil || len(r.Connectors) != 1 ||
		r.Connectors[0].Tenant != "globex" {
		t.Errorf("list of globex: %+v %v", r.Connectors, err)
	}
	if _, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpRemove), connector.RemoveRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, acme); !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("acme after remove: %v", err)
	}
	if _, err := c.Call(ctx, connector.AdminSubject(acme, connector.OpShow), nil); err == nil {
		t.Error("show of a removed connector succeeded")
	}
}

// TestRotateKey re-seals every secret under the new current key, after
// which the old key can go.
func TestRotateKey(t *testing.T) {
	k1 := key(t, "k1")
	c, reg, _ := serve(t, k1)
	ctx := context.Background()
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	add(t, c, acme, "s3cret-acme")
	e, _ := reg.Get(ctx, acme)
	if e.ClientSecret.KeyID() != "k1" {
		t.Fatalf("sealed under %q", e.ClientSecret.KeyID())
	}
	// The same bucket served with k2 current and k1 still readable.
	k2 := key(t, "k2")
	both, err := connector.ParseKeyring(k2 + "," + k1)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Registry: reg, Keys: both, Log: zerolog.Nop()})
	r := s.rotateKey(ctx)
	if r.Error != "" || r.Count != 2 {
		t.Fatalf("rotate-key: %+v, want 2 secrets re-sealed", r)
	}
	e, _ = reg.Get(ctx, acme)
	only2, _ := connector.ParseKeyring(k2)
	for _, f := range []struct {
		v     connector.Sealed
		field string
	}{{e.ClientSecret, connector.FieldClientSecret}, {e.WebhookSecret, connector.FieldWebhookSecret}} {
		if f.v.KeyID() != "k2" {
			t.Errorf("%s sealed under %q after rotation", f.field, f.v.KeyID())
		}
		if _, err := only2.Open(f.v, connector.SecretAD(acme, f.field)); err != nil {
			t.Errorf("%s does not open with k2 alone: %v", f.field, err)
		}
	}
	if r := s.rotateKey(ctx); r.Count != 0 {
		t.Errorf("a second rotation re-sealed %d", r.Count)
	}
}

// TestListenAnswersAtOnce: once Listen returns, the admin API answers a
// request from another connection at once: a service that says it is up
// after Listen (its /healthz) is never asked in vain. Each round starts
// afresh: a new NATS server (no member of the queue group left from the
// round before), the server's connection and the caller's.
func TestListenAnswersAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	keys, err := connector.ParseKeyring(key(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		srv := natstest.Run(t)
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		caller, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		serve, err := New(Config{Keys: keys, NC: nc, Log: zerolog.Nop()}).Listen()
		if err != nil {
			t.Fatal(err)
		}
		_, callErr := connector.Client{NC: caller, Timeout: 5 * time.Second}.Call(ctx, connector.SubjectTransportKey, struct{}{})
		sctx, stop := context.WithCancel(ctx)
		stop()
		_ = serve(sctx)
		caller.Close()
		nc.Close()
		if callErr != nil {
			t.Fatalf("round %d: the first request after Listen: %v", round, callErr)
		}
	}
}
