package normalize

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// openAPIExamples are the 200 answers Zoom's OpenAPI documents (February
// 2026) give for each listing, assembled from the examples of their fields.
var openAPIExamples = map[pb.Listing]string{
	pb.Listing_LISTING_USERS_ACTIVE: `{"next_page_token":"8V8HigQkzm2O5r9RUn31D9ZyJHgrmFfbLa2","page_count":100,"page_number":1,"page_size":30,"total_records":8482,"users":[{"user_created_at":"2019-06-01T07:58:03Z","created_at":"2018-10-31T04:32:37Z","custom_attributes":[{"key":"cbf_cywdkexrtqc73f97gd4w6g","name":"A1","value":"2323"}],"dept":"Developers","email":"jchill@example.com","employee_unique_id":"HqDyI037Qjili1kNsSIrIg","first_name":"Jill","group_ids":["t-_-d56CSWG-7BF15LLrOw"],"division_ids":["xxxxxxxxxx"],"host_key":"299492849","id":"KDcuGIm1QgePTO8WbOqwIQ","im_group_ids":["t-_-d56CSWG-7BF15LLrOw"],"last_client_version":"5.2.45120.0906(win)","last_login_time":"2022-03-25T05:40:55Z","last_name":"Chill","plan_united_type":"1","pmi":6589310093,"role_id":"0","status":"active","timezone":"Asia/Shanghai","type":1,"verified":1,"display_name":"Jill Chill","license_info_list":[{"license_type":"ZOOM_WORKPLACE_BUNDLE","license_option":16,"subscription_id":"SUBREF-xxxxxx-xxxxxx"}]}]}`,
	pb.Listing_LISTING_USER:         `{"id":"zJKyaiAyTNC-MWjiWC18KQ","created_at":"2018-10-31T04:32:37Z","dept":"Developers","email":"jchill@example.com","first_name":"Jill","last_client_version":"5.9.6.4993(mac)","last_login_time":"2021-05-05T20:40:30Z","last_name":"Chill","pmi":3542471135,"role_name":"Admin","timezone":"Asia/Shanghai","type":1,"use_pmi":false,"display_name":"Jill Chill","account_id":"q6gBJVO5TzexKYTb_I2rpg","account_number":10009239,"cms_user_id":"KDcuGIm1QgePTO8WbOqwIQ","company":"Jill","user_created_at":"2018-10-31T04:32:37Z","custom_attributes":[{"key":"cbf_cywdkexrtqc73f97gd4w6g","name":"A1","value":"1"}],"employee_unique_id":"HqDyI037Qjili1kNsSIrIg","group_ids":["RSMaSp8sTEGK0_oamiA2_w"],"division_ids":["xxxxxxxxxx"],"im_group_ids":["t-_-d56CSWG-7BF15LLrOw"],"jid":"jchill@example.com","job_title":"API Developer","cost_center":"cost center","language":"en-US","location":"Paris","login_types":[101],"manager":"thill@example.com","personal_meeting_url":"example.com","phone_country":"US","phone_number":"+1 800000000","phone_numbers":[{"code":"+1","country":"US","label":"Mobile","number":"800000000","verified":true}],"pic_url":"example.com","plan_united_type":"1","pronouns":"3123","pronouns_option":1,"role_id":"0","status":"pending","vanity_url":"example.com","verified":1,"cluster":"us04","zoom_one_type":64,"license_info_list":[{"license_type":"ZOOM_WORKPLACE_BUNDLE","license_option":16,"subscription_id":"SUBREF-xxxxxx-xxxxxx"}]}`,
	pb.Listing_LISTING_GROUPS:       `{"groups":[{"id":"SobVexyrQjqCkcxjpBWi6w","name":"Developers","total_members":200}],"total_records":200,"next_page_token":"qUEQqB1V0HVhJmwKFQrGOD"}`,
	pb.Listing_LISTING_GROUP_ADMINS: `{"admins":[{"email":"jchill@example.com","name":"Jill Chill"}],"next_page_token":"oMTCmjMRwzSfZtUXDIuWDswdksIQ3dyGUB1","page_size":1,"total_records":20}`,
	pb.Listing_LISTING_ROLES:        `{"roles":[{"description":"my role","id":"RqBLcd1jLS9a7RBkbGtqn2A","name":"My Role","type":"iq","total_members":200}],"total_records":200}`,
}

