package zoomtest

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// format renders a record on one line, its data sorted by field, so that a
// whole expected organisation reads as a list.
func format(r Record) string {
	var fields []string
	for k, v := range r.Data {
		fields = append(fields, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(fields)
	return r.Kind + " " + r.Key + " " + strings.Join(fields, " ")
}

func TestExpectedTinyOrg(t *testing.T) {
	want := []string{
		"service_user ada00000000000000000ab created_at=2024-05-01T10:00:00Z display_name=Ada Lovelace email=Ada@Example.com first_name=Ada id=ada00000000000000000ab last_login_at=2024-05-03T10:00:00Z last_name=Lovelace license=licensed role_id=2 status=active",
		"service_user adm00000000000000000ac created_at=2024-05-01T10:00:00Z display_name=Alan Admin email=admin@example.com first_name=Alan id=adm00000000000000000ac last_name=Admin license=basic role_id=1 status=active",
		"service_user ina00000000000000000ad created_at=2024-05-01T10:00:00Z display_name=Ina Active email=gone@example.com first_name=Ina id=ina00000000000000000ad last_name=Active license=type:99 role_id=cr1 status=inactive",
		"service_user owner0000000000000000a created_at=2024-05-01T10:00:00Z display_name=Olga Owner email=owner@example.com first_name=Olga id=owner0000000000000000a last_name=Owner license=licensed role_id=0 status=active",
		"service_user pending:new.hire@example.com created_at=2024-05-01T10:00:00Z display_name=Nina New email=New.Hire@Example.com first_name=Nina id= last_name=New license=unassigned role_id=2 status=pending",

		"entitlement group:g1 description= id=group:g1 name=Engineering type=group zoom_id=g1",
		"entitlement group:g2 description= id=group:g2 name=Sales type=group zoom_id=g2",
		"entitlement group_admin:g1 description= id=group_admin:g1 name=Engineering (admin) type=group_admin zoom_id=g1",
		"entitlement group_admin:g2 description= id=group_admin:g2 name=Sales (admin) type=group_admin zoom_id=g2",
		"entitlement license:basic description= id=license:basic name=Basic type=license zoom_id=",
		"entitlement license:licensed description= id=license:licensed name=Licensed type=license zoom_id=",
		"entitlement license:unassigned description= id=license:unassigned name=Unassigned type=license zoom_id=",
		"entitlement role:0 description=Account owner id=role:0 name=Owner type=role zoom_id=0",
		"entitlement role:1 description=Admins id=role:1 name=Admin type=role zoom_id=1",
		"entitlement role:2 description=Members id=role:2 name=Member type=role zoom_id=2",
		"entitlement role:cr1 description=Reads logs id=role:cr1 name=Auditor type=role zoom_id=cr1",

		"service_user_entitlement ada00000000000000000ab|group:g1 entitlement_id=group:g1 user_id=ada00000000000000000ab",
		"service_user_entitlement ada00000000000000000ab|group_admin:g1 entitlement_id=group_admin:g1 user_id=ada00000000000000000ab",
		"service_user_entitlement ada00000000000000000ab|license:licensed entitlement_id=license:licensed user_id=ada00000000000000000ab",
		"service_user_entitlement ada00000000000000000ab|role:2 entitlement_id=role:2 user_id=ada00000000000000000ab",
		"service_user_entitlement adm00000000000000000ac|group:g1 entitlement_id=group:g1 user_id=adm00000000000000000ac",
		"service_user_entitlement adm00000000000000000ac|group:g2 entitlement_id=group:g2 user_id=adm00000000000000000ac",
		"service_user_entitlement adm00000000000000000ac|license:basic entitlement_id=license:basic user_id=adm00000000000000000ac",
		"service_user_entitlement adm00000000000000000ac|role:1 entitlement_id=role:1 user_id=adm00000000000000000ac",
		"service_user_entitlement ina00000000000000000ad|role:cr1 entitlement_id=role:cr1 user_id=ina00000000000000000ad",
		"service_user_entitlement owner0000000000000000a|license:licensed entitlement_id=license:licensed user_id=owner0000000000000000a",
		"service_user_entitlement owner0000000000000000a|role:0 entitlement_id=role:0 user_id=owner0000000000000000a",
		"service_user_entitlement pending:new.hire@example.com|group:g2 entitlement_id=group:g2 user_id=pending:new.hire@example.com",
		"service_user_entitlement pending:new.hire@example.com|license:unassigned entitlement_id=license:unassigned user_id=pending:new.hire@example.com",
		"service_user_entitlement pending:new.hire@example.com|role:2 entitlement_id=role:2 user_id=pending:new.hire@example.com",

		"service_user_attribute ada00000000000000000ab|custom.cbf_badge name=custom.cbf_badge user_id=ada00000000000000000ab value=A1",
		"service_user_attribute ada00000000000000000ab|department name=department user_id=ada00000000000000000ab value=R&D",
		"service_user_attribute ada00000000000000000ab|employee_unique_id name=employee_unique_id user_id=ada00000000000000000ab value=E-1",
		"service_user_attribute ada00000000000000000ab|last_client_version name=last_client_version user_id=ada00000000000000000ab value=6.0.2.4680(win)",
		"service_user_attribute ada00000000000000000ab|timezone name=timezone user_id=ada00000000000000000ab value=Europe/London",
		"service_user_attribute ada00000000000000000ab|verified name=verified user_id=ada00000000000000000ab value=true",
		"service_user_attribute adm00000000000000000ac|verified name=verified user_id=adm00000000000000000ac value=false",
		"service_user_attribute ina00000000000000000ad|verified name=verified user_id=ina00000000000000000ad value=true",
		"service_user_attribute owner0000000000000000a|verified name=verified user_id=owner0000000000000000a value=true",
		"service_user_attribute pending:new.hire@example.com|verified name=verified user_id=pending:new.hire@example.com value=false",
	}
	var got []string
	for _, r := range Expected(tinyOrg()) {
		got = append(got, format(r))
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d records, want %d", len(got), len(want))
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("unexpected: %s", g)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("missing:    %s", w)
			}
		}
	}
}

