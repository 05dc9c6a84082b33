package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// The tests of this file hold the connector to what Zoom really holds, with
// the simulator as strict as Zoom is: an invitee read back by id
// is its id and a call-time created_at; deactivation removes every licence.

// TestInviteesFromWebhooks: an invitation's user.created makes the
// connector read the invitee back, and Zoom answers with its id and a
// created_at of the call only. No record comes of it (no active, email-less
// user next to the pending one); a group.member_added naming the invitee
// grants nothing while no listing has brought it, and grants its
// pending:<email> record once one has; a user.updated of the invitee
// changes nothing; the acceptance replaces the pending record by the user.
// No grant of a user that does not exist is ever published.
func TestInviteesFromWebhooks(t *testing.T) {
	ctx := context.Background()
	s, c := webhookStack(t, 200)
	org := s.Sim.Org()
	pending := "pending:nina.invitee@example.com"
	sentinel := activeUser(t, s.Sim, 0)
	// touch changes an active user, so that the events of everything sent
	// before it have passed once the records converge.
	touches := 0
	touch := func(what string) {
		t.Helper()
		touches++
		deliver(t, what+" (then a sentinel change)", func() (zoomtest.Delivery, error) {
			return s.Sim.UpdateUser(ctx, sentinel.ID, zoomtest.Profile{Dept: zoomtest.Ptr("Sentinel " + strings.Repeat("i", touches))})
		})
		convergeExcept(t, s, c, what, pending)
	}

	reads := s.Sim.Requests()["GET /users/{userId}"]
	var invitee string
	deliver(t, "user.created (invitation)", func() (zoomtest.Delivery, error) {
		id, d, err := s.Sim.InviteUser(ctx, zoomtest.User{Email: "Nina.Invitee@Example.com", FirstName: "Nina", Type: 1})
		invitee = id
		return d, err
	})
	waitFor(t, 15*time.Second, func() bool { return s.Sim.Requests()["GET /users/{userId}"] > reads }) // the invitee read back
	touch("user.created (invitation)")
	deliver(t, "group.member_added (invitee, not yet listed)", func() (zoomtest.Delivery, error) {
		return s.Sim.AddGroupMember(ctx, org.Groups[0].ID, invitee)
	})
	touch("group.member_added (invitee, not yet listed)")
	got := snapshot(t, s)
	for k := range got {
		if strings.Contains(k, invitee) || strings.Contains(k, pending) {
			t.Errorf("before any listing of the invitee: got %s", k)
		}
	}

	// A full sync lists the invitee, with its grant of group 0.
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync: %s (%s)", op, d.Error)
	}
	requireSame(t, "records after the sync", snapshot(t, s), expected(s))
	mark := c.mark()
	deliver(t, "group.member_added (invitee, listed)", func() (zoomtest.Delivery, error) {
		return s.Sim.AddGroupMember(ctx, org.Groups[1].ID, invitee)
	})
	converge(t, s, c, "group.member_added (invitee, listed)")
	deliver(t, "user.updated (invitee)", func() (zoomtest.Delivery, error) {
		return s.Sim.UpdateUser(ctx, invitee, zoomtest.Profile{LastName: zoomtest.Ptr("Invitee")})
	})
	touch("user.updated (invitee)")
	for _, ev := range c.since(mark) {
		if ev.Subject == pending && ev.Type != "clarity.service_user_entitlement.created" || strings.HasPrefix(ev.Subject, invitee) {
			t.Errorf("while the invitation is pending: got %s %s", ev.Type, ev.Subject)
		}
	}

	mark = c.mark()
	deliver(t, "user.invitation_accepted", func() (zoomtest.Delivery, error) { return s.Sim.AcceptInvitation(ctx, invitee) })
	converge(t, s, c, "user.invitation_accepted")
	for _, ev := range c.since(mark) {
		if ev.Type == "clarity.service_user.deleted" && ev.Subject == pending && ev.Removal != clarity.RemovalAbsent {
			t.Errorf("the accepted invitation's pending record: removal %q, want %q", ev.Removal, clarity.RemovalAbsent)
		}
	}
	noOrphanGrants(t, c)
	requireSame(t, "records after the acceptance", snapshot(t, s), expected(s))
}

