package zoomtest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestListUsersPagesToTheEnd(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	for _, status := range []string{"", StatusActive, StatusInactive, StatusPending} {
		t.Run("status="+status, func(t *testing.T) {
			want := status
			if want == "" {
				want = StatusActive
			}
			users, pages := listAll(t, s, tok, "/users?page_size=50&status="+status, "users")
			if got, want := len(users), countStatus(org, want); got != want {
				t.Fatalf("got %d users, want %d", got, want)
			}
			for i, p := range pages {
				if got, want := p.num("page_number"), i+1; got != want {
					t.Errorf("page %d: got page_number %d, want %d", i, got, want)
				}
				if got, want := p.num("page_count"), len(pages); got != want {
					t.Errorf("page %d: got page_count %d, want %d", i, got, want)
				}
				if got, want := p.num("total_records"), len(users); got != want {
					t.Errorf("page %d: got total_records %d, want %d", i, got, want)
				}
				if got := p.num("page_size"); got != 50 {
					t.Errorf("page %d: got page_size %d, want 50", i, got)
				}
			}
			last := pages[len(pages)-1]
			if tok, ok := last.body["next_page_token"]; !ok || tok != "" {
				t.Errorf("last page: got next_page_token %v (present %v), want \"\"", tok, ok)
			}
			seen := map[string]bool{}
			for _, u := range users {
				e := strings.ToLower(u["email"].(string))
				if seen[e] {
					t.Errorf("user %s listed twice", e)
				}
				seen[e] = true
				if got := u["status"]; got != want {
					t.Errorf("user %s: got status %v, want %s", e, got, want)
				}
			}
		})
	}
}

func TestListUsersDefaultPageSize(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	r := api(t, s, requestToken(t, s), "GET", "/users", nil)
	if got := len(r.items("users")); got != 30 {
		t.Errorf("got %d users, want 30 (default page_size)", got)
	}
	if got := r.num("page_size"); got != 30 {
		t.Errorf("got page_size %d, want 30", got)
	}
}

func TestListingErrors(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	groups := api(t, s, tok, "GET", "/groups", nil).items("groups")
	gid := groups[0]["id"].(string)
	usersTok := api(t, s, tok, "GET", "/users?page_size=1", nil).str("next_page_token")
	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantCode   int
	}{
		{"users page_size at maximum", "/users?page_size=2000", 200, 0},
		{"users page_size over maximum", "/users?page_size=2001", 400, 300},
		{"users page_size not a number", "/users?page_size=many", 400, 300},
		{"users bad status", "/users?status=deleted", 400, 300},
		{"users bad include_fields", "/users?include_fields=everything", 400, 300},
		{"users garbage token", "/users?next_page_token=IAfJX3jsOLW7w3dokmFl84zOa0MAVGyMEB2", 400, 300},
		{"users token of another status", "/users?status=inactive&next_page_token=" + usersTok, 400, 300},
		{"groups page_size over maximum", "/groups?page_size=301", 400, 300},
		{"groups page_size at maximum", "/groups?page_size=300", 200, 0},
		{"group members over maximum", "/groups/" + gid + "/members?page_size=2001", 400, 300},
		{"group admins over maximum", "/groups/" + gid + "/admins?page_size=301", 400, 300},
		{"role members over maximum", "/roles/2/members?page_size=301", 400, 300},
		{"unknown group", "/groups/nope", 404, 4130},
		{"unknown group members", "/groups/nope/members", 404, 4130},
		{"unknown group admins", "/groups/nope/admins", 404, 4130},
		{"unknown role members", "/roles/nope/members", 400, 1034},
		{"unknown role", "/roles/nope", 400, 1034},
		{"unknown user", "/users/nobody@example.com", 404, 1001},
		{"unknown endpoint", "/meetings", 404, 2300},
		{"roles bad type", "/roles?type=secret", 400, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := api(t, s, tok, "GET", tt.path, nil)
			if r.status != tt.wantStatus {
				t.Fatalf("got status %d, want %d: %s", r.status, tt.wantStatus, r.raw)
			}
			if tt.wantCode != 0 && r.code() != tt.wantCode {
				t.Errorf("got code %d, want %d: %s", r.code(), tt.wantCode, r.raw)
			}
		})
	}
	r := api(t, s, tok, "GET", "/users?next_page_token=bogus", nil)
	if got, want := r.message(), "The next page token is invalid or expired."; got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
	r = api(t, s, tok, "GET", "/users/nobody@example.com", nil)
	if got, want := r.message(), "User does not exist: nobody@example.com."; got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
}

