package zoomtest

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageHeader writes the paging fields Zoom puts before the items of a
// listing, in the order of its examples.
func pageHeader(buf *bytes.Buffer, pi pageInfo, p pageParams) {
	buf.WriteString(`{"page_count":`)
	buf.WriteString(strconv.Itoa(pi.pageCount(p.size)))
	buf.WriteString(`,"page_number":`)
	buf.WriteString(strconv.Itoa(p.page))
	buf.WriteString(`,"page_size":`)
	buf.WriteString(strconv.Itoa(p.size))
	buf.WriteString(`,"total_records":`)
	buf.WriteString(strconv.Itoa(pi.total))
	buf.WriteString(`,"next_page_token":"`)
	buf.WriteString(pi.next) // base64url: nothing to escape
	buf.WriteString(`"`)
}

func writeItems(buf *bytes.Buffer, name string, items []*suser, variant int) {
	n := 0
	for _, su := range items {
		n += len(su.render(variant)) + 1
	}
	buf.Grow(n + len(name) + 8)
	buf.WriteString(`,"`)
	buf.WriteString(name)
	buf.WriteString(`":[`)
	for i, su := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(su.render(variant))
	}
	buf.WriteString("]}")
}

// listUsers serves GET /users: one status per call (active by default),
// optionally one role, custom attributes only with
// include_fields=custom_attributes, and no id for pending users.
func (a *Account) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	status := q.Get("status")
	switch status {
	case "":
		status = StatusActive
	case StatusActive, StatusInactive, StatusPending:
	default:
		writeValidation(w, "status", "Invalid field.")
		return
	}
	variant := cacheList
	switch q.Get("include_fields") {
	case "", "host_key": // host keys are not simulated
	case "custom_attributes":
		variant = cacheListCustom
	default:
		writeValidation(w, "include_fields", "Invalid field.")
		return
	}
	roleID := q.Get("role_id")
	p, ok := a.srv.parsePage(w, r, a.listingKey("GET /users", status, roleID), 2000)
	if !ok {
		return
	}
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	a.st.mu.RLock()
	list := a.st.byStatus[status]
	if roleID != "" {
		var filtered []*suser
		for _, su := range list {
			if su.u.RoleID == roleID {
				filtered = append(filtered, su)
			}
		}
		list = filtered
	}
	pi := a.srv.seqPage(p, len(list), func(i int) uint64 { return list[i].seq })
	pageHeader(buf, pi, p)
	writeItems(buf, "users", list[pi.start:pi.end], variant)
	for _, su := range list[pi.start:pi.end] {
		su.returned()
	}
	a.st.mu.RUnlock()
	writeBody(w, http.StatusOK, buf.Bytes())
}

// userDetail is the body of GET /users/{userId}, with the field names of
// Zoom's OpenAPI.
type userDetail struct {
	ID                 string            `json:"id"`
	FirstName          string            `json:"first_name,omitempty"`
	LastName           string            `json:"last_name,omitempty"`
	DisplayName        string            `json:"display_name,omitempty"`
	Email              string            `json:"email"`
	Type               int               `json:"type"`
	RoleName           string            `json:"role_name,omitempty"`
	PMI                int64             `json:"pmi,omitempty"`
	UsePMI             bool              `json:"use_pmi"`
	PersonalMeetingURL string            `json:"personal_meeting_url,omitempty"`
	Timezone           string            `json:"timezone,omitempty"`
	Verified           int               `json:"verified"`
	Dept               string            `json:"dept,omitempty"`
	CreatedAt          string            `json:"created_at,omitempty"`
	UserCreatedAt      string            `json:"user_created_at,omitempty"`
	LastLoginTime      string            `json:"last_login_time,omitempty"`
	LastClientVersion  string            `json:"last_client_version,omitempty"`
	Language           string            `json:"language,omitempty"`
	Status             string            `json:"status"`
	RoleID             string            `json:"role_id,omitempty"`
	AccountID          string            `json:"account_id"`
	AccountNumber      int64             `json:"account_number"`
	Cluster            string            `json:"cluster"`
	GroupIDs           []string          `json:"group_ids,omitempty"`
	EmployeeUniqueID   string            `json:"employee_unique_id,omitempty"`
	JobTitle           string            `json:"job_title,omitempty"`
	Company            string            `json:"company,omitempty"`
	Location           string            `json:"location,omitempty"`
	Manager            string            `json:"manager,omitempty"`
	CostCenter         string            `json:"cost_center,omitempty"`
	LoginTypes         []int             `json:"login_types,omitempty"`
	CustomAttributes   []CustomAttribute `json:"custom_attributes,omitempty"`
	JID                string            `json:"jid,omitempty"`
	PlanUnitedType     string            `json:"plan_united_type,omitempty"`
	LicenseInfoList    []LicenseInfo     `json:"license_info_list,omitempty"`
}

