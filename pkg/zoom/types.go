// Package zoom is the Zoom REST API v2 client: Server-to-Server OAuth token
// sources, paging iterators over the listings a full sync needs, typed errors,
// pacing under the account's rate limit and a count of requests.
package zoom

// The wire types below follow Zoom's published OpenAPI documents (Users API and
// Accounts API, February 2026). Fields the connector does not use are left out;
// unknown fields are ignored when decoding.

// User is one item of GET /users, or the body of GET /users/{userId}.
type User struct {
	ID                string            `json:"id,omitempty"`
	Email             string            `json:"email"`
	FirstName         string            `json:"first_name,omitempty"`
	LastName          string            `json:"last_name,omitempty"`
	DisplayName       string            `json:"display_name,omitempty"`
	Type              int               `json:"type"`
	Status            string            `json:"status,omitempty"`
	RoleID            string            `json:"role_id,omitempty"`
	GroupIDs          []string          `json:"group_ids,omitempty"`
	Dept              string            `json:"dept,omitempty"`
	Timezone          string            `json:"timezone,omitempty"`
	Language          string            `json:"language,omitempty"`
	Verified          *int              `json:"verified,omitempty"`
	EmployeeUniqueID  string            `json:"employee_unique_id,omitempty"`
	LastClientVersion string            `json:"last_client_version,omitempty"`
	LastLoginTime     string            `json:"last_login_time,omitempty"`
	CreatedAt         string            `json:"created_at,omitempty"`
	UserCreatedAt     string            `json:"user_created_at,omitempty"`
	LoginTypes        []int             `json:"login_types,omitempty"`
	CustomAttributes  []CustomAttribute `json:"custom_attributes,omitempty"`
	// PlanUnitedType and LicenseInfoList name a user's paid bundles and
	// add-ons (see licence.go); Zoom gives them only to some accounts.
	PlanUnitedType  Code          `json:"plan_united_type,omitempty"`
	LicenseInfoList []LicenseInfo `json:"license_info_list,omitempty"`

	// Enrichment fields, returned by GET /users/{userId} only.
	JobTitle   string `json:"job_title,omitempty"`
	Location   string `json:"location,omitempty"`
	Company    string `json:"company,omitempty"`
	Manager    string `json:"manager,omitempty"`
	CostCenter string `json:"cost_center,omitempty"`
}

// CustomAttribute is one of a user's custom attributes.
type CustomAttribute struct {
	Key   string `json:"key"`
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

// Page holds the paging fields every paged listing shares.
type Page struct {
	NextPageToken string `json:"next_page_token,omitempty"`
	PageSize      int    `json:"page_size,omitempty"`
	TotalRecords  int    `json:"total_records"`
}

// UserList is the body of GET /users.
type UserList struct {
	Page
	PageCount  int    `json:"page_count,omitempty"`
	PageNumber int    `json:"page_number,omitempty"`
	Users      []User `json:"users"`
}

// Group is one item of GET /groups.
type Group struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	TotalMembers int    `json:"total_members"`
}

// GroupList is the body of GET /groups.
type GroupList struct {
	Page
	Groups []Group `json:"groups"`
}

// GroupAdmin is one item of GET /groups/{groupId}/admins. Zoom names admins by
// email only.
type GroupAdmin struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// GroupAdminList is the body of GET /groups/{groupId}/admins.
type GroupAdminList struct {
	Page
	Admins []GroupAdmin `json:"admins"`
}

// Role is one item of GET /roles.
type Role struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Description  string `json:"description,omitempty"`
	Type         string `json:"type,omitempty"`
	TotalMembers int    `json:"total_members"`
}

// RoleList is the body of GET /roles, which is not paged.
type RoleList struct {
	Roles        []Role `json:"roles"`
	TotalRecords int    `json:"total_records"`
}

// Token is the body of a successful POST /oauth/token.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope,omitempty"`
	APIURL       string `json:"api_url,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// ErrorBody is the body of a Zoom error response.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}
