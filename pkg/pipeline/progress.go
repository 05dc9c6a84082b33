package pipeline

import "strings"

// ProgressSubject carries the fetcher's progress through a connector's
// full sync: one core NATS message per page it publishes. Progress is not
// stored: whoever listens (the admin console) sees it, and nothing waits
// for it.
func ProgressSubject(c ConnectorRef) string { return "zoom.progress." + c.Key() }

// ProgressFilter matches the progress of every connector.
const ProgressFilter = "zoom.progress.*.*"

// MaxProgress bounds a progress message's body, for those who read it.
const MaxProgress = 1 << 10

// Progress is the body of a message on ProgressSubject.
type Progress struct {
	// Fetcher names the fetcher process that sent it: its client's
	// counters below are that process's own.
	Fetcher string `json:"fetcher"`
	// Listing is the Zoom listing of the page ("users?status=active",
	// "groups", …), Page its number within the listing (from 1), Last
	// whether it was the listing's last.
	Listing string `json:"listing"`
	Page    int    `json:"page"`
	Last    bool   `json:"last,omitempty"`
	// Requests, RateLimited (429 answers) and WaitedMS (time waited after
	// 429s and failures) count what the connector's Zoom client in that
	// process did since it was made.
	Requests    int64 `json:"requests"`
	RateLimited int64 `json:"rate_limited"`
	WaitedMS    int64 `json:"waited_ms"`
}

// ProgressConnector reads the connector of a progress subject.
func ProgressConnector(subject string) (ConnectorRef, error) {
	if !strings.HasPrefix(subject, "zoom.progress.") {
		return ConnectorRef{}, ErrBadName
	}
	return FromSubject(subject)
}