// TestRemovalReasons: the deleted event of a user says why it went:
// disassociated and deleted as the webhooks say, absent for a user the next
// full sync no longer lists (its webhook lost).
func TestRemovalReasons(t *testing.T) {
	ctx := context.Background()
	s, c := webhookStack(t, 200)
	sc := checkSchema(t, s)
	left, gone, lost := activeUser(t, s.Sim, 0), activeUser(t, s.Sim, 1), activeUser(t, s.Sim, 2)
	mark := c.mark()
	deliver(t, "user.disassociated", func() (zoomtest.Delivery, error) { return s.Sim.RemoveUser(ctx, left.ID, "disassociate") })
	deliver(t, "user.deleted", func() (zoomtest.Delivery, error) { return s.Sim.RemoveUser(ctx, gone.ID, "delete") })
	converge(t, s, c, "removals")
	s.Sim.SetWebhookURL("") // the next removal's webhook is lost
	if _, err := s.Sim.RemoveUser(ctx, lost.ID, "delete"); err != nil {
		t.Fatal(err)
	}
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync: %s (%s)", op, d.Error)
	}
	want := map[string]string{left.ID: clarity.RemovalDisassociated, gone.ID: clarity.RemovalDeleted, lost.ID: clarity.RemovalAbsent}
	got := map[string]string{}
	for _, ev := range c.since(mark) {
		if strings.HasPrefix(ev.Type, "clarity.service_user.") && ev.Type == "clarity.service_user.deleted" {
			got[ev.Subject] = ev.Removal
		} else if ev.Removal != "" {
			t.Errorf("%s %s: removal %q, want none on any other event", ev.Type, ev.Subject, ev.Removal)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("users deleted with removal %v, want %v", got, want)
	}
	requireSame(t, "records after the sync", snapshot(t, s), expected(s))
	sc.settled(s)
}

// TestLicenceTiers: users' Zoom United plans and license_info_list
// bundles are license entitlements with Zoom's names, held by those users,
// and the Zoom IQ roles are role entitlements; a deactivated user loses
// every licence, as in Zoom, and its records follow from the
// webhook; a resync of the unchanged account emits nothing but its sync
// events.
func TestLicenceTiers(t *testing.T) {
	ctx := context.Background()
	org := zoomtest.Generate(23, zoomtest.Size{Users: 200, Groups: 4, Roles: 4})
	org.Roles = append(org.Roles, zoomtest.Role{ID: "iqRoleA", Name: "IQ Admin", Description: "Zoom Revenue Accelerator admin", Type: "iq"})
	var tiered []string
	for i := range org.Users {
		u := &org.Users[i]
		if u.Status != zoomtest.StatusActive || u.Type != zoomtest.TypeLicensed || u.RoleID == zoomtest.RoleOwner {
			continue
		}
		switch len(tiered) {
		case 0, 1:
			u.PlanUnitedType = "1024"
			u.LicenseInfoList = []zoomtest.LicenseInfo{{LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 134217728, SubscriptionID: "SUBREF-9"}}
		case 2:
			u.LicenseInfoList = []zoomtest.LicenseInfo{{LicenseType: "MEETING", LicenseOption: 2}, {LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 16}}
		default:
			continue
		}
		tiered = append(tiered, u.ID)
	}
	if len(tiered) < 3 {
		t.Fatal("too few licensed users")
	}
	s := startStack(t, org, zoomtest.Options{}, nil)
	sc := checkSchema(t, s)
	c := collect(t, s)
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	got := snapshot(t, s)
	sc.settled(s)
	requireSame(t, "records after the first sync", got, expected(s))
	for k, name := range map[string]string{
		"entitlement|license:united:1024":                                "Zoom United Ent-United with US/CA Unlimited",
		"entitlement|license:zoom_workplace_bundle:134217728":            "Zoom Workplace Enterprise Premier with US/CA Unlimited",
		"entitlement|license:zoom_workplace_bundle:16":                   "Zoom Workplace Business Plus with US/CA Unlimited",
		"entitlement|role:iqRoleA":                                       "IQ Admin",
		"service_user_entitlement|" + tiered[0] + "|license:united:1024": "",
	} {
		var e struct{ Name string }
		if d, ok := got[k]; !ok {
			t.Errorf("no %s", k)
		} else if _ = json.Unmarshal(d, &e); name != "" && e.Name != name {
			t.Errorf("%s: name %q, want %q", k, e.Name, name)
		}
	}
	if _, ok := got["entitlement|license:meeting:2"]; ok {
		t.Error("MEETING 2 is an entitlement of its own, want it to be license:licensed")
	}

	// Deactivation removes every licence (PUT /users/{userId}/status).
	s.Sim.SetWebhookURL(s.WebhookURL)
	deliver(t, "user.deactivated", func() (zoomtest.Delivery, error) { return s.Sim.DeactivateUser(ctx, tiered[0]) })
	converge(t, s, c, "user.deactivated")
	for k := range snapshot(t, s) {
		if strings.HasPrefix(k, "service_user_entitlement|"+tiered[0]+"|license:") && !strings.HasSuffix(k, "|license:basic") {
			t.Errorf("the deactivated user still holds %s", k)
		}
	}
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("second sync: %s (%s)", op, d.Error)
	}
	mark := c.mark()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted || d.Stats.Created+d.Stats.Updated+d.Stats.Deleted != 0 {
		t.Fatalf("resync: %s (%s), stats %+v; want completed without changes", op, d.Error, d.Stats)
	}
	for _, ev := range c.since(mark) {
		if !strings.HasPrefix(ev.Type, "clarity.sync.") {
			t.Errorf("resync of an unchanged account: got %s %s", ev.Type, ev.Subject)
		}
	}
	requireSame(t, "records after the resync", snapshot(t, s), expected(s))
	requireSame(t, "records rebuilt from the events", c.snapshot(), expected(s))
}

