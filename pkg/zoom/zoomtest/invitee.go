package zoomtest

import (
	"net/http"
	"time"
)

// inviteeDetail is Zoom's answer to GET /users/{userId} for a user whose
// invitation is pending: "If a user's status is pending, only id and
// created_at fields will be returned. The value of created_at will be the
// time at which the API call was made until the user activates their
// account" (Zoom's reference of Get a user). No email, status or type.
type inviteeDetail struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
}

// writeInvitee answers GET /users/{userId} for a pending user as Zoom does.
func writeInvitee(w http.ResponseWriter, id string, now time.Time) {
	writeJSON(w, http.StatusOK, inviteeDetail{ID: id, CreatedAt: zoomTime(now)})
}
