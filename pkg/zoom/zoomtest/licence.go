package zoomtest

// LicenseInfo is one item of a user's license_info_list in GET /users and
// GET /users/{userId}: a licence of one subscription (license_type
// MEETING or ZOOM_WORKPLACE_BUNDLE, an integer license_option, a
// subscription_id).
type LicenseInfo struct {
	LicenseType    string `json:"license_type"`
	LicenseOption  int64  `json:"license_option"`
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// dropLicences removes every licence of u, as deactivation (PUT
// /users/{userId}/status) does in Zoom: a Licensed user becomes Basic,
// and its Zoom United plan and license_info_list go. Unassigned (type 4)
// is no licence, and stays.
func dropLicences(u *User) {
	if u.Type == TypeLicensed {
		u.Type = TypeBasic
	}
	u.PlanUnitedType = ""
	u.LicenseInfoList = nil
}

// Zoom's plan names of the codes of plan_united_type and of a
// ZOOM_WORKPLACE_BUNDLE license_option: what the account's admin sees,
// and what Expected names the licence entitlements.
var (
	unitedPlanNames = map[string]string{
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
	workplacePlanNames = map[string]string{
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
)
