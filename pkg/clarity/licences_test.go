package clarity

import "testing"

func TestLicenceTierKeysAndNames(t *testing.T) {
	tests := []struct {
		typ, option string
		ok          bool
		id, name    string
	}{
		{"ZOOM_WORKPLACE_BUNDLE", "16", true, "license:zoom_workplace_bundle:16", "Zoom Workplace Business Plus with US/CA Unlimited"},
		{"ZOOM_WORKPLACE_BUNDLE", "576460752303423488", true, "license:zoom_workplace_bundle:576460752303423488", "Zoom Workplace for Education Enterprise Student"},
		{"ZOOM_WORKPLACE_BUNDLE", "3", true, "license:zoom_workplace_bundle:3", "ZOOM_WORKPLACE_BUNDLE licence option 3"},
		{"MEETING", "2", false, "", ""},
		{"MEETING", "4", true, "license:meeting:4", "MEETING licence option 4"},
		{"Webinar_500", "1", true, "license:webinar_500:1", "WEBINAR_500 licence option 1"},
		{"a|b", "1", false, "", ""},
		{"a:b", "1", false, "", ""},
		{"", "1", false, "", ""},
		{"MEETING", "", false, "", ""},
	}
	for _, tt := range tests {
		e, ok := TierLicense(tt.typ, tt.option)
		if ok != tt.ok || e.ID != tt.id || e.Name != tt.name || (ok && (e.Type != EntitlementLicense || e.ZoomID != "" || e.Description != "")) {
			t.Errorf("TierLicense(%q, %q) = %+v, %v; want %s %q, %v", tt.typ, tt.option, e, ok, tt.id, tt.name, tt.ok)
		}
	}
	if e := UnitedLicense("1024"); e.ID != "license:united:1024" || e.Name != "Zoom United Ent-United with US/CA Unlimited" || e.Type != EntitlementLicense {
		t.Errorf("UnitedLicense(1024) = %+v", e)
	}
	if e := UnitedLicense("3"); e.ID != "license:united:3" || e.Name != "Zoom United plan 3" {
		t.Errorf("UnitedLicense(3) = %+v", e)
	}
	if len(unitedPlans) != 18 || len(workplacePlans) != 26 {
		t.Errorf("%d United plans and %d Workplace plans, want Zoom's 18 and 26", len(unitedPlans), len(workplacePlans))
	}
	if name, ok := UnitedPlanName("131072"); !ok || name != "Zoom United Ent-United with JP Unlimited" {
		t.Errorf("UnitedPlanName(131072) = %q, %v", name, ok)
	}
	if name, ok := WorkplacePlanName("8"); !ok || name != "Zoom Workplace Enterprise Plus" {
		t.Errorf("WorkplacePlanName(8) = %q, %v", name, ok)
	}
	if name, ok := WorkplacePlanName("3"); ok || name != "" {
		t.Errorf("WorkplacePlanName(3) = %q, %v; want none", name, ok)
	}
}
