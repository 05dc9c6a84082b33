package receiver

import (
	"context"
	"errors"
)

// ErrUnknownConnector reports a tenant and connector the receiver does not
// serve; the request is answered 404.
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
	Tenant string
	ID     string
	// Secret is the webhook secret token of the connector's Zoom app, the
	// key of its notification signatures.
	Secret Secret
}

// Connectors finds a connector by tenant and id. Lookup returns an error
// wrapping ErrUnknownConnector when there is no such connector; any other
// error means the lookup could not be made (a database down, say), and the
// request is answered 503 so that Zoom retries.
//
// It is an interface so that connectors can later come from a database
// rather than from the environment alone.
type Connectors interface {
	Lookup(ctx context.Context, tenant, id string) (Connector, error)
}

// Static is a fixed set of connectors, such as the one default connector
// configured from the environment.
type Static map[[2]string]Connector

// NewStatic returns a Static holding cs.
func NewStatic(cs ...Connector) Static {
	s := make(Static, len(cs))
	for _, c := range cs {
		s[[2]string{c.Tenant, c.ID}] = c
	}
	return s
}

// Lookup implements Connectors.
func (s Static) Lookup(_ context.Context, tenant, id string) (Connector, error) {
	c, ok := s[[2]string{tenant, id}]
	if !ok {
		return Connector{}, ErrUnknownConnector
	}
	return c, nil
}
