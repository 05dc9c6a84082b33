package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

const fetchedAt = 1_764_331_200_000

func rawPage(l pb.Listing, body string) *pb.RawPage {
	return &pb.RawPage{
		Run:         &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"},
		Ref:         &pb.PageRef{Listing: l, Page: 1, Last: true},
		FetchedAtMs: fetchedAt,
		Body:        []byte(body),
	}
}

// usersBody wraps user objects in a GET /users page.
func usersBody(users ...string) string {
	return `{"next_page_token":"","page_size":300,"total_records":` + strconv.Itoa(len(users)) +
		`,"users":[` + strings.Join(users, ",") + `]}`
}

func mustPage(tb testing.TB, p *pb.RawPage) *pb.RecordBatch {
	tb.Helper()
	b, err := Page(p)
	if err != nil {
		tb.Fatalf("Page(%v): %v", p.GetRef().GetListing(), err)
	}
	checkRecords(tb, b)
	return b
}

// checkRecords checks what every record must satisfy whatever its content:
// no hash (the writer computes it), data that is valid JSON, and the keys
// that link it to its user and entitlement.
func checkRecords(tb testing.TB, b *pb.RecordBatch) {
	tb.Helper()
	for _, r := range b.GetRecords() {
		if len(r.GetHash()) != 0 {
			tb.Errorf("%s: got hash %x on the wire, want none", r.GetKey(), r.GetHash())
		}
		if !json.Valid(r.GetData()) {
			tb.Errorf("%s: data is not JSON: %s", r.GetKey(), r.GetData())
		}
		switch r.GetKind() {
		case pb.Kind_KIND_SERVICE_USER:
			if r.GetUserKey() != r.GetKey() {
				tb.Errorf("%s: user key got %q, want the key", r.GetKey(), r.GetUserKey())
			}
		case pb.Kind_KIND_SERVICE_USER_ENTITLEMENT:
			if want := clarity.GrantKey(r.GetUserKey(), r.GetEntitlementKey()); r.GetKey() != want || r.GetUserKey() == "" {
				tb.Errorf("grant: key got %q, want %q", r.GetKey(), want)
			}
		case pb.Kind_KIND_SERVICE_USER_ATTRIBUTE:
			if !strings.HasPrefix(r.GetKey(), r.GetUserKey()+"|") || r.GetUserKey() == "" {
				tb.Errorf("attribute: key %q does not start with user key %q", r.GetKey(), r.GetUserKey())
			}
		case pb.Kind_KIND_ENTITLEMENT:
			if r.GetUserKey() != "" || r.GetEntitlementKey() != "" || r.GetEmail() != "" {
				tb.Errorf("entitlement %s: got user/entitlement/email keys set", r.GetKey())
			}
		default:
			tb.Errorf("%s: unexpected kind %v", r.GetKey(), r.GetKind())
		}
		if r.GetKind() != pb.Kind_KIND_SERVICE_USER && r.GetEmail() != "" {
			tb.Errorf("%s: email got %q on a %v, want none", r.GetKey(), r.GetEmail(), r.GetKind())
		}
	}
}

func ofKind(b *pb.RecordBatch, k pb.Kind) []*pb.Record {
	var out []*pb.Record
	for _, r := range b.GetRecords() {
		if r.GetKind() == k {
			out = append(out, r)
		}
	}
	return out
}

func TestServiceUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		listing   pb.Listing
		user      string
		wantKey   string
		wantEmail string
		wantData  string
	}{
		{
			name:    "active user, every field",
			listing: pb.Listing_LISTING_USERS_ACTIVE,
			user: `{"id":"KdYKjnimT4KPd8FFgQt9FQ","email":"Jill.Chill@Example.com","first_name":"Jill","last_name":"Chill",
				"display_name":"Jill Chill","type":2,"status":"active","role_id":"2","pmi":3542471135,
				"user_created_at":"2019-06-01T07:58:03Z","created_at":"2018-10-31T04:32:37Z","last_login_time":"2022-03-25T05:40:55Z"}`,
			wantKey:   "KdYKjnimT4KPd8FFgQt9FQ",
			wantEmail: "jill.chill@example.com",
			wantData:  `{"id":"KdYKjnimT4KPd8FFgQt9FQ","email":"Jill.Chill@Example.com","first_name":"Jill","last_name":"Chill","display_name":"Jill Chill","status":"active","license":"licensed","role_id":"2","created_at":"2019-06-01T07:58:03Z","last_login_at":"2022-03-25T05:40:55Z"}`,
		},
		{
			name:      "pending user without id: key is lower-case email, data email as given",
			listing:   pb.Listing_LISTING_USERS_PENDING,
			user:      `{"email":"New.Hire@Example.COM","type":1,"status":"pending","role_id":"2","created_at":"2024-01-02T03:04:05Z"}`,
			wantKey:   "pending:new.hire@example.com",
			wantEmail: "new.hire@example.com",
			wantData:  `{"id":"","email":"New.Hire@Example.COM","first_name":"","last_name":"","display_name":"","status":"pending","license":"basic","role_id":"2","created_at":"2024-01-02T03:04:05Z"}`,
		},
		{
			name:      "pending user with an id is still keyed by email, id empty",
			listing:   pb.Listing_LISTING_USERS_PENDING,
			user:      `{"id":"abc","email":"P@x.io","type":1}`,
			wantKey:   "pending:p@x.io",
			wantEmail: "p@x.io",
			wantData:  `{"id":"","email":"P@x.io","first_name":"","last_name":"","display_name":"","status":"pending","license":"basic","role_id":""}`,
		},
		{
			name:      "active user missing its id is keyed by email",
			listing:   pb.Listing_LISTING_USERS_ACTIVE,
			user:      `{"email":"Odd@x.io","type":1}`,
			wantKey:   "pending:odd@x.io",
			wantEmail: "odd@x.io",
			wantData:  `{"id":"","email":"Odd@x.io","first_name":"","last_name":"","display_name":"","status":"active","license":"basic","role_id":""}`,
		},
		{
			name:      "missing optional fields are empty strings, times omitted",
			listing:   pb.Listing_LISTING_USERS_ACTIVE,
			user:      `{"id":"u1","email":"a@b.c","type":1}`,
			wantKey:   "u1",
			wantEmail: "a@b.c",
			wantData:  `{"id":"u1","email":"a@b.c","first_name":"","last_name":"","display_name":"","status":"active","license":"basic","role_id":""}`,
		},
		{
			name:      "listing status wins over the user's status field",
			listing:   pb.Listing_LISTING_USERS_INACTIVE,
			user:      `{"id":"u1","email":"a@b.c","type":1,"status":"active"}`,
			wantKey:   "u1",
			wantEmail: "a@b.c",
			wantData:  `{"id":"u1","email":"a@b.c","first_name":"","last_name":"","display_name":"","status":"inactive","license":"basic","role_id":""}`,
		},
		{
			name:      "unicode preserved byte-exact and html not escaped",
			listing:   pb.Listing_LISTING_USERS_ACTIVE,
			user:      `{"id":"u1","email":"li@例子.cn","first_name":"小龙","last_name":"Ærøskøbing-Zoë","display_name":"<b>&</b> 😀\u00e9","type":1}`,
			wantKey:   "u1",
			wantEmail: "li@例子.cn",
			wantData:  `{"id":"u1","email":"li@例子.cn","first_name":"小龙","last_name":"Ærøskøbing-Zoë","display_name":"<b>&</b> 😀é","status":"active","license":"basic","role_id":""}`,
		},
		{
			name:      "control characters and quotes escaped as encoding/json does",
			listing:   pb.Listing_LISTING_USERS_ACTIVE,
			user:      `{"id":"u1","email":"a@b.c","first_name":"say \"hi\"\n","last_name":"back\\slash\u2028","type":1}`,
			wantKey:   "u1",
			wantEmail: "a@b.c",
			wantData:  `{"id":"u1","email":"a@b.c","first_name":"say \"hi\"\n","last_name":"back\\slash\u2028","display_name":"","status":"active","license":"basic","role_id":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustPage(t, rawPage(tt.listing, usersBody(tt.user)))
			users := ofKind(b, pb.Kind_KIND_SERVICE_USER)
			if len(users) != 1 {
				t.Fatalf("service users: got %d, want 1", len(users))
			}
			u := users[0]
			if u.GetKey() != tt.wantKey {
				t.Errorf("key: got %q, want %q", u.GetKey(), tt.wantKey)
			}
			if u.GetEmail() != tt.wantEmail {
				t.Errorf("email: got %q, want %q", u.GetEmail(), tt.wantEmail)
			}
			if string(u.GetData()) != tt.wantData {
				t.Errorf("data:\n got %s\nwant %s", u.GetData(), tt.wantData)
			}
			for _, r := range b.GetRecords() {
				if r.GetUserKey() != tt.wantKey {
					t.Errorf("%s: user key got %q, want %q", r.GetKey(), r.GetUserKey(), tt.wantKey)
				}
			}
		})
	}
}

// userField maps one user and returns one field of its service_user data.
func userField(t *testing.T, user, field string) (string, bool) {
	t.Helper()
	b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(user)))
	users := ofKind(b, pb.Kind_KIND_SERVICE_USER)
	if len(users) != 1 {
		t.Fatalf("service users: got %d, want 1", len(users))
	}
	var m map[string]string
	if err := json.Unmarshal(users[0].GetData(), &m); err != nil {
		t.Fatal(err)
	}
	v, ok := m[field]
	return v, ok
}

func TestLicense(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ         string
		wantLicense string
		wantGrant   string // "" for none
	}{
		{`1`, "basic", "license:basic"},
		{`2`, "licensed", "license:licensed"},
		{`4`, "unassigned", "license:unassigned"},
		{`99`, "type:99", ""},
		{`3`, "type:3", ""},
		{`0`, "type:0", ""},
	}
	for _, tt := range tests {
		user := `{"id":"u1","email":"a@b.c","type":` + tt.typ + `}`
		if got, _ := userField(t, user, "license"); got != tt.wantLicense {
			t.Errorf("type %s: license got %q, want %q", tt.typ, got, tt.wantLicense)
		}
		b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(user)))
		var got []string
		for _, r := range ofKind(b, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT) {
			got = append(got, r.GetEntitlementKey())
		}
		var want []string
		if tt.wantGrant != "" {
			want = []string{tt.wantGrant}
		}
		if !slices.Equal(got, want) {
			t.Errorf("type %s: grants got %q, want %q", tt.typ, got, want)
		}
	}
	if got, _ := userField(t, `{"id":"u1","email":"a@b.c"}`, "license"); got != "type:0" {
		t.Errorf("absent type: license got %q, want %q", got, "type:0")
	}
}

func TestTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fields        string
		wantCreated   string // "" for omitted
		wantLastLogin string
	}{
		{"user_created_at wins", `"user_created_at":"2019-06-01T07:58:03Z","created_at":"2018-10-31T04:32:37Z"`, "2019-06-01T07:58:03Z", ""},
		{"created_at when no user_created_at", `"created_at":"2018-10-31T04:32:37Z"`, "2018-10-31T04:32:37Z", ""},
		{"created_at when user_created_at empty", `"user_created_at":"","created_at":"2018-10-31T04:32:37Z"`, "2018-10-31T04:32:37Z", ""},
		{"created_at when user_created_at unparsable", `"user_created_at":"yesterday","created_at":"2018-10-31T04:32:37Z"`, "2018-10-31T04:32:37Z", ""},
		{"offset normalized to UTC", `"user_created_at":"2019-06-01T09:58:03+02:00","last_login_time":"2022-03-24T23:40:55-06:00"`, "2019-06-01T07:58:03Z", "2022-03-25T05:40:55Z"},
		{"fraction truncated", `"user_created_at":"2019-06-01T07:58:03.999Z","last_login_time":"2022-03-25T05:40:55.123456+00:00"`, "2019-06-01T07:58:03Z", "2022-03-25T05:40:55Z"},
		{"offset without colon", `"created_at":"2019-06-01T12:58:03+0500"`, "2019-06-01T07:58:03Z", ""},
		{"no zone taken as UTC", `"created_at":"2019-06-01T07:58:03","last_login_time":"2022-03-25 05:40:55"`, "2019-06-01T07:58:03Z", "2022-03-25T05:40:55Z"},
		{"offset crossing the date", `"created_at":"2020-01-01T01:00:00+03:00"`, "2019-12-31T22:00:00Z", ""},
		{"unparsable omitted", `"created_at":"31/10/2018","last_login_time":"soon"`, "", ""},
		{"absent omitted", ``, "", ""},
	}
	for _, tt := range tests {
		user := `{"id":"u1","email":"a@b.c","type":1`
		if tt.fields != "" {
			user += "," + tt.fields
		}
		user += "}"
		created, hasCreated := userField(t, user, "created_at")
		if created != tt.wantCreated || hasCreated != (tt.wantCreated != "") {
			t.Errorf("%s: created_at got %q (present %v), want %q", tt.name, created, hasCreated, tt.wantCreated)
		}
		last, hasLast := userField(t, user, "last_login_at")
		if last != tt.wantLastLogin || hasLast != (tt.wantLastLogin != "") {
			t.Errorf("%s: last_login_at got %q (present %v), want %q", tt.name, last, hasLast, tt.wantLastLogin)
		}
	}
}

func TestGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		user string
		want []string // entitlement keys, in order
	}{
		{"groups, role, license", `{"id":"u1","email":"a@b.c","type":2,"role_id":"1","group_ids":["g1","g2"]}`,
			[]string{"group:g1", "group:g2", "role:1", "license:licensed"}},
		{"duplicated and empty group ids", `{"id":"u1","email":"a@b.c","type":1,"group_ids":["g1","","g2","g1","g2"]}`,
			[]string{"group:g1", "group:g2", "license:basic"}},
		{"role 0 is a role", `{"id":"u1","email":"a@b.c","type":99,"role_id":"0"}`, []string{"role:0"}},
		{"nothing", `{"id":"u1","email":"a@b.c","type":3,"group_ids":[]}`, nil},
		{"pending user", `{"email":"P@X.io","type":1,"role_id":"2","group_ids":["g1"]}`,
			[]string{"group:g1", "role:2", "license:basic"}},
	}
	for _, tt := range tests {
		b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_PENDING, usersBody(tt.user)))
		userKey := ofKind(b, pb.Kind_KIND_SERVICE_USER)[0].GetKey()
		var got []string
		for _, r := range ofKind(b, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT) {
			got = append(got, r.GetEntitlementKey())
			want := `{"user_id":"` + userKey + `","entitlement_id":"` + r.GetEntitlementKey() + `"}`
			if string(r.GetData()) != want {
				t.Errorf("%s: grant data got %s, want %s", tt.name, r.GetData(), want)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: grants got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		user string
		want map[string]string
	}{
		{
			name: "every attribute",
			user: `{"id":"u1","email":"a@b.c","type":1,"dept":"R&D <lab>","timezone":"Asia/Tokyo","language":"ja-JP",
				"employee_unique_id":"E-42","last_client_version":"6.0.2.33403(mac)","verified":1,"login_types":[101,1,101],
				"custom_attributes":[{"key":"cbf_cost","name":"Cost","value":"1234"},{"key":"region","name":"Region","value":"東京"}]}`,
			want: map[string]string{
				"department": "R&D <lab>", "timezone": "Asia/Tokyo", "language": "ja-JP", "employee_unique_id": "E-42",
				"last_client_version": "6.0.2.33403(mac)", "verified": "true", "login_types": "1,101",
				"custom.cbf_cost": "1234", "custom.region": "東京",
			},
		},
		{"verified 0", `{"id":"u1","email":"a@b.c","verified":0}`, map[string]string{"verified": "false"}},
		{"verified absent", `{"id":"u1","email":"a@b.c"}`, map[string]string{}},
		{"verified null", `{"id":"u1","email":"a@b.c","verified":null}`, map[string]string{}},
		{"verified undocumented value", `{"id":"u1","email":"a@b.c","verified":2}`, map[string]string{}},
		{"empty strings omitted", `{"id":"u1","email":"a@b.c","dept":"","timezone":"","language":"","employee_unique_id":"","last_client_version":"","login_types":[]}`,
			map[string]string{}},
		{"single login type", `{"id":"u1","email":"a@b.c","login_types":[100]}`, map[string]string{"login_types": "100"}},
		{"custom: empty key or value skipped, first non-empty duplicate wins",
			`{"id":"u1","email":"a@b.c","custom_attributes":[{"key":"","value":"x"},{"key":"a","value":""},{"key":"a","value":"1"},{"key":"a","value":"2"},{"key":"b","value":"<&>"}]}`,
			map[string]string{"custom.a": "1", "custom.b": "<&>"}},
	}
	for _, tt := range tests {
		b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(tt.user)))
		got := map[string]string{}
		for _, r := range ofKind(b, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE) {
			var a clarity.Attribute
			if err := json.Unmarshal(r.GetData(), &a); err != nil {
				t.Fatal(err)
			}
			if _, dup := got[a.Name]; dup {
				t.Errorf("%s: attribute %q emitted twice", tt.name, a.Name)
			}
			got[a.Name] = a.Value
			if r.GetKey() != "u1|"+a.Name || a.UserID != "u1" {
				t.Errorf("%s: attribute key got %q user %q, want %q user %q", tt.name, r.GetKey(), a.UserID, "u1|"+a.Name, "u1")
			}
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("%s: attributes got %v, want %v", tt.name, got, tt.want)
		}
	}
	// The exact bytes of one attribute: HTML characters are not escaped.
	b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(`{"id":"u1","email":"a@b.c","dept":"R&D <lab>"}`)))
	attrs := ofKind(b, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE)
	if want := `{"user_id":"u1","name":"department","value":"R&D <lab>"}`; len(attrs) != 1 || string(attrs[0].GetData()) != want {
		t.Errorf("department data: got %v, want %s", attrs, want)
	}
}

func TestUsersSkipped(t *testing.T) {
	t.Parallel()
	body := usersBody(
		`{"id":"u1","email":"a@b.c","type":1}`,
		`{"first_name":"Ghost","type":1,"group_ids":["g1"]}`,
		`{"email":"   ","type":1}`,
		`{"email":"p@b.c","type":1}`,
	)
	b, st, err := PageStats(rawPage(pb.Listing_LISTING_USERS_PENDING, body))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Items: 4, Skipped: 2}); st != want {
		t.Errorf("stats: got %+v, want %+v", st, want)
	}
	var got []string
	for _, r := range ofKind(b, pb.Kind_KIND_SERVICE_USER) {
		got = append(got, r.GetKey())
	}
	if want := []string{"pending:a@b.c", "pending:p@b.c"}; !slices.Equal(got, want) {
		t.Errorf("users: got %q, want %q", got, want)
	}
	for _, r := range b.GetRecords() {
		if r.GetUserKey() == "" || strings.HasPrefix(r.GetUserKey(), "pending:|") {
			t.Errorf("record %q of an unkeyable user", r.GetKey())
		}
	}
}

func TestBatchHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		listing pb.Listing
		body    string
	}{
		{"users", pb.Listing_LISTING_USERS_INACTIVE, usersBody(`{"id":"u1","email":"a@b.c","type":1}`)},
		{"empty users page", pb.Listing_LISTING_USERS_ACTIVE, `{"users":[]}`},
		{"groups", pb.Listing_LISTING_GROUPS, `{"groups":[]}`},
		{"roles", pb.Listing_LISTING_ROLES, `{"roles":[]}`},
	}
	for _, tt := range tests {
		p := rawPage(tt.listing, tt.body)
		b := mustPage(t, p)
		if b.GetRun() != p.GetRun() || b.GetRef() != p.GetRef() {
			t.Errorf("%s: run/ref got %v/%v, want %v/%v", tt.name, b.GetRun(), b.GetRef(), p.GetRun(), p.GetRef())
		}
		if b.GetVersionMs() != fetchedAt {
			t.Errorf("%s: version got %d, want %d", tt.name, b.GetVersionMs(), fetchedAt)
		}
		if b.GetSource() != "sync" {
			t.Errorf("%s: source got %q, want %q", tt.name, b.GetSource(), "sync")
		}
		if b.GetReplaceUser() != "" || len(b.GetDeletes()) != 0 || b.GetGroupAdmins() != nil {
			t.Errorf("%s: got webhook fields set: %v", tt.name, b)
		}
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	body := `{"groups":[{"id":"g1","name":"Sales <EMEA> & Co","total_members":3},{"id":"","name":"no id"},{"id":"g2","name":"営業","total_members":0}],"total_records":3}`
	b, st, err := PageStats(rawPage(pb.Listing_LISTING_GROUPS, body))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, b)
	if want := (Stats{Items: 3, Skipped: 1}); st != want {
		t.Errorf("stats: got %+v, want %+v", st, want)
	}
	want := []struct{ key, data string }{
		{"group:g1", `{"id":"group:g1","type":"group","zoom_id":"g1","name":"Sales <EMEA> & Co","description":""}`},
		{"group_admin:g1", `{"id":"group_admin:g1","type":"group_admin","zoom_id":"g1","name":"Sales <EMEA> & Co (admin)","description":""}`},
		{"group:g2", `{"id":"group:g2","type":"group","zoom_id":"g2","name":"営業","description":""}`},
		{"group_admin:g2", `{"id":"group_admin:g2","type":"group_admin","zoom_id":"g2","name":"営業 (admin)","description":""}`},
	}
	if len(b.GetRecords()) != len(want) {
		t.Fatalf("records: got %d, want %d", len(b.GetRecords()), len(want))
	}
	for i, r := range b.GetRecords() {
		if r.GetKind() != pb.Kind_KIND_ENTITLEMENT || r.GetKey() != want[i].key || string(r.GetData()) != want[i].data {
			t.Errorf("record %d: got %v %s %s, want entitlement %s %s", i, r.GetKind(), r.GetKey(), r.GetData(), want[i].key, want[i].data)
		}
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	body := `{"roles":[{"id":"0","name":"Owner","description":"Account owner <all>","type":"common","total_members":1},
		{"id":"2","name":"Member","total_members":120},{"id":"","name":"broken"}],"total_records":3}`
	b, st, err := PageStats(rawPage(pb.Listing_LISTING_ROLES, body))
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, b)
	if want := (Stats{Items: 3, Skipped: 1}); st != want {
		t.Errorf("stats: got %+v, want %+v", st, want)
	}
	want := []struct{ key, data string }{
		{"role:0", `{"id":"role:0","type":"role","zoom_id":"0","name":"Owner","description":"Account owner <all>"}`},
		{"role:2", `{"id":"role:2","type":"role","zoom_id":"2","name":"Member","description":""}`},
		{"license:basic", `{"id":"license:basic","type":"license","zoom_id":"","name":"Basic","description":""}`},
		{"license:licensed", `{"id":"license:licensed","type":"license","zoom_id":"","name":"Licensed","description":""}`},
		{"license:unassigned", `{"id":"license:unassigned","type":"license","zoom_id":"","name":"Unassigned","description":""}`},
	}
	if len(b.GetRecords()) != len(want) {
		t.Fatalf("records: got %d, want %d", len(b.GetRecords()), len(want))
	}
	for i, r := range b.GetRecords() {
		if r.GetKind() != pb.Kind_KIND_ENTITLEMENT || r.GetKey() != want[i].key || string(r.GetData()) != want[i].data {
			t.Errorf("record %d: got %v %s %s, want entitlement %s %s", i, r.GetKind(), r.GetKey(), r.GetData(), want[i].key, want[i].data)
		}
	}

	// An account with no roles still gets the license entitlements.
	b = mustPage(t, rawPage(pb.Listing_LISTING_ROLES, `{"roles":[],"total_records":0}`))
	var got []string
	for _, r := range b.GetRecords() {
		got = append(got, r.GetKey())
	}
	if want := []string{"license:basic", "license:licensed", "license:unassigned"}; !slices.Equal(got, want) {
		t.Errorf("empty roles: got %q, want %q", got, want)
	}
}

func TestGroupAdmins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        string
		want        []string
		wantSkipped int
	}{
		{"normalized, deduplicated, sorted",
			`{"admins":[{"email":" Zed@Example.com ","name":"Zed"},{"email":"amy@example.com","name":"Amy"},{"email":"AMY@example.COM"},{"email":""},{"email":"  "}],"total_records":5}`,
			[]string{"amy@example.com", "zed@example.com"}, 2},
		{"none", `{"admins":[],"total_records":0}`, []string{}, 0},
		{"unicode email", `{"admins":[{"email":"Ünïcode@Exämple.de"}]}`, []string{"ünïcode@exämple.de"}, 0},
	}
	for _, tt := range tests {
		p := rawPage(pb.Listing_LISTING_GROUP_ADMINS, tt.body)
		p.Ref.ListingKey = "g1"
		b, st, err := PageStats(p)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(b.GetRecords()) != 0 {
			t.Errorf("%s: records got %d, want none", tt.name, len(b.GetRecords()))
		}
		ga := b.GetGroupAdmins()
		if ga.GetGroupId() != "g1" {
			t.Errorf("%s: group id got %q, want %q", tt.name, ga.GetGroupId(), "g1")
		}
		if got := ga.GetEmails(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: emails got %q, want %q", tt.name, got, tt.want)
		}
		if st.Skipped != tt.wantSkipped {
			t.Errorf("%s: skipped got %d, want %d", tt.name, st.Skipped, tt.wantSkipped)
		}
	}
}

// A group admin is matched to the user whose Record.Email equals the admin
// email; both sides must normalize alike.
func TestAdminEmailMatchesUserEmail(t *testing.T) {
	t.Parallel()
	b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(`{"id":"u1","email":"Mixed.Case@Example.COM","type":1}`)))
	p := rawPage(pb.Listing_LISTING_GROUP_ADMINS, `{"admins":[{"email":"MIXED.case@example.com"}]}`)
	p.Ref.ListingKey = "g1"
	a := mustPage(t, p)
	if got, want := a.GetGroupAdmins().GetEmails()[0], b.GetRecords()[0].GetEmail(); got != want {
		t.Errorf("admin email got %q, want the user's %q", got, want)
	}
}

func TestSingleUser(t *testing.T) {
	t.Parallel()
	const version = 1_764_331_100_000
	tests := []struct {
		name        string
		page        *pb.RawPage
		wantKey     string
		wantStatus  string
		wantVersion int64
		wantDeletes []*pb.RecordRef
	}{
		{
			name:        "status from body, version from the read, later than the webhook",
			page:        &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u1", VersionMs: version, FetchedAtMs: fetchedAt, Body: []byte(`{"id":"u1","email":"a@b.c","type":2,"status":"inactive","group_ids":["g1"],"dept":"Ops","language":"en-US","login_types":[1]}`)},
			wantKey:     "u1",
			wantStatus:  "inactive",
			wantVersion: fetchedAt,
		},
		{
			name:        "status absent means active, version falls back to fetch time",
			page:        &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u1", FetchedAtMs: fetchedAt, Body: []byte(`{"id":"u1","email":"a@b.c","type":1}`)},
			wantKey:     "u1",
			wantStatus:  "active",
			wantVersion: fetchedAt,
		},
		{
			name:        "not found deletes the user",
			page:        &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u9", VersionMs: version, FetchedAtMs: fetchedAt, NotFound: true},
			wantVersion: fetchedAt,
			wantDeletes: []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: "u9"}},
		},
	}
	for _, tt := range tests {
		b := mustPage(t, tt.page)
		if b.GetVersionMs() != tt.wantVersion {
			t.Errorf("%s: version got %d, want %d", tt.name, b.GetVersionMs(), tt.wantVersion)
		}
		if b.GetReplaceUser() != tt.wantKey {
			t.Errorf("%s: replace user got %q, want %q", tt.name, b.GetReplaceUser(), tt.wantKey)
		}
		if got := b.GetDeletes(); len(got) != len(tt.wantDeletes) ||
			(len(got) == 1 && (got[0].GetKind() != tt.wantDeletes[0].GetKind() || got[0].GetKey() != tt.wantDeletes[0].GetKey())) {
			t.Errorf("%s: deletes got %v, want %v", tt.name, got, tt.wantDeletes)
		}
		if tt.wantDeletes != nil {
			if len(b.GetRecords()) != 0 {
				t.Errorf("%s: records got %d, want none", tt.name, len(b.GetRecords()))
			}
			continue
		}
		// Fields the listings lack stay out, so both paths give one record set.
		for _, r := range b.GetRecords() {
			if strings.HasSuffix(r.GetKey(), "|language") || strings.HasSuffix(r.GetKey(), "|login_types") {
				t.Errorf("%s: got attribute %s, which a full sync never sees", tt.name, r.GetKey())
			}
		}
		users := ofKind(b, pb.Kind_KIND_SERVICE_USER)
		if len(users) != 1 || users[0].GetKey() != tt.wantKey {
			t.Fatalf("%s: users got %v, want one keyed %q", tt.name, users, tt.wantKey)
		}
		var su clarity.ServiceUser
		if err := json.Unmarshal(users[0].GetData(), &su); err != nil {
			t.Fatal(err)
		}
		if su.Status != tt.wantStatus {
			t.Errorf("%s: status got %q, want %q", tt.name, su.Status, tt.wantStatus)
		}
		for _, r := range b.GetRecords() {
			if r.GetUserKey() != tt.wantKey {
				t.Errorf("%s: record %q user key got %q, want %q", tt.name, r.GetKey(), r.GetUserKey(), tt.wantKey)
			}
		}
	}

	// The single-user mapping is the listing mapping: the same user yields
	// the same records either way.
	body := `{"id":"u1","email":"a@b.c","type":2,"status":"active","role_id":"1","group_ids":["g1","g1"],"dept":"Ops","verified":1,"user_created_at":"2020-01-01T00:00:00Z"}`
	single := mustPage(t, &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u1", Body: []byte(body)})
	listed := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(body)))
	if got, want := recordSummary(single), recordSummary(listed); !slices.Equal(got, want) {
		t.Errorf("single user records:\n got %q\nwant %q", got, want)
	}
}

func recordSummary(b *pb.RecordBatch) []string {
	var out []string
	for _, r := range b.GetRecords() {
		out = append(out, r.GetKind().String()+" "+r.GetKey()+" "+string(r.GetData()))
	}
	return out
}

func TestBadPage(t *testing.T) {
	t.Parallel()
	withKey := func(p *pb.RawPage, k string) *pb.RawPage { p.Ref.ListingKey = k; return p }
	tests := []struct {
		name string
		page *pb.RawPage
	}{
		{"nil page", nil},
		{"no ref", &pb.RawPage{Body: []byte(`{}`)}},
		{"unspecified listing", rawPage(pb.Listing_LISTING_UNSPECIFIED, `{}`)},
		{"unknown listing", rawPage(pb.Listing(99), `{}`)},
		{"malformed users", rawPage(pb.Listing_LISTING_USERS_ACTIVE, `{"users":[{"id":"u1"`)},
		{"empty users body", rawPage(pb.Listing_LISTING_USERS_PENDING, ``)},
		{"users not a list", rawPage(pb.Listing_LISTING_USERS_INACTIVE, `{"users":{"id":"u1"}}`)},
		{"type of wrong kind", rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(`{"id":"u1","email":"a@b.c","type":"2"}`))},
		{"malformed groups", rawPage(pb.Listing_LISTING_GROUPS, `<html>`)},
		{"malformed roles", rawPage(pb.Listing_LISTING_ROLES, `{"roles":[}`)},
		{"malformed admins", withKey(rawPage(pb.Listing_LISTING_GROUP_ADMINS, `nope`), "g1")},
		{"admins without group id", rawPage(pb.Listing_LISTING_GROUP_ADMINS, `{"admins":[]}`)},
		{"users page without users", rawPage(pb.Listing_LISTING_USERS_ACTIVE, `{"code":200,"message":"OK"}`)},
		{"users page with null users", rawPage(pb.Listing_LISTING_USERS_INACTIVE, `{"users":null,"next_page_token":""}`)},
		{"groups page without groups", rawPage(pb.Listing_LISTING_GROUPS, `{"total_records":0}`)},
		{"roles without roles", rawPage(pb.Listing_LISTING_ROLES, `{}`)},
		{"malformed single user", &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u1", Body: []byte(`{"id":`)}},
		{"single user without id or email", &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u1", Body: []byte(`{"type":1}`)}},
		{"not found without user id", &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, NotFound: true}},
	}
	for _, tt := range tests {
		b, err := Page(tt.page)
		if !errors.Is(err, ErrBadPage) {
			t.Errorf("%s: error got %v, want ErrBadPage", tt.name, err)
		}
		if b != nil {
			t.Errorf("%s: batch got %v, want nil", tt.name, b)
		}
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	body := []byte(benchUsersBody(50))
	first := mustPage(t, &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_ACTIVE}, Body: body})
	for range 3 {
		again := mustPage(t, &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_ACTIVE}, Body: slices.Clone(body)})
		if len(again.GetRecords()) != len(first.GetRecords()) {
			t.Fatalf("records: got %d, want %d", len(again.GetRecords()), len(first.GetRecords()))
		}
		for i, r := range again.GetRecords() {
			f := first.GetRecords()[i]
			if r.GetKey() != f.GetKey() || !bytes.Equal(r.GetData(), f.GetData()) || !bytes.Equal(r.GetHash(), f.GetHash()) {
				t.Errorf("record %d: got %s %x, want %s %x", i, r.GetKey(), r.GetHash(), f.GetKey(), f.GetHash())
			}
		}
	}
	// Field order and whitespace in Zoom's body, and the order of login
	// types, do not change the records.
	a := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(`{"id":"u1","email":"a@b.c","type":1,"first_name":"A","login_types":[101,1]}`)))
	b := mustPage(t, rawPage(pb.Listing_LISTING_USERS_ACTIVE, usersBody(`{ "login_types" : [1, 101], "first_name":"A", "type":1, "email":"a@b.c", "id":"u1" }`)))
	if got, want := recordSummary(b), recordSummary(a); !slices.Equal(got, want) {
		t.Errorf("reordered body:\n got %q\nwant %q", got, want)
	}
}