// getUser serves GET /users/{userId}, by id or email, "me" (the account
// owner), or by employee_unique_id with search_by_unique_id=true. Unlike the listing it
// shows a pending user's id, and of a pending user nothing else but a
// created_at that is the time of the call (writeInvitee).
func (a *Account) getUser(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("userId")
	a.st.mu.RLock()
	var su *suser
	if r.URL.Query().Get("search_by_unique_id") == "true" {
		for _, x := range a.st.all {
			if x.u.EmployeeUniqueID != "" && x.u.EmployeeUniqueID == key {
				su = x
				break
			}
		}
	} else if key == "me" {
		// The user the token acts for: an account-level app's tokens
		// act for the account owner who authorized it.
		su = a.st.owner()
	} else {
		su = a.st.lookupUser(key)
	}
	if su == nil {
		a.st.mu.RUnlock()
		writeError(w, http.StatusNotFound, 1001, "User does not exist: "+key+".")
		return
	}
	u := su.u.clone()
	role, _ := a.st.role(u.RoleID)
	su.returned()
	a.st.mu.RUnlock()
	if u.Status == StatusPending {
		writeInvitee(w, u.ID, a.srv.now())
		return
	}

	d := userDetail{
		ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, DisplayName: u.DisplayName,
		Email: u.Email, Type: u.Type, RoleName: role.Name, PMI: u.PMI, Timezone: u.Timezone,
		Verified: u.Verified, Dept: u.Dept, CreatedAt: zoomTime(u.CreatedAt),
		UserCreatedAt: zoomTime(u.UserCreatedAt), LastLoginTime: zoomTime(u.LastLoginTime),
		LastClientVersion: u.LastClientVersion, Language: u.Language, Status: u.Status, RoleID: u.RoleID,
		AccountID: a.id, AccountNumber: accountNumber(a.id), Cluster: "us06",
		GroupIDs: u.GroupIDs, EmployeeUniqueID: u.EmployeeUniqueID, JobTitle: u.JobTitle,
		Company: u.Company, Location: u.Location, Manager: u.Manager, CostCenter: u.CostCenter,
		LoginTypes: u.LoginTypes, CustomAttributes: u.CustomAttributes,
		JID:            strings.ToLower(u.ID) + "@xmpp.zoom.us",
		PlanUnitedType: u.PlanUnitedType, LicenseInfoList: u.LicenseInfoList,
	}
	if u.PMI != 0 {
		d.PersonalMeetingURL = "https://zoom.us/j/" + strconv.FormatInt(u.PMI, 10)
	}
	writeJSON(w, http.StatusOK, d)
}

func accountNumber(accountID string) int64 {
	h := fnv.New32a()
	h.Write([]byte(accountID))
	return 10000000 + int64(h.Sum32()%89999999)
}

type groupItem struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	TotalMembers int    `json:"total_members"`
}

// listGroups serves GET /groups: {groups, total_records, next_page_token},
// the only fields its OpenAPI response has.
func (a *Account) listGroups(w http.ResponseWriter, r *http.Request) {
	p, ok := a.srv.parsePage(w, r, a.listingKey("GET /groups"), 300)
	if !ok {
		return
	}
	a.st.mu.RLock()
	groups := a.st.groups
	pi := a.srv.seqPage(p, len(groups), func(i int) uint64 { return groups[i].seq })
	items := make([]groupItem, 0, pi.end-pi.start)
	for _, sg := range groups[pi.start:pi.end] {
		items = append(items, groupItem{sg.g.ID, sg.g.Name, len(a.st.groupMembers[sg.g.ID])})
	}
	a.st.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Groups        []groupItem `json:"groups"`
		TotalRecords  int         `json:"total_records"`
		NextPageToken string      `json:"next_page_token"`
	}{items, pi.total, pi.next})
}

func groupNotFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, 4130, "A group with this "+id+" does not exist.")
}

// getGroup serves GET /groups/{groupId}.
func (a *Account) getGroup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("groupId")
	a.st.mu.RLock()
	sg := a.st.groupByID[id]
	var item groupItem
	if sg != nil {
		item = groupItem{sg.g.ID, sg.g.Name, len(a.st.groupMembers[id])}
	}
	a.st.mu.RUnlock()
	if sg == nil {
		groupNotFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, item)
}

// listGroupMembers serves GET /groups/{groupId}/members (page_size up to
// 2000 per the 2026 OpenAPI).
func (a *Account) listGroupMembers(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("groupId")
	p, ok := a.srv.parsePage(w, r, a.listingKey("GET /groups/{groupId}/members", id), 2000)
	if !ok {
		return
	}
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	a.st.mu.RLock()
	if a.st.groupByID[id] == nil {
		a.st.mu.RUnlock()
		groupNotFound(w, id)
		return
	}
	list := a.st.groupMembers[id]
	pi := a.srv.seqPage(p, len(list), func(i int) uint64 { return list[i].seq })
	pageHeader(buf, pi, p)
	writeItems(buf, "members", list[pi.start:pi.end], cacheGroupMember)
	a.st.mu.RUnlock()
	writeBody(w, http.StatusOK, buf.Bytes())
}

