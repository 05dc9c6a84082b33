package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestFreeAccount: a paid account syncs; it becomes free (Basic), and Zoom
// refuses it groups and roles. Its next sync completes without them, says
// so in sync.completed and zoomctl status, gets every user right and
// deletes no group or role entitlement, nor a group's grants, not even of
// a group Zoom deleted meanwhile, while a user gone is deleted. Paid
// again, the next sync deletes the group Zoom deleted.
func TestFreeAccount(t *testing.T) {
	org := zoomtest.Generate(11, zoomtest.Size{Users: 300, Groups: 8, Roles: 4})
	s := startStack(t, org, zoomtest.Options{}, map[string]int{"webhook": 0})
	c := collect(t, s)
	ctx := context.Background()

	if op, d := sync1(t, s, c); op != clarity.OpCompleted || d.Unavailable != nil {
		t.Fatalf("paid sync: got %s (%s), unavailable %q; want completed with every listing", op, d.Error, d.Unavailable)
	}
	requireSame(t, "records after the paid sync", snapshot(t, s), expected(s))
	paid := snapshot(t, s)

	// The account goes free. Meanwhile Zoom deletes a group (it had
	// members and an admin), a user leaves, another changes role.
	if err := s.Sim.SetPlan(zoomtest.PlanBasic); err != nil {
		t.Fatal(err)
	}
	gone := groupWithAdmin(t, s.Sim.Org())
	if _, err := s.Sim.DeleteGroup(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	leaver, changer := activeUser(t, s.Sim, 3), activeUser(t, s.Sim, 4)
	if _, err := s.Sim.RemoveUser(ctx, leaver.ID, "delete"); err != nil {
		t.Fatal(err)
	}
	newRole := "1"
	if changer.RoleID == newRole {
		newRole = "2"
	}
	if _, err := s.Sim.SetUserRole(ctx, changer.ID, newRole); err != nil {
		t.Fatal(err)
	}
	s.Sim.ResetRequests()
	mark := c.mark()
	op, d := sync1(t, s, c)
	if op != clarity.OpCompleted {
		t.Fatalf("free sync: got %s (%s), want completed", op, d.Error)
	}
	if want := []string{clarity.UnavailableGroups, clarity.UnavailableRoles}; !slices.Equal(d.Unavailable, want) {
		t.Errorf("free sync: sync.completed unavailable %q, want %q", d.Unavailable, want)
	}
	if n := s.Sim.Requests()["GET /groups/{groupId}/admins"]; n != 0 {
		t.Errorf("free sync: %d group-admin requests, want none after GET /groups was refused", n)
	}
	runs, err := cli.Runs(ctx, s.Config().DatabaseURL, s.Config().Connector, 1)
	if err != nil || len(runs) != 1 || !slices.Equal(runs[0].Unavailable, d.Unavailable) {
		t.Errorf("zoomctl status: got %+v (%v), want the run with unavailable %q", runs, err, d.Unavailable)
	}

	free := snapshot(t, s)
	want := expected(s)
	requireSame(t, "users after the free sync", only(free, clarity.KindServiceUser), only(want, clarity.KindServiceUser))
	for k := range only(paid, clarity.KindEntitlement) {
		if _, ok := free[k]; !ok {
			t.Errorf("free sync deleted %s", k)
		}
	}
	for k := range only(paid, clarity.KindServiceUserEntitlement) {
		_, user, _ := strings.Cut(k, "|")
		user, ent, _ := strings.Cut(user, "|")
		if _, ok := free[k]; !ok && user != leaver.ID && !strings.HasPrefix(ent, "role:") {
			t.Errorf("free sync deleted %s, a grant of a group", k)
		}
	}
	roleGrant := clarity.KindServiceUserEntitlement + "|" + clarity.GrantKey(changer.ID, clarity.RoleKey(newRole))
	if _, ok := free[roleGrant]; !ok {
		t.Errorf("free sync: %s missing, want the role grant to follow the users listing", roleGrant)
	}
	if _, ok := free[clarity.KindServiceUser+"|"+leaver.ID]; ok {
		t.Errorf("free sync: user %s, gone from Zoom, is still there", leaver.ID)
	}
	for _, ev := range c.since(mark) {
		if ev.Type == "clarity.entitlement.deleted" {
			t.Errorf("free sync emitted %s %s", ev.Type, ev.Subject)
		}
	}

	// Paid again: the group Zoom deleted goes, with its grants.
	if err := s.Sim.SetPlan(zoomtest.PlanPro); err != nil {
		t.Fatal(err)
	}
	mark = c.mark()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted || d.Unavailable != nil {
		t.Fatalf("paid-again sync: got %s (%s), unavailable %q; want completed with every listing", op, d.Error, d.Unavailable)
	}
	requireSame(t, "records after the paid-again sync", snapshot(t, s), expected(s))
	requireSame(t, "records rebuilt from the events", c.snapshot(), expected(s))
	deleted := changeSet(c.since(mark))
	for _, key := range []string{clarity.GroupKey(gone.ID), clarity.GroupAdminKey(gone.ID)} {
		if !deleted["deleted "+clarity.KindEntitlement+"|"+key] {
			t.Errorf("paid-again sync: no deletion of %s, which Zoom deleted", key)
		}
	}
	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}

// groupWithAdmin returns a group of org with members and an admin.
func groupWithAdmin(t *testing.T, org *zoomtest.Org) zoomtest.Group {
	t.Helper()
	members := map[string]int{}
	for _, u := range org.Users {
		for _, g := range u.GroupIDs {
			members[g]++
		}
	}
	for _, g := range org.Groups {
		if len(g.Admins) > 0 && members[g.ID] > 0 {
			return g
		}
	}
	t.Fatal("no group with members and an admin")
	return zoomtest.Group{}
}

// only returns the records of one kind.
func only(records map[string]json.RawMessage, kind string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range records {
		if strings.HasPrefix(k, kind+"|") {
			out[k] = v
		}
	}
	return out
}
