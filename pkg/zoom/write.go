package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The calls below read one object or change the account: the endpoints that
// provisioning uses. Each goes through the same pacing, retries and token
// handling as the listings. A Zoom refusal is an *APIError (errors.As), with
// Zoom's status and code.

// Zoom user types (the "type" field of a user).
const (
	UserTypeBasic      = 1
	UserTypeLicensed   = 2
	UserTypeUnassigned = 4
)

// Actions of PUT /users/{userId}/status.
const (
	StatusActivate   = "activate"
	StatusDeactivate = "deactivate"
)

// Actions of DELETE /users/{userId}.
const (
	RemoveDisassociate = "disassociate"
	RemoveDelete       = "delete"
)

// Actions of POST /users: "create" sends an invitation (the user is pending
// until they accept it).
const CreateInvite = "create"

// ReadUser returns GET /users/{userId} decoded. userID is a Zoom user id or
// an email. An unknown user's error matches ErrUserNotFound.
func (c *Client) ReadUser(ctx context.Context, userID string) (User, error) {
	body, err := c.GetUser(ctx, userID)
	if err != nil {
		return User{}, err
	}
	var u User
	if err := Decode(body, &u); err != nil {
		return User{}, fmt.Errorf("get user %s: %w", userID, err)
	}
	return u, nil
}

// ReadGroup returns GET /groups/{groupId} decoded; an unknown group's error
// matches ErrGroupNotFound.
func (c *Client) ReadGroup(ctx context.Context, groupID string) (Group, error) {
	var g Group
	err := c.call(ctx, request{method: http.MethodGet, endpoint: "/groups/{groupId}", path: "/groups/" + seg(groupID)}, &g)
	return g, err
}

// ReadRole returns GET /roles/{roleId} decoded.
func (c *Client) ReadRole(ctx context.Context, roleID string) (Role, error) {
	var r Role
	err := c.call(ctx, request{method: http.MethodGet, endpoint: "/roles/{roleId}", path: "/roles/" + seg(roleID)}, &r)
	return r, err
}

// GroupAdminEmails lists every admin of a group, by email as Zoom gives it.
func (c *Client) GroupAdminEmails(ctx context.Context, groupID string) ([]string, error) {
	var out []string
	err := c.Pages(ctx, GroupAdminsListing(groupID), func(p RawPage) error {
		var page GroupAdminList
		if err := Decode(p.Body, &page); err != nil {
			return err
		}
		for _, a := range page.Admins {
			out = append(out, a.Email)
		}
		return nil
	})
	return out, err
}

// PendingUser returns, as Zoom lists it, the pending user (invited, not yet
// joined) with this email, and false when the pending listing has none.
// GET /users/{userId} shows of a pending user only its id: the listing is
// what says its type, role and groups.
func (c *Client) PendingUser(ctx context.Context, email string) ([]byte, bool, error) {
	var found []byte
	errFound := errors.New("found")
	err := c.Pages(ctx, UsersListing(UserStatusPending), func(p RawPage) error {
		var page struct {
			Users []json.RawMessage `json:"users"`
		}
		if err := Decode(p.Body, &page); err != nil {
			return err
		}
		for _, raw := range page.Users {
			var u User
			if Decode(raw, &u) == nil && strings.EqualFold(u.Email, email) {
				found = raw
				return errFound
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return found, true, nil
	}
	return nil, false, err
}

// AddGroupMember adds a user to a group: POST /groups/{groupId}/members.
func (c *Client) AddGroupMember(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, request{method: http.MethodPost, endpoint: "/groups/{groupId}/members",
		path: "/groups/" + seg(groupID) + "/members", body: members("members", userID)}, nil)
}

// RemoveGroupMember removes a user from a group: DELETE
// /groups/{groupId}/members/{memberId}.
func (c *Client) RemoveGroupMember(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, request{method: http.MethodDelete, endpoint: "/groups/{groupId}/members/{memberId}",
		path: "/groups/" + seg(groupID) + "/members/" + seg(userID)}, nil)
}

// AddGroupAdmin makes a user an admin of a group: POST
// /groups/{groupId}/admins.
func (c *Client) AddGroupAdmin(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, request{method: http.MethodPost, endpoint: "/groups/{groupId}/admins",
		path: "/groups/" + seg(groupID) + "/admins", body: members("admins", userID)}, nil)
}

// RemoveGroupAdmin takes a group's admin rights from a user: DELETE
// /groups/{groupId}/admins/{userId}.
func (c *Client) RemoveGroupAdmin(ctx context.Context, groupID, userID string) error {
	return c.call(ctx, request{method: http.MethodDelete, endpoint: "/groups/{groupId}/admins/{userId}",
		path: "/groups/" + seg(groupID) + "/admins/" + seg(userID)}, nil)
}

