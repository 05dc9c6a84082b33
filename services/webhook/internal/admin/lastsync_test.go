package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestLastSyncErrorCutBetweenCharacters: the error of a failed sync is kept
// in the connector's record cut before a character, never inside one, then
// "…".
func TestLastSyncErrorCutBetweenCharacters(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	reg, err := connector.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = reg.Watch(ctx); done <- struct{}{} }()
	go func() {
		_ = natsx.Consumer{Stream: clarity.StreamEntitlements, Durable: LastSyncConsumer,
			FilterSubjects: []string{pipeline.EventsOfKind(clarity.KindSync)}, MaxDeliver: 5, Log: zerolog.Nop(),
		}.Run(ctx, js, LastSync(reg))
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	<-reg.Synced()
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	if _, err := reg.Create(ctx, connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: connector.AuthOAuth,
		ClientID: "cid", Schedule: connector.ScheduleManual, State: connector.StateActive}); err != nil {
		t.Fatal(err)
	}
	kept := strings.Repeat("a", 511)
	data, err := json.Marshal(clarity.SyncData{RunID: "r1", FinishedAt: "2026-12-06T00:00:00Z", Error: kept + "日本"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := json.Marshal(clarity.Event{Type: "clarity." + clarity.KindSync + "." + clarity.OpFailed,
		Tenant: ref.Tenant, Connector: ref.ID, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(pipeline.EventSubject(ref, clarity.KindSync))
	msg.Data = ev
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	var got *connector.LastSync
	for deadline := time.Now().Add(10 * time.Second); got == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		e, err := reg.Get(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		got = e.LastSync
	}
	if got == nil {
		t.Fatal("no last sync recorded within 10s")
	}
	if got.Result != clarity.OpFailed || !utf8.ValidString(got.Error) || got.Error != kept+"…" {
		t.Errorf("last sync %s with an error of %d bytes ending %q, want failed with the %d bytes before 日, then …",
			got.Result, len(got.Error), got.Error[max(0, len(got.Error)-8):], len(kept))
	}
}
