// Package pipeline is the connector's internal wire: the streams, subjects
// and key-value buckets between its services, the ids of the messages on
// them, the envelope codec, and the typed handler the consume loop runs.
// What downstream consumers rely on stays in package clarity.
package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ConnectorRef names one connector: one Zoom account connected to one
// Clarity tenant. Make it with NewConnectorRef (or a parser), which
// validates both names; a zero ConnectorRef names nothing.
type ConnectorRef struct {
	// Tenant is the Clarity tenant.
	Tenant string
	// ID is the connector's unique identifier within its tenant
	// (Clarity's "service identifier"; "zoom" by default).
	ID string
}

// ErrBadName reports a tenant or connector name that is not 1 to 63 of
// a-z, 0-9, '_' and '-', starting with a letter or digit.
var ErrBadName = errors.New("pipeline: invalid name")

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckName reports whether s is a valid tenant or connector name; what
// ("tenant", "connector") names it in the error, which quotes at most the
// first 64 bytes of s.
func CheckName(what, s string) error {
	if namePattern.MatchString(s) {
		return nil
	}
	return fmt.Errorf("%w: %s %q must be 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit", ErrBadName, what, truncate(s))
}

// NewConnectorRef validates tenant and id and returns their ConnectorRef.
func NewConnectorRef(tenant, id string) (ConnectorRef, error) {
	if err := CheckName("tenant", tenant); err != nil {
		return ConnectorRef{}, err
	}
	if err := CheckName("connector", id); err != nil {
		return ConnectorRef{}, err
	}
	return ConnectorRef{Tenant: tenant, ID: id}, nil
}

// String is "tenant/id", for logs and errors.
func (c ConnectorRef) String() string { return c.Tenant + "/" + c.ID }

// Key is "tenant.id": the connector's tokens at the end of its subjects,
// and its key in key-value buckets.
func (c ConnectorRef) Key() string { return c.Tenant + "." + c.ID }

// IsZero reports whether c names no connector.
func (c ConnectorRef) IsZero() bool { return c == ConnectorRef{} }

// ParseKey reads a Key back.
func ParseKey(key string) (ConnectorRef, error) {
	tenant, id, ok := strings.Cut(key, ".")
	if !ok {
		return ConnectorRef{}, fmt.Errorf("%w: key %q is not <tenant>.<connector>", ErrBadName, truncate(key))
	}
	return NewConnectorRef(tenant, id)
}

// FromSubject returns the connector of a subject <a>.<b>.<tenant>.<connector>[.…],
// the shape of every per-connector subject.
func FromSubject(subject string) (ConnectorRef, error) {
	parts := strings.SplitN(subject, ".", 5)
	if len(parts) < 4 {
		return ConnectorRef{}, fmt.Errorf("%w: subject %q names no tenant and connector", ErrBadName, truncate(subject))
	}
	return NewConnectorRef(parts[2], parts[3])
}

func truncate(s string) string { return Bound(s, 64) }
