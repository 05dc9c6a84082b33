package zoomtest

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The mutations change the organisation while it is served, as an admin
// would in Zoom's web portal, and send the webhook notification Zoom sends
// for the change (see webhook.go). They take the user by id or by email
// (case-insensitive), like Zoom's {userId} parameters. Each returns the
// Delivery of its notification (a zero Delivery when the change was a no-op
// or has no Zoom event) and an error wrapping one of the Err… sentinels when
// Zoom would refuse the change; a failed delivery is not an error of the
// mutation, it is reported in Delivery.Err.
//
// Side effects that Zoom applies without a notification are applied too:
// deleting a user removes them from group admin lists, deleting a group
// removes it from its members' group_ids.

// Profile holds the profile fields UpdateUser changes; nil fields are left
// alone. Ptr makes the pointers.
type Profile struct {
	FirstName   *string
	LastName    *string
	DisplayName *string
	Email       *string
	Dept        *string
	Timezone    *string
	Language    *string
	JobTitle    *string
	Company     *string
	Location    *string
	Manager     *string
	CostCenter  *string
	Type        *int
}

// Ptr returns a pointer to v, for Profile fields.
func Ptr[T any](v T) *T { return &v }

// event is a webhook notification about to be sent.
type event struct {
	name         string
	creationType string
	operator     bool // the payload names the operator (every event but invitation_accepted)
	timeStamp    bool // the payload has time_stamp (user.updated and group events)
	object       map[string]any
	oldObject    map[string]any
	// Filled in when the mutation commits.
	operatorEmail, operatorID string
	at                        time.Time
}

// mutate runs fn under the write lock and delivers its first event
// synchronously.
func (a *Account) mutate(ctx context.Context, fn func(st *state) ([]event, error)) (Delivery, error) {
	evs, err := a.commit(fn)
	if err != nil || len(evs) == 0 {
		return Delivery{}, err
	}
	var first Delivery
	for i, ev := range evs {
		d := a.deliver(ctx, ev)
		if i == 0 {
			first = d
		}
	}
	return first, nil
}

// mutateAsync runs fn for a REST request and delivers its events in the
// background, as Zoom notifies after answering the API call.
func (a *Account) mutateAsync(fn func(st *state) ([]event, error)) error {
	evs, err := a.commit(fn)
	if err != nil || len(evs) == 0 {
		return err
	}
	a.srv.wg.Add(1)
	go func() {
		defer a.srv.wg.Done()
		for _, ev := range evs {
			a.deliver(context.Background(), ev)
		}
	}()
	return nil
}

func (a *Account) commit(fn func(st *state) ([]event, error)) ([]event, error) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	evs, err := fn(a.st)
	if err != nil {
		return nil, err
	}
	now := a.srv.now()
	opEmail, opID := "admin@example.com", ""
	if o := a.st.owner(); o != nil {
		opEmail, opID = o.u.Email, o.u.ID
	}
	for i := range evs {
		evs[i].at = now
		evs[i].operatorEmail, evs[i].operatorID = opEmail, opID
	}
	return evs, nil
}

func (st *state) mustUser(key string) (*suser, error) {
	if su := st.lookupUser(key); su != nil {
		return su, nil
	}
	return nil, userNotFound(key)
}

func (st *state) mustGroup(id string) (*sgroup, error) {
	if sg := st.groupByID[id]; sg != nil {
		return sg, nil
	}
	return nil, groupMissing(id)
}

// userObject is the object of user.deactivated, user.activated,
// user.disassociated, user.deleted and user.invitation_accepted.
func userObject(u User) map[string]any {
	return map[string]any{"id": u.ID, "first_name": u.FirstName, "last_name": u.LastName, "email": u.Email, "type": u.Type}
}

// AddUser adds an active user, as an admin creating a user who needs no
// invitation (creation_type "ssoCreate"), and returns its id. Email is
// required; Type defaults to Basic, RoleID to Member, times to now. Webhook:
// user.created.
func (a *Account) AddUser(ctx context.Context, u User) (string, Delivery, error) {
	return a.addUser(ctx, u, StatusActive, "ssoCreate")
}

