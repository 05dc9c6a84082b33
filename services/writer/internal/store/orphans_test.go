package store_test

import (
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestMemberAddedOfAnInvitee: group.member_added names a member by id and
// email, and the normalizer grants both the id and the invitee key of the
// email. Of an invitee (stored as pending:<email>) only that key keeps the
// grant; of a member (stored by id) only the id; of a user stored under
// neither, nothing is stored, and a deleted user gets nothing back. No
// grant of a user that does not exist is stored or published.
func TestMemberAddedOfAnInvitee(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g := clarity.GroupKey("g1")
	invitee := "pending:new.hire@example.com"
	syncRun(t, s, pool, newRun("r1", 0), nil, group(t, "g1", "Sales"),
		user(t, invitee, "New.Hire@example.com", "Nina"), user(t, "u1", "alice@example.com", "Alice"),
		user(t, "u9", "gone@example.com", "Gone"))
	applyChange(t, s, del(500, pb.Kind_KIND_SERVICE_USER, "u9"))
	take(t, pool)

	applyChange(t, s, change(1000,
		grant(t, "p1", g), grant(t, invitee, g), // the invitee: its id, its email
		grant(t, "u1", g), grant(t, "pending:alice@example.com", g), // a member
		grant(t, "u7", g), grant(t, "pending:new@example.com", g), // no user at all
		grant(t, "u9", g), grant(t, "pending:gone@example.com", g))) // a user deleted
	wantSet(t, take(t, pool), ev(clarity.OpCreated, gk(invitee, g)), ev(clarity.OpCreated, gk("u1", g)))
	wantLive(t, pool, clarity.KindEntitlement+" "+g, uk(invitee), uk("u1"), gk(invitee, g), gk("u1", g))
}
