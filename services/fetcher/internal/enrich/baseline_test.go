package enrich_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/enrich"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// TestBaselineReadsEachUserOnce: a completed full sync of a connector with
// enrichment on and no baseline reads every active and inactive user, but
// those read since enrichment was turned on with the profile they have
// (a baseline cut short resumes where it was), and records the baseline;
// the next completed sync reads nobody.
func TestBaselineReadsEachUserOnce(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	org := zoomtest.Generate(6, zoomtest.Size{Users: 700, Groups: 1, Roles: 3, PendingFraction: 0.05})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	client, err := zoom.New(zoom.Config{APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(), DisablePacing: true})
	if err != nil {
		t.Fatal(err)
	}
	on := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	memo, err := enrich.OpenMemo(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	var done, baselines atomic.Int64
	e := enrich.New(enrich.Config{
		Clients: oneClient{on, client}, Publisher: syncer.New(syncer.Config{JetStream: js}), Memo: memo,
		State: func(c pipeline.ConnectorRef) (bool, bool) { return c == on, done.Load() > 0 },
		BaselineNeeded: func(_ context.Context, c pipeline.ConnectorRef) (bool, time.Time, error) {
			baselines.Add(1)
			return c == on && done.Load() == 0, since, nil
		},
		BaselineDone: func(context.Context, pipeline.ConnectorRef) error { done.Add(1); return nil },
		Quiet:        50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t)),
	})
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() {
		_ = natsx.Consumer{Stream: clarity.StreamEntitlements, Durable: enrich.Consumer, FilterSubjects: enrich.Filters(),
			Concurrency: 64, KeepAlive: true, Log: zerolog.New(zerolog.NewTestWriter(t))}.Run(cctx, js, e.Handle)
	}()
	seq := 0
	publish := func(kind, op, subject string, data any) {
		t.Helper()
		seq++
		body, _ := json.Marshal(data)
		ev := clarity.Event{SpecVersion: "1.0", ID: fmt.Sprintf("%s/%d", on, seq), Source: "zoom/" + on.String(),
			Type: "clarity." + kind + "." + op, Subject: subject, Tenant: on.Tenant, Connector: on.ID,
			Sequence: fmt.Sprint(seq), Data: body}
		msg := nats.NewMsg(pipeline.EventSubject(on, kind))
		msg.Data = ev.AppendJSON(nil)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	idle := func() {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
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

	// Some users were read already (created since enrichment is on).
	readable, early := 0, 0
	for _, u := range org.Users {
		if u.Status == zoomtest.StatusPending {
			continue
		}
		readable++
		if readable%3 == 0 {
			early++
			publish(clarity.KindServiceUser, clarity.OpCreated, u.ID, clarity.ServiceUser{ID: u.ID, Email: u.Email,
				FirstName: u.FirstName, LastName: u.LastName, Status: u.Status, License: clarity.License(u.Type), RoleID: u.RoleID})
		}
	}
	idle()
	if n := reads(); n != early {
		t.Fatalf("%d users created: %d reads", early, n)
	}
	publish(clarity.KindSync, clarity.OpCompleted, "run-1", clarity.SyncData{RunID: "run-1", Mode: "full"})
	idle()
	if n := reads(); n != readable {
		t.Errorf("after the baseline: %d reads in all, want one per active or inactive user, %d", n, readable)
	}
	if done.Load() != 1 {
		t.Errorf("baseline recorded %d times, want once", done.Load())
	}
	publish(clarity.KindSync, clarity.OpCompleted, "run-2", clarity.SyncData{RunID: "run-2", Mode: "full"})
	idle()
	if n := reads(); n != readable {
		t.Errorf("after a second sync: %d reads in all, want still %d", n, readable)
	}
}