// InviteUser adds a pending user (an invitation, creation_type "create") and
// returns its internal id, which GET /users does not list until the user
// accepts. Webhook: user.created.
func (a *Account) InviteUser(ctx context.Context, u User) (string, Delivery, error) {
	return a.addUser(ctx, u, StatusPending, "create")
}

func (a *Account) addUser(ctx context.Context, u User, status, creationType string) (string, Delivery, error) {
	var id string
	d, err := a.mutate(ctx, func(st *state) ([]event, error) {
		var ev event
		var err error
		id, ev, err = st.addUserCore(u, status, creationType, a.srv.now())
		return []event{ev}, err
	})
	return id, d, err
}

func (st *state) addUserCore(u User, status, creationType string, now time.Time) (string, event, error) {
	u = u.clone()
	if !strings.Contains(u.Email, "@") {
		return "", event{}, invalid("Invalid field: email.")
	}
	if st.byEmail[strings.ToLower(u.Email)] != nil {
		return "", event{}, apiErr(ErrConflict, http.StatusConflict, 1005, "Email %q has already been used.", u.Email)
	}
	for _, gid := range u.GroupIDs {
		if st.groupByID[gid] == nil {
			return "", event{}, groupMissing(gid)
		}
	}
	if u.RoleID == "" {
		u.RoleID = RoleMember
	}
	if u.RoleID == RoleOwner {
		return "", event{}, invalid("Can't delete or add members for Normal/Owner roles.")
	}
	if _, ok := st.role(u.RoleID); !ok && len(st.roles) > 0 {
		return "", event{}, roleMissing()
	}
	u.ID = randomID()
	u.Status = status
	if u.Type == 0 {
		u.Type = TypeBasic
	}
	now = now.UTC().Truncate(time.Second)
	if u.UserCreatedAt.IsZero() {
		u.UserCreatedAt = now
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.TrimSpace(u.FirstName + " " + u.LastName)
	}
	if status == StatusPending {
		u.Verified = 0
		u.LastLoginTime = time.Time{}
		u.LastClientVersion = ""
	} else if len(u.LoginTypes) == 0 {
		u.LoginTypes = []int{100}
	}
	st.addUser(u)
	return u.ID, event{
		name: "user.created", creationType: creationType, operator: true,
		object: map[string]any{"id": u.ID, "first_name": u.FirstName, "last_name": u.LastName,
			"display_name": u.DisplayName, "email": u.Email, "type": u.Type},
	}, nil
}

// AcceptInvitation turns a pending user into an active one, whose id GET
// /users then lists. Webhook: user.invitation_accepted.
func (a *Account) AcceptInvitation(ctx context.Context, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) {
		su, err := st.mustUser(user)
		if err != nil {
			return nil, err
		}
		if su.u.Status != StatusPending {
			return nil, invalid("User %s is not pending.", user)
		}
		st.update(su, func(u *User) {
			u.Status = StatusActive
			u.Verified = 1
			if len(u.LoginTypes) == 0 {
				u.LoginTypes = []int{100}
			}
		})
		return []event{{name: "user.invitation_accepted", object: userObject(su.u)}}, nil
	})
}

// RemoveUser removes a user from the account with DELETE /users/{userId}'s
// action: "disassociate" (the default when empty) or "delete". Webhook:
// user.disassociated or user.deleted.
func (a *Account) RemoveUser(ctx context.Context, user, action string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.removeUserCore(user, action) })
}

func (st *state) removeUserCore(user, action string) ([]event, error) {
	if action == "" {
		action = "disassociate"
	}
	if action != "disassociate" && action != "delete" {
		return nil, invalid("Invalid field: action.")
	}
	su, err := st.mustUser(user)
	if err != nil {
		return nil, err
	}
	switch {
	case su.u.RoleID == RoleOwner:
		return nil, apiErr(ErrNotAllowed, http.StatusBadRequest, 200, "Cannot delete the account owner.")
	case action == "disassociate" && su.u.RoleID == RoleAdmin:
		return nil, apiErr(ErrNotAllowed, http.StatusBadRequest, 1117, "Cannot disassociate an Admin user.")
	}
	st.removeUser(su)
	email := strings.ToLower(su.u.Email)
	for _, sg := range st.groups {
		sg.g.Admins = slices.DeleteFunc(sg.g.Admins, func(a GroupAdmin) bool { return strings.ToLower(a.Email) == email })
	}
	name := "user.disassociated"
	if action == "delete" {
		name = "user.deleted"
	}
	return []event{{name: name, operator: true, object: userObject(su.u)}}, nil
}

