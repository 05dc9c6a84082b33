package clarity

import (
	"fmt"
	"regexp"
)

// AdminSubject is where the operations of the admin API are requested for
// one connector (NATS request-reply): zoom.admin.<tenant>.<connector>.<op>.
func AdminSubject(tenant, connector, op string) string {
	return "zoom.admin." + tenant + "." + connector + "." + op
}

// AdminConfirmDeletions is the admin operation that applies the deletions a
// completed run held (the accidental-deletion guard). The request is
// ConfirmDeletionsRequest, the reply ConfirmDeletionsReply.
const AdminConfirmDeletions = "confirm-deletions"

// ConfirmDeletionsRequest asks for the held deletions of one run.
type ConfirmDeletionsRequest struct {
	RunID string `json:"run_id"`
}

// ConfirmDeletionsReply says what a confirmation did, or why it was
// refused (Error).
type ConfirmDeletionsReply struct {
	RunID string `json:"run_id"`
	// Held counts the users and entitlements the run held.
	Held *HeldCounts `json:"held,omitempty"`
	// Deleted counts the records deleted now, grants and attributes
	// included.
	Deleted int64  `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

// namePattern is what a tenant or connector name may be: lower-case letters,
// digits, '_' and '-', 1 to 63 characters, starting with a letter or digit.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckName reports whether s is a valid tenant or connector name (what
// says which, for the error).
func CheckName(what, s string) error {
	if !namePattern.MatchString(s) {
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		return fmt.Errorf("%w: %s %q must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit", ErrBadToken, what, s)
	}
	return nil
}
