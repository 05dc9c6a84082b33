package enrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/enrich"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// oneClient serves connector on with the simulator's client, and no other.
type oneClient struct {
	on     pipeline.ConnectorRef
	client runner.Client
}

func (o oneClient) Client(_ context.Context, c pipeline.ConnectorRef) (runner.Client, error) {
	if c != o.on {
		return nil, runner.Unknown(c)
	}
	return o.client, nil
}

// TestEventsOfOneUserShareARead: the events of a user (its own, its
// attributes') cost one GET /users/{id}; a sign-in (the same profile) costs
// none; a profile change one more; its enrichment attributes', its client
// version's, a pending user's and another connector's none. Each read
// reaches the normalizer's stream as a LISTING_USER_DETAIL page.
func TestEventsOfOneUserShareARead(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	org := zoomtest.Generate(5, zoomtest.Size{Users: 10, Groups: 1, Roles: 3})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	client, err := zoom.New(zoom.Config{APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), DisablePacing: true})
	if err != nil {
		t.Fatal(err)
	}
	on := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	off := pipeline.ConnectorRef{Tenant: "acme", ID: "other"}
	memo, err := enrich.OpenMemo(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := enrich.New(enrich.Config{
		Clients: oneClient{on, client}, Publisher: syncer.New(syncer.Config{JetStream: js}), Memo: memo,
		State: func(c pipeline.ConnectorRef) (bool, bool) { return c == on, true },
		Quiet: 300 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t)),
	})
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() {
		_ = natsx.Consumer{Stream: clarity.StreamEntitlements, Durable: enrich.Consumer, FilterSubjects: enrich.Filters(),
			Concurrency: 8, KeepAlive: true, Log: zerolog.New(zerolog.NewTestWriter(t))}.Run(cctx, js, e.Handle)
	}()

	var user zoomtest.User
	for _, u := range org.Users {
		if u.Status == zoomtest.StatusActive && u.ID != "" {
			user = u
			break
		}
	}
	seq := 0
	publish := func(c pipeline.ConnectorRef, kind, op, subject string, data any) {
		t.Helper()
		seq++
		body, _ := json.Marshal(data)
		ev := clarity.Event{SpecVersion: "1.0", ID: fmt.Sprintf("%s/%d", c, seq), Source: "zoom/" + c.String(),
			Type: "clarity." + kind + "." + op, Subject: subject, Tenant: c.Tenant, Connector: c.ID,
			Sequence: fmt.Sprint(seq), Data: body}
		msg := nats.NewMsg(pipeline.EventSubject(c, kind))
		msg.Data = ev.AppendJSON(nil)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	profile := clarity.ServiceUser{ID: user.ID, Email: user.Email, FirstName: user.FirstName, LastName: user.LastName,
		Status: clarity.StatusActive, License: clarity.License(user.Type), RoleID: user.RoleID, LastLoginAt: "2026-01-01T00:00:00Z"}
	attr := func(name string) (string, clarity.Attribute) {
		return clarity.AttributeKey(user.ID, name), clarity.Attribute{UserID: user.ID, Name: name, Value: "x"}
	}
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			cons, err := js.Consumer(ctx, clarity.StreamEntitlements, enrich.Consumer)
			if err == nil {
				if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("the enricher did not handle every event")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	reads := func() int { return sim.Requests()["GET /users/{userId}"] }
	pages := func() uint64 {
		st, err := js.Stream(ctx, pipeline.StreamRaw)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	// Created, with its attributes: one read.
	publish(on, clarity.KindServiceUser, clarity.OpCreated, user.ID, profile)
	for _, name := range []string{"department", "timezone", "custom.cost"} {
		k, a := attr(name)
		publish(on, clarity.KindServiceUserAttribute, clarity.OpCreated, k, a)
	}
	idle()
	if n := reads(); n != 1 {
		t.Errorf("a user created with its attributes: %d reads, want 1", n)
	}
	// What no read follows: a sign-in, the enrichment's own attributes,
	// the client version, a pending user, another connector's user, a
	// deletion of an attribute.
	time.Sleep(600 * time.Millisecond) // past the covering read
	signedIn := profile
	signedIn.LastLoginAt = "2026-02-01T00:00:00Z"
	publish(on, clarity.KindServiceUser, clarity.OpUpdated, user.ID, signedIn)
	for _, name := range []string{clarity.AttrJobTitle, clarity.AttrLoginTypes, "last_client_version"} {
		k, a := attr(name)
		publish(on, clarity.KindServiceUserAttribute, clarity.OpUpdated, k, a)
	}
	k, a := attr("department")
	publish(on, clarity.KindServiceUserAttribute, clarity.OpDeleted, k, a)
	publish(on, clarity.KindServiceUser, clarity.OpCreated, "pending:new@example.com", clarity.ServiceUser{Email: "new@example.com", Status: clarity.StatusPending})
	publish(off, clarity.KindServiceUser, clarity.OpCreated, user.ID, profile)
	idle()
	if n := reads(); n != 1 {
		t.Errorf("after events that ask for no read: %d reads, want still 1", n)
	}
	// A profile change: one more read.
	renamed := signedIn
	renamed.LastName = "Renamed"
	publish(on, clarity.KindServiceUser, clarity.OpUpdated, user.ID, renamed)
	idle()
	if n := reads(); n != 2 {
		t.Errorf("after a profile change: %d reads, want 2", n)
	}
	if n := pages(); n != 2 {
		t.Errorf("%d pages for the normalizer, want one per read, 2", n)
	}
	// The pages are the user's details.
	st, _ := js.Stream(ctx, pipeline.StreamRaw)
	m, err := st.GetLastMsgForSubject(ctx, pipeline.RawSubject(on))
	if err != nil {
		t.Fatal(err)
	}
	var env pb.Envelope
	if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
		t.Fatal(err)
	}
	page := env.GetRawPage()
	if page.GetRef().GetListing() != pb.Listing_LISTING_USER_DETAIL || page.GetUserId() != user.ID || len(page.GetBody()) == 0 {
		t.Errorf("page %v of user %q with %d bytes, want the details of %s", page.GetRef().GetListing(), page.GetUserId(), len(page.GetBody()), user.ID)
	}
}
