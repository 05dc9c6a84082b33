package zoomtest

import (
	"net/http"
	"time"
)

// inviteeDetail is Zoom's answer to GET /users/{userId} for a user whose
// invitation is pending: only its id, and a created_at that is the time of
// the call (until the user activates the account). No email, status or
// type.
type inviteeDetail struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
}

// writeInvitee answers GET /users/{userId} for a pending user as Zoom does.
func writeInvitee(w http.ResponseWriter, id string, now time.Time) {
	writeJSON(w, http.StatusOK, inviteeDetail{ID: id, CreatedAt: zoomTime(now)})
}
