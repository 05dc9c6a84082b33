package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// A snapshot taken through clarity.snapshot.<tenant>.<connector> in the
// middle of a full sync, while webhooks change the account, plus exactly
// the events of CLARITY_ENTITLEMENTS with a greater sequence, equals what
// zoomctl snapshot prints once the sync has ended.
func TestSnapshotDuringSync(t *testing.T) {
	org := zoomtest.Generate(31, zoomtest.Size{Users: 1500, Groups: 12, Roles: 6})
	s := startStack(t, org, zoomtest.Options{}, nil)
	c := collect(t, s)
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: got %s (%s), want completed", op, d.Error)
	}
	ctx := context.Background()
	// Changes Zoom tells no one about: the next full sync finds them.
	users := s.Sim.Org().Users
	for i := range 40 {
		if _, err := s.Sim.UpdateUser(ctx, users[i].ID, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("Resynced %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	s.Sim.SetWebhookURL(s.WebhookURL)
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /groups/{groupId}/admins", Latency: 100 * time.Millisecond})

	id := "snapshot-during-sync"
	body := []byte(`{"mode":"full","request_id":"` + id + `"}`)
	if _, err := s.JS.Publish(ctx, pipeline.SyncSubject(s.Config().Connector), body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool { return s.Sim.Requests()["GET /groups/{groupId}/admins"] > 0 })

	// Webhooks keep changing the account while the snapshot is read, in
	// small chunks so that it spans many commits.
	hooks := make(chan error, 1)
	go func() {
		for i := range 30 {
			u := users[100+i]
			var err error
			switch i % 3 {
			case 0:
				_, err = s.Sim.UpdateUser(ctx, u.ID, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("Hooked %d", i))})
			case 1:
				_, err = s.Sim.RemoveUser(ctx, u.ID, "delete")
			default:
				_, _, err = s.Sim.AddUser(ctx, zoomtest.User{Email: fmt.Sprintf("snap%d@example.com", i), FirstName: "Snap", Type: 1})
			}
			if err != nil {
				hooks <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		hooks <- nil
	}()
	var seq int64
	got := map[string]json.RawMessage{}
	chunks := 0
	err := cli.RequestSnapshot(ctx, s.NC, s.Config().Connector, 300, func(n int64) error {
		seq = n
		return nil
	}, func(l cli.SnapshotLine) error {
		if len(got)%300 == 0 {
			chunks++
			time.Sleep(10 * time.Millisecond) // a slow consumer: the writer goes on meanwhile
		}
		got[l.Kind+"|"+l.Key] = l.Data
		return nil
	})
	if err != nil {
		t.Fatalf("request snapshot: %v", err)
	}
	if err := <-hooks; err != nil {
		t.Fatalf("webhooks: %v", err)
	}
	if op, d := c.waitEnd(t, id, 3*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	converge(t, s, c, "webhooks during a full sync")

	applied := 0
	var last int64
	for _, ev := range c.since(0) {
		n, err := strconv.ParseInt(ev.Sequence, 10, 64)
		if err != nil {
			t.Fatalf("event %s: sequence %q", ev.ID, ev.Sequence)
		}
		last = max(last, n)
		parts := strings.Split(ev.Type, ".")
		if n <= seq || parts[1] == clarity.KindSync {
			continue
		}
		applied++
		if parts[2] == clarity.OpDeleted {
			delete(got, parts[1]+"|"+ev.Subject)
		} else {
			got[parts[1]+"|"+ev.Subject] = ev.Data
		}
	}
	t.Logf("snapshot at sequence %d of %d, %d records in %d chunks; %d later events applied", seq, last, len(got), chunks, applied)
	if seq == 0 || applied == 0 {
		t.Errorf("the snapshot (sequence %d) was not taken while the sync and webhooks wrote: %d events after it", seq, applied)
	}
	final := snapshot(t, s)
	if d := diffRecords(got, final); len(d) > 0 {
		t.Fatalf("snapshot plus the later events differ from zoomctl snapshot in %d places; first:\n%s", len(d), strings.Join(d[:min(15, len(d))], "\n"))
	}
	requireSame(t, "zoomctl snapshot after the sync", final, expected(s))
}
