package zoomtest

import (
	"fmt"
	"net/http"
	"strings"
)

// Plan is a Zoom account's plan, as far as the API differs by plan.
type Plan string

// The plans the simulator plays. The zero Plan is a paid account (PlanPro),
// the simulator's behaviour before plans existed.
const (
	// PlanBasic is a free account. Zoom refuses it every groups endpoint
	// (their OpenAPI: 400 code 200 "Only available for Paid account.") and
	// the roles endpoints ("Pro or higher plan"; Zoom documents no answer
	// to GET /roles, and the simulator gives the same 400 code 200, the code
	// Zoom's role endpoints use for a free account).
	PlanBasic Plan = "basic"
	// PlanPro and PlanBusiness are paid accounts: every endpoint answers.
	PlanPro      Plan = "pro"
	PlanBusiness Plan = "business"
)

// CodePaidOnly is the Zoom error code of an endpoint refused to a free
// account.
const CodePaidOnly = 200

// paid reports whether the plan offers groups and roles.
func (p Plan) paid() bool { return p != PlanBasic }

// validPlan accepts the plans the simulator knows; "" is PlanPro.
func validPlan(p Plan) bool {
	switch p {
	case "", PlanBasic, PlanPro, PlanBusiness:
		return true
	}
	return false
}

// SetPlan changes the account's plan at run time, as an upgrade or a
// downgrade does: on PlanBasic the groups and roles endpoints answer 400
// code 200, on a paid plan they answer again. The organisation is kept as
// it is: Zoom's documents do not say what becomes of a downgraded account's
// groups and roles, and the users' group_ids and role_id are listed as
// before (a connector must not take the refusal for groups that are gone).
// It fails with ErrInvalid for a plan it does not know.
func (a *Account) SetPlan(p Plan) error {
	if !validPlan(p) {
		return fmt.Errorf("plan %.32q is not basic, pro or business: %w", p, ErrInvalid)
	}
	if p == "" {
		p = PlanPro
	}
	a.plan.Store(&p)
	return nil
}

// Plan is the account's plan.
func (a *Account) Plan() Plan {
	if p := a.plan.Load(); p != nil {
		return *p
	}
	return PlanPro
}

// SetPlan changes the default account's plan (see Account.SetPlan).
func (s *Server) SetPlan(p Plan) error { return s.def.SetPlan(p) }

// planRefuses answers the request with Zoom's refusal when the account's
// plan does not offer the route, and reports whether it did.
func (a *Account) planRefuses(w http.ResponseWriter, rt route) bool {
	if a.Plan().paid() || !paidOnly(rt.path) {
		return false
	}
	writeError(w, http.StatusBadRequest, CodePaidOnly, "Only available for Paid account.")
	return true
}

// paidOnly reports whether a route needs a paid plan: the groups endpoints
// ("Prerequisite: Pro or higher account") and the roles endpoints ("Pro or
// higher plan").
func paidOnly(path string) bool {
	return path == "/groups" || strings.HasPrefix(path, "/groups/") ||
		path == "/roles" || strings.HasPrefix(path, "/roles/")
}
