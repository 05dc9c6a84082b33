package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// The provisioning streams: requests from Clarity to the fetcher's
// provisioning worker, and results from the worker to the writer, which
// publishes them as events in sequence with the records they changed.
const (
	StreamProvision        = "ZOOM_PROVISION"
	StreamProvisionResults = "ZOOM_PROVISION_RESULTS"
)

// ProvisionBucket keeps each provisioning request's progress and result
// by connector and request id, so that a request id answers once, also
// across restarts.
const ProvisionBucket = "zoom_provision"

// ProvisionLeaseBucket holds the lease of the fetcher replica that serves
// provisioning requests: the requests are read in stream order, by one
// worker at a time.
const ProvisionLeaseBucket = "zoom_provision_lease"

// ProvisionHoldBucket marks the users a provisioning write is under way
// for, by connector and user key or lower-case email: the writer holds back
// the incremental changes (webhooks, re-reads) of a marked user until the
// write's result is committed, so that the record changes the write caused
// follow its result event. A mark's value is the audit key of the request
// that made it: a result lifts only its own request's marks, never those a
// later request for the same user made meanwhile. A mark lives
// ProvisionHoldTTL at most.
const ProvisionHoldBucket = "zoom_provision_hold"

// ProvisionHoldTTL bounds how long a mark holds a user's changes back, should
// its worker die before the result.
const ProvisionHoldTTL = 3 * time.Minute

// ProvisionHoldConfig is ProvisionHoldBucket's configuration, which the
// fetcher and the writer both ensure.
func ProvisionHoldConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ProvisionHoldBucket,
		Description: "users a provisioning write is under way for: their incremental changes wait for its result",
		History:     1,
		TTL:         ProvisionHoldTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	}
}

// ProvisionHoldKey is the key of a mark in ProvisionHoldBucket: the
// connector and a digest of who (a user key or an email, compared in lower
// case).
func ProvisionHoldKey(c ConnectorRef, who string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(who)))
	return c.Tenant + "." + c.ID + "." + hex.EncodeToString(sum[:16])
}

// DefaultProvisionKeep is how long ZOOM_PROVISION keeps a request no worker
// took, and the provisioning bucket a request's result. The writer's
// provisioning audit keeps a request no longer (it refuses a longer
// PROVISION_AUDIT_RETENTION): a request id repeated while the audit has it
// finds its result in the bucket and answers it, never runs again.
const DefaultProvisionKeep = 90 * 24 * time.Hour

// ProvisionSubject is where provisioning requests of connector c arrive
// (zoom.provision.<tenant>.<connector>).
func ProvisionSubject(c ConnectorRef) string { return clarity.ProvisionSubject(c.Tenant, c.ID) }

// ProvisionResultSubject carries the results of connector c's requests from
// the worker to the writer (zoom.provision.results.<tenant>.<connector>:
// one token more than a request's subject, so that the two streams never
// capture each other's messages).
func ProvisionResultSubject(c ConnectorRef) string { return provisionResults + c.Key() }

const provisionResults = "zoom.provision.results."

// ProvisionResultConnector returns the connector of a result's subject.
func ProvisionResultConnector(subject string) (ConnectorRef, error) {
	key, ok := strings.CutPrefix(subject, provisionResults)
	if !ok {
		return ConnectorRef{}, fmt.Errorf("%w: subject %q is not a provisioning result's", ErrBadName, truncate(subject))
	}
	return ParseKey(key)
}

// ProvisionResultID is the Nats-Msg-Id of a request's result: one per
// connector and request.
func ProvisionResultID(c ConnectorRef, auditKey string) string {
	return "provision/" + c.Key() + "/" + auditKey
}

// ProvisionKey is the key of a request in ProvisionBucket: a digest of
// the connector and the request's audit key, since request ids may hold
// characters a key may not.
func ProvisionKey(c ConnectorRef, auditKey string) string {
	sum := sha256.Sum256([]byte(c.Key() + "\x00" + auditKey))
	return c.Tenant + "." + c.ID + "." + hex.EncodeToString(sum[:16])
}

// ProvisionStreams returns the configuration of the provisioning streams.
// Requests are kept (limits retention) until the worker deletes each one
// whose result is stored: the worker reads them in order from the first
// one left, so that after a crash it takes them up again in the order they
// were published.
func ProvisionStreams(keep time.Duration) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        StreamProvision,
			Description: "provisioning requests, until their result is stored",
			Subjects:    []string{"zoom.provision.*.*"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  2 * time.Minute,
			MaxAge:      keep,
		},
		{
			Name:        StreamProvisionResults,
			Description: "provisioning results, worker to writer",
			Subjects:    []string{"zoom.provision.results.*.*"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  time.Hour,
		},
	}
}

// ProvisionOutcome is what the worker hands the writer for one request:
// the result, what the audit keeps of the request, and the records to
// refresh once the result is committed.
type ProvisionOutcome struct {
	Tenant    string `json:"tenant"`
	Connector string `json:"connector"`
	// AuditKey is the request id, or "seq:<n>" (its stream sequence) for a
	// request that had none.
	AuditKey string                   `json:"audit_key"`
	Request  clarity.ProvisionRequest `json:"request"`
	Result   clarity.ProvisionResult  `json:"result"`
	// RequestedBy is what the request's headers say of who asked.
	RequestedBy map[string]string `json:"requested_by,omitempty"`
	ReceivedAt  time.Time         `json:"received_at"`
	FinishedAt  time.Time         `json:"finished_at"`
	// Calls are the Zoom calls the action made, in order.
	Calls []ZoomCall `json:"calls,omitempty"`
	// Reads are the users the action changed, as Zoom showed them when read
	// back: the writer has them normalized like a listing's users.
	Reads []UserRead `json:"reads,omitempty"`
	// Admins is a group's admins as read back after a change of them.
	Admins *GroupAdminsRead `json:"admins,omitempty"`
	// Holds are who the worker marked in ProvisionHoldBucket before its
	// write: the writer lifts the marks once the result is committed.
	Holds []string `json:"holds,omitempty"`
}

// ZoomCall is one Zoom call of an action, for the audit.
type ZoomCall struct {
	Call   string `json:"call"`
	Status int    `json:"status"`
	Code   int    `json:"code,omitempty"`
}

// UserRead is one user as read from Zoom: the body of GET /users/{userId},
// or the user's item of the pending listing with its status, or NotFound
// when Zoom no longer has the user.
type UserRead struct {
	// UserID is how the user was read: its Zoom id, or for a pending user
	// its key pending:<email> (which a NotFound read deletes).
	UserID   string          `json:"user_id"`
	Body     json.RawMessage `json:"body,omitempty"`
	NotFound bool            `json:"not_found,omitempty"`
	ReadAtMs int64           `json:"read_at_ms"`
}

// GroupAdminsRead is one user's admin rights on one group as Zoom showed
// them when read back at ReadAtMs.
type GroupAdminsRead struct {
	GroupID  string `json:"group_id"`
	Email    string `json:"email"`
	IsAdmin  bool   `json:"is_admin"`
	ReadAtMs int64  `json:"read_at_ms"`
}
