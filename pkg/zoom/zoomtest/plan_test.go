package zoomtest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPlanBasic: a free account is refused the groups and roles endpoints
// with 400 code 200, and lists its users as before; upgraded (here over
// the admin API), it is served them again.
func TestPlanBasic(t *testing.T) {
	t.Parallel()
	org := small(t)
	s := NewServer(t, org, Options{Plan: PlanBasic})
	tok := requestToken(t, s)
	group, role := org.Groups[0].ID, org.Roles[0].ID
	paidOnly := []string{"/groups", "/groups/" + group, "/groups/" + group + "/admins", "/groups/" + group + "/members",
		"/roles", "/roles?type=iq", "/roles/" + role, "/roles/" + role + "/members"}
	for _, path := range paidOnly {
		r := api(t, s, tok, "GET", path, nil)
		if r.status != http.StatusBadRequest || r.code() != CodePaidOnly || !strings.Contains(r.message(), "Paid account") {
			t.Errorf("free account: GET %s: got %d code %d %q, want 400 code 200 Only available for Paid account", path, r.status, r.code(), r.message())
		}
	}
	users, _ := listAll(t, s, tok, "/users?status=active&page_size=300", "users")
	if want := countStatus(org, "active"); len(users) != want {
		t.Errorf("free account: %d active users listed, want %d", len(users), want)
	}

	adm := httptest.NewServer(s.AdminHandler())
	t.Cleanup(adm.Close)
	for _, tc := range []struct {
		body       string
		wantStatus int
		wantPlan   Plan
	}{
		{`{"plan":"pro"}`, http.StatusNoContent, PlanPro},
		{`{"plan":"platinum"}`, http.StatusBadRequest, PlanPro},
		{`{"plan":"basic"}`, http.StatusNoContent, PlanBasic},
		{`{"plan":"business"}`, http.StatusNoContent, PlanBusiness},
	} {
		r := do(t, "PUT", adm.URL+"/_sim/accounts/"+s.AccountID()+"/plan", "", strings.NewReader(tc.body))
		if r.status != tc.wantStatus || s.DefaultAccount().Plan() != tc.wantPlan {
			t.Errorf("PUT plan %s: got %d, plan %q; want %d, plan %q", tc.body, r.status, s.DefaultAccount().Plan(), tc.wantStatus, tc.wantPlan)
		}
	}
	for _, path := range paidOnly {
		if r := api(t, s, tok, "GET", path, nil); r.status != http.StatusOK {
			t.Errorf("paid again: GET %s: got %d %s, want 200", path, r.status, r.raw)
		}
	}
}

// TestPlanOfAddedAccount: an account added as free is refused groups, the
// default account beside it is not, and an unknown plan is refused.
func TestPlanOfAddedAccount(t *testing.T) {
	t.Parallel()
	s := NewServer(t, small(t), Options{})
	if _, err := s.AddAccount("bad", nil, AccountOptions{Plan: "gold"}); err == nil {
		t.Error("AddAccount with plan gold succeeded, want ErrInvalid")
	}
	a, err := s.AddAccount("free", small(t), AccountOptions{Plan: PlanBasic})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Info().Plan; got != PlanBasic {
		t.Errorf("Info().Plan got %q, want basic", got)
	}
	if r := api(t, s, requestToken(t, s), "GET", "/groups", nil); r.status != http.StatusOK {
		t.Errorf("default account: GET /groups got %d, want 200", r.status)
	}
}