// UpdateUser changes profile fields (and the type, when set). Webhook:
// user.updated whose object and old_object hold the id and the changed
// fields that the event's schema has; job_title, location, manager and
// cost_center are not in that schema, so a change of only those sends an
// object with the id alone. No change sends nothing.
func (a *Account) UpdateUser(ctx context.Context, user string, p Profile) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.patchUserCore(user, p, nil, nil) })
}

// SetUserType changes a user's type (1 Basic, 2 Licensed, 4 Unassigned, or
// any other). Webhook: user.updated with type.
func (a *Account) SetUserType(ctx context.Context, user string, typ int) (Delivery, error) {
	return a.UpdateUser(ctx, user, Profile{Type: &typ})
}

// SetCustomAttribute sets one custom attribute of a user, replacing the one
// with the same key. Webhook: user.updated with custom_attributes (the whole
// list before and after).
func (a *Account) SetCustomAttribute(ctx context.Context, user string, attr CustomAttribute) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) {
		return st.patchUserCore(user, Profile{}, []CustomAttribute{attr}, nil)
	})
}

// RemoveCustomAttribute removes the custom attribute with that key. Webhook:
// user.updated with custom_attributes.
func (a *Account) RemoveCustomAttribute(ctx context.Context, user, key string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) {
		return st.patchUserCore(user, Profile{}, nil, []string{key})
	})
}

// patchUserCore applies profile changes and custom attribute changes as one
// update with one user.updated event.
func (st *state) patchUserCore(user string, p Profile, setAttrs []CustomAttribute, removeAttrs []string) ([]event, error) {
	su, err := st.mustUser(user)
	if err != nil {
		return nil, err
	}
	if p.Email != nil {
		if !strings.Contains(*p.Email, "@") {
			return nil, invalid("Invalid field: email.")
		}
		if other := st.byEmail[strings.ToLower(*p.Email)]; other != nil && other != su {
			return nil, apiErr(ErrConflict, http.StatusConflict, 1005, "Email %q has already been used.", *p.Email)
		}
	}
	if p.Type != nil && *p.Type <= 0 {
		return nil, invalid("Invalid field: type.")
	}
	for _, k := range removeAttrs {
		if !slices.ContainsFunc(su.u.CustomAttributes, func(a CustomAttribute) bool { return a.Key == k }) {
			return nil, apiErr(ErrNotMember, http.StatusNotFound, 300, "Custom attribute %s does not exist.", k)
		}
	}
	obj := map[string]any{"id": su.u.ID}
	old := map[string]any{"id": su.u.ID}
	changed := false
	next := su.u.clone()
	str := func(field string, to *string, cur *string, inEvent bool) {
		if to == nil || *to == *cur {
			return
		}
		changed = true
		if inEvent {
			obj[field], old[field] = *to, *cur
		}
		*cur = *to
	}
	str("first_name", p.FirstName, &next.FirstName, true)
	str("last_name", p.LastName, &next.LastName, true)
	str("display_name", p.DisplayName, &next.DisplayName, true)
	str("email", p.Email, &next.Email, true)
	str("dept", p.Dept, &next.Dept, true)
	str("timezone", p.Timezone, &next.Timezone, true)
	str("language", p.Language, &next.Language, true)
	str("company", p.Company, &next.Company, true)
	str("job_title", p.JobTitle, &next.JobTitle, false)
	str("location", p.Location, &next.Location, false)
	str("manager", p.Manager, &next.Manager, false)
	str("cost_center", p.CostCenter, &next.CostCenter, false)
	if p.Type != nil && *p.Type != next.Type {
		changed = true
		obj["type"], old["type"] = *p.Type, next.Type
		next.Type = *p.Type
	}
	if len(setAttrs) > 0 || len(removeAttrs) > 0 {
		before := slices.Clone(next.CustomAttributes)
		for _, a := range setAttrs {
			if a.Name == "" {
				a.Name = a.Key
			}
			if i := slices.IndexFunc(next.CustomAttributes, func(x CustomAttribute) bool { return x.Key == a.Key }); i >= 0 {
				next.CustomAttributes[i] = a
			} else {
				next.CustomAttributes = append(next.CustomAttributes, a)
			}
		}
		next.CustomAttributes = slices.DeleteFunc(next.CustomAttributes, func(x CustomAttribute) bool {
			return slices.Contains(removeAttrs, x.Key)
		})
		if !slices.Equal(before, next.CustomAttributes) {
			changed = true
			obj["custom_attributes"] = attrsOrEmpty(next.CustomAttributes)
			old["custom_attributes"] = attrsOrEmpty(before)
		}
	}
	if !changed {
		return nil, nil
	}
	st.update(su, func(u *User) { *u = next })
	return []event{{name: "user.updated", operator: true, timeStamp: true, object: obj, oldObject: old}}, nil
}

