package receiver

import (
	"context"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
)

// The same signed app_deauthorized body delivered again (Zoom retry, or a
// replay within the 5-minute window) after the connector was authorized
// again disables it again and wipes the fresh tokens.
func TestDeauthorizedReplayAfterReauthorization(t *testing.T) {
	h := newRegistryHarness(t)
	ctx := context.Background()
	ev := []byte(`{"event":"app_deauthorized","event_ts":1739923528000,"payload":{"account_id":"acc","user_id":"u","client_id":"client-acme","deauthorization_time":"2025-02-19T00:05:28Z","signature":"x"}}`)
	if got := h.send(t, acme, acmeSecret, ev); got != 200 {
		t.Fatalf("first delivery: %d", got)
	}
	// re-authorized (the callback)
	tok, _ := h.keys.Seal("fresh", connector.SecretAD(acme, connector.FieldAccessToken))
	if _, err := h.reg.Modify(ctx, acme, func(r *connector.Record) error {
		r.State, r.Reason, r.Tokens = connector.StateActive, "", connector.Tokens{Access: tok, Issued: time.Now(), Expiry: time.Now().Add(time.Hour)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for {
		if e, ok := h.reg.Lookup(acme); ok && e.State == connector.StateActive {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := h.send(t, acme, acmeSecret, ev)
	e, _ := h.reg.Get(ctx, acme)
	t.Logf("second delivery of the same body: %d; state %s, tokens kept %v", got, e.State, e.Tokens.Access != "")
	if e.State != connector.StateActive {
		t.Error("a redelivered app_deauthorized undid the new authorization")
	}
}
