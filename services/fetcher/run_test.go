package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestServesTheRegistry runs the fetcher as its main does, without an
// environment connector: a connector registered before it started and one
// registered while it runs are both synced, each from its own account; an
// unknown connector is refused; it stops cleanly.
func TestServesTheRegistry(t *testing.T) {
	srv := natstest.Run(t)
	sim := zoomtest.NewServer(t, zoomtest.Generate(5, zoomtest.Size{Users: 12, Groups: 2, Roles: 3}), zoomtest.Options{})
	acctB, err := sim.AddAccount("acct-b", zoomtest.Generate(6, zoomtest.Size{Users: 9, Groups: 1, Roles: 3}), zoomtest.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ZOOM_ACCOUNT_ID", "ZOOM_CLIENT_ID", "ZOOM_CLIENT_SECRET"} {
		t.Setenv(k, "")
	}
	t.Setenv("NATS_URL", srv.ClientURL())
	t.Setenv("ZOOM_API_URL", sim.APIBase())
	t.Setenv("ZOOM_OAUTH_URL", sim.URL())
	t.Setenv("ZOOM_PACING", "false")
	t.Setenv("CONNECTOR_SECRETS_KEY", testKey)
	t.Setenv("FETCHER_ADDR", "127.0.0.1:0")
	t.Setenv("LOG_LEVEL", "error")

	ctx := context.Background()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := connector.ParseKeyring(testKey)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := connector.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	add := func(ref pipeline.ConnectorRef, a *zoomtest.Account) {
		t.Helper()
		secret, err := keys.Seal(a.ClientSecret(), connector.SecretAD(ref, connector.FieldClientSecret))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Create(ctx, connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: connector.AuthS2S,
			ClientID: a.ClientID(), AccountID: a.ID(), ClientSecret: secret, Schedule: "24h",
			State: connector.StateActive}); err != nil {
			t.Fatal(err)
		}
	}
	early := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	late := pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}
	add(early, sim.DefaultAccount())

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("fetcher stopped with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("fetcher did not stop within 10s")
		}
	}()

	// The streams are the fetcher's to create: a trigger waits for them.
	publish := func(ref pipeline.ConnectorRef) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := js.Publish(ctx, pipeline.SyncSubject(ref), []byte(`{"request_id":"r-`+ref.Tenant+`"}`))
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("trigger for %s: %v", ref, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fetched := func(ref pipeline.ConnectorRef) bool {
		st, err := js.Stream(ctx, pipeline.StreamRaw)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil {
			return false
		}
		for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil || m.Subject != pipeline.RawSubject(ref) {
				continue
			}
			var env pb.Envelope
			if pipeline.Unmarshal(m.Header, m.Data, &env) == nil && env.GetRunFetched() != nil {
				return true
			}
		}
		return false
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	publish(early)
	wait("the connector registered before the start synced", func() bool { return fetched(early) })
	// Triggered as soon as registered, as the admin API does for a first
	// sync: the fetcher's copy of the registry may not have it yet.
	add(late, acctB)
	publish(late)
	wait("the connector registered while running synced", func() bool { return fetched(late) })

	unknown := pipeline.ConnectorRef{Tenant: "initech", ID: "zoom"}
	publish(unknown)
	wait("the unknown connector refused", func() bool {
		st, err := js.Stream(ctx, clarity.StreamEntitlements)
		if err != nil {
			return false
		}
		m, err := st.GetLastMsgForSubject(ctx, clarity.EventSubject(unknown.Tenant, unknown.ID, clarity.KindSync))
		if err != nil {
			return false
		}
		var ev clarity.Event
		var d clarity.SyncData
		return json.Unmarshal(m.Data, &ev) == nil && json.Unmarshal(ev.Data, &d) == nil &&
			strings.Contains(d.Error, "unknown connector initech/zoom")
	})
}