func TestExpectedFollowsMutations(t *testing.T) {
	s := NewServer(t, tinyOrg(), Options{})
	ctx := t.Context()
	if _, err := s.AcceptInvitation(ctx, "new.hire@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveGroupAdmin(ctx, "g1", "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, r := range Expected(s.Org()) {
		keys[r.Key] = true
	}
	for key, want := range map[string]bool{
		"pen00000000000000000ae":                  true,
		"pending:new.hire@example.com":            false,
		"pen00000000000000000ae|group:g2":         true,
		"ada00000000000000000ab|group_admin:g1":   false,
		"ada00000000000000000ab|license:licensed": true,
	} {
		if keys[key] != want {
			t.Errorf("record %s: got present %v, want %v", key, keys[key], want)
		}
	}
}

func TestExpectedHasNoDanglingReferences(t *testing.T) {
	recs := Expected(Generate(11, Size{Users: 2000, Groups: 40, Roles: 8}))
	users, ents := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		switch r.Kind {
		case "service_user":
			users[r.Key] = true
		case "entitlement":
			ents[r.Key] = true
		}
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Kind+" "+r.Key] {
			t.Fatalf("got record %s %s twice", r.Kind, r.Key)
		}
		seen[r.Kind+" "+r.Key] = true
		for k, v := range r.Data {
			if _, ok := v.(string); !ok {
				t.Fatalf("record %s: got %s of type %T, want a string", r.Key, k, v)
			}
		}
		switch r.Kind {
		case "service_user_entitlement":
			if !users[r.Data["user_id"].(string)] || !ents[r.Data["entitlement_id"].(string)] {
				t.Fatalf("grant %s: dangling reference", r.Key)
			}
		case "service_user_attribute":
			if !users[r.Data["user_id"].(string)] || r.Data["value"] == "" {
				t.Fatalf("attribute %s: dangling or empty", r.Key)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	size := Size{Users: 300, Groups: 10, Roles: 5}
	if a, b := Generate(1, size), Generate(1, size); !reflect.DeepEqual(a, b) {
		t.Error("got two different organisations from seed 1")
	}
	if a, b := Generate(1, size), Generate(2, size); reflect.DeepEqual(a, b) {
		t.Error("got the same organisation from seeds 1 and 2")
	}
}

func TestGenerateInvariants(t *testing.T) {
	org := Generate(3, Size{Users: 5000, Groups: 100, Roles: 10})
	if got := len(org.Users); got != 5000 {
		t.Fatalf("got %d users, want 5000", got)
	}
	if got := len(org.Roles); got != 10 {
		t.Errorf("got %d roles, want 10", got)
	}
	groups := map[string]bool{}
	for _, g := range org.Groups {
		if len(g.ID) != 22 || groups[g.ID] {
			t.Fatalf("group %q: bad or duplicate id", g.ID)
		}
		groups[g.ID] = true
	}
	emails, ids := map[string]bool{}, map[string]bool{}
	counts := map[string]int{}
	var owners, mixedCase, nonASCII, noUserCreated, withCustom, oddType int
	for _, u := range org.Users {
		counts[u.Status]++
		if u.RoleID == RoleOwner {
			owners++
			if u.Status != StatusActive {
				t.Error("got an owner who is not active")
			}
		}
		e := strings.ToLower(u.Email)
		if emails[e] {
			t.Fatalf("email %s: used twice (case-insensitively)", u.Email)
		}
		emails[e] = true
		if len(u.ID) != 22 || ids[u.ID] {
			t.Fatalf("user %s: bad or duplicate id %q", u.Email, u.ID)
		}
		ids[u.ID] = true
		if u.Email != e {
			mixedCase++
		}
		if utf8.RuneCountInString(u.DisplayName) != len(u.DisplayName) {
			nonASCII++
		}
		if u.UserCreatedAt.IsZero() {
			noUserCreated++
		}
		if len(u.CustomAttributes) > 0 {
			withCustom++
		}
		if u.Type != 1 && u.Type != 2 && u.Type != 4 {
			oddType++
		}
		if len(u.GroupIDs) > 4 {
			t.Errorf("user %s: got %d groups, want at most 4", u.Email, len(u.GroupIDs))
		}
		for _, g := range u.GroupIDs {
			if !groups[g] {
				t.Fatalf("user %s: group %s does not exist", u.Email, g)
			}
		}
		if u.Status == StatusPending && !u.LastLoginTime.IsZero() {
			t.Errorf("pending user %s: got a last login", u.Email)
		}
	}
	var adminsOtherCase, adminsNoUser int
	for _, g := range org.Groups {
		if len(g.Admins) > 4 {
			t.Errorf("group %s: got %d admins", g.Name, len(g.Admins))
		}
		for _, a := range g.Admins {
			if !emails[strings.ToLower(a.Email)] {
				adminsNoUser++
				continue
			}
			for _, u := range org.Users {
				if strings.EqualFold(u.Email, a.Email) && u.Email != a.Email {
					adminsOtherCase++
				}
			}
		}
	}
	for name, n := range map[string]int{
		"mixed-case emails": mixedCase, "non-ASCII names": nonASCII, "users without user_created_at": noUserCreated,
		"users with custom attributes": withCustom, "users of another type": oddType, "inactive users": counts[StatusInactive],
		"pending users": counts[StatusPending], "admins in another case": adminsOtherCase, "admins who are no user": adminsNoUser,
	} {
		if n == 0 {
			t.Errorf("got no %s", name)
		}
	}
	if owners != 1 {
		t.Errorf("got %d owners, want 1", owners)
	}
}
