package provision

import (
	"slices"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestChangeUsers names every user a change touches: the replaced user, the
// owners and emails of its records, the users of its deletions, and group
// admins by email.
func TestChangeUsers(t *testing.T) {
	b := &pb.RecordBatch{
		ReplaceUser: "u1",
		Records: []*pb.Record{
			{Kind: pb.Kind_KIND_SERVICE_USER, Key: "u1", UserKey: "u1", Email: "Ann@Example.com"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: "u2|group:g", UserKey: "u2"},
			{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:g"},
		},
		Deletes: []*pb.RecordRef{
			{Kind: pb.Kind_KIND_SERVICE_USER, Key: "pending:bob@example.com"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: "u3|role:5"},
			{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: "u4|department"},
			{Kind: pb.Kind_KIND_ENTITLEMENT, Key: "group:h"},
		},
		AdminsAdded:   []*pb.GroupAdmins{{GroupId: "g", Emails: []string{"Carol@example.com"}}},
		AdminsRemoved: []*pb.GroupAdmins{{GroupId: "g", Emails: []string{"dan@example.com", "ann@example.com"}}},
	}
	got := changeUsers(b)
	want := []string{"u1", "ann@example.com", "u2", "pending:bob@example.com", "u3", "u4", "carol@example.com", "dan@example.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("changeUsers: %q, want %q", got, want)
	}
	if got := changeUsers(&pb.RecordBatch{}); len(got) != 0 {
		t.Fatalf("an empty change: %q", got)
	}
}
