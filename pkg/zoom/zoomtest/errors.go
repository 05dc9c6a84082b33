package zoomtest

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors of mutations, to test with errors.Is. Each mutation error also
// carries the HTTP status, Zoom code and message the REST API answers.
var (
	ErrUserNotFound  = errors.New("zoomtest: user not found")
	ErrGroupNotFound = errors.New("zoomtest: group not found")
	ErrRoleNotFound  = errors.New("zoomtest: role not found")
	ErrNotMember     = errors.New("zoomtest: not a member")
	ErrConflict      = errors.New("zoomtest: already in use")
	ErrInvalid       = errors.New("zoomtest: invalid request")
	ErrNotAllowed    = errors.New("zoomtest: not allowed")
)

// APIError is a mutation refused the way Zoom refuses it: the HTTP status,
// Zoom's error code and message.
type APIError struct {
	Status  int
	Code    int
	Message string
	kind    error
}

// Error describes the refusal with Zoom's status, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("zoom %d (code %d): %s", e.Status, e.Code, e.Message)
}

// Unwrap returns the sentinel error (ErrUserNotFound, …) of the refusal.
func (e *APIError) Unwrap() error { return e.kind }

func apiErr(kind error, status, code int, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...), kind: kind}
}

func userNotFound(key string) error {
	return apiErr(ErrUserNotFound, http.StatusNotFound, 1001, "User does not exist: %s.", key)
}

func groupMissing(id string) error {
	return apiErr(ErrGroupNotFound, http.StatusNotFound, 4130, "A group with this %s does not exist.", id)
}

func roleMissing() error {
	return apiErr(ErrRoleNotFound, http.StatusBadRequest, 1034, "Provided role_id does not exist.")
}

func invalid(format string, args ...any) error {
	return apiErr(ErrInvalid, http.StatusBadRequest, 300, format, args...)
}

// writeAPIError answers a mutation's error as Zoom would.
func writeAPIError(w http.ResponseWriter, err error) {
	var ae *APIError
	if errors.As(err, &ae) {
		writeError(w, ae.Status, ae.Code, ae.Message)
		return
	}
	writeError(w, http.StatusInternalServerError, 500, err.Error())
}