func TestPageTokenExpiry(t *testing.T) {
	tests := []struct {
		name   string
		expire func(s *Server, c *fakeClock)
		valid  bool
	}{
		{"fresh token", func(*Server, *fakeClock) {}, true},
		{"just before the TTL", func(_ *Server, c *fakeClock) { c.Advance(15 * time.Minute) }, true},
		{"after the TTL", func(_ *Server, c *fakeClock) { c.Advance(15*time.Minute + time.Second) }, false},
		{"expired by fault", func(s *Server, _ *fakeClock) { s.Faults().ExpirePageTokens() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			s := NewServer(t, small(t), Options{Now: clock.Now, TokenTTL: 24 * time.Hour})
			tok := requestToken(t, s)
			first := api(t, s, tok, "GET", "/users?page_size=10", nil)
			next := first.str("next_page_token")
			if next == "" {
				t.Fatal("got no next_page_token on the first page")
			}
			tt.expire(s, clock)
			r := api(t, s, tok, "GET", "/users?page_size=10&next_page_token="+next, nil)
			if tt.valid {
				if r.status != http.StatusOK || r.num("page_number") != 2 {
					t.Fatalf("got status %d page %d, want 200 page 2: %s", r.status, r.num("page_number"), r.raw)
				}
				return
			}
			if r.status != http.StatusBadRequest || r.code() != 300 || r.message() != "The next page token is invalid or expired." {
				t.Fatalf("got %d %s, want 400 code 300", r.status, r.raw)
			}
		})
	}
}

func TestPageTokenTTLOption(t *testing.T) {
	clock := newClock()
	s := NewServer(t, small(t), Options{Now: clock.Now, PageTokenTTL: time.Minute})
	tok := requestToken(t, s)
	next := api(t, s, tok, "GET", "/users?page_size=10", nil).str("next_page_token")
	clock.Advance(61 * time.Second)
	if r := api(t, s, tok, "GET", "/users?page_size=10&next_page_token="+next, nil); r.code() != 300 {
		t.Fatalf("got %d %s, want code 300 after a one-minute TTL", r.status, r.raw)
	}
}

func TestPendingUsersHaveNoID(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	users, _ := listAll(t, s, tok, "/users?status=pending&page_size=300", "users")
	if len(users) == 0 {
		t.Fatal("got no pending users")
	}
	for _, u := range users {
		if id, ok := u["id"]; ok {
			t.Fatalf("pending user %v: got id %v, want no id field", u["email"], id)
		}
	}
	// GET /users/{userId} does show a pending user's id, and nothing
	// else but a created_at that is the time of the call.
	var pending User
	for _, u := range org.Users {
		if u.Status == StatusPending {
			pending = u
			break
		}
	}
	before := time.Now().UTC().Truncate(time.Second)
	r := api(t, s, tok, "GET", "/users/"+strings.ToUpper(pending.Email), nil)
	if got := r.str("id"); got != pending.ID {
		t.Errorf("GET /users/{email}: got id %q, want %q", got, pending.ID)
	}
	if len(r.body) != 2 {
		t.Errorf("GET /users/{email} of a pending user: got %s, want only id and created_at", r.raw)
	}
	if at, err := time.Parse(time.RFC3339, r.str("created_at")); err != nil || at.Before(before) || at.Equal(pending.CreatedAt) {
		t.Errorf("GET /users/{email} of a pending user: created_at %q (%v), want the time of the call, not %s",
			r.str("created_at"), err, pending.CreatedAt.Format(time.RFC3339))
	}
	active, _ := listAll(t, s, tok, "/users?page_size=300", "users")
	for _, u := range active {
		if id, _ := u["id"].(string); len(id) != 22 {
			t.Fatalf("active user %v: got id %q, want a 22-character id", u["email"], id)
		}
	}
}

