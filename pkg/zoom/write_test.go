package zoom

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestWriteCalls makes each write call against the simulator and checks
// the account afterwards, the refusals' status and code, and the count of
// write requests.
func TestWriteCalls(t *testing.T) {
	org := zoomtest.Generate(21, zoomtest.Size{Users: 30, Groups: 3, Roles: 4})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	c, err := New(Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acct := sim.DefaultAccount()
	var u, v zoomtest.User
	for _, x := range org.Users {
		if x.Status == zoomtest.StatusActive && x.RoleID == zoomtest.RoleMember && x.Type == zoomtest.TypeBasic {
			if u.ID == "" {
				u = x
			} else if v.ID == "" {
				v = x
			}
		}
	}
	g := org.Groups[0].ID
	for _, x := range org.Groups {
		if !slices.Contains(u.GroupIDs, x.ID) {
			g = x.ID
		}
	}
	find := func(id string) zoomtest.User {
		for _, x := range acct.Org().Users {
			if x.ID == id {
				return x
			}
		}
		return zoomtest.User{}
	}
	writes := acct.WriteRequests()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("add member", c.AddGroupMember(ctx, g, u.ID))
	if !slices.Contains(find(u.ID).GroupIDs, g) {
		t.Fatal("add member: not a member")
	}
	must("remove member", c.RemoveGroupMember(ctx, g, u.ID))
	if slices.Contains(find(u.ID).GroupIDs, g) {
		t.Fatal("remove member: still a member")
	}
	must("add admin", c.AddGroupAdmin(ctx, g, u.ID))
	admins, err := c.GroupAdminEmails(ctx, g)
	must("list admins", err)
	if !slices.Contains(admins, u.Email) {
		t.Fatalf("add admin: admins %v", admins)
	}
	must("remove admin", c.RemoveGroupAdmin(ctx, g, u.ID))
	must("type", c.SetUserType(ctx, u.ID, UserTypeLicensed))
	if find(u.ID).Type != zoomtest.TypeLicensed {
		t.Fatal("type: not licensed")
	}
	must("deactivate", c.SetUserStatus(ctx, u.ID, StatusDeactivate))
	if find(u.ID).Status != zoomtest.StatusInactive {
		t.Fatal("deactivate: still active")
	}
	must("activate", c.SetUserStatus(ctx, u.ID, StatusActivate))
	role := ""
	for _, r := range org.Roles {
		if r.ID != zoomtest.RoleOwner && r.ID != zoomtest.RoleAdmin && r.ID != zoomtest.RoleMember {
			role = r.ID
		}
	}
	must("add role", c.AddRoleMember(ctx, role, u.ID))
	if find(u.ID).RoleID != role {
		t.Fatal("add role: not given")
	}
	must("remove role", c.RemoveRoleMember(ctx, role, u.ID))
	if find(u.ID).RoleID != zoomtest.RoleMember {
		t.Fatal("remove role: not Member")
	}
	invited, err := c.CreateUser(ctx, CreateInvite, "invitee@example.com", UserTypeBasic)
	must("invite", err)
	body, ok, err := c.PendingUser(ctx, "INVITEE@example.com")
	if err != nil || !ok || len(body) == 0 || invited.ID == "" {
		t.Fatalf("pending user: %v %v %s (invited %+v)", ok, err, body, invited)
	}
	must("remove pending", c.DeleteUser(ctx, "invitee@example.com", RemoveDisassociate, ""))
	if _, ok, err := c.PendingUser(ctx, "invitee@example.com"); ok || err != nil {
		t.Fatalf("pending user after removal: %v %v", ok, err)
	}
	// transfer_email must be an active user of the account.
	err = c.DeleteUser(ctx, u.ID, RemoveDelete, "nobody@example.com")
	if s, code := Answer(err); s != 400 || code != 300 {
		t.Fatalf("delete with a bad transfer: %v", err)
	}
	must("delete with transfer", c.DeleteUser(ctx, u.ID, RemoveDelete, v.Email))
	if _, err := c.ReadUser(ctx, u.ID); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("deleted user read: %v", err)
	}
	// Licences beyond the seats: refused, or silently not given.
	licensed := 0
	for _, x := range acct.Org().Users {
		if x.Type == zoomtest.TypeLicensed {
			licensed++
		}
	}
	acct.SetSeatLimit(&zoomtest.SeatLimit{Licensed: licensed})
	if s, code := Answer(c.SetUserType(ctx, v.ID, UserTypeLicensed)); s != 400 || code != zoomtest.CodeNoLicense {
		t.Fatalf("beyond the seats: %d %d", s, code)
	}
	acct.SetSeatLimit(&zoomtest.SeatLimit{Licensed: licensed, Silent: true})
	must("silently refused", c.SetUserType(ctx, v.ID, UserTypeLicensed))
	if find(v.ID).Type == zoomtest.TypeLicensed {
		t.Fatal("beyond the seats, silently: licensed after all")
	}
	// Refusals carry Zoom's status and code.
	owner, _ := org.Owner()
	if s, code := Answer(c.SetUserStatus(ctx, owner.ID, StatusDeactivate)); s != 400 || code != 200 {
		t.Fatalf("deactivate the owner: %d %d", s, code)
	}
	if s, code := Answer(c.AddGroupMember(ctx, "nosuch", v.ID)); s != 404 || code != 4130 {
		t.Fatalf("unknown group: %d %d", s, code)
	}
	if got := acct.WriteRequests() - writes; got != 17 {
		t.Errorf("write requests: %d, want 17", got)
	}
}
