package zoom

import "testing"

func TestLicenceFieldsDecode(t *testing.T) {
	body := `{"users":[
		{"id":"a","email":"a@x","type":2,"plan_united_type":"32","license_info_list":[
			{"license_type":"ZOOM_WORKPLACE_BUNDLE","license_option":576460752303423488,"subscription_id":"SUBREF-1"},
			{"license_type":"MEETING","license_option":"2"}]},
		{"id":"b","email":"b@x","type":1,"plan_united_type":1024,"license_info_list":[{"license_type":"X","license_option":1.5}]},
		{"id":"c","email":"c@x","type":1,"plan_united_type":{"odd":true},"license_info_list":[{"license_option":-4}]},
		{"id":"d","email":"d@x","type":1,"plan_united_type":"0016"}]}`
	var l UserList
	if err := Decode([]byte(body), &l); err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := []struct {
		plan    Code
		options []Code
	}{
		{"32", []Code{"576460752303423488", "2"}},
		{"1024", []Code{""}},
		{"", []Code{""}},
		{"16", nil},
	}
	if len(l.Users) != len(want) {
		t.Fatalf("got %d users, want %d", len(l.Users), len(want))
	}
	for i, w := range want {
		u := l.Users[i]
		if u.PlanUnitedType != w.plan {
			t.Errorf("user %s: plan_united_type %q, want %q", u.ID, u.PlanUnitedType, w.plan)
		}
		if len(u.LicenseInfoList) != len(w.options) {
			t.Fatalf("user %s: %d licences, want %d", u.ID, len(u.LicenseInfoList), len(w.options))
		}
		for j, o := range w.options {
			if got := u.LicenseInfoList[j].LicenseOption; got != o {
				t.Errorf("user %s licence %d: option %q, want %q", u.ID, j, got, o)
			}
		}
	}
	if got := l.Users[0].LicenseInfoList[0]; got.LicenseType != LicenseTypeWorkplace || got.SubscriptionID != "SUBREF-1" {
		t.Errorf("got licence %+v", got)
	}
}
