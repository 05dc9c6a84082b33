package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestFullSync runs the real services (two normalizers and two writers)
// against the simulator: a first sync, an unchanged resync, a sync after
// many kinds of change, and a sync that Zoom breaks part-way.
func TestFullSync(t *testing.T) {
	org := zoomtest.Generate(7, zoomtest.Size{Users: 2000, Groups: 60, Roles: 10})
	s := startStack(t, org, zoomtest.Options{}, map[string]int{"normalizer": 2, "writer": 2, "webhook": 0})
	c := collect(t, s)
	ctx := context.Background()

	// First sync: the events and the snapshot both equal the organisation.
	s.Sim.ResetRequests()
	op, d := sync1(t, s, c)
	if op != clarity.OpCompleted {
		t.Fatalf("first sync: got %s (%s), want completed", op, d.Error)
	}
	want := expected(s)
	requireSame(t, "records rebuilt from the events", c.snapshot(), want)
	requireSame(t, "zoomctl snapshot", snapshot(t, s), want)
	if d.Stats.Created != int64(len(want)) {
		t.Errorf("first sync stats: got %d created, want %d", d.Stats.Created, len(want))
	}
	t.Logf("first sync: %d records (%d events), stats %+v", len(want), c.mark(), d.Stats)
	checkRequests(t, s.Sim, org)
	if d.Stats.APIRequests != int64(s.Sim.TotalRequests()) {
		t.Errorf("sync stats: got %d api_requests, the simulator counted %d", d.Stats.APIRequests, s.Sim.TotalRequests())
	}

	// An unchanged account: nothing but the sync events.
	mark := c.mark()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("resync: got %s (%s), want completed", op, d.Error)
	}
	for _, ev := range c.since(mark) {
		if !strings.HasPrefix(ev.Type, "clarity.sync.") {
			t.Errorf("resync of an unchanged account emitted %s %s", ev.Type, ev.Subject)
		}
	}

	// Many kinds of change: exactly the implied events.
	before := expected(s)
	mutate(t, ctx, s.Sim)
	after := expected(s)
	mark = c.mark()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync after changes: got %s (%s), want completed", op, d.Error)
	}
	if diffs := diffSets(changeSet(c.since(mark)), implied(before, after)); len(diffs) > 0 {
		t.Fatalf("sync after changes: events differ from the changes in %d places:\n%s", len(diffs), strings.Join(diffs[:min(20, len(diffs))], "\n"))
	}
	t.Logf("changes: %d events", len(implied(before, after)))
	requireSame(t, "records after changes", c.snapshot(), after)
	requireSame(t, "snapshot after changes", snapshot(t, s), after)

	// A listing that keeps failing: sync.failed, and nothing is deleted.
	users := s.Sim.Org().Users
	if _, err := s.Sim.RemoveUser(ctx, users[len(users)-1].ID, "delete"); err != nil {
		t.Fatal(err)
	}
	s.Sim.Faults().Add(zoomtest.Fault{Route: "GET /users", Query: map[string]string{"status": "inactive"}, Status: 403, Code: 200, Message: "Only available for Paid account."})
	mark = c.mark()
	op, d = sync1(t, s, c)
	if op != clarity.OpFailed {
		t.Fatalf("broken sync: got %s, want failed", op)
	}
	if d.Error == "" {
		t.Errorf("broken sync: sync.failed carries no error")
	}
	for _, ev := range c.since(mark) {
		if !strings.HasPrefix(ev.Type, "clarity.sync.") && strings.HasSuffix(ev.Type, ".deleted") {
			t.Errorf("broken sync deleted %s", ev.Subject)
		}
	}
	requireSame(t, "snapshot after a failed sync", snapshot(t, s), after)
	s.Sim.Faults().Clear()

	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}

// checkRequests asserts the fewest requests: one per page of each listing,
// no member listings.
func checkRequests(t *testing.T, s interface{ Requests() map[string]int }, org *zoomtest.Org) {
	t.Helper()
	pages := func(n int) int { return max(1, (n+299)/300) }
	byStatus := map[string]int{}
	for _, u := range org.Users {
		byStatus[u.Status]++
	}
	admins := 0
	for _, g := range org.Groups {
		admins += pages(len(g.Admins))
	}
	want := map[string]int{
		"POST /oauth/token":            1,
		"GET /users":                   pages(byStatus["active"]) + pages(byStatus["inactive"]) + pages(byStatus["pending"]),
		"GET /groups":                  pages(len(org.Groups)),
		"GET /groups/{groupId}/admins": admins,
		"GET /roles":                   2, // type common, type iq
	}
	got := s.Requests()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("requests %s: got %d, want %d", k, got[k], w)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n > 0 {
			t.Errorf("requests %s: got %d, want none", k, n)
		}
	}
}

// mutate changes the organisation in every way a full sync must notice.
func mutate(t *testing.T, ctx context.Context, sim *zoomtest.Server) {
	t.Helper()
	org := sim.Org()
	var active []zoomtest.User
	for _, u := range org.Users {
		if u.Status == "active" && u.RoleID != "0" {
			active = append(active, u)
		}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sim.RemoveUser(ctx, active[0].ID, "delete"))
	must(sim.RemoveUser(ctx, active[1].ID, "disassociate"))
	must(sim.DeactivateUser(ctx, active[2].ID))
	must(sim.SetUserType(ctx, active[3].ID, 2))
	must(sim.SetUserType(ctx, active[4].ID, 1))
	must(sim.SetUserRole(ctx, active[5].ID, org.Roles[len(org.Roles)-1].ID))
	must(sim.UpdateUser(ctx, active[6].ID, zoomtest.Profile{FirstName: zoomtest.Ptr("Zoë"), Dept: zoomtest.Ptr("Research & Development")}))
	must(sim.DeleteGroup(ctx, org.Groups[0].ID))
	must(sim.RenameGroup(ctx, org.Groups[1].ID, "Renamed – 新しい"))
	g2 := org.Groups[2].ID
	must(sim.AddGroupMember(ctx, g2, active[7].ID))
	for _, u := range active[8:] {
		if len(u.GroupIDs) > 0 {
			must(sim.RemoveGroupMember(ctx, u.GroupIDs[0], u.ID))
			break
		}
	}
	must(sim.AddGroupAdmin(ctx, org.Groups[3].ID, active[9].Email))
	_, _, err := sim.AddGroup(ctx, "Brand new group")
	must(nil, err)
	_, _, err = sim.AddUser(ctx, zoomtest.User{Email: "New.Person@example.com", FirstName: "New", LastName: "Person", Type: 1})
	must(nil, err)
	_, _, err = sim.InviteUser(ctx, zoomtest.User{Email: "Invited@example.com", Type: 1})
	must(nil, err)
}
