package store

// The record kinds as the records table stores them (pb.Kind numbers), as
// SQL text. Statements that name a kind of their own interpolate these
// rather than take the kind as a parameter: the planner then estimates with
// the statistics of that very kind, in every plan, where a prepared
// statement's generic plan (which PostgreSQL may settle on after five
// executions) would estimate with an average kind. The table is skewed
// (users are about a ninth of it, grants and attributes most of it), and
// these statements join and range-scan on those estimates. Statements whose
// kind comes with the input pass it as a parameter instead (guard,
// expireUnseen, expireKeys, deleteCascade, and those probing for a batch's
// records). TestKindSQL checks that each literal is its pb.Kind.
const (
	userKindSQL        = "1" // pb.Kind_KIND_SERVICE_USER
	entitlementKindSQL = "2" // pb.Kind_KIND_ENTITLEMENT
	grantKindSQL       = "3" // pb.Kind_KIND_SERVICE_USER_ENTITLEMENT
	attributeKindSQL   = "4" // pb.Kind_KIND_SERVICE_USER_ATTRIBUTE
	// dependentKindsSQL is the list of the kinds that belong to a user,
	// grants and attributes, for IN.
	dependentKindsSQL = "(" + grantKindSQL + ", " + attributeKindSQL + ")"
)
