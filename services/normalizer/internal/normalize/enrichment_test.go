package normalize

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestDetailPageEnrichmentOnly: a user's details read for enrichment give
// its enrichment attributes alone, each non-empty one a record and each
// empty one a deletion, bounded; nothing else of the user, and never the
// attributes a listing gives. A re-read user (LISTING_USER) still takes
// none of them.
func TestDetailPageEnrichmentOnly(t *testing.T) {
	long := strings.Repeat("é", MaxValueBytes)
	body := `{"id":"u1","email":"a@example.com","status":"active","type":2,"dept":"Sales","timezone":"UTC",
		"language":"fr-FR","job_title":"Engineer","location":"` + long + `","company":"",
		"manager":"boss@example.com","login_types":[101,100,101],"group_ids":["g1"],"role_id":"2"}`
	page := &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER_DETAIL, Page: 1, Last: true},
		UserId: "u1", FetchedAtMs: fetchedAt, VersionMs: fetchedAt - 5, Body: []byte(body)}
	b, st, err := PageStats(page)
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != 1 || st.Skipped != 0 {
		t.Errorf("stats %+v, want one item", st)
	}
	if b.GetReplaceUser() != "" || b.GetVersionMs() != fetchedAt {
		t.Errorf("replace %q version %d, want none and %d", b.GetReplaceUser(), b.GetVersionMs(), fetchedAt)
	}
	got := map[string]string{}
	for _, r := range b.GetRecords() {
		if r.Kind != pb.Kind_KIND_SERVICE_USER_ATTRIBUTE || r.UserKey != "u1" {
			t.Fatalf("record %v %q of user %q, want attributes of u1 only", r.Kind, r.Key, r.UserKey)
		}
		var a clarity.Attribute
		if err := json.Unmarshal(r.Data, &a); err != nil {
			t.Fatal(err)
		}
		got[a.Name] = a.Value
	}
	want := map[string]string{"login_types": "100,101", "language": "fr-FR", "job_title": "Engineer", "manager": "boss@example.com"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if loc := got["location"]; loc == "" || len(loc) >= len(long) {
		t.Errorf("location of %d bytes, want it cut to its bound", len(loc))
	}
	if len(got) != 5 {
		t.Errorf("attributes %v, want the five non-empty enrichment attributes only", keys(got))
	}
	var deleted []string
	for _, d := range b.GetDeletes() {
		if d.Kind != pb.Kind_KIND_SERVICE_USER_ATTRIBUTE {
			t.Errorf("deletion of kind %v", d.Kind)
		}
		deleted = append(deleted, d.Key)
	}
	if strings.Join(deleted, " ") != "u1|company u1|cost_center" {
		t.Errorf("deletions %v, want u1|company and u1|cost_center", deleted)
	}

	// The same body re-read after a webhook: no enrichment attribute.
	page.Ref.Listing = pb.Listing_LISTING_USER
	b, _, err = PageStats(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.GetRecords() {
		if r.Kind == pb.Kind_KIND_SERVICE_USER_ATTRIBUTE {
			name := strings.TrimPrefix(r.Key, "u1|")
			if clarity.IsEnrichmentAttribute(name) {
				t.Errorf("a re-read user gave enrichment attribute %s", name)
			}
		}
	}

	// An invitee, or a user gone, gives nothing.
	for _, p := range []*pb.RawPage{
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER_DETAIL}, UserId: "u2", FetchedAtMs: fetchedAt, Body: []byte(`{"id":"u2","created_at":"2026-01-01T00:00:00Z"}`)},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER_DETAIL}, UserId: "u3", FetchedAtMs: fetchedAt, NotFound: true},
	} {
		b, _, err := PageStats(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.GetRecords())+len(b.GetDeletes()) != 0 {
			t.Errorf("user %s: %d records, %d deletions, want none", p.UserId, len(b.GetRecords()), len(b.GetDeletes()))
		}
	}
	// Details of another user than the one asked for are refused.
	if _, _, err := PageStats(&pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER_DETAIL}, UserId: "u9",
		FetchedAtMs: fetchedAt, Body: []byte(body)}); err == nil {
		t.Error("details of u1 answered for u9 accepted")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