func TestCustomAttributesOnlyOnRequest(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	tests := []struct {
		query string
		want  bool
	}{
		{"", false},
		{"&include_fields=host_key", false},
		{"&include_fields=custom_attributes", true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			users, _ := listAll(t, s, tok, "/users?page_size=300"+tt.query, "users")
			n := 0
			for _, u := range users {
				if _, ok := u["custom_attributes"]; ok {
					n++
				}
			}
			if got := n > 0; got != tt.want {
				t.Errorf("got %d users with custom_attributes, want some: %v", n, tt.want)
			}
		})
	}
}

func TestListItemFieldsFollowTheSchema(t *testing.T) {
	s := NewServer(t, small(t), Options{})
	tok := requestToken(t, s)
	users, _ := listAll(t, s, tok, "/users?page_size=300&include_fields=custom_attributes", "users")
	// The list item schema of GET /users, from Zoom's OpenAPI.
	allowed := map[string]bool{}
	for _, f := range strings.Fields(`user_created_at created_at custom_attributes dept email employee_unique_id
		first_name group_ids division_ids host_key id im_group_ids last_client_version last_login_time last_name
		plan_united_type pmi role_id status timezone type verified display_name license_info_list`) {
		allowed[f] = true
	}
	for _, u := range users {
		for k := range u {
			if !allowed[k] {
				t.Fatalf("user %v: got field %q, not in the list item schema", u["email"], k)
			}
		}
		for _, k := range []string{"email", "type", "status"} {
			if _, ok := u[k]; !ok {
				t.Fatalf("user %v: got no %q", u["email"], k)
			}
		}
	}
}

func TestGetUserByIDAndEmail(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	u := org.Users[1]
	for _, key := range []string{u.ID, u.Email, strings.ToLower(u.Email)} {
		r := api(t, s, tok, "GET", "/users/"+key, nil)
		if r.status != 200 || r.str("id") != u.ID || r.str("email") != u.Email {
			t.Errorf("GET /users/%s: got %d id %q email %q, want id %q email %q", key, r.status, r.str("id"), r.str("email"), u.ID, u.Email)
		}
		if r.str("account_id") != s.AccountID() {
			t.Errorf("GET /users/%s: got account_id %q, want %q", key, r.str("account_id"), s.AccountID())
		}
	}
}

func TestGroupsAndMembers(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	groups, _ := listAll(t, s, tok, "/groups?page_size=5", "groups")
	if got, want := len(groups), len(org.Groups); got != want {
		t.Fatalf("got %d groups, want %d", got, want)
	}
	for _, g := range org.Groups {
		want := map[string]bool{}
		for _, u := range org.Users {
			if u.Status != StatusPending && containsString(u.GroupIDs, g.ID) {
				want[u.ID] = true
			}
		}
		members, _ := listAll(t, s, tok, "/groups/"+g.ID+"/members?page_size=7", "members")
		if len(members) != len(want) {
			t.Errorf("group %s: got %d members, want %d", g.Name, len(members), len(want))
		}
		for _, m := range members {
			if !want[m["id"].(string)] {
				t.Errorf("group %s: got unexpected member %v", g.Name, m["email"])
			}
		}
		one := api(t, s, tok, "GET", "/groups/"+g.ID, nil)
		if got := one.num("total_members"); got != len(want) {
			t.Errorf("group %s: got total_members %d, want %d", g.Name, got, len(want))
		}
		admins, pages := listAll(t, s, tok, "/groups/"+g.ID+"/admins?page_size=1", "admins")
		if len(admins) != len(g.Admins) {
			t.Errorf("group %s: got %d admins, want %d", g.Name, len(admins), len(g.Admins))
		}
		for i, a := range admins {
			if a["email"] != g.Admins[i].Email {
				t.Errorf("group %s admin %d: got %v, want %s", g.Name, i, a["email"], g.Admins[i].Email)
			}
		}
		if len(pages) > 0 {
			if _, ok := pages[0].body["page_count"]; ok {
				t.Errorf("group admins: got page_count, which the OpenAPI response does not have")
			}
		}
	}
}

