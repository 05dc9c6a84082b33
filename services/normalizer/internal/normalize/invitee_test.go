package normalize

import (
	"context"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestInviteeReadBack: Zoom answers GET /users/{id} of a user whose
// invitation is pending with its id and a created_at that is the time of
// the call, and nothing else. Read back after a webhook, such a user makes
// no record (the pending listing keys it by email, which the answer lacks),
// while an active user read back makes its records under its id.
func TestInviteeReadBack(t *testing.T) {
	org := zoomtest.Generate(9, zoomtest.Size{Users: 40, Groups: 2, Roles: 3, PendingFraction: 0.2})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	c, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pending, active zoomtest.User
	for _, u := range org.Users {
		switch {
		case u.Status == zoomtest.StatusPending && pending.ID == "":
			pending = u
		case u.Status == zoomtest.StatusActive && u.RoleID != zoomtest.RoleOwner && active.ID == "":
			active = u
		}
	}
	if pending.ID == "" || active.ID == "" {
		t.Fatal("the organisation has no pending or no active user")
	}
	read := func(id string) *pb.RawPage {
		body, err := c.GetUser(context.Background(), id)
		if err != nil {
			t.Fatalf("GET /users/%s: %v", id, err)
		}
		return &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: id, FetchedAtMs: fetchedAt, VersionMs: fetchedAt - 5, Body: body}
	}

	b, st, err := PageStats(read(pending.ID))
	if err != nil {
		t.Fatalf("pending user read back: %v", err)
	}
	if len(b.GetRecords()) != 0 || len(b.GetDeletes()) != 0 || b.GetReplaceUser() != "" {
		t.Errorf("pending user read back: got %d records, deletes %v, replace %q; want an empty batch",
			len(b.GetRecords()), b.GetDeletes(), b.GetReplaceUser())
	}
	if st.Invitees != 1 || st.Skipped != 0 {
		t.Errorf("pending user read back: stats %+v, want one invitee", st)
	}

	b, st, err = PageStats(read(active.ID))
	if err != nil || st.Invitees != 0 {
		t.Fatalf("active user read back: stats %+v, error %v", st, err)
	}
	users := ofKind(b, pb.Kind_KIND_SERVICE_USER)
	if b.GetReplaceUser() != active.ID || len(users) != 1 || users[0].GetKey() != active.ID {
		t.Errorf("active user read back: replace %q, users %v; want the records of %s", b.GetReplaceUser(), users, active.ID)
	}

	// The sparse answer Zoom gives for an invitee, whatever the simulator says.
	for _, body := range []string{
		`{"id":"` + pending.ID + `","created_at":"2026-12-05T19:40:02Z"}`,
		`{"id":"` + pending.ID + `","email":"` + pending.Email + `","status":"pending","type":1,"created_at":"2026-12-05T19:40:02Z"}`,
	} {
		b, st, err := PageStats(&pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: pending.ID, FetchedAtMs: fetchedAt, Body: []byte(body)})
		if err != nil || len(b.GetRecords()) != 0 || st.Invitees != 1 {
			t.Errorf("%s: got %d records, stats %+v, error %v; want none, one invitee", body, len(b.GetRecords()), st, err)
		}
		for _, r := range b.GetRecords() {
			if r.GetKey() == pending.ID || r.GetKey() == clarity.UserKey("", pending.Email) {
				t.Errorf("%s: got record %s", body, r.GetKey())
			}
		}
	}
}
