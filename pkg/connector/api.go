package connector

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The admin API: NATS request-reply, answered by the webhook service (which
// holds the keyring and serves the OAuth redirect), except where noted.
// Clarity's backend calls the same operations as zoomctl connector. Secrets
// travel only sealed to the services' transport key (SealForTransport), so
// neither a message nor the client's machine ever holds them in plain text
// beyond the file the client read them from.

// Admin operations on one connector: zoom.admin.<tenant>.<connector>.<op>.
const (
	OpAdd       = "add"
	OpUpdate    = "update"
	OpAuthorize = "authorize"
	OpShow      = "show"
	OpRemove    = "remove"
	// OpPurge deletes a removed connector's records, each with its deleted
	// event; the writer answers it.
	OpPurge = "purge"
	// OpConfirmDeletions applies the deletions a completed run held (the
	// accidental-deletion guard); the writer answers it
	// (ConfirmDeletionsRequest, ConfirmDeletionsReply).
	OpConfirmDeletions = "confirm-deletions"
)

// ConfirmDeletionsRequest asks for the held deletions of one run.
type ConfirmDeletionsRequest struct {
	RunID string `json:"run_id"`
}

// ConfirmDeletionsReply says what a confirmation did, or why it was
// refused (Error).
type ConfirmDeletionsReply struct {
	RunID string `json:"run_id"`
	// Held counts the users and entitlements the run held.
	Held *clarity.HeldCounts `json:"held,omitempty"`
	// Deleted counts the records deleted now, grants and attributes
	// included.
	Deleted int64  `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

// Admin operations on the whole deployment.
const (
	// SubjectList lists connectors (ListRequest → ListReply).
	SubjectList = "zoom.admin.list"
	// SubjectRotateKey re-seals every secret under the current key.
	SubjectRotateKey = "zoom.admin.rotate-key"
	// SubjectTransportKey answers the public key secrets are sealed to.
	SubjectTransportKey = "zoom.admin.transport-key"
)

// AdminSubject is the subject of an operation on one connector.
func AdminSubject(ref pipeline.ConnectorRef, op string) string {
	return "zoom.admin." + ref.Key() + "." + op
}

// Transport infos: what a sealed secret is for, so that one sealed for a
// field opens for no other.
func transportInfo(ref pipeline.ConnectorRef, field string) string {
	return "zoom-connector admin " + ref.Key() + " " + field
}

// SettingsRequest adds or updates a connector (OpAdd, OpUpdate). Empty
// fields of an update keep their value.
type SettingsRequest struct {
	Auth      string `json:"auth,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	Schedule  string `json:"schedule,omitempty"`
	// Enrich turns enrichment on or off (Record.Enrich); nil keeps it as
	// it is (off for a new connector).
	Enrich *bool `json:"enrich,omitempty"`
	// ClientSecret and WebhookSecret are sealed with SealForTransport.
	ClientSecret  string `json:"client_secret_sealed,omitempty"`
	WebhookSecret string `json:"webhook_secret_sealed,omitempty"`
}

// RemoveRequest removes a connector (OpRemove).
type RemoveRequest struct {
	// Purge also deletes its records, each with a deleted event.
	Purge bool `json:"purge,omitempty"`
}

// ListRequest lists the connectors of one tenant, or of all when empty.
type ListRequest struct {
	Tenant string `json:"tenant,omitempty"`
}

// View is what the admin API shows of a connector: never a secret.
type View struct {
	Tenant       string    `json:"tenant"`
	Connector    string    `json:"connector"`
	Auth         string    `json:"auth"`
	State        string    `json:"state"`
	Reason       string    `json:"reason,omitempty"`
	Schedule     string    `json:"schedule"`
	Enrich       bool      `json:"enrich"`
	ClientID     string    `json:"client_id"`
	AccountID    string    `json:"account_id,omitempty"`
	RedirectURL  string    `json:"redirect_url,omitempty"`
	AuthorizeURL string    `json:"authorize_url,omitempty"`
	WebhookSet   bool      `json:"webhook_secret_set"`
	LastSync     *LastSync `json:"last_sync,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// LastSync is the end of a connector's last full sync.
type LastSync struct {
	RunID      string `json:"run_id"`
	Result     string `json:"result"`
	FinishedAt string `json:"finished_at,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Reply is the answer to every admin request: Error, or what was asked.
type Reply struct {
	Error string `json:"error,omitempty"`
	// Connector answers add, update, authorize, show.
	Connector *View `json:"connector,omitempty"`
	// Connectors answers list.
	Connectors []View `json:"connectors,omitempty"`
	// Count answers remove with purge (records deleted) and rotate-key
	// (secrets re-sealed).
	Count int64 `json:"count,omitempty"`
	// Key answers transport-key: the base64 of the public key.
	Key string `json:"key,omitempty"`
	// RequestID names the first full sync an add triggered.
	RequestID string `json:"request_id,omitempty"`
}

// ErrAdmin reports a refusal of the admin API, with its reason.
var ErrAdmin = errors.New("admin")

// Client calls the admin API.
type Client struct {
	NC      *nats.Conn
	Timeout time.Duration
}

// Call sends req to subject and decodes the reply; a refusal is an error
// wrapping ErrAdmin.
func (c Client) Call(ctx context.Context, subject string, req any) (Reply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.NC.RequestWithContext(ctx, subject, body)
	if errors.Is(err, nats.ErrNoResponders) {
		return Reply{}, fmt.Errorf("%s: no service answers the admin API (is the webhook service running?)", subject)
	}
	if err != nil {
		return Reply{}, fmt.Errorf("%s: %w", subject, err)
	}
	var r Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		return Reply{}, fmt.Errorf("%s: the answer is not JSON: %w", subject, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("%w: %s", ErrAdmin, r.Error)
	}
	return r, nil
}

// SealSecret seals a secret for the connector's field with the services'
// transport key, asking the admin API for it.
func (c Client) SealSecret(ctx context.Context, ref pipeline.ConnectorRef, field, secret string) (string, error) {
	if secret == "" {
		return "", nil
	}
	r, err := c.Call(ctx, SubjectTransportKey, struct{}{})
	if err != nil {
		return "", err
	}
	pub, err := base64.StdEncoding.DecodeString(r.Key)
	if err != nil {
		return "", fmt.Errorf("transport key: %w", err)
	}
	return SealForTransport(pub, transportInfo(ref, field), secret)
}

// OpenFromTransport opens a secret a client sealed for the connector's
// field.
func (k *Keyring) OpenFromTransport(ref pipeline.ConnectorRef, field, sealed string) (string, error) {
	return k.OpenTransport(sealed, transportInfo(ref, field))
}
