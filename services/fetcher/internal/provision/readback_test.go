package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// lostAnswers is a connector's Zoom client whose writes are made but whose
// answers are lost: the client sends each write again, as pkg/zoom does
// after a transport error or a 5xx, and gets Zoom's answer to the repeat.
type lostAnswers struct{ *zoom.Client }

func (l lostAnswers) CreateUser(ctx context.Context, action, email string, typ int) (zoom.User, error) {
	if _, err := l.Client.CreateUser(ctx, action, email, typ); err != nil {
		return zoom.User{}, err
	}
	return l.Client.CreateUser(ctx, action, email, typ)
}

func (l lostAnswers) DeleteUser(ctx context.Context, userID, action, transferEmail string) error {
	if err := l.Client.DeleteUser(ctx, userID, action, transferEmail); err != nil {
		return err
	}
	return l.Client.DeleteUser(ctx, userID, action, transferEmail)
}

func (l lostAnswers) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	if err := l.Client.RemoveGroupMember(ctx, groupID, userID); err != nil {
		return err
	}
	return l.Client.RemoveGroupMember(ctx, groupID, userID)
}

// TestAmbiguousWriteReadBack: a write whose answer was lost and whose
// repeat Zoom refuses (the invitation exists, the user is gone, the member
// is out) is read back, and succeeds when Zoom shows the effect.
func TestAmbiguousWriteReadBack(t *testing.T) {
	h := newHarness(t, time.Minute)
	ctx := context.Background()
	gid := h.org.Groups[0].ID
	var member, other string
	owner, _ := h.org.Owner()
	for _, u := range h.org.Users {
		if u.Status != "active" || u.Type == 0 || u.ID == owner.ID {
			continue
		}
		for _, g := range u.GroupIDs {
			if g == gid && member == "" {
				member = u.ID
			}
		}
		if member != u.ID && other == "" {
			other = u.ID
		}
	}
	if member == "" || other == "" {
		t.Fatal("the simulator's account has no member of a group")
	}
	for _, req := range []clarity.ProvisionRequest{
		{RequestID: "r-invite", Action: clarity.ActionInviteUser, Email: "lost.answer@example.com"},
		{RequestID: "r-remove", Action: clarity.ActionRemoveUser, User: other, Mode: clarity.RemoveDelete},
		{RequestID: "r-ungroup", Action: clarity.ActionRemoveGrant, User: member, Entitlement: "group:" + gid},
	} {
		body := `{"request_id":"` + req.RequestID + `","action":"` + req.Action + `","user":"` + req.User +
			`","entitlement":"` + req.Entitlement + `","email":"` + req.Email + `","mode":"` + req.Mode + `"}`
		r, err := parseRequest([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", req.RequestID, err)
		}
		a := &action{z: lostAnswers{h.z}, req: r, writing: func([]string) error { return nil }}
		out := a.run(ctx)
		if out.err != nil || out.result.Result != clarity.ResultSucceeded {
			t.Errorf("%s: %+v, %v (calls %+v); want succeeded, Zoom showing the effect", req.RequestID, out.result, out.err, a.calls)
		}
	}
}

// TestResumedGroupAdminRefreshes: a group_admin grant taken up again after
// its write (the worker died before the result) claims succeeded and has
// the grant refreshed, as after the write.
func TestResumedGroupAdminRefreshes(t *testing.T) {
	h := newHarness(t, time.Minute)
	ctx := context.Background()
	gid := h.org.Groups[0].ID
	u := h.activeUser(t, "")
	// The run that died made the write.
	if err := h.z.AddGroupAdmin(ctx, gid, u.ID); err != nil {
		t.Fatal(err)
	}
	r, err := parseRequest([]byte(`{"request_id":"r-admin","action":"add_grant","user":"` + u.ID + `","entitlement":"group_admin:` + gid + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	a := &action{z: h.z, req: r, resumed: true, writing: func([]string) error { return nil }}
	out := a.run(ctx)
	if out.err != nil || out.result.Result != clarity.ResultSucceeded {
		t.Fatalf("%+v, %v; want succeeded", out.result, out.err)
	}
	if a.admins == nil || a.admins.GroupID != gid || !a.admins.IsAdmin || a.admins.Email != strings.ToLower(u.Email) {
		t.Fatalf("admins refreshed: %+v; want %s an admin of %s", a.admins, u.Email, gid)
	}
}