func attrsOrEmpty(a []CustomAttribute) []CustomAttribute {
	if a == nil {
		return []CustomAttribute{}
	}
	return a
}

// DeactivateUser deactivates an active user. As Zoom documents,
// deactivation "removes all licenses associated with a user": a Licensed
// user (type 2) becomes Basic (type 1), and its Zoom United plan and
// license_info_list go (dropLicences); it stays so when reactivated, which
// Zoom documents as restoring the login only. The owner cannot be
// deactivated. Webhook: user.deactivated.
func (a *Account) DeactivateUser(ctx context.Context, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.setStatusCore(user, "deactivate") })
}

// ActivateUser reactivates an inactive user. Webhook: user.activated.
func (a *Account) ActivateUser(ctx context.Context, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.setStatusCore(user, "activate") })
}

func (st *state) setStatusCore(user, action string) ([]event, error) {
	su, err := st.mustUser(user)
	if err != nil {
		return nil, err
	}
	switch {
	case action == "clock_in" || action == "clock_out":
		return nil, nil
	case action != "activate" && action != "deactivate":
		return nil, invalid("Invalid field: action.")
	case su.u.RoleID == RoleOwner:
		return nil, apiErr(ErrNotAllowed, http.StatusBadRequest, 200, "Zoom Room and Admin users' status cannot be activated or deactivated.")
	case su.u.Status == StatusPending:
		return nil, apiErr(ErrNotAllowed, http.StatusBadRequest, 300, "A pending user cannot be activated or deactivated.")
	}
	if action == "deactivate" {
		if su.u.Status == StatusInactive {
			return nil, nil
		}
		st.update(su, func(u *User) {
			u.Status = StatusInactive
			dropLicences(u)
		})
		return []event{{name: "user.deactivated", operator: true, object: userObject(su.u)}}, nil
	}
	if su.u.Status == StatusActive {
		return nil, nil
	}
	st.update(su, func(u *User) { u.Status = StatusActive })
	return []event{{name: "user.activated", operator: true, object: userObject(su.u)}}, nil
}

// SetUserRole gives a user another role. Zoom has no role events; with
// Options.RoleChangeWebhook the change sends user.updated with the role's
// name in "role", otherwise nothing. The owner's role cannot change and no
// one else can be made owner.
func (a *Account) SetUserRole(ctx context.Context, user, roleID string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) {
		return st.setRoleCore([]string{user}, roleID, a.srv.opts.RoleChangeWebhook)
	})
}

