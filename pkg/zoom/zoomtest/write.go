package zoomtest

import (
	"net/http"
	"strings"
)

// The write endpoints apply the same mutations as the Server methods and
// send the same webhook notifications, in the background, since Zoom
// notifies after it has answered the call.

type memberRef struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// key is the id when given (Zoom ignores the email then), else the email.
func (m memberRef) key() string {
	if m.ID != "" {
		return m.ID
	}
	return m.Email
}

func (a *Account) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action   string `json:"action"`
		UserInfo struct {
			Email       string `json:"email"`
			Type        int    `json:"type"`
			FirstName   string `json:"first_name"`
			LastName    string `json:"last_name"`
			DisplayName string `json:"display_name"`
		} `json:"user_info"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	status := StatusActive
	switch body.Action {
	case "create":
		status = StatusPending
	case "autoCreate", "custCreate", "ssoCreate":
	default:
		writeValidation(w, "action", "Invalid field.")
		return
	}
	ui := body.UserInfo
	if ui.Email == "" {
		writeValidation(w, "user_info.email", "Invalid field.")
		return
	}
	switch ui.Type {
	case TypeBasic, TypeLicensed, TypeUnassigned, TypeNone:
	default:
		writeValidation(w, "user_info.type", "Invalid field.")
		return
	}
	u := User{Email: ui.Email, Type: ui.Type, FirstName: ui.FirstName, LastName: ui.LastName, DisplayName: ui.DisplayName}
	var id string
	err := a.mutateAsync(func(st *state) ([]event, error) {
		var ev event
		var err error
		id, ev, err = st.addUserCore(u, status, body.Action, a.srv.now())
		return []event{ev}, err
	})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"id": id, "first_name": u.FirstName, "last_name": u.LastName, "email": u.Email, "type": u.Type,
	})
}

func (a *Account) patchUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type             *int              `json:"type"`
		FirstName        *string           `json:"first_name"`
		LastName         *string           `json:"last_name"`
		DisplayName      *string           `json:"display_name"`
		Dept             *string           `json:"dept"`
		Timezone         *string           `json:"timezone"`
		Language         *string           `json:"language"`
		JobTitle         *string           `json:"job_title"`
		Company          *string           `json:"company"`
		Location         *string           `json:"location"`
		Manager          *string           `json:"manager"`
		CostCenter       *string           `json:"cost_center"`
		CustomAttributes []CustomAttribute `json:"custom_attributes"`
		GroupID          *string           `json:"group_id"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Type != nil {
		switch *body.Type {
		case TypeBasic, TypeLicensed, TypeUnassigned, TypeNone:
		default:
			writeValidation(w, "type", "Invalid field.")
			return
		}
	}
	if len(body.CustomAttributes) > 5 {
		writeValidation(w, "custom_attributes", "Invalid field.")
		return
	}
	key := r.PathValue("userId")
	if a.seatRefused(w, key, body.Type) {
		return
	}
	p := Profile{
		FirstName: body.FirstName, LastName: body.LastName, DisplayName: body.DisplayName,
		Dept: body.Dept, Timezone: body.Timezone, Language: body.Language, JobTitle: body.JobTitle,
		Company: body.Company, Location: body.Location, Manager: body.Manager, CostCenter: body.CostCenter,
		Type: body.Type,
	}
	err := a.mutateAsync(func(st *state) ([]event, error) {
		evs, err := st.patchUserCore(key, p, body.CustomAttributes, nil)
		if err != nil || body.GroupID == nil || *body.GroupID == "" {
			return evs, err
		}
		// group_id applies to pending users only, per the OpenAPI.
		if su := st.lookupUser(key); su != nil && su.u.Status == StatusPending {
			more, err := st.addMembersCore(*body.GroupID, []string{key})
			return append(evs, more...), err
		}
		return evs, nil
	})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Account) deleteUser(w http.ResponseWriter, r *http.Request) {
	key, action := r.PathValue("userId"), r.URL.Query().Get("action")
	if a.transferRefused(w, r) {
		return
	}
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.removeUserCore(key, action) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// putUserStatus answers 200 with no body, as the 2026 OpenAPI says (older
// documents said 204).
func (a *Account) putUserStatus(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Action string `json:"action"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	switch body.Action {
	case "activate", "deactivate", "clock_in", "clock_out":
	default:
		writeValidation(w, "action", "Invalid field.")
		return
	}
	key := r.PathValue("userId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.setStatusCore(key, body.Action) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (a *Account) createGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	var id string
	err := a.mutateAsync(func(st *state) ([]event, error) {
		var err error
		var evs []event
		id, evs, err = st.addGroupCore(body.Name)
		return evs, err
	})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, groupItem{ID: id, Name: body.Name})
}

func (a *Account) patchGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	id := r.PathValue("groupId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.renameGroupCore(id, body.Name) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Account) deleteGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("groupId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.deleteGroupCore(id) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readMembers reads {"<field>":[{"id"}|{"email"}]} with at most max items.
func readMembers(w http.ResponseWriter, r *http.Request, field string, max int) ([]string, bool) {
	var body map[string][]memberRef
	if !decodeBody(w, r, &body) {
		return nil, false
	}
	refs := body[field]
	if len(refs) == 0 || len(refs) > max {
		writeValidation(w, field, "Invalid field.")
		return nil, false
	}
	keys := make([]string, 0, len(refs))
	for _, m := range refs {
		if m.key() == "" {
			writeValidation(w, field, "Invalid field.")
			return nil, false
		}
		keys = append(keys, m.key())
	}
	return keys, true
}

// idsOf returns the user ids of keys, comma-separated, as the "ids" field of
// Zoom's 201 answers.
func (a *Account) idsOf(keys []string) string {
	a.st.mu.RLock()
	defer a.st.mu.RUnlock()
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if su := a.st.lookupUser(k); su != nil {
			ids = append(ids, su.u.ID)
		}
	}
	return strings.Join(ids, ",")
}

func (a *Account) addGroupMembers(w http.ResponseWriter, r *http.Request) {
	keys, ok := readMembers(w, r, "members", 30)
	if !ok {
		return
	}
	id := r.PathValue("groupId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.addMembersCore(id, keys) }); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"ids": a.idsOf(keys), "added_at": zoomTime(a.srv.now())})
}

func (a *Account) deleteGroupMember(w http.ResponseWriter, r *http.Request) {
	id, member := r.PathValue("groupId"), r.PathValue("memberId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.removeMemberCore(id, member) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Account) addGroupAdmins(w http.ResponseWriter, r *http.Request) {
	keys, ok := readMembers(w, r, "admins", 10)
	if !ok {
		return
	}
	id := r.PathValue("groupId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.addAdminsCore(id, keys, true) }); err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"ids": a.idsOf(keys), "added_at": zoomTime(a.srv.now())})
}

func (a *Account) deleteGroupAdmin(w http.ResponseWriter, r *http.Request) {
	id, user := r.PathValue("groupId"), r.PathValue("userId")
	if err := a.mutateAsync(func(st *state) ([]event, error) { return st.removeAdminCore(id, user) }); err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fixedRole refuses changes to the Owner and Member roles, as Zoom does
// ("Can't delete or add members for Normal/Owner roles.").
func fixedRole(w http.ResponseWriter, roleID string) bool {
	if roleID == RoleOwner || roleID == RoleMember {
		writeError(w, http.StatusBadRequest, 300, "Can't delete or add members for Normal/Owner roles.")
		return true
	}
	return false
}

func (a *Account) addRoleMembers(w http.ResponseWriter, r *http.Request) {
	roleID := r.PathValue("roleId")
	keys, ok := readMembers(w, r, "members", 30)
	if !ok || fixedRole(w, roleID) {
		return
	}
	err := a.mutateAsync(func(st *state) ([]event, error) {
		return st.setRoleCore(keys, roleID, a.srv.opts.RoleChangeWebhook)
	})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	// "add_at", not "added_at": the spelling of Zoom's roles API.
	writeJSON(w, http.StatusCreated, map[string]any{"ids": a.idsOf(keys), "add_at": zoomTime(a.srv.now())})
}

// deleteRoleMember withdraws a role; the user falls back to Member, which is
// what Zoom presumably does (Zoom's documents do not confirm it).
func (a *Account) deleteRoleMember(w http.ResponseWriter, r *http.Request) {
	roleID, member := r.PathValue("roleId"), r.PathValue("memberId")
	if fixedRole(w, roleID) {
		return
	}
	err := a.mutateAsync(func(st *state) ([]event, error) {
		if _, ok := st.role(roleID); !ok {
			return nil, roleMissing()
		}
		su, err := st.mustUser(member)
		if err != nil {
			return nil, err
		}
		if su.u.RoleID != roleID {
			return nil, apiErr(ErrNotMember, http.StatusNotFound, 1001, "User does not exist: %s.", member)
		}
		return st.setRoleCore([]string{member}, RoleMember, a.srv.opts.RoleChangeWebhook)
	})
	if err != nil {
		writeAPIError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