// simPages returns real pages of the simulator for every listing, read with
// the connector's own Zoom client in small pages, and one GET /users/{id}
// body.
func simPages(tb testing.TB) map[pb.Listing][][]byte {
	tb.Helper()
	org := zoomtest.Generate(5, zoomtest.Size{Users: 30, Groups: 4, Roles: 5, CustomAttributeFraction: 0.5})
	sim := zoomtest.NewServer(tb, org, zoomtest.Options{})
	c, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true, PageSize: 8,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	out := map[pb.Listing][][]byte{}
	walk := func(l zoom.Listing, pl pb.Listing) {
		err := c.Pages(ctx, l, func(p zoom.RawPage) error {
			out[pl] = append(out[pl], p.Body)
			return nil
		})
		if err != nil {
			tb.Fatalf("walk %s on the simulator: %v", l, err)
		}
	}
	walk(zoom.UsersListing(zoom.UserStatusActive), pb.Listing_LISTING_USERS_ACTIVE)
	walk(zoom.UsersListing(zoom.UserStatusInactive), pb.Listing_LISTING_USERS_INACTIVE)
	walk(zoom.UsersListing(zoom.UserStatusPending), pb.Listing_LISTING_USERS_PENDING)
	walk(zoom.GroupsListing(), pb.Listing_LISTING_GROUPS)
	walk(zoom.RolesListing(), pb.Listing_LISTING_ROLES)
	for _, g := range org.Groups {
		if len(g.Admins) > 0 {
			walk(zoom.GroupAdminsListing(g.ID), pb.Listing_LISTING_GROUP_ADMINS)
		}
	}
	for _, u := range org.Users[:3] {
		body, err := c.GetUser(ctx, u.Email)
		if err != nil {
			tb.Fatalf("get user %s on the simulator: %v", u.Email, err)
		}
		out[pb.Listing_LISTING_USER] = append(out[pb.Listing_LISTING_USER], body)
	}
	return out
}

// fuzzListings are the listings FuzzPage picks from with a byte: every known
// one, plus unspecified and unknown values.
var fuzzListings = []pb.Listing{
	pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE, pb.Listing_LISTING_USERS_PENDING,
	pb.Listing_LISTING_GROUPS, pb.Listing_LISTING_GROUP_ADMINS, pb.Listing_LISTING_ROLES, pb.Listing_LISTING_USER,
	pb.Listing_LISTING_UNSPECIFIED, pb.Listing(99),
}

func listingIndex(l pb.Listing) uint8 { return uint8(slices.Index(fuzzListings, l)) }

