package normalize

import (
	"fmt"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// detailPage maps the answer to GET /users/{id} read for enrichment
// (LISTING_USER_DETAIL) to the user's enrichment attributes alone
// (clarity.EnrichmentAttributes): each non-empty one is a record, each empty
// one a deletion, and nothing else of the user is touched: its other records
// are the listings' and the re-reads'. A user Zoom no longer has, or one
// whose invitation is pending, makes an empty batch: its deletion, or its
// record, comes by the usual way.
func detailPage(b *pb.RecordBatch, p *pb.RawPage) (Stats, error) {
	if p.GetNotFound() {
		return Stats{Items: 1}, nil
	}
	u, status, st, ok, err := readUser(p)
	if !ok {
		return st, err
	}
	key, _, ok := UserKey(&u, status)
	if !ok {
		return Stats{Items: 1, Skipped: 1}, fmt.Errorf("%w: user %q has neither id nor email", ErrBadPage, BoundID(p.GetUserId()))
	}
	if want := BoundID(p.GetUserId()); want != "" && key != want {
		return Stats{Items: 1, Skipped: 1}, fmt.Errorf("%w: details of user %q asked for, of %q answered", ErrBadPage, want, key)
	}
	for _, a := range enrichmentValues(&u) {
		if a.value == "" {
			b.Deletes = append(b.Deletes, &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, Key: clarity.AttributeKey(key, a.name)})
			continue
		}
		b.Records = append(b.Records, AttributeRecord(key, a.name, a.value))
	}
	return Stats{Items: 1}, nil
}

type enrichmentValue struct{ name, value string }

// enrichmentValues are u's enrichment attributes, in the order of
// clarity.EnrichmentAttributes, each cut to its bound; empty when Zoom gives
// none.
func enrichmentValues(u *zoom.User) []enrichmentValue {
	return []enrichmentValue{
		{clarity.AttrLoginTypes, loginTypes(u.LoginTypes)},
		{clarity.AttrLanguage, BoundValue(u.Language)},
		{clarity.AttrJobTitle, BoundValue(u.JobTitle)},
		{clarity.AttrLocation, BoundValue(u.Location)},
		{clarity.AttrCompany, BoundValue(u.Company)},
		{clarity.AttrManager, BoundValue(u.Manager)},
		{clarity.AttrCostCenter, BoundValue(u.CostCenter)},
	}
}