// deliver makes a change in the simulator and requires its webhook to have
// been accepted.
func deliver(t *testing.T, what string, do func() (zoomtest.Delivery, error)) {
	t.Helper()
	d, err := do()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d.Status != http.StatusOK {
		t.Fatalf("%s: webhook answered %d (%v), want 200", what, d.Status, d.Err)
	}
}

// convergeExcept is converge with the records of one user left out, of
// what the organisation implies and of what the events gave: an invitee,
// whom Zoom reads back by id as no more than its id, so that only a listing
// or its acceptance tells the connector about it.
func convergeExcept(t *testing.T, s *devstack.Stack, c *collector, what, userKey string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	without := func(m map[string]json.RawMessage) map[string]json.RawMessage {
		for k := range m {
			if _, key, _ := strings.Cut(k, "|"); key == userKey || strings.HasPrefix(key, userKey+"|") {
				delete(m, k)
			}
		}
		return m
	}
	for {
		diffs := diffRecords(without(c.snapshot()), without(expected(s)))
		if len(diffs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: records never matched the organisation; %d differences, first:\n%s",
				what, len(diffs), strings.Join(diffs[:min(15, len(diffs))], "\n"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// noOrphanGrants fails for any grant or attribute event whose user had no
// live record when it was published.
func noOrphanGrants(t *testing.T, c *collector) {
	t.Helper()
	live := map[string]bool{}
	for _, ev := range c.since(0) {
		parts := strings.Split(ev.Type, ".")
		if len(parts) != 3 {
			continue
		}
		kind, op := parts[1], parts[2]
		switch kind {
		case clarity.KindServiceUser:
			live[ev.Subject] = op != clarity.OpDeleted
		case clarity.KindServiceUserEntitlement, clarity.KindServiceUserAttribute:
			if op == clarity.OpDeleted {
				continue
			}
			var d struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal(ev.Data, &d); err != nil || !live[d.UserID] {
				t.Errorf("%s %s: its user %q does not exist", ev.Type, ev.Subject, d.UserID)
			}
		}
	}
}

// TestDailyLimitWithoutHeaders: Zoom's daily limit answers 429 with a
// message and no rate-limit headers. A sync that
// meets it fails at once, saying so, instead of retrying a limit that
// resets only at midnight UTC; its requests stop with the first refusal of
// each listing.
func TestDailyLimitWithoutHeaders(t *testing.T) {
	org := zoomtest.Generate(29, zoomtest.Size{Users: 400, Groups: 4, Roles: 3})
	s := startStack(t, org, zoomtest.Options{OmitRateLimitHeaders: true, RateLimits: zoomtest.RateLimits{MediumDaily: 3}},
		map[string]int{"webhook": 0})
	c := collect(t, s)
	op, d := sync1(t, s, c)
	if op != clarity.OpFailed || !strings.Contains(d.Error, "daily") {
		t.Fatalf("sync over the daily limit: got %s (%q), want failed naming the daily limit", op, d.Error)
	}
	medium := 0
	for route, n := range s.Sim.Requests() {
		if route == "GET /users" || route == "GET /groups" || route == "GET /roles" || route == "GET /groups/{groupId}/admins" {
			medium += n
		}
	}
	// Three answered, and at most one refusal per listing running at once.
	if medium > 3+8 {
		t.Errorf("%d Medium requests, want the sync to stop asking after the daily limit", medium)
	}
	t.Logf("sync failed after %d Medium requests: %s", medium, d.Error)
}

// TestRemovalByProvisioning: a user removed through remove_user is deleted
// from the read-back that finds it gone (no webhook arrives here), and its
// deleted event says how: disassociated by default, deleted with
// "mode":"delete".
func TestRemovalByProvisioning(t *testing.T) {
	org := zoomtest.Generate(31, zoomtest.Size{Users: 60, Groups: 2, Roles: 3})
	p := startProvStack(t, org, nil)
	users := pickUsers(t, org, 2)
	mark := p.c.mark()
	for i, req := range []clarity.ProvisionRequest{
		{Action: clarity.ActionRemoveUser, User: users[0].ID},
		{Action: clarity.ActionRemoveUser, User: users[1].ID, Mode: clarity.RemoveDelete},
	} {
		req.RequestID = "rm-" + strings.Repeat("x", i+1)
		requireResult(t, p.send(t, p.ref, req), req, clarity.ResultSucceeded, 0, 0)
	}
	waitRecords(t, p.c, expected(p.Stack))
	got := map[string]string{}
	for _, ev := range p.c.since(mark) {
		if ev.Type == "clarity.service_user.deleted" {
			got[ev.Subject] = ev.Removal
		}
	}
	want := map[string]string{users[0].ID: clarity.RemovalDisassociated, users[1].ID: clarity.RemovalDeleted}
	if !maps.Equal(got, want) {
		t.Errorf("users deleted with removal %v, want %v", got, want)
	}
}