// AddRoleMember gives a user a role: POST /roles/{roleId}/members.
func (c *Client) AddRoleMember(ctx context.Context, roleID, userID string) error {
	return c.call(ctx, request{method: http.MethodPost, endpoint: "/roles/{roleId}/members",
		path: "/roles/" + seg(roleID) + "/members", body: members("members", userID)}, nil)
}

// RemoveRoleMember takes a role from a user, who falls back to Zoom's
// Member role: DELETE /roles/{roleId}/members/{memberId}.
func (c *Client) RemoveRoleMember(ctx context.Context, roleID, userID string) error {
	return c.call(ctx, request{method: http.MethodDelete, endpoint: "/roles/{roleId}/members/{memberId}",
		path: "/roles/" + seg(roleID) + "/members/" + seg(userID)}, nil)
}

// SetUserType changes a user's type (licence): PATCH /users/{userId}.
func (c *Client) SetUserType(ctx context.Context, userID string, typ int) error {
	body, _ := json.Marshal(map[string]int{"type": typ}) // an int map always encodes
	return c.call(ctx, request{method: http.MethodPatch, endpoint: "/users/{userId}",
		path: "/users/" + seg(userID), body: body}, nil)
}

// SetUserStatus activates or deactivates a user: PUT
// /users/{userId}/status with StatusActivate or StatusDeactivate.
func (c *Client) SetUserStatus(ctx context.Context, userID, action string) error {
	body, _ := json.Marshal(map[string]string{"action": action}) // a string map always encodes
	return c.call(ctx, request{method: http.MethodPut, endpoint: "/users/{userId}/status",
		path: "/users/" + seg(userID) + "/status", body: body}, nil)
}

// DeleteUser removes a user from the account: DELETE /users/{userId} with
// action RemoveDisassociate or RemoveDelete. With transferEmail, the user's
// meetings, webinars and recordings go to that user.
func (c *Client) DeleteUser(ctx context.Context, userID, action, transferEmail string) error {
	q := url.Values{"action": {action}}
	if transferEmail != "" {
		q.Set("transfer_email", transferEmail)
		q.Set("transfer_meeting", "true")
		q.Set("transfer_webinar", "true")
		q.Set("transfer_recording", "true")
	}
	return c.call(ctx, request{method: http.MethodDelete, endpoint: "/users/{userId}",
		path: "/users/" + seg(userID), query: q}, nil)
}

// CreateUser adds a user: POST /users with action (CreateInvite invites
// them) and the user's email and type. It returns the user Zoom made.
func (c *Client) CreateUser(ctx context.Context, action, email string, typ int) (User, error) {
	body, err := json.Marshal(map[string]any{"action": action, "user_info": map[string]any{"email": email, "type": typ}})
	if err != nil {
		return User{}, fmt.Errorf("zoom: create user: %w", err)
	}
	var u User
	err = c.call(ctx, request{method: http.MethodPost, endpoint: "/users", path: "/users", body: body}, &u)
	return u, err
}

// call sends r and, when out is not nil, decodes the answer into it.
func (c *Client) call(ctx context.Context, r request, out any) error {
	body, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := Decode(body, out); err != nil {
		return fmt.Errorf("zoom: %s %s: %w", r.method, r.endpoint, err)
	}
	return nil
}

// members is {"<field>":[{"id":"<userID>"}]}, the body of the endpoints
// that add members or admins; a user named by email (a pending user, who
// has no id) is {"email":…}.
func members(field, userID string) []byte {
	ref := "id"
	if strings.Contains(userID, "@") {
		ref = "email"
	}
	b, _ := json.Marshal(map[string][]map[string]string{field: {{ref: userID}}}) // strings always encode
	return b
}

// seg escapes one path segment; an empty one is refused by Zoom as an
// unknown endpoint, never sent as a different path.
func seg(s string) string {
	if s == "" {
		return "%20"
	}
	return url.PathEscape(s)
}

// Answer returns the HTTP status and Zoom code of err when it is a refusal
// from Zoom (an *APIError, or a *TokenError of the token endpoint), and
// zeros otherwise.
func Answer(err error) (status, code int) {
	var api *APIError
	if errors.As(err, &api) {
		return api.StatusCode, api.Code
	}
	var tok *TokenError
	if errors.As(err, &tok) {
		return tok.StatusCode, tok.Code
	}
	return 0, 0
}

// MissingScope reports whether err is Zoom's refusal of a token that lacks
// the endpoint's scope (codes 4700, 4711).
func MissingScope(err error) bool {
	_, code := Answer(err)
	return code == 4700 || code == 4711
}

// ScopeHint names the write scope an endpoint template needs, for a
// message a person can act on.
func ScopeHint(endpoint string) string {
	switch {
	case strings.HasPrefix(endpoint, "/groups"):
		return "group:write:admin"
	case strings.HasPrefix(endpoint, "/roles"):
		return "role:write:admin"
	default:
		return "user:write:admin"
	}
}
