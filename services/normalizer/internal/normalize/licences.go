package normalize

import (
	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// LicenseTiers are the licence tiers a user holds beside its type's
// licence: its Zoom United plan and each bundle or add-on of its
// license_info_list (see clarity.UnitedLicense and clarity.TierLicense),
// each once, in Zoom's order.
func LicenseTiers(u *zoom.User) []clarity.Entitlement {
	if u.PlanUnitedType == "" && len(u.LicenseInfoList) == 0 {
		return nil
	}
	var out []clarity.Entitlement
	add := func(e clarity.Entitlement) {
		for _, o := range out {
			if o.ID == e.ID {
				return
			}
		}
		out = append(out, e)
	}
	if u.PlanUnitedType != "" {
		add(clarity.UnitedLicense(string(u.PlanUnitedType)))
	}
	for _, li := range u.LicenseInfoList {
		if e, ok := clarity.TierLicense(li.LicenseType, string(li.LicenseOption)); ok {
			add(e)
		}
	}
	return out
}

// tierEntitlements collects the entitlements of the licence tiers the
// users of one page hold, each once: a tier exists while someone holds
// it, and has no listing of its own.
type tierEntitlements struct {
	seen map[string]bool
	recs []*pb.Record
}

func (t *tierEntitlements) add(es []clarity.Entitlement) {
	for i := range es {
		if t.seen[es[i].ID] {
			continue
		}
		if t.seen == nil {
			t.seen = map[string]bool{}
		}
		t.seen[es[i].ID] = true
		t.recs = append(t.recs, EntitlementRecord(&es[i]))
	}
}
