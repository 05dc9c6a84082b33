package zoomtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The state keeps the organisation in structures that make every listing a
// binary search and a slice: users ordered by a sequence number that never
// changes, one ordered slice per status, per group and per role. Mutations
// hold the write lock and keep the slices up to date in place; requests hold
// the read lock while they render a page. Paging is keyset paging on the
// sequence number, so a user added or removed during a listing neither
// shifts nor repeats the others, as with a database cursor.

// JSON renderings cached per user. A page of 300 users is then a
// concatenation of cached bytes instead of 300 calls to json.Marshal.
const (
	cacheList = iota
	cacheListCustom
	cacheGroupMember
	cacheRoleMember
	cacheVariants
)

type suser struct {
	u     User
	seq   uint64
	cache [cacheVariants]atomic.Pointer[[]byte]
	// changed is when the user last changed, read when a listing page or
	// GET /users/{userId} first returned it after that (unix
	// nanoseconds, 0: not since): Server.ReadAfterChange.
	changed, read atomic.Int64
}

func (su *suser) invalidate() {
	for i := range su.cache {
		su.cache[i].Store(nil)
	}
	su.changed.Store(time.Now().UnixNano())
	su.read.Store(0)
}

// returned notes that a read returned the user.
func (su *suser) returned() {
	if su.changed.Load() != 0 && su.read.Load() == 0 {
		su.read.CompareAndSwap(0, time.Now().UnixNano())
	}
}

type sgroup struct {
	g   Group
	seq uint64
}

type state struct {
	mu        sync.RWMutex
	accountID string
	seq       uint64

	users    map[string]*suser // by id, pending users' internal ids included
	byEmail  map[string]*suser // by lower-case email
	all      []*suser          // ordered by seq
	byStatus map[string][]*suser
	// Group and role members as Zoom lists them: pending users are left out
	// because those listings return member ids and Zoom shows no id for a
	// pending user.
	groupMembers map[string][]*suser
	roleMembers  map[string][]*suser

	groups    []*sgroup
	groupByID map[string]*sgroup
	roles     []Role
}

func newState(org *Org, accountID string) *state {
	st := &state{
		accountID:    accountID,
		users:        map[string]*suser{},
		byEmail:      map[string]*suser{},
		byStatus:     map[string][]*suser{},
		groupMembers: map[string][]*suser{},
		roleMembers:  map[string][]*suser{},
		groupByID:    map[string]*sgroup{},
	}
	for _, g := range org.Groups {
		g.Admins = slices.Clone(g.Admins)
		if g.ID == "" {
			g.ID = randomID()
		}
		st.addGroup(g)
	}
	st.roles = slices.Clone(org.Roles)
	for i := range st.roles {
		if st.roles[i].Type == "" {
			st.roles[i].Type = "common"
		}
	}
	for _, u := range org.Users {
		u = u.clone()
		if u.ID == "" {
			u.ID = randomID()
		}
		if u.Status == "" {
			u.Status = StatusActive
		}
		st.addUser(u)
	}
	return st
}

// randomID makes a Zoom-like id for users and groups created at run time.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (st *state) nextSeq() uint64 {
	st.seq++
	return st.seq
}

func (st *state) addUser(u User) *suser {
	su := &suser{u: u, seq: st.nextSeq()}
	st.users[u.ID] = su
	st.all = append(st.all, su)
	st.index(su)
	return su
}

func (st *state) removeUser(su *suser) {
	st.unindex(su)
	delete(st.users, su.u.ID)
	st.all = removeSorted(st.all, su)
}

// index adds a user to the listings its fields put it in.
func (st *state) index(su *suser) {
	st.byEmail[strings.ToLower(su.u.Email)] = su
	st.byStatus[su.u.Status] = insertSorted(st.byStatus[su.u.Status], su)
	if su.u.Status == StatusPending {
		return
	}
	for _, gid := range su.u.GroupIDs {
		st.groupMembers[gid] = insertSorted(st.groupMembers[gid], su)
	}
	if su.u.RoleID != "" {
		st.roleMembers[su.u.RoleID] = insertSorted(st.roleMembers[su.u.RoleID], su)
	}
}

func (st *state) unindex(su *suser) {
	if st.byEmail[strings.ToLower(su.u.Email)] == su {
		delete(st.byEmail, strings.ToLower(su.u.Email))
	}
	st.byStatus[su.u.Status] = removeSorted(st.byStatus[su.u.Status], su)
	for _, gid := range su.u.GroupIDs {
		st.groupMembers[gid] = removeSorted(st.groupMembers[gid], su)
	}
	if su.u.RoleID != "" {
		st.roleMembers[su.u.RoleID] = removeSorted(st.roleMembers[su.u.RoleID], su)
	}
}

// update changes a user through fn, keeping the indexes and caches right.
func (st *state) update(su *suser, fn func(u *User)) {
	st.unindex(su)
	fn(&su.u)
	st.index(su)
	su.invalidate()
}

func (st *state) addGroup(g Group) *sgroup {
	sg := &sgroup{g: g, seq: st.nextSeq()}
	st.groups = append(st.groups, sg)
	st.groupByID[g.ID] = sg
	return sg
}