func (st *state) setRoleCore(users []string, roleID string, notify bool) ([]event, error) {
	role, ok := st.role(roleID)
	if !ok {
		return nil, roleMissing()
	}
	if roleID == RoleOwner {
		return nil, invalid("Can't delete or add members for Normal/Owner roles.")
	}
	var targets []*suser
	for _, key := range users {
		su, err := st.mustUser(key)
		if err != nil {
			return nil, err
		}
		if su.u.RoleID == RoleOwner {
			return nil, invalid("Can't delete or add members for Normal/Owner roles.")
		}
		targets = append(targets, su)
	}
	var evs []event
	for _, su := range targets {
		if su.u.RoleID == roleID {
			continue
		}
		oldRole, _ := st.role(su.u.RoleID)
		st.update(su, func(u *User) { u.RoleID = roleID })
		if notify {
			evs = append(evs, event{name: "user.updated", operator: true, timeStamp: true,
				object:    map[string]any{"id": su.u.ID, "role": role.Name},
				oldObject: map[string]any{"id": su.u.ID, "role": oldRole.Name}})
		}
	}
	return evs, nil
}

// AddGroupMember adds a user to a group. Webhook: group.member_added.
func (a *Account) AddGroupMember(ctx context.Context, groupID, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.addMembersCore(groupID, []string{user}) })
}

func (st *state) addMembersCore(groupID string, users []string) ([]event, error) {
	if _, err := st.mustGroup(groupID); err != nil {
		return nil, err
	}
	var added []any
	for _, key := range users {
		su, err := st.mustUser(key)
		if err != nil {
			return nil, err
		}
		if slices.Contains(su.u.GroupIDs, groupID) {
			continue
		}
		st.update(su, func(u *User) { u.GroupIDs = append(u.GroupIDs, groupID) })
		added = append(added, map[string]any{"id": su.u.ID, "email": su.u.Email})
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []event{{name: "group.member_added", operator: true, timeStamp: true,
		object: map[string]any{"id": groupID, "members": added}}}, nil
}

// RemoveGroupMember removes a user from a group. Webhook:
// group.member_deleted.
func (a *Account) RemoveGroupMember(ctx context.Context, groupID, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.removeMemberCore(groupID, user) })
}

func (st *state) removeMemberCore(groupID, user string) ([]event, error) {
	if _, err := st.mustGroup(groupID); err != nil {
		return nil, err
	}
	su := st.lookupUser(user)
	if su == nil || !slices.Contains(su.u.GroupIDs, groupID) {
		return nil, apiErr(ErrNotMember, http.StatusNotFound, 4131, "Group member does not exist.")
	}
	st.update(su, func(u *User) {
		u.GroupIDs = slices.DeleteFunc(u.GroupIDs, func(g string) bool { return g == groupID })
	})
	return []event{{name: "group.member_deleted", operator: true, timeStamp: true,
		object: map[string]any{"id": groupID, "members": []any{map[string]any{"id": su.u.ID, "email": su.u.Email}}}}}, nil
}

// AddGroup creates a group and returns its id. Names are unique per account,
// case-insensitively. Webhook: group.created.
func (a *Account) AddGroup(ctx context.Context, name string) (string, Delivery, error) {
	var id string
	d, err := a.mutate(ctx, func(st *state) ([]event, error) {
		var err error
		var evs []event
		id, evs, err = st.addGroupCore(name)
		return evs, err
	})
	return id, d, err
}

func (st *state) checkGroupName(name, except string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("Invalid parameter: name.")
	}
	for _, sg := range st.groups {
		if sg.g.ID != except && strings.EqualFold(sg.g.Name, name) {
			return apiErr(ErrConflict, http.StatusConflict, 4132, "The group name %q is already in use.", name)
		}
	}
	return nil
}

func (st *state) addGroupCore(name string) (string, []event, error) {
	if err := st.checkGroupName(name, ""); err != nil {
		return "", nil, err
	}
	sg := st.addGroup(Group{ID: randomID(), Name: name})
	return sg.g.ID, []event{{name: "group.created", operator: true, timeStamp: true,
		object: map[string]any{"id": sg.g.ID, "name": name}}}, nil
}

// RenameGroup renames a group. Webhook: group.updated with old_object.
func (a *Account) RenameGroup(ctx context.Context, groupID, name string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.renameGroupCore(groupID, name) })
}

