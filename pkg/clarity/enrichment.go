package clarity

// The attributes of a service user that only Zoom's GET /users/{userId}
// gives (no listing does): read for a connector with enrichment on, for each
// user that is new or whose listed data changed. A full sync, which does not
// read them, never deletes them as absent; they go with their user.
const (
	AttrLoginTypes = "login_types"
	AttrLanguage   = "language"
	AttrJobTitle   = "job_title"
	AttrLocation   = "location"
	AttrCompany    = "company"
	AttrManager    = "manager"
	AttrCostCenter = "cost_center"
)

// EnrichmentAttributes returns the names of the enrichment attributes, in
// the order above.
func EnrichmentAttributes() []string {
	return []string{AttrLoginTypes, AttrLanguage, AttrJobTitle, AttrLocation, AttrCompany, AttrManager, AttrCostCenter}
}

// IsEnrichmentAttribute reports whether name is one of EnrichmentAttributes.
func IsEnrichmentAttribute(name string) bool {
	switch name {
	case AttrLoginTypes, AttrLanguage, AttrJobTitle, AttrLocation, AttrCompany, AttrManager, AttrCostCenter:
		return true
	}
	return false
}
