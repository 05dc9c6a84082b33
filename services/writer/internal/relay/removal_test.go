package relay_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/relay"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// TestRemovalAttribute: the deleted event of a service user carries the
// CloudEvent extension attribute removal, as the change that deleted it
// said; the deleted events of its grants and attributes, and every other
// event, carry no such attribute.
func TestRemovalAttribute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := store.New(e.pool, zerolog.Nop(), store.Options{})
	completeRun(t, s, defaultZoom, "u1", "u2")
	b := &pb.RecordBatch{VersionMs: time.Now().UnixMilli() + 1000, Source: "test", Deletes: []*pb.RecordRef{
		{Kind: pb.Kind_KIND_SERVICE_USER, Key: "u1", Removal: clarity.RemovalDisassociated},
		{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:g1"},
	}}
	if err := s.ApplyChange(context.Background(), defaultZoom, b); err != nil {
		t.Fatal(err)
	}
	r := relay.New(relay.Config{Pool: e.pool, JetStream: e.js, Log: zerolog.Nop(), Interval: time.Minute})
	drain(t, r)
	var deleted int
	for _, m := range streamMsgs(t, e.js) {
		var ev clarity.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatalf("message %d: %v", m.Sequence, err)
		}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(m.Data, &raw)
		_, has := raw["removal"]
		switch {
		case ev.Type == "clarity.service_user.deleted":
			deleted++
			if ev.Subject != "u1" || ev.Removal != clarity.RemovalDisassociated {
				t.Errorf("event %s: deleted %s with removal %q, want u1 disassociated", ev.ID, ev.Subject, ev.Removal)
			}
		case has:
			t.Errorf("event %s (%s %s): got removal %s, want none", ev.ID, ev.Type, ev.Subject, raw["removal"])
		}
	}
	if deleted != 1 {
		t.Errorf("got %d service_user deleted events, want 1", deleted)
	}
}
