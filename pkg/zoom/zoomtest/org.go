package zoomtest

import (
	"slices"
	"time"
)

// User statuses, as Zoom spells them.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusPending  = "pending"
)

// Zoom user types ("plan types"). Types other than these occur in real
// accounts (older plans, Zoom Rooms) and the simulator keeps whatever it is
// given.
const (
	TypeBasic      = 1
	TypeLicensed   = 2
	TypeUnassigned = 4
	TypeNone       = 99
)

// Default role ids. Zoom's spec only shows "0" and "2" in examples; every
// account has exactly one Owner.
const (
	RoleOwner  = "0"
	RoleAdmin  = "1"
	RoleMember = "2"
)

// Org is a Zoom account: its users, groups and roles. The server keeps its
// own copy, so an Org can be reused after New; Server.Org returns a fresh
// snapshot of the current state.
type Org struct {
	AccountID string  `json:"account_id"`
	Users     []User  `json:"users"`
	Groups    []Group `json:"groups"`
	Roles     []Role  `json:"roles"`
}

// User is one Zoom user with every field the simulator serves. ID is set for
// every user, pending ones included: Zoom has an id for an invited user but
// does not list it (GET /users omits id for pending users), while GET
// /users/{userId} and webhooks do show it. Zero times mean "Zoom has none".
type User struct {
	ID                string            `json:"id"`
	Email             string            `json:"email"`
	FirstName         string            `json:"first_name,omitempty"`
	LastName          string            `json:"last_name,omitempty"`
	DisplayName       string            `json:"display_name,omitempty"`
	Type              int               `json:"type"`
	Status            string            `json:"status"`
	RoleID            string            `json:"role_id,omitempty"`
	GroupIDs          []string          `json:"group_ids,omitempty"`
	Dept              string            `json:"dept,omitempty"`
	Timezone          string            `json:"timezone,omitempty"`
	Language          string            `json:"language,omitempty"`
	Verified          int               `json:"verified"`
	EmployeeUniqueID  string            `json:"employee_unique_id,omitempty"`
	LastClientVersion string            `json:"last_client_version,omitempty"`
	LastLoginTime     time.Time         `json:"last_login_time,omitzero"`
	CreatedAt         time.Time         `json:"created_at,omitzero"`
	UserCreatedAt     time.Time         `json:"user_created_at,omitzero"`
	LoginTypes        []int             `json:"login_types,omitempty"`
	CustomAttributes  []CustomAttribute `json:"custom_attributes,omitempty"`
	PMI               int64             `json:"pmi,omitempty"`
	// PlanUnitedType and LicenseInfoList are the user's paid bundles and
	// add-ons (licence.go); Generate gives none, a test sets them.
	PlanUnitedType  string        `json:"plan_united_type,omitempty"`
	LicenseInfoList []LicenseInfo `json:"license_info_list,omitempty"`

	// Profile fields that only GET /users/{userId} returns.
	JobTitle   string `json:"job_title,omitempty"`
	Location   string `json:"location,omitempty"`
	Company    string `json:"company,omitempty"`
	Manager    string `json:"manager,omitempty"`
	CostCenter string `json:"cost_center,omitempty"`
}

// CustomAttribute is one of a user's custom attributes, as Zoom lists them.
type CustomAttribute struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Group is a Zoom group. Zoom knows group admins by email only, so Admins
// holds emails (in whatever case they were entered) and a display name used
// when the email matches no user of the account.
type Group struct {
	ID     string       `json:"id"`
	Name   string       `json:"name"`
	Admins []GroupAdmin `json:"admins,omitempty"`
}

// GroupAdmin is one administrator of a group.
type GroupAdmin struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Role is a Zoom role. Type is "common" for ordinary roles and "iq" for Zoom
// IQ roles; GET /roles lists one type per call, "common" by default.
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"`
}

// Clone returns a deep copy of the organisation.
func (o *Org) Clone() *Org {
	if o == nil {
		return nil
	}
	c := &Org{AccountID: o.AccountID}
	c.Users = make([]User, len(o.Users))
	for i := range o.Users {
		c.Users[i] = o.Users[i].clone()
	}
	c.Groups = make([]Group, len(o.Groups))
	for i, g := range o.Groups {
		g.Admins = slices.Clone(g.Admins)
		c.Groups[i] = g
	}
	c.Roles = slices.Clone(o.Roles)
	return c
}

// Owner returns the account owner (the user with role "0"), and false when
// there is none.
func (o *Org) Owner() (User, bool) {
	for _, u := range o.Users {
		if u.RoleID == RoleOwner {
			return u, true
		}
	}
	return User{}, false
}

func (u User) clone() User {
	u.GroupIDs = slices.Clone(u.GroupIDs)
	u.LoginTypes = slices.Clone(u.LoginTypes)
	u.CustomAttributes = slices.Clone(u.CustomAttributes)
	u.LicenseInfoList = slices.Clone(u.LicenseInfoList)
	return u
}
