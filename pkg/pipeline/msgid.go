package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// Every Nats-Msg-Id the services give their internal messages is made here.
// JetStream drops a message whose id it has seen within the stream's
// duplicate window, so each id names what the message is, never when it was
// sent: the same work done again (a redelivered input, a resumed run, a
// crashed publisher's retry) yields the same id and is stored once.

// RunStartedID is the id of a run's start.
func RunStartedID(runID string) string { return runID + "/started" }

// RunEndID is the id of the end (manifest or failure) of one attempt at a
// run: each attempt ends once.
func RunEndID(runID string, attempt int) string {
	return runID + "/end/" + strconv.Itoa(attempt)
}

// PageID is the id of one raw page: the run, the attempt at it (each
// attempt numbers its listings' passes apart), the listing, the pass over
// it (a listing restarted after its page token expired), and the page.
func PageID(runID string, attempt int, listing string, pass, page int) string {
	return runID + "/" + strconv.Itoa(attempt) + "/" + listing + "/" + strconv.Itoa(pass) + "/" + strconv.Itoa(page)
}

// BundleID is the id of a bundle of pages published as one message: its
// first page's id and its number of pages. Each page is in one bundle per
// attempt at a run, so the first page names the bundle; the count keeps the
// bundle apart from that page published alone (when the bundle was too
// large for a message and went page by page).
func BundleID(firstPageID string, pages int) string {
	return firstPageID + "+" + strconv.Itoa(pages)
}

// RefusalID is the id, and Nats-Msg-Id, of the sync.failed event with which
// the fetcher refuses a trigger for a connector it does not serve. tenant
// and connector are the trigger subject's tokens, which need not be valid
// names (the refusal says so); runID is the refusal's run id, derived from
// the trigger's place in its stream, so that a redelivered trigger is
// refused under the same id.
func RefusalID(tenant, connector, runID string) string {
	return tenant + "/" + connector + "/" + runID
}

// InputID is the id of a message derived from an input message: its stream
// and sequence, so that a redelivered input that was already handled
// publishes nothing new. "" when the input has no JetStream metadata.
func InputID(in jetstream.Msg) string {
	md, err := in.Metadata()
	if err != nil {
		return ""
	}
	return md.Stream + "/" + strconv.FormatUint(md.Sequence.Stream, 10)
}

// DerivedID is the id of a message of one kind (records, hint) derived from
// the input whose id is input, the part-th of them when part is not
// negative: "" when input is "". With kind "", the id is the input's own
// (and its part): an input that yields one message, such as a raw page and
// its record batch, gives it its own id, as it always has.
func DerivedID(input, kind string, part int) string {
	if input == "" {
		return ""
	}
	id := input
	if kind != "" {
		id += "/" + kind
	}
	if part >= 0 {
		id += "/" + strconv.Itoa(part)
	}
	return id
}

// WebhookID is the id of a Zoom notification: its connector and the SHA-256
// of its raw body, so that a retried delivery is one event and two
// connectors never drop each other's.
func WebhookID(c ConnectorRef, body []byte) string {
	h := sha256.Sum256(body)
	return "wh/" + c.Tenant + "/" + c.ID + "/" + hex.EncodeToString(h[:])
}

// ScheduleID is the id of the trigger of a connector's scheduled sync in
// one slot: the replicas that all see the slot come publish it once.
func ScheduleID(c ConnectorRef, slot int64) string {
	return "schedule/" + c.Key() + "/" + strconv.FormatInt(slot, 10)
}

// DeadLetterID is the id of the dead letter of a stream's message.
func DeadLetterID(stream string, seq uint64) string {
	return "dlq/" + stream + "/" + strconv.FormatUint(seq, 10)
}

// ReplayID is the id of a dead letter sent back to its subject: the
// original stream and sequence, and the dead letter's own sequence.
func ReplayID(stream string, streamSeq, dlqSeq uint64) string {
	return "zoom-dlq-replay/" + stream + "/" + strconv.FormatUint(streamSeq, 10) + "/" + strconv.FormatUint(dlqSeq, 10)
}

// TriggerID is the id of a sync trigger that a service publishes on an
// operator's behalf (a connector's first sync): its request id.
func TriggerID(c ConnectorRef, requestID string) string {
	return "trigger/" + c.Key() + "/" + requestID
}
