package receiver

import (
	"context"
	"errors"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// ErrUnknownConnector reports a connector the receiver does not serve; the
// request is answered 404.
var ErrUnknownConnector = errors.New("receiver: unknown connector")

// Secret is a webhook secret token. Its String and MarshalText hide the value,
// so that a connector printed or logged by mistake does not leak it.
type Secret string

// String hides the secret.
func (Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v as well.
func (Secret) GoString() string { return `"[redacted]"` }

// MarshalText hides the secret from encoders (JSON logs among them).
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Connector is one Zoom connector whose notifications the receiver accepts.
type Connector struct {
	// Ref names the connector; its notifications go to its webhook subject.
	Ref pipeline.ConnectorRef
	// Secret is the webhook secret token of the connector's Zoom app, the
	// key of its notification signatures.
	Secret Secret
}

// Connectors finds a connector by name. Lookup returns an error wrapping
// ErrUnknownConnector when there is no such connector; any other error
// means the lookup could not be made (a database down, say), and the
// request is answered 503 so that Zoom retries. The receiver only looks up
// valid names (pipeline.NewConnectorRef).
//
// It is an interface so that connectors can later come from a database
// rather than from the environment alone.
type Connectors interface {
	Lookup(ctx context.Context, ref pipeline.ConnectorRef) (Connector, error)
}

// Static is a fixed set of connectors, such as the one default connector
// configured from the environment.
type Static map[pipeline.ConnectorRef]Connector

// NewStatic returns a Static holding cs.
func NewStatic(cs ...Connector) Static {
	s := make(Static, len(cs))
	for _, c := range cs {
		s[c.Ref] = c
	}
	return s
}

// Lookup implements Connectors.
func (s Static) Lookup(_ context.Context, ref pipeline.ConnectorRef) (Connector, error) {
	c, ok := s[ref]
	if !ok {
		return Connector{}, ErrUnknownConnector
	}
	return c, nil
}