type adminItem struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// listGroupAdmins serves GET /groups/{groupId}/admins: admins by email and
// name only, as entered (Zoom does not normalise their case). The name is the
// matching user's display name, or the one recorded with the admin when no
// user has that email.
func (a *Account) listGroupAdmins(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("groupId")
	p, ok := a.srv.parsePage(w, r, a.listingKey("GET /groups/{groupId}/admins", id), 300)
	if !ok {
		return
	}
	a.st.mu.RLock()
	sg := a.st.groupByID[id]
	if sg == nil {
		a.st.mu.RUnlock()
		groupNotFound(w, id)
		return
	}
	admins := sg.g.Admins
	pi := a.srv.offsetPage(p, len(admins))
	items := make([]adminItem, 0, pi.end-pi.start)
	for _, ad := range admins[pi.start:pi.end] {
		name := ad.Name
		if su := a.st.byEmail[strings.ToLower(ad.Email)]; su != nil {
			name = displayName(su.u)
		}
		items = append(items, adminItem{ad.Email, name})
	}
	a.st.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Admins        []adminItem `json:"admins"`
		NextPageToken string      `json:"next_page_token"`
		PageSize      int         `json:"page_size"`
		TotalRecords  int         `json:"total_records"`
	}{items, pi.next, p.size, pi.total})
}

func displayName(u User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

type roleItem struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description"`
	Type         string `json:"type"`
	TotalMembers int    `json:"total_members"`
}

// listRoles serves GET /roles, which is not paged: one role type per call,
// "common" by default.
func (a *Account) listRoles(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	switch typ {
	case "":
		typ = "common"
	case "common", "iq":
	default:
		writeValidation(w, "type", "Invalid field.")
		return
	}
	a.st.mu.RLock()
	items := []roleItem{}
	for _, role := range a.st.roles {
		if role.Type == typ {
			items = append(items, roleItem{role.ID, role.Name, role.Description, role.Type, len(a.st.roleMembers[role.ID])})
		}
	}
	a.st.mu.RUnlock()
	writeJSON(w, http.StatusOK, struct {
		Roles        []roleItem `json:"roles"`
		TotalRecords int        `json:"total_records"`
	}{items, len(items)})
}

func roleNotFound(w http.ResponseWriter) {
	writeError(w, http.StatusBadRequest, 1034, "Provided role_id does not exist.")
}

// getRole serves GET /roles/{roleId}.
func (a *Account) getRole(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("roleId")
	a.st.mu.RLock()
	role, ok := a.st.role(id)
	n := len(a.st.roleMembers[id])
	a.st.mu.RUnlock()
	if !ok {
		roleNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		roleItem
		Privileges []string `json:"privileges"`
	}{roleItem{role.ID, role.Name, role.Description, role.Type, n}, []string{}})
}

// listRoleMembers serves GET /roles/{roleId}/members, whose items name the
// department "department", not "dept".
func (a *Account) listRoleMembers(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("roleId")
	p, ok := a.srv.parsePage(w, r, a.listingKey("GET /roles/{roleId}/members", id), 300)
	if !ok {
		return
	}
	buf := bytes.NewBuffer(make([]byte, 0, 512))
	a.st.mu.RLock()
	if _, ok := a.st.role(id); !ok {
		a.st.mu.RUnlock()
		roleNotFound(w)
		return
	}
	list := a.st.roleMembers[id]
	pi := a.srv.seqPage(p, len(list), func(i int) uint64 { return list[i].seq })
	pageHeader(buf, pi, p)
	writeItems(buf, "members", list[pi.start:pi.end], cacheRoleMember)
	a.st.mu.RUnlock()
	writeBody(w, http.StatusOK, buf.Bytes())
}

// decodeBody reads a JSON request body, answering 400 code 300 when it is not
// valid JSON.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, 300, "Request Body should be a valid JSON object.")
		return false
	}
	return true
}

// ReadAfterChange reports when a listing page of GET /users or a GET
// /users/{userId} first returned user after its last change, by the
// machine's clock (not Options.Now): how long the change waited to be read.
// false while no read returned it since, or when it never changed.
func (a *Account) ReadAfterChange(user string) (time.Time, bool) {
	a.st.mu.RLock()
	su := a.st.lookupUser(user)
	a.st.mu.RUnlock()
	if su == nil || su.changed.Load() == 0 {
		return time.Time{}, false
	}
	n := su.read.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}
