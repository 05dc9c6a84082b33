package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestDeletionGuardHoldsAndConfirms runs the accidental-deletion guard end to
// end at its default threshold (20%): a sync that finds 30% of the active
// users gone from Zoom completes without deleting them, says so in
// sync.completed, and the operator's confirmation through the admin API
// deletes exactly them, each with its grants and attributes.
func TestDeletionGuardHoldsAndConfirms(t *testing.T) {
	org := zoomtest.Generate(43, zoomtest.Size{Users: 200, Groups: 5, Roles: 4})
	s := startStack(t, org, zoomtest.Options{Seed: 43}, map[string]int{"webhook": 0})
	sc := checkSchema(t, s) // the confirmed deletions say why the users went
	c := collect(t, s)
	ctx := context.Background()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: got %s (%s), want completed", op, d.Error)
	}
	users := 0
	for _, u := range s.Sim.Org().Users {
		if u.Status == "active" || u.Status == "inactive" || u.Status == "pending" {
			users++
		}
	}
	remove := users * 3 / 10
	gone := map[string]bool{}
	for range remove {
		u := activeUser(t, s.Sim, 0)
		if _, err := s.Sim.RemoveUser(ctx, u.ID, "delete"); err != nil {
			t.Fatal(err)
		}
		gone[u.ID] = true
	}

	mark := c.mark()
	op, d := sync1(t, s, c)
	if op != clarity.OpCompleted {
		t.Fatalf("sync after %d of %d users went: got %s (%s), want completed", remove, users, op, d.Error)
	}
	if d.Deletions != "held" || d.Held == nil || d.Held.ServiceUser != int64(remove) || d.Held.Entitlement != 0 {
		t.Fatalf("sync.completed: got deletions %q held %+v, want held with %d users", d.Deletions, d.Held, remove)
	}
	// The users and entitlements stay; a grant that the run's listings
	// show gone (a group admin's, of a user removed) goes as usual.
	for _, ev := range c.since(mark) {
		if ev.Type == "clarity.service_user.deleted" || ev.Type == "clarity.entitlement.deleted" {
			t.Errorf("a sync whose deletions were held deleted %s %s", ev.Type, ev.Subject)
		}
	}
	held := snapshot(t, s)
	for id := range gone {
		if _, ok := held["service_user|"+id]; !ok {
			t.Errorf("user %s, held, is gone", id)
		}
	}

	mark = c.mark()
	reply, err := cli.ConfirmDeletions(ctx, s.JS.Conn(), s.Config().Connector, d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Held == nil || reply.Held.ServiceUser != int64(remove) {
		t.Errorf("confirmation: got held %+v, want %d users", reply.Held, remove)
	}
	// The events of the confirmation turn the records held into Zoom's.
	want := expected(s)
	waitFor(t, time.Minute, func() bool { return len(diffRecords(c.snapshot(), want)) == 0 })
	requireSame(t, "records rebuilt from the events after the confirmation", c.snapshot(), want)
	requireSame(t, "zoomctl snapshot after the confirmation", snapshot(t, s), want)
	deleted := 0
	for _, ev := range c.since(mark) {
		if !strings.HasSuffix(ev.Type, ".deleted") {
			t.Errorf("the confirmation emitted %s %s, want only deletions", ev.Type, ev.Subject)
			continue
		}
		deleted++
		if ev.Type == "clarity.service_user.deleted" && !gone[ev.Subject] {
			t.Errorf("the confirmation deleted user %s, who is still in Zoom", ev.Subject)
		}
	}
	if int64(deleted) != reply.Deleted {
		t.Errorf("the confirmation says %d deleted, its events %d", reply.Deleted, deleted)
	}
	if _, err := cli.ConfirmDeletions(ctx, s.JS.Conn(), s.Config().Connector, d.RunID); err == nil ||
		!strings.Contains(err.Error(), "held no deletions") {
		t.Errorf("second confirmation: got %v, want a refusal saying the run held no deletions", err)
	}
	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
	sc.settled(s)
}