// FuzzPage feeds Page arbitrary bodies for every listing: it must never
// panic; an error always wraps ErrBadPage and comes without a batch; a batch
// carries the page's run and reference, and records whose key is set, whose
// data is JSON and which carry no hash (checkRecords). The
// same page always gives the same batch.
func FuzzPage(f *testing.F) {
	for l, bodies := range simPages(f) {
		for _, b := range bodies {
			f.Add(listingIndex(l), "g1", "u1", false, b)
		}
	}
	for l, b := range openAPIExamples {
		f.Add(listingIndex(l), "SobVexyrQjqCkcxjpBWi6w", "zJKyaiAyTNC-MWjiWC18KQ", false, []byte(b))
	}
	odd := []string{
		``, `null`, `{}`, `[]`, `"x"`, `0`, `{"users":null,"groups":null,"admins":null,"roles":null}`,
		`{"users":[{}],"groups":[{}],"admins":[{}],"roles":[{}]}`,
		`{"users":[{"id":"","email":"  "}],"groups":[{"id":""}],"admins":[{"email":" "}],"roles":[{"id":""}]}`,
		`{"users":[{"id":"u","email":"A@B.c","type":"2"}]}`,
		`{"users":[{"id":"u","verified":7,"login_types":[3,1,3],"group_ids":["g","g",""],"custom_attributes":[{"key":"k","value":""},{"key":"k","value":"v"},{"key":"","value":"x"}]}]}`,
		`{"users":[{"email":"Pending@X.com","id":"has-id"},{"email":"pending@x.COM"}]}`,
		`{"users":[{"id":"u","user_created_at":"2019-06-01 07:58:03","created_at":"nonsense","last_login_time":"2022-03-25T05:40:55.123+05:30"}]}`,
		"{\"users\":[{\"id\":\"\\u2028\\ud800\",\"first_name\":\"\\u0000<b>&amp;\",\"email\":\"\xff\"}]}",
		`{"groups":[{"id":"g","name":"Ünïcödé – 新しい <x>"}],"admins":[{"email":"B@x.com"},{"email":"b@X.com "},{"email":"a@x.com"}]}`,
		`{"roles":[{"id":"0","name":"Owner","description":"\"quoted\""}],"total_records":"many"}`,
		`{"id":"u","status":"inactive","type":99,"role_id":"2","language":"fr","job_title":"x"}`,
		`{"email":"only@email.example"}`,
		`{"users":[{"id":"u","email":"a@b","plan_united_type":"32","license_info_list":[{"license_type":"ZOOM_WORKPLACE_BUNDLE","license_option":16},{"license_type":"a|b","license_option":"7"},{"license_type":"MEETING","license_option":2},{"license_type":"ZOOM_WORKPLACE_BUNDLE","license_option":16}]},{"id":"v","email":"c@d","plan_united_type":32}]}`,
		`{"id":"u","email":"a@b","status":"active","plan_united_type":"1.5","license_info_list":[{"license_type":"","license_option":-1}]}`,
		`{"users":[{"id":1}]}`,
		`{"users":{"id":"u"}}`,
	}
	for _, l := range fuzzListings {
		for _, b := range odd {
			f.Add(listingIndex(l), "g1", "u1", false, []byte(b))
		}
		f.Add(listingIndex(l), "", "", false, []byte(`{"admins":[{"email":"a@x.com"}],"id":"u"}`))
		f.Add(listingIndex(l), "g1", "u1", true, []byte(`{"code":1001,"message":"User does not exist: u1."}`))
		f.Add(listingIndex(l), "g1", "", true, []byte(nil))
	}

	f.Fuzz(func(t *testing.T, li uint8, key, userID string, notFound bool, body []byte) {
		l := fuzzListings[int(li)%len(fuzzListings)]
		newPage := func() *pb.RawPage {
			return &pb.RawPage{
				Run:         &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"},
				Ref:         &pb.PageRef{Listing: l, ListingKey: key, Page: 2, Last: true},
				FetchedAtMs: fetchedAt,
				Body:        body,
				UserId:      userID,
				VersionMs:   fetchedAt + 5,
				NotFound:    notFound,
			}
		}
		p := newPage()
		b, err := Page(p)
		if err != nil {
			if !errors.Is(err, ErrBadPage) {
				t.Errorf("%v: error %v does not wrap ErrBadPage", l, err)
			}
			if b != nil {
				t.Errorf("%v: a batch with the error %v", l, err)
			}
			return
		}
		if b == nil {
			t.Fatalf("%v: no batch and no error", l)
		}
		switch l {
		case pb.Listing_LISTING_UNSPECIFIED, pb.Listing(99):
			t.Fatalf("unknown listing %v normalized without error", l)
		}
		if !proto.Equal(b.GetRun(), p.GetRun()) || !proto.Equal(b.GetRef(), p.GetRef()) || b.GetSource() != Source {
			t.Errorf("%v: batch run %v ref %v source %q, want the page's and %q", l, b.GetRun(), b.GetRef(), b.GetSource(), Source)
		}
		checkRecords(t, b)
		for _, r := range b.GetRecords() {
			if r.GetKey() == "" {
				t.Errorf("%v: record of kind %v with an empty key", l, r.GetKind())
			}
			for _, bare := range []string{"pending:", "group:", "group_admin:", "role:"} {
				if r.GetKey() == bare || strings.HasSuffix(r.GetKey(), "|"+bare) || strings.HasPrefix(r.GetKey(), "|") {
					t.Errorf("%v: record key %q names nothing", l, r.GetKey())
				}
			}
		}
		for _, d := range b.GetDeletes() {
			if d.GetKey() == "" || d.GetKind() == pb.Kind_KIND_UNSPECIFIED {
				t.Errorf("%v: delete %v names no record", l, d)
			}
		}
		switch l {
		case pb.Listing_LISTING_GROUP_ADMINS:
			ga := b.GetGroupAdmins()
			if ga == nil || ga.GetGroupId() != BoundID(key) || key == "" {
				t.Errorf("group admins %v, want those of group %q", ga, BoundID(key))
			}
			emails := ga.GetEmails()
			if !slices.IsSorted(emails) || len(slices.Compact(slices.Clone(emails))) != len(emails) {
				t.Errorf("admin emails %q are not sorted and distinct", emails)
			}
			for _, e := range emails {
				if e == "" || e != strings.ToLower(strings.TrimSpace(e)) {
					t.Errorf("admin email %q is not normalized", e)
				}
			}
		case pb.Listing_LISTING_USER:
			if b.GetVersionMs() != fetchedAt+5 {
				t.Errorf("user read: version %d, want the later of fetch and hint times %d", b.GetVersionMs(), fetchedAt+5)
			}
			if notFound {
				if len(b.GetDeletes()) != 1 || len(b.GetRecords()) != 0 || b.GetDeletes()[0].GetKey() != BoundID(userID) {
					t.Errorf("user %q not found: batch %v, want one delete of it", userID, b)
				}
			} else if readInvitee(body) {
				if b.GetReplaceUser() != "" || len(b.GetRecords()) != 0 || len(b.GetDeletes()) != 0 {
					t.Errorf("invitee read back: batch %v, want an empty one", b)
				}
			} else if b.GetReplaceUser() == "" || len(b.GetRecords()) == 0 || b.GetRecords()[0].GetKey() != b.GetReplaceUser() {
				t.Errorf("user read: replace %q with %d records, want the user's records", b.GetReplaceUser(), len(b.GetRecords()))
			}
		default:
			if b.GetVersionMs() != fetchedAt {
				t.Errorf("%v: version %d, want the fetch time %d", l, b.GetVersionMs(), fetchedAt)
			}
			if len(b.GetDeletes()) != 0 || b.GetReplaceUser() != "" {
				t.Errorf("%v: a listing page deletes %v or replaces %q", l, b.GetDeletes(), b.GetReplaceUser())
			}
		}
		if l == pb.Listing_LISTING_USERS_PENDING {
			for _, r := range b.GetRecords() {
				if r.GetKind() == pb.Kind_KIND_SERVICE_USER && r.GetEmail() != "" && !strings.HasPrefix(r.GetKey(), "pending:") {
					t.Errorf("pending user with email %q keyed %q, want pending:<email>", r.GetEmail(), r.GetKey())
				}
			}
		}
		// Pure: the same page gives the same batch, byte for byte.
		again, err := Page(newPage())
		if err != nil {
			t.Fatalf("%v: second run failed: %v", l, err)
		}
		opts := proto.MarshalOptions{Deterministic: true}
		x, _ := opts.Marshal(b)
		y, _ := opts.Marshal(again)
		if string(x) != string(y) {
			t.Errorf("%v: the same page gave two different batches", l)
		}
	})
}

// readInvitee reports whether body, an answer to GET /users/{id}, is one of
// a user whose invitation is pending: an id, and a pending status or no
// email.
func readInvitee(body []byte) bool {
	var u zoom.User
	if zoom.Decode(body, &u) != nil {
		return false
	}
	return invitee(&u)
}
