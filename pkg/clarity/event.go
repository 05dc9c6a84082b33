package clarity

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// ContentType is the Content-Type header of every change event.
const ContentType = "application/cloudevents+json"

// Event is a change event: one CloudEvent 1.0 in structured JSON mode.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Tenant          string          `json:"tenant"`
	Connector       string          `json:"connector"`
	Sequence        string          `json:"sequence"`
	Data            json.RawMessage `json:"data"`
}

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
	b = appendString(b, e.SpecVersion)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"source":`...)
	b = appendString(b, e.Source)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"subject":`...)
	b = appendString(b, e.Subject)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","datacontenttype":`...)
	b = appendString(b, e.DataContentType)
	b = append(b, `,"tenant":`...)
	b = appendString(b, e.Tenant)
	b = append(b, `,"connector":`...)
	b = appendString(b, e.Connector)
	b = append(b, `,"sequence":`...)
	b = appendString(b, e.Sequence)
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with encoding/json's escaping
// (HTML-safe, invalid UTF-8 replaced, U+2028 and U+2029 escaped).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
