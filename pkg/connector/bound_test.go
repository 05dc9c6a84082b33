package connector

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// straddling returns a string of n-1 ASCII bytes then "日本", so that a cut
// at n bytes falls inside 日, and the start of it a cut before 日 keeps.
func straddling(n int) (s, kept string) {
	kept = strings.Repeat("a", n-1)
	return kept + "日本", kept
}

// checkCut fails unless msg quotes kept, cut before the character at the
// limit, then "…", with no byte of the character itself and no more than
// the limit and the marker.
func checkCut(t *testing.T, what, msg, kept string, n int) {
	t.Helper()
	if !utf8.ValidString(msg) {
		t.Errorf("%s: %q is not valid UTF-8", what, msg)
	}
	if strings.Contains(msg, `\x`) || strings.ContainsRune(msg, utf8.RuneError) {
		t.Errorf("%s: %q quotes part of a character", what, msg)
	}
	if !strings.Contains(msg, kept+"…") {
		t.Errorf("%s: %q does not quote the text up to the cut, then …", what, msg)
	}
	if strings.Contains(msg, kept+"日") {
		t.Errorf("%s: %q quotes more than %d bytes", what, msg, n)
	}
}

// TestErrorsCutOutsideTextBetweenCharacters: an error quoting a string from
// outside (Zoom's token error code, a record's reason, state or schedule)
// cuts it before a character, never inside one.
func TestErrorsCutOutsideTextBetweenCharacters(t *testing.T) {
	code, kept := straddling(64)
	for _, status := range []int{http.StatusBadRequest, http.StatusBadGateway} {
		err := tokenError("refresh", &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, ErrorCode: code})
		checkCut(t, "token error", err.Error(), kept, 64)
	}
	reason, kept := straddling(256)
	for _, state := range []string{StateNeedsReauthorization, StateDisabled} {
		err := inactive(Record{Tenant: "acme", Connector: "zoom", State: state, Reason: reason})
		checkCut(t, state, err.Error(), kept, 256)
	}
	state, kept := straddling(32)
	checkCut(t, "unknown state", inactive(Record{Tenant: "acme", Connector: "zoom", State: state}).Error(), kept, 32)
	rec := s2s("acme", "zoom")
	rec.State = state
	checkCut(t, "validate state", rec.Validate().Error(), kept, 32)
	if _, err := ParseSchedule(state); err == nil {
		t.Error("a schedule of text was taken")
	} else {
		checkCut(t, "schedule", err.Error(), kept, 32)
	}
}
