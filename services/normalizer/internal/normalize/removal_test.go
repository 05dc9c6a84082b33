package normalize

import (
	"errors"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestUserNotFoundRemoval: a user read back as not found is deleted; why
// it went is what the reader says (a remove_user it carried out), else
// nothing, which the writer takes as absent; an unknown reason is refused.
func TestUserNotFoundRemoval(t *testing.T) {
	for _, tt := range []struct{ given, want string }{
		{"", ""}, {clarity.RemovalAbsent, ""}, {clarity.RemovalDeleted, clarity.RemovalDeleted}, {clarity.RemovalDisassociated, clarity.RemovalDisassociated},
	} {
		b, err := Page(&pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u9", FetchedAtMs: fetchedAt, NotFound: true, Removal: tt.given})
		if err != nil {
			t.Fatalf("removal %q: %v", tt.given, err)
		}
		if d := b.GetDeletes(); len(d) != 1 || d[0].GetKey() != "u9" || d[0].GetRemoval() != tt.want {
			t.Errorf("removal %q: deletes %v, want u9 with removal %q", tt.given, d, tt.want)
		}
	}
	_, err := Page(&pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: "u9", FetchedAtMs: fetchedAt, NotFound: true, Removal: "vanished"})
	if !errors.Is(err, ErrBadPage) {
		t.Errorf("removal vanished: got %v, want ErrBadPage", err)
	}
}
