package zoomtest

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is one Clarity record as the README's "Subjects and events" defines it: its kind
// ("service_user", "entitlement", "service_user_entitlement",
// "service_user_attribute"), its key (the CloudEvent subject) and its data.
// Every data value is a string.
type Record struct {
	Kind string         `json:"kind"`
	Key  string         `json:"key"`
	Data map[string]any `json:"data"`
}

// Expected computes the Clarity records an organisation implies, read
// straight from the record definitions and written without the connector's code, so
// that a test can compare what the connector emits with what it should.
// Records come sorted by kind (users, entitlements, grants, attributes) and
// then by key.
//
// The oracle uses only what a full sync can see with the fewest requests:
// GET /users (three statuses, include_fields=custom_attributes), GET
// /groups, GET /groups/{groupId}/admins and GET /roles (type common and
// type iq). In particular the language and login_types attributes are never
// expected: they are not in the GET /users list item schema, only in GET
// /users/{userId}, which a sync does not call for every user (enrichment is
// off by default).
//
// A user's Zoom United plan and the items of its license_info_list are
// licence entitlements, which exist while someone holds them:
// license:united:<plan_united_type>, and license:<license_type in lower
// case>:<license_option> for each item but MEETING 2 (the Licensed type,
// license:licensed). They are named as Zoom names the plan, or
// "Zoom United plan <n>" and "<LICENSE_TYPE> licence option <n>".
func Expected(org *Org) []Record {
	var users, ents, grants, attrs []Record
	tiers := map[string]string{} // the licence tiers users hold, by key

	for _, u := range org.Users {
		key := u.ID
		id := u.ID
		if u.Status == StatusPending {
			key, id = "pending:"+strings.ToLower(u.Email), ""
		}
		data := map[string]any{
			"id":           id,
			"email":        u.Email,
			"first_name":   u.FirstName,
			"last_name":    u.LastName,
			"display_name": u.DisplayName,
			"status":       u.Status,
			"license":      licenseOf(u.Type),
			"role_id":      u.RoleID,
		}
		created := u.UserCreatedAt
		if created.IsZero() {
			created = u.CreatedAt
		}
		if !created.IsZero() {
			data["created_at"] = created.UTC().Format(time.RFC3339)
		}
		if !u.LastLoginTime.IsZero() {
			data["last_login_at"] = u.LastLoginTime.UTC().Format(time.RFC3339)
		}
		users = append(users, Record{Kind: "service_user", Key: key, Data: data})

		grant := func(ent string) {
			grants = append(grants, Record{Kind: "service_user_entitlement", Key: key + "|" + ent,
				Data: map[string]any{"user_id": key, "entitlement_id": ent}})
		}
		for _, gid := range u.GroupIDs {
			grant("group:" + gid)
		}
		if u.RoleID != "" {
			grant("role:" + u.RoleID)
		}
		switch u.Type {
		case TypeBasic, TypeLicensed, TypeUnassigned:
			grant("license:" + licenseOf(u.Type))
		}
		for _, t := range licenceTiers(u) {
			grant(t.key)
			tiers[t.key] = t.name
		}

		attr := func(name, value string) {
			if value == "" {
				return
			}
			attrs = append(attrs, Record{Kind: "service_user_attribute", Key: key + "|" + name,
				Data: map[string]any{"user_id": key, "name": name, "value": value}})
		}
		attr("department", u.Dept)
		attr("timezone", u.Timezone)
		attr("employee_unique_id", u.EmployeeUniqueID)
		attr("last_client_version", u.LastClientVersion)
		attr("verified", strconv.FormatBool(u.Verified == 1))
		for _, ca := range u.CustomAttributes {
			attr("custom."+ca.Key, ca.Value)
		}
	}

	// Zoom lists group admins by email only; the grant goes to the user with
	// that email, compared case-insensitively. An admin who is no user of
	// the account holds nothing.
	byEmail := map[string]string{}
	for _, u := range org.Users {
		key := u.ID
		if u.Status == StatusPending {
			key = "pending:" + strings.ToLower(u.Email)
		}
		byEmail[strings.ToLower(u.Email)] = key
	}
	for _, g := range org.Groups {
		ents = append(ents,
			entitlement("group:"+g.ID, "group", g.ID, g.Name, ""),
			entitlement("group_admin:"+g.ID, "group_admin", g.ID, g.Name+" (admin)", ""))
		for _, a := range g.Admins {
			if key, ok := byEmail[strings.ToLower(a.Email)]; ok {
				ent := "group_admin:" + g.ID
				grants = append(grants, Record{Kind: "service_user_entitlement", Key: key + "|" + ent,
					Data: map[string]any{"user_id": key, "entitlement_id": ent}})
			}
		}
	}
	for _, r := range org.Roles {
		if r.Type != "" && r.Type != "common" && r.Type != "iq" {
			continue
		}
		ents = append(ents, entitlement("role:"+r.ID, "role", r.ID, r.Name, r.Description))
	}
	for key, name := range tiers {
		ents = append(ents, entitlement(key, "license", "", name, ""))
	}
	ents = append(ents,
		entitlement("license:basic", "license", "", "Basic", ""),
		entitlement("license:licensed", "license", "", "Licensed", ""),
		entitlement("license:unassigned", "license", "", "Unassigned", ""))

	var out []Record
	for _, list := range [][]Record{users, ents, grants, attrs} {
		slices.SortFunc(list, func(a, b Record) int { return cmp.Compare(a.Key, b.Key) })
		// The same grant can arise twice (an admin listed under two
		// spellings of one email); a record key is unique.
		list = slices.CompactFunc(list, func(a, b Record) bool { return a.Key == b.Key })
		out = append(out, list...)
	}
	return out
}

func entitlement(key, typ, zoomID, name, description string) Record {
	return Record{Kind: "entitlement", Key: key, Data: map[string]any{
		"id": key, "type": typ, "zoom_id": zoomID, "name": name, "description": description,
	}}
}

// licenseOf names a Zoom user type as the contract's license value.
func licenseOf(t int) string {
	switch t {
	case TypeBasic:
		return "basic"
	case TypeLicensed:
		return "licensed"
	case TypeUnassigned:
		return "unassigned"
	}
	return "type:" + strconv.Itoa(t)
}

// tier is a licence tier's entitlement key and name.
type tier struct{ key, name string }

// licenceTiers are the licence tiers u holds beside its type (see
// Expected), each once.
func licenceTiers(u User) []tier {
	var out []tier
	add := func(t tier) {
		for _, o := range out {
			if o.key == t.key {
				return
			}
		}
		out = append(out, t)
	}
	if u.PlanUnitedType != "" {
		name, ok := unitedPlanNames[u.PlanUnitedType]
		if !ok {
			name = "Zoom United plan " + u.PlanUnitedType
		}
		add(tier{"license:united:" + u.PlanUnitedType, name})
	}
	for _, li := range u.LicenseInfoList {
		opt := strconv.FormatInt(li.LicenseOption, 10)
		if li.LicenseType == "" || (li.LicenseType == "MEETING" && opt == "2") {
			continue
		}
		name := ""
		if li.LicenseType == "ZOOM_WORKPLACE_BUNDLE" {
			name = workplacePlanNames[opt]
		}
		if name == "" {
			name = li.LicenseType + " licence option " + opt
		}
		add(tier{"license:" + strings.ToLower(li.LicenseType) + ":" + opt, name})
	}
	return out
}
