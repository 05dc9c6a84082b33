package clarity

import (
	"strings"
)

// Licence tiers: the paid bundles and add-ons Zoom names for a user in
// GET /users, each a license entitlement beside the user type's
// (license:basic, license:licensed, license:unassigned). Unlike those, a
// tier's entitlement exists only while some user holds it: Zoom lists no
// tiers of its own.
//
//   - plan_united_type <n> (a Zoom United plan) is license:united:<n>.
//   - each license_info_list item of license_type <T> and license_option
//     <n> is license:<t>:<n>, t being T in lower case: license:
//     zoom_workplace_bundle:16 for Zoom Workplace Business Plus with US/CA
//     Unlimited. MEETING 2 is the Licensed user type, which license:licensed
//     already is, and yields none.
//
// Known codes have Zoom's own names (UnitedPlanName, WorkplacePlanName);
// another code is named after its field and number.
const (
	LicenseUnitedPrefix = "license:united:"
	// MeetingLicensedOption is the MEETING option that is the Licensed
	// user type.
	MeetingLicensedOption = "2"
)

// unitedPlans names the plan_united_type codes GET /users reports. Read
// only: UnitedPlanName looks a code up.
var unitedPlans = map[string]string{
	"1":      "Zoom United Pro-United with US/CA Unlimited",
	"2":      "Zoom United Pro-United with UK/IR Unlimited",
	"4":      "Zoom United Pro-United with AU/NZ Unlimited",
	"8":      "Zoom United Pro-United with Global Select",
	"16":     "Zoom United Pro-United with Zoom Phone Pro",
	"32":     "Zoom United Biz-United with US/CA Unlimited",
	"64":     "Zoom United Biz-United with UK/IR Unlimited",
	"128":    "Zoom United Biz-United with AU/NZ Unlimited",
	"256":    "Zoom United Biz-United with Global Select",
	"512":    "Zoom United Biz-United with Zoom Phone Pro",
	"1024":   "Zoom United Ent-United with US/CA Unlimited",
	"2048":   "Zoom United Ent-United with UK/IR Unlimited",
	"4096":   "Zoom United Ent-United with AU/NZ Unlimited",
	"8192":   "Zoom United Ent-United with Global Select",
	"16384":  "Zoom United Ent-United with Zoom Phone Pro",
	"32768":  "Zoom United Pro-United with JP Unlimited",
	"65536":  "Zoom United Biz-United with JP Unlimited",
	"131072": "Zoom United Ent-United with JP Unlimited",
}

// workplacePlans names the ZOOM_WORKPLACE_BUNDLE license_option codes
// GET /users reports. Government accounts use 4, 8 and 16 too, 16 there
// for plain "Zoom Workplace Business Plus"; the names here are the
// commercial accounts'. Read only: WorkplacePlanName looks a code up.
var workplacePlans = map[string]string{
	"4":                  "Zoom Workplace Enterprise",
	"8":                  "Zoom Workplace Enterprise Plus",
	"16":                 "Zoom Workplace Business Plus with US/CA Unlimited",
	"32":                 "Zoom Workplace Business Plus with UK/IR Unlimited",
	"64":                 "Zoom Workplace Business Plus with AU/NZ Unlimited",
	"128":                "Zoom Workplace Business Plus with Japan Unlimited",
	"33554432":           "Zoom Workplace Business Plus with Global Select",
	"134217728":          "Zoom Workplace Enterprise Premier with US/CA Unlimited",
	"1073741824":         "Zoom Workplace Enterprise Premier with AU/NZ Unlimited",
	"536870912":          "Zoom Workplace Enterprise Premier with UK/IR Unlimited",
	"268435456":          "Zoom Workplace Enterprise Premier with Japan Unlimited",
	"4398046511104":      "Zoom Workplace Pro Plus with US/CA Unlimited",
	"18014398509481984":  "Zoom Workplace for Education School and Campus",
	"72057594037927936":  "Zoom Workplace for Education Enterprise Essentials",
	"576460752303423488": "Zoom Workplace for Education Enterprise Student",
	"144115188075855872": "Zoom Workplace for Education Enterprise Plus",
	"137438953472":       "Zoom Workplace for Education School and Campus Plus with US/CA Unlimited",
	"1099511627776":      "Zoom Workplace for Education School and Campus Plus with AU/NZ Unlimited",
	"549755813888":       "Zoom Workplace for Education School and Campus Plus with UK/IR Unlimited",
	"274877906944":       "Zoom Workplace for Education School and Campus Plus with Japan Unlimited",
	"2199023255552":      "Zoom Workplace for Education School and Campus Plus with Global Select",
	"4294967296":         "Zoom Workplace for Education Enterprise Premier with US/CA Unlimited",
	"34359738368":        "Zoom Workplace for Education Enterprise Premier with AU/NZ Unlimited",
	"17179869184":        "Zoom Workplace for Education Enterprise Premier with UK/IR Unlimited",
	"8589934592":         "Zoom Workplace for Education Enterprise Premier with Japan Unlimited",
	"68719476736":        "Zoom Workplace for Education Enterprise Premier with Global Select",
}

// UnitedPlanName returns Zoom's name of a plan_united_type code, and
// false for a code it has none for here.
func UnitedPlanName(code string) (string, bool) {
	name, ok := unitedPlans[code]
	return name, ok
}

// WorkplacePlanName returns Zoom's name of a ZOOM_WORKPLACE_BUNDLE
// license_option code, and false for a code it has none for here.
func WorkplacePlanName(option string) (string, bool) {
	name, ok := workplacePlans[option]
	return name, ok
}

// UnitedLicense is the entitlement of plan_united_type code (decimal
// digits).
func UnitedLicense(code string) Entitlement {
	name, ok := UnitedPlanName(code)
	if !ok {
		name = "Zoom United plan " + code
	}
	return Entitlement{ID: LicenseUnitedPrefix + code, Type: EntitlementLicense, Name: name}
}

// TierLicense is the entitlement of a license_info_list item of
// licenseType (Zoom's name, such as ZOOM_WORKPLACE_BUNDLE) and option
// (decimal digits), and false for MEETING 2 (license:licensed) and for a
// type that is empty or holds other than letters, digits and underscores
// (which a key could not carry unambiguously).
func TierLicense(licenseType, option string) (Entitlement, bool) {
	t := strings.ToLower(licenseType)
	if t == "" || len(t) > 64 || option == "" {
		return Entitlement{}, false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return Entitlement{}, false
		}
	}
	if t == "meeting" && option == MeetingLicensedOption {
		return Entitlement{}, false
	}
	var name string
	if t == "zoom_workplace_bundle" {
		name, _ = WorkplacePlanName(option)
	}
	if name == "" {
		name = strings.ToUpper(t) + " licence option " + option
	}
	return Entitlement{ID: "license:" + t + ":" + option, Type: EntitlementLicense, Name: name}, true
}