func TestRolesAndMembers(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	r := api(t, s, tok, "GET", "/roles", nil)
	roles := r.items("roles")
	if got, want := len(roles), len(org.Roles); got != want || r.num("total_records") != want {
		t.Fatalf("got %d roles (total_records %d), want %d", got, r.num("total_records"), want)
	}
	if _, ok := r.body["next_page_token"]; ok {
		t.Error("GET /roles: got next_page_token, want an unpaged listing")
	}
	if got := len(api(t, s, tok, "GET", "/roles?type=iq", nil).items("roles")); got != 0 {
		t.Errorf("GET /roles?type=iq: got %d roles, want 0", got)
	}
	for _, role := range roles {
		id := role["id"].(string)
		want := 0
		for _, u := range org.Users {
			if u.RoleID == id && u.Status != StatusPending {
				want++
			}
		}
		members, _ := listAll(t, s, tok, "/roles/"+id+"/members?page_size=300", "members")
		if len(members) != want || int(role["total_members"].(float64)) != want {
			t.Errorf("role %s: got %d members (total_members %v), want %d", id, len(members), role["total_members"], want)
		}
		for _, m := range members {
			if _, ok := m["department"]; !ok {
				t.Fatalf("role member: got no department field: %v", m)
			}
		}
	}
	owners, _ := listAll(t, s, tok, "/roles/0/members", "members")
	if len(owners) != 1 {
		t.Errorf("got %d owners, want exactly 1", len(owners))
	}
}

func TestListUsersByRole(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	users, _ := listAll(t, s, tok, "/users?role_id=1&page_size=3", "users")
	want := 0
	for _, u := range org.Users {
		if u.RoleID == "1" && u.Status == StatusActive {
			want++
		}
	}
	if len(users) != want {
		t.Errorf("got %d active admins, want %d", len(users), want)
	}
}

func TestReadAfterChange(t *testing.T) {
	org := small(t)
	s := NewServer(t, org, Options{})
	tok := requestToken(t, s)
	var id string
	for _, u := range org.Users {
		if u.Status == StatusActive {
			id = u.ID
			break
		}
	}
	if _, ok := s.ReadAfterChange(id); ok {
		t.Fatal("a user never changed: got a read after its change")
	}
	if _, err := s.UpdateUser(t.Context(), id, Profile{LastName: Ptr("Changed")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ReadAfterChange(id); ok {
		t.Fatal("changed, not read since: got a read after its change")
	}
	before := time.Now()
	listAll(t, s, tok, "/users?page_size=300", "users")
	first, ok := s.ReadAfterChange(id)
	if !ok || first.Before(before) {
		t.Fatalf("listed after its change: got %v, %v; want a time after %v", first, ok, before)
	}
	api(t, s, tok, "GET", "/users/"+id, nil)
	if again, _ := s.ReadAfterChange(id); !again.Equal(first) {
		t.Errorf("read again: got %v, want the first read %v", again, first)
	}
	if _, err := s.UpdateUser(t.Context(), id, Profile{LastName: Ptr("Again")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ReadAfterChange(id); ok {
		t.Fatal("changed again: the earlier read still counts")
	}
	before = time.Now()
	api(t, s, tok, "GET", "/users/"+id, nil)
	if got, ok := s.ReadAfterChange(id); !ok || got.Before(before) {
		t.Errorf("re-read after its change: got %v, %v; want a time after %v", got, ok, before)
	}
}
