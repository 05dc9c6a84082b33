// Package normalize maps raw Zoom pages and webhook events to normalized
// Clarity records: the kinds, keys and data fields that package clarity
// defines and downstream consumers read (the README's "Subjects and events"
// names the kinds). It is pure: no I/O, no clock, no logging, so the same
// page always yields the same batch, byte for byte, and re-processing a
// redelivered page is harmless.
package normalize

import (
	"errors"
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// ErrBadPage marks a page that can never be normalized: malformed JSON, an
// unknown listing, or a page that lacks what its listing needs. Retrying does
// not help, so the caller dead-letters the message.
var ErrBadPage = errors.New("normalize: bad page")

// Source is the RecordBatch.Source of every batch built from a fetched page.
const Source = "sync"

// Stats counts what a page held, for logs and metrics, since the mapping
// itself neither logs nor fails on a bad item.
type Stats struct {
	// Items is the number of list items in the page (users, groups, roles,
	// admins), or 1 for a single user.
	Items int
	// Skipped is the number of items that could not be keyed and yielded no
	// record: a user with neither id nor email, a group or role without id,
	// a group admin without email.
	Skipped int
	// Invitees is the number of users read back by id whose invitation
	// is pending, which yield no record (see userPage).
	Invitees int
}

// Page normalizes one raw page. See PageStats.
func Page(p *pb.RawPage) (*pb.RecordBatch, error) {
	b, _, err := PageStats(p)
	return b, err
}

// PageStats normalizes one raw page according to its listing and reports what
// it skipped. The batch shares p's Run and Ref (they are not copied: the raw
// page is done with once normalized). An error wraps ErrBadPage.
//
// VersionMs is the time Zoom was read (p.FetchedAtMs); for LISTING_USER it is
// the later of that and the time of the webhook that asked for the read
// (p.VersionMs), so that the writer can order it against other events of that
// user.
func PageStats(p *pb.RawPage) (*pb.RecordBatch, Stats, error) {
	if p == nil || p.GetRef() == nil {
		return nil, Stats{}, fmt.Errorf("%w: no page reference", ErrBadPage)
	}
	b := &pb.RecordBatch{
		Run:       p.GetRun(),
		Ref:       p.GetRef(),
		VersionMs: p.GetFetchedAtMs(),
		Source:    Source,
	}
	var (
		st  Stats
		err error
	)
	switch l := p.GetRef().GetListing(); l {
	case pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE, pb.Listing_LISTING_USERS_PENDING:
		st, err = usersPage(b, p.GetBody(), listingStatus(l))
	case pb.Listing_LISTING_GROUPS:
		st, err = groupsPage(b, p.GetBody())
	case pb.Listing_LISTING_GROUP_ADMINS:
		st, err = groupAdminsPage(b, p.GetRef().GetListingKey(), p.GetBody())
	case pb.Listing_LISTING_ROLES:
		st, err = rolesPage(b, p.GetBody())
	case pb.Listing_LISTING_USER:
		// The body is Zoom's state when it was read, which is at least as
		// new as the webhook that asked for it.
		b.VersionMs = max(p.GetVersionMs(), p.GetFetchedAtMs())
		st, err = userPage(b, p)
	case pb.Listing_LISTING_USER_DETAIL:
		// Ordered like a re-read: by when Zoom was asked.
		b.VersionMs = max(p.GetVersionMs(), p.GetFetchedAtMs())
		st, err = detailPage(b, p)
	default:
		err = fmt.Errorf("%w: unknown listing %v", ErrBadPage, l)
	}
	if err != nil {
		return nil, st, err
	}
	return b, st, nil
}

// decode unmarshals a page body, classifying any failure as ErrBadPage.
func decode(body []byte, what string, v any) error {
	if err := zoom.Decode(body, v); err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrBadPage, what, err)
	}
	return nil
}
