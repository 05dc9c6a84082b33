package clarity

import (
	"errors"
	"fmt"
	"strings"
)

// Stream names. CLARITY_ENTITLEMENTS is part of the external contract; the
// ZOOM_* streams are internal to the connector.
const (
	StreamEntitlements = "CLARITY_ENTITLEMENTS"
	StreamSync         = "ZOOM_SYNC"
	StreamRaw          = "ZOOM_RAW"
	StreamRecords      = "ZOOM_RECORDS"
	StreamWebhook      = "ZOOM_WEBHOOK"
	StreamHint         = "ZOOM_HINT"
	StreamDeadLetter   = "ZOOM_DLQ"
)

// SyncSubject is where anyone triggers a sync of a connector.
func SyncSubject(tenant, connector string) string { return "zoom.sync." + tenant + "." + connector }

// EventSubject is where change events of one kind are published.
func EventSubject(tenant, connector, kind string) string {
	return "clarity.entitlements." + tenant + "." + connector + "." + kind
}

// RawSubject carries raw Zoom pages and run control from fetcher to normalizer.
func RawSubject(tenant, connector string) string { return "zoom.raw." + tenant + "." + connector }

// RecordsSubject carries normalized record batches and run control to the writer.
func RecordsSubject(tenant, connector string) string {
	return "zoom.records." + tenant + "." + connector
}

// WebhookSubject carries verified Zoom notifications from webhook to normalizer.
func WebhookSubject(tenant, connector string) string {
	return "zoom.webhook." + tenant + "." + connector
}

// HintSubject carries requests to re-read one user from Zoom to the fetcher.
func HintSubject(tenant, connector string) string { return "zoom.hint." + tenant + "." + connector }

// DeadLetterSubject is where a message that keeps failing on a stream goes.
func DeadLetterSubject(stream string) string { return "zoom.dlq." + strings.ToLower(stream) }

// ErrBadToken reports a tenant or connector name that cannot be one subject token.
var ErrBadToken = errors.New("clarity: invalid subject token")

// CheckToken reports whether s can stand as one token of a subject: not empty,
// and without dots, wildcards or white space.
func CheckToken(what, s string) error {
	if s == "" || strings.ContainsAny(s, ".*> \t\r\n") {
		return fmt.Errorf("%w: %s %q", ErrBadToken, what, s)
	}
	return nil
}

// SplitSubject returns the tenant and connector of a subject of the form
// <a>.<b>.<tenant>.<connector>[...].
func SplitSubject(subject string) (tenant, connector string, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) < 4 {
		return "", "", fmt.Errorf("%w: subject %q has no tenant and connector", ErrBadToken, subject)
	}
	return parts[2], parts[3], nil
}
