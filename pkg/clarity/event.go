package clarity

import (
	"encoding/json"
	"strconv"
	"time"
)

// ContentType is the Content-Type header of every change event.
const ContentType = "application/cloudevents+json"

// Event is a change event: one CloudEvent 1.0 in structured JSON mode.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Tenant          string    `json:"tenant"`
	Connector       string    `json:"connector"`
	Sequence        string    `json:"sequence"`
	// Removal is the extension attribute of a service_user deleted event
	// (RemovalDeleted, RemovalDisassociated, RemovalAbsent); empty, and
	// absent from the JSON, on every other event.
	Removal string          `json:"removal,omitempty"`
	Data    json.RawMessage `json:"data"`
}

// Why a service user was deleted: the removal attribute of its deleted
// event.
const (
	// RemovalDeleted: Zoom deleted the user (user.deleted).
	RemovalDeleted = "deleted"
	// RemovalDisassociated: the user was removed from the account and
	// keeps a Zoom account of its own under the same email
	// (user.disassociated).
	RemovalDisassociated = "disassociated"
	// RemovalAbsent: a complete full sync no longer listed the user, or
	// Zoom answered that it does not exist, without saying why; also an
	// invitee's pending record once its invitation is accepted, and every
	// user of a connector that is removed.
	RemovalAbsent = "absent"
)

// Change operations, the last part of an event type.
const (
	OpCreated   = "created"
	OpUpdated   = "updated"
	OpDeleted   = "deleted"
	OpStarted   = "started"
	OpCompleted = "completed"
	OpFailed    = "failed"
)

// NewEvent builds the change event with the given sequence. The id is the
// same for every publication of the same change, so that JetStream and
// consumers can drop redeliveries.
func NewEvent(tenant, connector string, seq int64, kind, op, subject string, at time.Time, data json.RawMessage) Event {
	s := strconv.FormatInt(seq, 10)
	return Event{
		SpecVersion:     "1.0",
		ID:              tenant + "/" + connector + "/" + s,
		Source:          "zoom/" + tenant + "/" + connector,
		Type:            "clarity." + kind + "." + op,
		Subject:         subject,
		Time:            at.UTC().Truncate(time.Millisecond),
		DataContentType: "application/json",
		Tenant:          tenant,
		Connector:       connector,
		Sequence:        s,
		Data:            data,
	}
}

// SyncStats counts what a run changed.
type SyncStats struct {
	Created     int64 `json:"created"`
	Updated     int64 `json:"updated"`
	Deleted     int64 `json:"deleted"`
	Unchanged   int64 `json:"unchanged"`
	APIRequests int64 `json:"api_requests"`
}

// SyncData is the data of a sync event.
type SyncData struct {
	RunID      string    `json:"run_id"`
	RequestID  string    `json:"request_id"`
	RequestIDs []string  `json:"request_ids"`
	Mode       string    `json:"mode"`
	StartedAt  string    `json:"started_at"`
	FinishedAt string    `json:"finished_at,omitempty"`
	Stats      SyncStats `json:"stats"`
	Error      string    `json:"error,omitempty"`
	// Deletions is "held" when the accidental-deletion guard kept the
	// users and entitlements a completed run did not see; Held counts
	// them. They stay until an operator confirms the run's deletions or a
	// later full sync, with the guard's threshold lifted, deletes them.
	Deletions string      `json:"deletions,omitempty"`
	Held      *HeldCounts `json:"held,omitempty"`
	// Unavailable names the listings the account's plan does not offer
	// (UnavailableGroups, UnavailableRoles: a free Zoom account has
	// neither). The run completed without them and deleted none of their
	// entitlements nor those entitlements' grants.
	Unavailable []string `json:"unavailable,omitempty"`
}

// The listings a completed sync may name as unavailable on the account's
// plan, in SyncData.Unavailable.
const (
	// UnavailableGroups: GET /groups and the groups' admin listings; the
	// group: and group_admin: entitlements and their grants are kept.
	UnavailableGroups = "groups"
	// UnavailableRoles: GET /roles; the role: entitlements are kept, and
	// each user's role grant follows its role_id in the users listing.
	UnavailableRoles = "roles"
)

// HeldCounts counts, per record kind, the records whose deletion a run held.
type HeldCounts struct {
	ServiceUser int64 `json:"service_user"`
	Entitlement int64 `json:"entitlement"`
}

// Trigger is the body of a message on zoom.sync.<tenant>.<connector>.
type Trigger struct {
	Mode      string `json:"mode,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// AppendJSON appends the event as JSON, byte for byte what json.Marshal
// gives for an event whose Data is compact JSON (as every stored record
// is), without reflection: the relay encodes every change this way.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"specversion":`...)
	b = AppendJSONString(b, e.SpecVersion, true)
	b = append(b, `,"id":`...)
	b = AppendJSONString(b, e.ID, true)
	b = append(b, `,"source":`...)
	b = AppendJSONString(b, e.Source, true)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, e.Type, true)
	b = append(b, `,"subject":`...)
	b = AppendJSONString(b, e.Subject, true)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","datacontenttype":`...)
	b = AppendJSONString(b, e.DataContentType, true)
	b = append(b, `,"tenant":`...)
	b = AppendJSONString(b, e.Tenant, true)
	b = append(b, `,"connector":`...)
	b = AppendJSONString(b, e.Connector, true)
	b = append(b, `,"sequence":`...)
	b = AppendJSONString(b, e.Sequence, true)
	if e.Removal != "" {
		b = append(b, `,"removal":`...)
		b = AppendJSONString(b, e.Removal, true)
	}
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	return append(b, '}')
}
