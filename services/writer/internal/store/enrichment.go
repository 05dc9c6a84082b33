package store

import "github.com/claritysecurity/zoom-connector/pkg/clarity"

// notEnrichmentOfUser leaves out, among the attributes d of a user u, its
// enrichment attributes (clarity.EnrichmentAttributes): no listing gives
// them, so a full sync that does not show them, or a re-read of the user
// by id, is no sign that they are gone. They change only with the user's
// details read for enrichment, and go with their user.
const notEnrichmentOfUser = `d.key <> ALL(ARRAY[
		u.key || '|` + clarity.AttrLoginTypes + `', u.key || '|` + clarity.AttrLanguage + `',
		u.key || '|` + clarity.AttrJobTitle + `', u.key || '|` + clarity.AttrLocation + `',
		u.key || '|` + clarity.AttrCompany + `', u.key || '|` + clarity.AttrManager + `',
		u.key || '|` + clarity.AttrCostCenter + `'])`

// enrichmentKeys are the keys of the enrichment attributes of the user
// userKey.
func enrichmentKeys(userKey string) []string {
	names := clarity.EnrichmentAttributes()
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = clarity.AttributeKey(userKey, n)
	}
	return out
}