func (st *state) renameGroupCore(groupID, name string) ([]event, error) {
	sg, err := st.mustGroup(groupID)
	if err != nil {
		return nil, err
	}
	if sg.g.Name == name {
		return nil, nil
	}
	if err := st.checkGroupName(name, groupID); err != nil {
		return nil, err
	}
	old := sg.g.Name
	sg.g.Name = name
	return []event{{name: "group.updated", operator: true, timeStamp: true,
		object:    map[string]any{"id": groupID, "name": name},
		oldObject: map[string]any{"id": groupID, "name": old}}}, nil
}

// DeleteGroup deletes a group; its members lose it from their group_ids.
// Webhook: group.deleted.
func (a *Account) DeleteGroup(ctx context.Context, groupID string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.deleteGroupCore(groupID) })
}

func (st *state) deleteGroupCore(groupID string) ([]event, error) {
	sg, err := st.mustGroup(groupID)
	if err != nil {
		return nil, err
	}
	for _, su := range st.all {
		if slices.Contains(su.u.GroupIDs, groupID) {
			st.update(su, func(u *User) {
				u.GroupIDs = slices.DeleteFunc(u.GroupIDs, func(g string) bool { return g == groupID })
			})
		}
	}
	delete(st.groupMembers, groupID)
	delete(st.groupByID, groupID)
	st.groups = slices.DeleteFunc(st.groups, func(x *sgroup) bool { return x == sg })
	return []event{{name: "group.deleted", operator: true, timeStamp: true,
		object: map[string]any{"id": groupID, "name": sg.g.Name}}}, nil
}

// AddGroupAdmin makes the owner of an email an admin of a group. The email
// need not belong to a user of the account, so that tests can model admins
// Zoom lists but the account does not hold. Webhook: group.admin_added.
func (a *Account) AddGroupAdmin(ctx context.Context, groupID, email string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.addAdminsCore(groupID, []string{email}, false) })
}

func (st *state) addAdminsCore(groupID string, users []string, mustExist bool) ([]event, error) {
	sg, err := st.mustGroup(groupID)
	if err != nil {
		return nil, err
	}
	var added []any
	for _, key := range users {
		su := st.lookupUser(key)
		if su == nil && (mustExist || !strings.Contains(key, "@")) {
			return nil, userNotFound(key)
		}
		email, name, item := key, "", map[string]any{"email": key}
		if su != nil {
			email, name = su.u.Email, displayName(su.u)
			item = map[string]any{"id": su.u.ID, "email": su.u.Email}
		}
		if slices.ContainsFunc(sg.g.Admins, func(a GroupAdmin) bool { return strings.EqualFold(a.Email, email) }) {
			continue
		}
		sg.g.Admins = append(sg.g.Admins, GroupAdmin{Email: email, Name: name})
		added = append(added, item)
	}
	if len(added) == 0 {
		return nil, nil
	}
	return []event{{name: "group.admin_added", operator: true, timeStamp: true,
		object: map[string]any{"id": groupID, "admins": added}}}, nil
}

// RemoveGroupAdmin removes an admin of a group, by email (any case) or by
// user id. Webhook: group.admin_deleted.
func (a *Account) RemoveGroupAdmin(ctx context.Context, groupID, user string) (Delivery, error) {
	return a.mutate(ctx, func(st *state) ([]event, error) { return st.removeAdminCore(groupID, user) })
}

func (st *state) removeAdminCore(groupID, user string) ([]event, error) {
	sg, err := st.mustGroup(groupID)
	if err != nil {
		return nil, err
	}
	email := user
	item := map[string]any{"email": user}
	if su := st.lookupUser(user); su != nil {
		email = su.u.Email
		item = map[string]any{"id": su.u.ID, "email": su.u.Email}
	}
	i := slices.IndexFunc(sg.g.Admins, func(a GroupAdmin) bool { return strings.EqualFold(a.Email, email) })
	if i < 0 {
		return nil, apiErr(ErrNotMember, http.StatusBadRequest, 4138, "That user is not an administrator for the group: %q.", groupID)
	}
	sg.g.Admins = slices.Delete(sg.g.Admins, i, i+1)
	return []event{{name: "group.admin_deleted", operator: true, timeStamp: true,
		object: map[string]any{"id": groupID, "admins": []any{item}}}}, nil
}
