package console

import (
	"crypto/sha256"
	"crypto/subtle"
)

// CSRFField is the form field every form carries its session's CSRF token
// in.
const CSRFField = "csrf"

// equalSecret compares two secrets in constant time: each is hashed first,
// so that neither the contents nor the length of the expected one leaks
// through timing.
func equalSecret(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// validCSRF reports whether a posted form's token is its session's.
func validCSRF(s *session, posted string) bool {
	return s != nil && len(posted) <= 128 && equalSecret(posted, s.csrf)
}
