package normalize

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestLicenceTiersAndIQRoles: a user's Zoom United plan and the bundles and
// add-ons of its license_info_list are license entitlements with Zoom's
// plan names, held by the user; the roles of type iq are role
// entitlements like the common ones. The records of every listing of the
// simulator, normalized, are what zoomtest.Expected says of them.
func TestLicenceTiersAndIQRoles(t *testing.T) {
	org := zoomtest.Generate(13, zoomtest.Size{Users: 60, Groups: 2, Roles: 3})
	org.Roles = append(org.Roles, zoomtest.Role{ID: "iqR1", Name: "IQ Manager", Description: "Revenue Accelerator", Type: "iq"})
	tiers := []struct {
		plan  string
		infos []zoomtest.LicenseInfo
	}{
		{"32", nil},
		{"131072", []zoomtest.LicenseInfo{{LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 16, SubscriptionID: "SUBREF-1"}}},
		{"", []zoomtest.LicenseInfo{{LicenseType: "MEETING", LicenseOption: 2}, {LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 576460752303423488}}},
		{"999", []zoomtest.LicenseInfo{{LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 3}, {LicenseType: "WEBINAR", LicenseOption: 500}}},
		{"32", []zoomtest.LicenseInfo{{LicenseType: "ZOOM_WORKPLACE_BUNDLE", LicenseOption: 16}}},
	}
	n := 0
	for i := range org.Users {
		if u := &org.Users[i]; u.Type == zoomtest.TypeLicensed && n < len(tiers) {
			u.PlanUnitedType, u.LicenseInfoList = tiers[n].plan, tiers[n].infos
			n++
		}
	}
	if n < len(tiers) {
		t.Fatalf("only %d licensed users", n)
	}
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	c, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true, PageSize: 25,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]json.RawMessage{}
	walk := func(l zoom.Listing, pl pb.Listing) {
		err := c.Pages(context.Background(), l, func(p zoom.RawPage) error {
			b, err := Page(&pb.RawPage{Ref: &pb.PageRef{Listing: pl, Page: int32(p.Number), Last: p.Last}, FetchedAtMs: fetchedAt, Body: p.Body})
			if err != nil {
				return err
			}
			for _, r := range b.GetRecords() {
				got[pipeline.KindName(r.GetKind())+" "+r.GetKey()] = r.GetData()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	walk(zoom.UsersListing(zoom.UserStatusActive), pb.Listing_LISTING_USERS_ACTIVE)
	walk(zoom.UsersListing(zoom.UserStatusInactive), pb.Listing_LISTING_USERS_INACTIVE)
	walk(zoom.UsersListing(zoom.UserStatusPending), pb.Listing_LISTING_USERS_PENDING)
	walk(zoom.RolesListing(), pb.Listing_LISTING_ROLES)
	walk(zoom.IQRolesListing(), pb.Listing_LISTING_ROLES)

	// Every license and role record, entitlement or grant.
	relevant := func(key string) bool {
		_, ent, _ := strings.Cut(key, "|")
		if ent == "" {
			_, ent, _ = strings.Cut(key, " ")
		}
		return strings.HasPrefix(ent, "license:") || strings.HasPrefix(ent, "role:")
	}
	want := map[string]json.RawMessage{}
	for _, r := range zoomtest.Expected(org) {
		if r.Kind != "entitlement" && r.Kind != "service_user_entitlement" {
			continue
		}
		k := r.Kind + " " + r.Key
		if !relevant(k) {
			continue
		}
		d, err := json.Marshal(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		want[k] = d
	}
	for k := range got {
		if !relevant(k) || (!strings.HasPrefix(k, "entitlement ") && !strings.HasPrefix(k, "service_user_entitlement ")) {
			delete(got, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		var a, b any
		_ = json.Unmarshal(want[k], &a)
		if g, ok := got[k]; !ok {
			t.Errorf("missing %s %s", k, want[k])
		} else if _ = json.Unmarshal(g, &b); !equalJSON(a, b) {
			t.Errorf("%s: got %s, want %s", k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s %s", k, got[k])
		}
	}
	for _, k := range []string{"entitlement license:united:32", "entitlement license:zoom_workplace_bundle:16",
		"entitlement license:united:999", "entitlement license:webinar:500", "entitlement role:iqR1"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if _, ok := got["entitlement license:meeting:2"]; ok {
		t.Error("MEETING 2 made an entitlement of its own, want it to be license:licensed")
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
