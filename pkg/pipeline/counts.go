package pipeline

import (
	"fmt"
	"strings"
	"time"
)

// CountsSubject is where the number of a connector's live records of each
// kind is asked for: a core NATS request the writer answers (from
// PostgreSQL) with a RecordCounts. Nothing stores it; the request's body is
// empty or a CountsRequest.
func CountsSubject(c ConnectorRef) string { return countsPrefix + c.Key() }

const countsPrefix = "zoom.counts."

// CountsFilter matches every subject the writer answers counts on, the
// malformed ones included (it answers those with an error).
const CountsFilter = countsPrefix + ">"

// CountsConnector reads the connector of a counts subject: exactly
// zoom.counts.<tenant>.<connector>.
func CountsConnector(subject string) (ConnectorRef, error) {
	rest, ok := strings.CutPrefix(subject, countsPrefix)
	if !ok || strings.Count(rest, ".") != 1 {
		return ConnectorRef{}, fmt.Errorf("%w: subject %q is not %s<tenant>.<connector>", ErrBadName, truncate(subject), countsPrefix)
	}
	return ParseKey(rest)
}

// CountsRequest is the body of a request on CountsSubject, at most
// MaxCountsRequest bytes. MaxAgeMS asks for a count that began at most that
// many milliseconds before the request: the console asks for one begun
// after it heard a run end. Zero takes whatever the writer reuses (by
// default, a count that ended less than 30 s before).
type CountsRequest struct {
	MaxAgeMS int64 `json:"max_age_ms,omitempty"`
}

// MaxCountsRequest bounds a CountsRequest's body.
const MaxCountsRequest = 1 << 10

// RecordCounts answers a request on CountsSubject. Records maps each
// record kind's name (clarity.KindServiceUser, …) to the connector's live
// records of that kind (deleted records, kept as tombstones, are not
// counted), every kind present; CountedAt is when they were counted. A
// refused request has Error and Code instead.
type RecordCounts struct {
	Records   map[string]int64 `json:"records,omitempty"`
	CountedAt time.Time        `json:"counted_at,omitzero"`
	Error     string           `json:"error,omitempty"`
	Code      string           `json:"code,omitempty"`
}

// The codes of a refused RecordCounts.
const (
	// CountsBadSubject: the subject names no connector.
	CountsBadSubject = "bad_subject"
	// CountsBadRequest: the body is no CountsRequest.
	CountsBadRequest = "bad_request"
	// CountsUnknownConnector: the writer stores no records of it.
	CountsUnknownConnector = "unknown_connector"
	// CountsUnavailable: the count failed (the database is away, or
	// too busy); ask again later.
	CountsUnavailable = "unavailable"
)

// MaxCountsReply bounds a RecordCounts reply, for those who read it.
const MaxCountsReply = 4 << 10
