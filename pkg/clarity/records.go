// Package clarity defines what the connector promises downstream Clarity
// services: the record kinds and their keys and data, the CloudEvent envelope
// of change events, and the JetStream subjects and streams, internal and
// external.
package clarity

import (
	"strconv"
	"strings"
)

// Record kinds, as they appear in subjects and event types.
const (
	KindServiceUser            = "service_user"
	KindEntitlement            = "entitlement"
	KindServiceUserEntitlement = "service_user_entitlement"
	KindServiceUserAttribute   = "service_user_attribute"
	KindSync                   = "sync"
)

// Kinds lists the record kinds (every kind but sync) in dependency order:
// a grant or attribute refers to a user, a grant to an entitlement.
var Kinds = []string{KindServiceUser, KindEntitlement, KindServiceUserEntitlement, KindServiceUserAttribute}

// Entitlement types.
const (
	EntitlementGroup      = "group"
	EntitlementGroupAdmin = "group_admin"
	EntitlementRole       = "role"
	EntitlementLicense    = "license"
)

// User statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
	StatusPending  = "pending"
)

// ServiceUser is the data of a service_user record.
type ServiceUser struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	FirstName   string `json:"first_name"`
	LastName    string `json:"last_name"`
	DisplayName string `json:"display_name"`
	Status      string `json:"status"`
	License     string `json:"license"`
	RoleID      string `json:"role_id"`
	CreatedAt   string `json:"created_at,omitempty"`
	LastLoginAt string `json:"last_login_at,omitempty"`
}

// Entitlement is the data of an entitlement record.
type Entitlement struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	ZoomID      string `json:"zoom_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Grant is the data of a service_user_entitlement record.
type Grant struct {
	UserID        string `json:"user_id"`
	EntitlementID string `json:"entitlement_id"`
}

// Attribute is the data of a service_user_attribute record.
type Attribute struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	Value  string `json:"value"`
}

// UserKey is the key of a service user: the Zoom user id, or for a pending
// user (whom Zoom lists without an id) "pending:" and the lower-case email.
func UserKey(id, email string) string {
	if id != "" {
		return id
	}
	return "pending:" + strings.ToLower(email)
}

// GroupKey is the key of a group membership entitlement.
func GroupKey(groupID string) string { return "group:" + groupID }

// GroupAdminKey is the key of a group administration entitlement.
func GroupAdminKey(groupID string) string { return "group_admin:" + groupID }

// RoleKey is the key of a role entitlement.
func RoleKey(roleID string) string { return "role:" + roleID }

// GrantKey is the key of a service_user_entitlement record.
func GrantKey(userKey, entitlementKey string) string { return userKey + "|" + entitlementKey }

// AttributeKey is the key of a service_user_attribute record.
func AttributeKey(userKey, name string) string { return userKey + "|" + name }

// License names a Zoom user type as a license: "basic", "licensed",
// "unassigned", or "type:<n>" for any other type.
func License(zoomType int) string {
	switch zoomType {
	case 1:
		return "basic"
	case 2:
		return "licensed"
	case 4:
		return "unassigned"
	}
	return "type:" + strconv.Itoa(zoomType)
}

// Licenses are the license entitlements that always exist, in order.
var Licenses = []Entitlement{
	{ID: "license:basic", Type: EntitlementLicense, Name: "Basic"},
	{ID: "license:licensed", Type: EntitlementLicense, Name: "Licensed"},
	{ID: "license:unassigned", Type: EntitlementLicense, Name: "Unassigned"},
}

// LicenseKey is the key of the license entitlement a Zoom user type holds, and
// false for a type that holds none.
func LicenseKey(zoomType int) (string, bool) {
	switch zoomType {
	case 1, 2, 4:
		return "license:" + License(zoomType), true
	}
	return "", false
}