// lookupUser finds a user by id or by email, case-insensitively, as Zoom's
// {userId} path parameters accept both.
func (st *state) lookupUser(idOrEmail string) *suser {
	if strings.Contains(idOrEmail, "@") {
		return st.byEmail[strings.ToLower(idOrEmail)]
	}
	return st.users[idOrEmail]
}

func (st *state) role(id string) (Role, bool) {
	for _, r := range st.roles {
		if r.ID == id {
			return r, true
		}
	}
	return Role{}, false
}

func (st *state) owner() *suser {
	for _, su := range st.roleMembers[RoleOwner] {
		return su
	}
	return nil
}

// snapshot copies the state into an Org, users and groups in listing order.
func (st *state) snapshot() *Org {
	org := &Org{AccountID: st.accountID, Users: make([]User, 0, len(st.all))}
	for _, su := range st.all {
		org.Users = append(org.Users, su.u.clone())
	}
	for _, sg := range st.groups {
		g := sg.g
		g.Admins = slices.Clone(g.Admins)
		org.Groups = append(org.Groups, g)
	}
	org.Roles = slices.Clone(st.roles)
	return org
}

func insertSorted(list []*suser, su *suser) []*suser {
	i := sort.Search(len(list), func(i int) bool { return list[i].seq >= su.seq })
	if i < len(list) && list[i] == su {
		return list
	}
	return slices.Insert(list, i, su)
}

func removeSorted(list []*suser, su *suser) []*suser {
	i := sort.Search(len(list), func(i int) bool { return list[i].seq >= su.seq })
	if i < len(list) && list[i] == su {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// zoomTime formats a time as Zoom does ("2019-06-01T07:58:03Z"), and the
// empty string for the zero time.
func zoomTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// listUser is an item of GET /users, with the fields and names of Zoom's
// OpenAPI list item schema. It has no language and no login_types: the list
// schema does not have them, only GET /users/{userId} does.
type listUser struct {
	ID                string            `json:"id,omitempty"`
	FirstName         string            `json:"first_name,omitempty"`
	LastName          string            `json:"last_name,omitempty"`
	DisplayName       string            `json:"display_name,omitempty"`
	Email             string            `json:"email"`
	Type              int               `json:"type"`
	PMI               int64             `json:"pmi,omitempty"`
	Timezone          string            `json:"timezone,omitempty"`
	Verified          int               `json:"verified"`
	Dept              string            `json:"dept,omitempty"`
	CreatedAt         string            `json:"created_at,omitempty"`
	UserCreatedAt     string            `json:"user_created_at,omitempty"`
	LastLoginTime     string            `json:"last_login_time,omitempty"`
	LastClientVersion string            `json:"last_client_version,omitempty"`
	GroupIDs          []string          `json:"group_ids,omitempty"`
	RoleID            string            `json:"role_id,omitempty"`
	Status            string            `json:"status"`
	EmployeeUniqueID  string            `json:"employee_unique_id,omitempty"`
	CustomAttributes  []CustomAttribute `json:"custom_attributes,omitempty"`
	PlanUnitedType    string            `json:"plan_united_type,omitempty"`
	LicenseInfoList   []LicenseInfo     `json:"license_info_list,omitempty"`
}

type groupMember struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Type      int    `json:"type"`
}

type roleMember struct {
	ID         string `json:"id"`
	Email      string `json:"email"`
	FirstName  string `json:"first_name"`
	LastName   string `json:"last_name"`
	Type       int    `json:"type"`
	Department string `json:"department"`
}

// render returns the cached JSON of one variant, computing it when missing.
// It runs under the read lock; two requests may compute the same bytes at
// once, which is harmless.
func (su *suser) render(variant int) []byte {
	if p := su.cache[variant].Load(); p != nil {
		return *p
	}
	var v any
	u := &su.u
	switch variant {
	case cacheList, cacheListCustom:
		lu := listUser{
			ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, DisplayName: u.DisplayName,
			Email: u.Email, Type: u.Type, PMI: u.PMI, Timezone: u.Timezone, Verified: u.Verified,
			Dept: u.Dept, CreatedAt: zoomTime(u.CreatedAt), UserCreatedAt: zoomTime(u.UserCreatedAt),
			LastLoginTime: zoomTime(u.LastLoginTime), LastClientVersion: u.LastClientVersion,
			GroupIDs: u.GroupIDs, RoleID: u.RoleID, Status: u.Status, EmployeeUniqueID: u.EmployeeUniqueID,
			PlanUnitedType: u.PlanUnitedType, LicenseInfoList: u.LicenseInfoList,
		}
		if u.Status == StatusPending {
			lu.ID = ""
		}
		if variant == cacheListCustom {
			lu.CustomAttributes = u.CustomAttributes
		}
		v = lu
	case cacheGroupMember:
		v = groupMember{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, Type: u.Type}
	case cacheRoleMember:
		v = roleMember{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, Type: u.Type, Department: u.Dept}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the types above always marshal
	}
	su.cache[variant].Store(&b)
	return b
}
