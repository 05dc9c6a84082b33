package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/admin"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// held is a store whose connector acme/zoom holds the deletions of run r2.
type held struct{}

func (held) ConfirmDeletions(_ context.Context, c pipeline.ConnectorRef, runID string) (store.Confirmation, error) {
	switch {
	case c != pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}:
		return store.Confirmation{}, fmt.Errorf("run %s: %w", runID, store.ErrUnknownRun)
	case runID == "r1":
		return store.Confirmation{}, fmt.Errorf("run %s: %w", runID, store.ErrNoHeldDeletions)
	case runID != "r2":
		return store.Confirmation{}, fmt.Errorf("run %s: %w", runID, store.ErrUnknownRun)
	}
	return store.Confirmation{HeldUsers: 3, HeldEntitlements: 1, Deleted: 12}, nil
}

func (held) Purge(_ context.Context, c pipeline.ConnectorRef) (int64, error) {
	if c != (pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}) {
		return 0, nil
	}
	return 7, nil
}

func TestPurge(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(natstest.Run(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Serve(ctx, nc, held{}, zerolog.Nop()) }()
	defer func() { cancel(); <-done }()
	c := connector.Client{NC: nc, Timeout: 5 * time.Second}
	var r connector.Reply
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err = c.Call(ctx, connector.AdminSubject(pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}, connector.OpPurge), struct{}{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // until the subscription is in place
	}
	if err != nil || r.Count != 7 {
		t.Errorf("purge: got %+v, %v; want 7 records", r, err)
	}
}

func TestConfirmDeletions(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(natstest.Run(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- admin.Serve(ctx, nc, held{}, zerolog.Nop()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	acme := "zoom.admin.acme.zoom." + connector.OpConfirmDeletions
	for _, tc := range []struct {
		name    string
		subject string
		body    string
		want    connector.ConfirmDeletionsReply
		wantErr string
	}{
		{"confirmed", acme, `{"run_id":"r2"}`,
			connector.ConfirmDeletionsReply{RunID: "r2", Held: &clarity.HeldCounts{ServiceUser: 3, Entitlement: 1}, Deleted: 12}, ""},
		{"nothing held", acme, `{"run_id":"r1"}`, connector.ConfirmDeletionsReply{RunID: "r1"}, "held no deletions"},
		{"no such run", acme, `{"run_id":"r9"}`, connector.ConfirmDeletionsReply{RunID: "r9"}, "connector acme/zoom has no run r9"},
		{"invalid tenant", "zoom.admin.Acme.zoom." + connector.OpConfirmDeletions, `{"run_id":"r2"}`,
			connector.ConfirmDeletionsReply{}, `tenant "Acme"`},
		{"no run id", acme, `{}`, connector.ConfirmDeletionsReply{}, "request must be"},
		{"too large", acme, `{"run_id":"` + strings.Repeat("r", 5000) + `"}`, connector.ConfirmDeletionsReply{}, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m *nats.Msg
			var err error
			// The subscription may not be there yet at the first request.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				m, err = nc.Request(tc.subject, []byte(tc.body), 5*time.Second)
				if err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			var got connector.ConfirmDeletionsReply
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatalf("reply %s: %v", m.Data, err)
			}
			if !strings.Contains(got.Error, tc.wantErr) || (tc.wantErr == "") != (got.Error == "") {
				t.Errorf("got error %q, want one saying %q", got.Error, tc.wantErr)
			}
			got.Error = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got reply %+v (held %+v), want %+v (held %+v)", got, got.Held, tc.want, tc.want.Held)
			}
		})
	}
}
