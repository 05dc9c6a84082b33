package enrich

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// profile is what of a user is compared to tell a change of its profile
// from a login (last_login_at), which changes the service_user record of
// every user who signs in and costs no read: the fields that a service_user
// event and a GET /users listing item both give, alike.
type profile struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Status    string `json:"status"`
	License   string `json:"license"`
	RoleID    string `json:"role_id"`
}

// digest is a short digest of p.
func (p profile) digest() string {
	h := sha256.New()
	for _, s := range []string{p.Email, p.FirstName, p.LastName, p.Status, p.License, p.RoleID} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Memo remembers the profile digest of each user at its last read, in a
// key-value bucket every replica shares and that outlives restarts.
type Memo struct{ kv jetstream.KeyValue }

// OpenMemo opens (creating it if needed) the bucket of the memo.
func OpenMemo(ctx context.Context, js jetstream.JetStream, replicas int) (*Memo, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      pipeline.EnrichBucket,
		Description: "the profile digest of each user at its last read for enrichment",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("enrich: open bucket %s: %w", pipeline.EnrichBucket, err)
	}
	return &Memo{kv: kv}, nil
}

// key names user id of connector c without quoting the id.
func memoKey(c pipeline.ConnectorRef, id string) string {
	sum := sha256.Sum256([]byte(id))
	return c.Key() + "." + hex.EncodeToString(sum[:12])
}

// get returns the digest remembered of user id and when it was stored, ""
// when none.
func (m *Memo) get(ctx context.Context, c pipeline.ConnectorRef, id string) (string, time.Time, error) {
	e, err := m.kv.Get(ctx, memoKey(c, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return string(e.Value()), e.Created(), nil
}

func (m *Memo) put(ctx context.Context, c pipeline.ConnectorRef, id, digest string) error {
	_, err := m.kv.PutString(ctx, memoKey(c, id), digest)
	return err
}

// forget drops user id, deleted.
func (m *Memo) forget(ctx context.Context, c pipeline.ConnectorRef, id string) error {
	err := m.kv.Purge(ctx, memoKey(c, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// profileOfListed is the profile of a GET /users item listed with status.
func profileOfListed(u listedUser, status string) profile {
	return profile{Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, Status: status,
		License: clarity.License(u.Type), RoleID: u.RoleID}
}

// listedUser is what a baseline reads of a listing item.
type listedUser struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Type      int    `json:"type"`
	RoleID    string `json:"role_id"`
}
