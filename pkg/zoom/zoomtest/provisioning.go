package zoomtest

import (
	"net/http"
	"strings"
)

// SeatLimit bounds an account's Licensed users (type 2), as the licences
// an account bought do. How Zoom refuses a type change beyond them is not
// known; both readings are offered: an error (400 code
// CodeNoLicense), or, with Silent, a success that changes nothing, as Zoom
// answers some writes.
type SeatLimit struct {
	Licensed int  `json:"licensed"`
	Silent   bool `json:"silent,omitempty"`
}

// CodeNoLicense is the code of the simulator's refusal of a Licensed type
// beyond the account's seats (Zoom's own code for it is not known).
const CodeNoLicense = 2034

// SetSeatLimit limits the account's Licensed users; nil lifts the limit.
func (a *Account) SetSeatLimit(l *SeatLimit) { a.seats.Store(l) }

// seatRefused answers a PATCH /users/{userId} that would make one user
// more Licensed than the account's seats, and reports whether it did.
func (a *Account) seatRefused(w http.ResponseWriter, user string, typ *int) bool {
	l := a.seats.Load()
	if l == nil || typ == nil || *typ != TypeLicensed {
		return false
	}
	a.st.mu.RLock()
	su := a.st.lookupUser(user)
	n := 0
	for _, x := range a.st.all {
		if x.u.Type == TypeLicensed {
			n++
		}
	}
	a.st.mu.RUnlock()
	if su == nil || su.u.Type == TypeLicensed || n < l.Licensed {
		return false
	}
	if l.Silent {
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	writeError(w, http.StatusBadRequest, CodeNoLicense, "You do not have enough licenses to change the user type to Licensed.")
	return true
}

// WriteRequests returns how many API requests of the account asked for a
// change (every method but GET), whatever Zoom answered.
func (a *Account) WriteRequests() int {
	n := 0
	for route, c := range a.Requests() {
		if !strings.HasPrefix(route, "GET ") && route != TokenRoute && strings.Contains(route, " /") &&
			!strings.HasPrefix(route, "POST /oauth") {
			n += c
		}
	}
	return n
}

// transferRefused answers a DELETE /users/{userId} whose transfer_email is
// not an active user of the account, as Zoom refuses transfer issues (400
// code 300), and reports whether it did.
func (a *Account) transferRefused(w http.ResponseWriter, r *http.Request) bool {
	to := r.URL.Query().Get("transfer_email")
	if to == "" {
		return false
	}
	a.st.mu.RLock()
	su := a.st.lookupUser(to)
	ok := su != nil && su.u.Status == StatusActive && !strings.EqualFold(su.u.Email, r.PathValue("userId")) && su.u.ID != r.PathValue("userId")
	a.st.mu.RUnlock()
	if ok {
		return false
	}
	writeError(w, http.StatusBadRequest, 300, "The transfer user is not an active user of this account: "+to+".")
	return true
}
