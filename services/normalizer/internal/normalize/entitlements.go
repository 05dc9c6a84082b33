package normalize

import (
	"fmt"
	"slices"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// GroupEntitlements are the two entitlements every Zoom group yields,
// whether or not anyone holds them: membership and administration. The id
// is cut by BoundID; the name is cut so that the administration's name,
// which adds a suffix to it, is within MaxValueBytes too, and both
// entitlements carry the same name.
func GroupEntitlements(g *zoom.Group) (member, admin clarity.Entitlement) {
	id, name := BoundID(g.ID), boundEscaped(g.Name, MaxValueBytes-len(adminSuffix))
	member = clarity.Entitlement{
		ID:     clarity.GroupKey(id),
		Type:   clarity.EntitlementGroup,
		ZoomID: id,
		Name:   name,
	}
	admin = clarity.Entitlement{
		ID:     clarity.GroupAdminKey(id),
		Type:   clarity.EntitlementGroupAdmin,
		ZoomID: id,
		Name:   name + adminSuffix,
	}
	return member, admin
}

// RoleEntitlement is the entitlement a Zoom role yields, with Zoom's
// description of the role; the id is cut by BoundID, the name and
// description by BoundValue.
func RoleEntitlement(r *zoom.Role) clarity.Entitlement {
	id := BoundID(r.ID)
	return clarity.Entitlement{
		ID:          clarity.RoleKey(id),
		Type:        clarity.EntitlementRole,
		ZoomID:      id,
		Name:        BoundValue(r.Name),
		Description: BoundValue(r.Description),
	}
}

// groupsPage maps one page of GET /groups.
func groupsPage(b *pb.RecordBatch, body []byte) (Stats, error) {
	var list zoom.GroupList
	if err := decode(body, "groups page", &list); err != nil {
		return Stats{}, err
	}
	// encoding/json leaves the slice nil only when the field is missing or
	// null: such an answer is no page, and must never read as an empty listing.
	if list.Groups == nil {
		return Stats{}, fmt.Errorf("%w: no groups array", ErrBadPage)
	}
	st := Stats{Items: len(list.Groups)}
	recs := make([]*pb.Record, 0, 2*len(list.Groups))
	for i := range list.Groups {
		g := &list.Groups[i]
		if g.ID == "" {
			st.Skipped++
			continue
		}
		member, admin := GroupEntitlements(g)
		recs = append(recs, EntitlementRecord(&member), EntitlementRecord(&admin))
	}
	b.Records = recs
	return st, nil
}

// rolesPage maps GET /roles, which Zoom does not page, so each run has
// exactly one roles page. The license entitlements come with it: they exist
// in every account and have no listing of their own, and riding on the one
// page every run has makes a complete run always see them.
func rolesPage(b *pb.RecordBatch, body []byte) (Stats, error) {
	var list zoom.RoleList
	if err := decode(body, "roles", &list); err != nil {
		return Stats{}, err
	}
	// encoding/json leaves the slice nil only when the field is missing or
	// null: such an answer is no page, and must never read as an empty listing.
	if list.Roles == nil {
		return Stats{}, fmt.Errorf("%w: no roles array", ErrBadPage)
	}
	st := Stats{Items: len(list.Roles)}
	recs := make([]*pb.Record, 0, len(list.Roles)+len(clarity.Licenses))
	for i := range list.Roles {
		r := &list.Roles[i]
		if r.ID == "" {
			st.Skipped++
			continue
		}
		e := RoleEntitlement(r)
		recs = append(recs, EntitlementRecord(&e))
	}
	for i := range clarity.Licenses {
		recs = append(recs, EntitlementRecord(&clarity.Licenses[i]))
	}
	b.Records = recs
	return st, nil
}

// groupAdminsPage maps one page of GET /groups/{groupId}/admins. It makes no
// records: Zoom names admins by email only, and only the writer knows which
// user has which email, so the batch carries the emails for it to resolve.
func groupAdminsPage(b *pb.RecordBatch, groupID string, body []byte) (Stats, error) {
	if groupID == "" {
		return Stats{}, fmt.Errorf("%w: group admins page without group id", ErrBadPage)
	}
	// The writer keys the group's admin entitlement by this id: it is cut
	// as the groups listing cuts it.
	groupID = BoundID(groupID)
	var list zoom.GroupAdminList
	if err := decode(body, "group admins page", &list); err != nil {
		return Stats{}, err
	}
	// encoding/json leaves the slice nil only when the field is missing or
	// null: such an answer is no page, and must never read as an empty listing.
	if list.Admins == nil {
		return Stats{}, fmt.Errorf("%w: no admins array", ErrBadPage)
	}
	st := Stats{Items: len(list.Admins)}
	emails := make([]string, 0, len(list.Admins))
	for _, a := range list.Admins {
		if e := normEmail(a.Email); e != "" {
			emails = append(emails, e)
		} else {
			st.Skipped++
		}
	}
	b.GroupAdmins = &pb.GroupAdmins{GroupId: groupID, Emails: AdminEmails(emails)}
	return st, nil
}

// AdminEmails normalizes a list of group-admin emails in place and returns
// it: cut to their bound as users' emails are, trimmed, lower-cased, without
// empties and duplicates, sorted, so that the same admins always make the
// same list.
func AdminEmails(emails []string) []string {
	out := emails[:0]
	for _, e := range emails {
		if e = normEmail(e); e != "" {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
