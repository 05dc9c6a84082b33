package normalize

import (
	"bytes"
	"encoding/json"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// Canonical returns the canonical JSON of v: what json.Marshal writes (fields
// in struct order, map keys sorted) but without HTML escaping, so that "<b>&"
// in a Zoom name is stored and published as Zoom sent it, and without a
// trailing newline. The same value always yields the same bytes, which is what
// lets the writer compare hashes instead of documents.
//
// The four Clarity data types (clarity.ServiceUser, Entitlement, Grant and
// Attribute, as values or pointers) take a reflection-free path that writes
// exactly the same bytes; a full sync of a large account produces about a
// million of them.
func Canonical(v any) ([]byte, error) {
	switch d := v.(type) {
	case clarity.ServiceUser:
		return appendServiceUser(nil, &d), nil
	case *clarity.ServiceUser:
		if d != nil {
			return appendServiceUser(nil, d), nil
		}
	case clarity.Entitlement:
		return appendEntitlement(nil, &d), nil
	case *clarity.Entitlement:
		if d != nil {
			return appendEntitlement(nil, d), nil
		}
	case clarity.Grant:
		return appendGrant(nil, &d), nil
	case *clarity.Grant:
		if d != nil {
			return appendGrant(nil, d), nil
		}
	case clarity.Attribute:
		return appendAttribute(nil, &d), nil
	case *clarity.Attribute:
		if d != nil {
			return appendAttribute(nil, d), nil
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// NewRecord builds a record of any kind from its data value: Data is the
// canonical JSON of v. Hash is left to the writer: 32 random bytes per
// record are a large, incompressible share of a record batch. The caller
// sets UserKey,
// EntitlementKey and Email where the kind has them; the typed constructors
// (UserRecord, EntitlementRecord, GrantRecord, AttributeRecord) do that and
// cannot fail.
func NewRecord(kind pb.Kind, key string, v any) (*pb.Record, error) {
	data, err := Canonical(v)
	if err != nil {
		return nil, err
	}
	return newRecord(kind, key, data), nil
}

func newRecord(kind pb.Kind, key string, data []byte) *pb.Record {
	return &pb.Record{Kind: kind, Key: key, Data: data}
}

// UserRecord is the service_user record of u under key. Its Email is the
// normalized (trimmed, lower-case) email, the form group-admin emails are
// matched in.
func UserRecord(key string, u *clarity.ServiceUser) *pb.Record {
	r := newRecord(pb.Kind_KIND_SERVICE_USER, key, appendServiceUser(nil, u))
	r.UserKey = key
	r.Email = normEmail(u.Email)
	return r
}

// EntitlementRecord is the entitlement record of e, keyed by its id.
func EntitlementRecord(e *clarity.Entitlement) *pb.Record {
	return newRecord(pb.Kind_KIND_ENTITLEMENT, e.ID, appendEntitlement(nil, e))
}

// GrantRecord is the service_user_entitlement record that gives the user
// userKey the entitlement entitlementKey.
func GrantRecord(userKey, entitlementKey string) *pb.Record {
	g := clarity.Grant{UserID: userKey, EntitlementID: entitlementKey}
	r := newRecord(pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey(userKey, entitlementKey), appendGrant(nil, &g))
	r.UserKey = userKey
	r.EntitlementKey = entitlementKey
	return r
}

// AttributeRecord is the service_user_attribute record name=value of the user
// userKey.
func AttributeRecord(userKey, name, value string) *pb.Record {
	a := clarity.Attribute{UserID: userKey, Name: name, Value: value}
	r := newRecord(pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, clarity.AttributeKey(userKey, name), appendAttribute(nil, &a))
	r.UserKey = userKey
	return r
}

// The append functions below write what encoding/json writes for the clarity
// structs (with SetEscapeHTML(false)); canonical_test.go checks them against
// encoding/json field by field, so a field added to a struct without being
// added here fails the tests. Each first sizes its buffer so that the common
// case (nothing to escape) allocates once.

func appendServiceUser(b []byte, u *clarity.ServiceUser) []byte {
	if b == nil {
		b = make([]byte, 0, 128+len(u.ID)+len(u.Email)+len(u.FirstName)+len(u.LastName)+
			len(u.DisplayName)+len(u.Status)+len(u.License)+len(u.RoleID)+
			len(u.CreatedAt)+len(u.LastLoginAt)+32)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, u.ID)
	b = append(b, `,"email":`...)
	b = appendString(b, u.Email)
	b = append(b, `,"first_name":`...)
	b = appendString(b, u.FirstName)
	b = append(b, `,"last_name":`...)
	b = appendString(b, u.LastName)
	b = append(b, `,"display_name":`...)
	b = appendString(b, u.DisplayName)
	b = append(b, `,"status":`...)
	b = appendString(b, u.Status)
	b = append(b, `,"license":`...)
	b = appendString(b, u.License)
	b = append(b, `,"role_id":`...)
	b = appendString(b, u.RoleID)
	if u.CreatedAt != "" {
		b = append(b, `,"created_at":`...)
		b = appendString(b, u.CreatedAt)
	}
	if u.LastLoginAt != "" {
		b = append(b, `,"last_login_at":`...)
		b = appendString(b, u.LastLoginAt)
	}
	return append(b, '}')
}

func appendEntitlement(b []byte, e *clarity.Entitlement) []byte {
	if b == nil {
		b = make([]byte, 0, 64+len(e.ID)+len(e.Type)+len(e.ZoomID)+len(e.Name)+len(e.Description)+16)
	}
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"zoom_id":`...)
	b = appendString(b, e.ZoomID)
	b = append(b, `,"name":`...)
	b = appendString(b, e.Name)
	b = append(b, `,"description":`...)
	b = appendString(b, e.Description)
	return append(b, '}')
}

func appendGrant(b []byte, g *clarity.Grant) []byte {
	if b == nil {
		b = make([]byte, 0, 40+len(g.UserID)+len(g.EntitlementID)+8)
	}
	b = append(b, `{"user_id":`...)
	b = appendString(b, g.UserID)
	b = append(b, `,"entitlement_id":`...)
	b = appendString(b, g.EntitlementID)
	return append(b, '}')
}

func appendAttribute(b []byte, a *clarity.Attribute) []byte {
	if b == nil {
		b = make([]byte, 0, 40+len(a.UserID)+len(a.Name)+len(a.Value)+8)
	}
	b = append(b, `{"user_id":`...)
	b = appendString(b, a.UserID)
	b = append(b, `,"name":`...)
	b = appendString(b, a.Name)
	b = append(b, `,"value":`...)
	b = appendString(b, a.Value)
	return append(b, '}')
}

// appendString quotes s as canonical data does: as encoding/json does with
// HTML escaping off.
func appendString(b []byte, s string) []byte { return clarity.AppendJSONString(b, s, false) }
