package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Bucket is the JetStream key-value bucket of the registry: one key per
// connector (ConnectorRef.Key), its Record as JSON. Every replica of every
// service watches it, so a change is in force everywhere as soon as the
// server delivers it, and compare-and-set on a key's revision serializes
// what replicas do to one connector (a token refresh, a state change).
const Bucket = "zoom_connectors"

// Auth kinds.
const (
	// AuthOAuth is an account-level OAuth app: authorization code, with a
	// refresh token that Zoom rotates at every refresh.
	AuthOAuth = "oauth"
	// AuthS2S is a Server-to-Server OAuth app: client credentials and an
	// account id; no refresh token.
	AuthS2S = "s2s"
)

// States of a connector.
const (
	// StatePendingAuthorization: an OAuth connector added and not yet
	// authorized in the browser.
	StatePendingAuthorization = "pending_authorization"
	// StateActive: it syncs.
	StateActive = "active"
	// StateNeedsReauthorization: Zoom refused its refresh token
	// (invalid_grant); an administrator must authorize it again.
	StateNeedsReauthorization = "needs_reauthorization"
	// StateDisabled: removed from the Zoom account (app_deauthorized) or
	// disabled by an operator; it does not sync.
	StateDisabled = "disabled"
)

// ScheduleManual is the schedule of a connector synced only when triggered.
const ScheduleManual = "manual"

// Record is what the registry keeps of one connector. Every secret in it is
// sealed (Keyring.Seal) with associated data naming the connector and the
// field (SecretAD), so a record never holds one in plain text.
type Record struct {
	Tenant    string `json:"tenant"`
	Connector string `json:"connector"`
	Auth      string `json:"auth"`
	ClientID  string `json:"client_id"`
	// AccountID is the Zoom account: given for s2s, learnt from Zoom
	// after authorization for oauth.
	AccountID     string `json:"account_id,omitempty"`
	ClientSecret  Sealed `json:"client_secret,omitempty"`
	WebhookSecret Sealed `json:"webhook_secret,omitempty"`
	// Schedule is ScheduleManual or a Go duration ("24h").
	Schedule string `json:"schedule"`
	// Enrich reads each user's details (GET /users/{id}) once it is new
	// or its listed data changed, at the lowest priority of the account's
	// rate budget, for the attributes only those details hold. Off by
	// default; a record stored without it has it off.
	Enrich bool `json:"enrich,omitempty"`
	// EnrichBaseline says that the details of every user were asked for
	// since enrichment was turned on (or that it was on from the start):
	// only users created or changed since need reading. The fetcher sets
	// it once it has read every user listed after a full sync; turning
	// enrichment off clears it.
	EnrichBaseline bool `json:"enrich_baseline,omitempty"`
	// EnrichSince is when enrichment was last turned on: a user read
	// before it is read again by the baseline.
	EnrichSince time.Time `json:"enrich_since,omitzero"`
	State       string    `json:"state"`
	// Reason says why the state is what it is, for people (never a
	// secret).
	Reason string `json:"reason,omitempty"`
	Tokens Tokens `json:"tokens"`
	// LastSync is the end of the last full sync, as its sync event said.
	LastSync *LastSync `json:"last_sync,omitempty"`
	// CreatedAt and UpdatedAt are set by the registry.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tokens are an OAuth connector's tokens, sealed, and the lease of the
// replica refreshing them.
type Tokens struct {
	Access Sealed `json:"access,omitempty"`
	// Issued and Expiry bound the access token's life.
	Issued  time.Time `json:"issued,omitzero"`
	Expiry  time.Time `json:"expiry,omitzero"`
	Refresh Sealed    `json:"refresh,omitempty"`
	// Scope is what Zoom granted, as it said it.
	Scope string `json:"scope,omitempty"`
	// Lease, while set and not past, says that a replica is refreshing
	// the tokens: the others wait for its result instead of presenting a
	// refresh token Zoom is about to retire.
	Lease *Lease `json:"lease,omitempty"`
}

// Lease is a replica's hold on a connector's token refresh.
type Lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// Ref returns the record's connector.
func (r Record) Ref() pipeline.ConnectorRef {
	return pipeline.ConnectorRef{Tenant: r.Tenant, ID: r.Connector}
}

// Secret fields, as named in the associated data of their seals.
const (
	FieldClientSecret  = "client_secret"
	FieldWebhookSecret = "webhook_secret"
	FieldAccessToken   = "access_token"
	FieldRefreshToken  = "refresh_token"
)

// SecretAD is the associated data of a connector's secret field: a sealed
// value opens only for the connector and field it was sealed for.
func SecretAD(ref pipeline.ConnectorRef, field string) string {
	return ref.Key() + "/" + field
}

// Validate checks a record's settings (not its secrets).
func (r Record) Validate() error {
	if _, err := pipeline.NewConnectorRef(r.Tenant, r.Connector); err != nil {
		return err
	}
	var errs []error
	switch r.Auth {
	case AuthOAuth:
	case AuthS2S:
		if r.AccountID == "" {
			errs = append(errs, errors.New("an s2s connector needs an account id"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth %q is not %q or %q", pipeline.Bound(r.Auth, 32), AuthOAuth, AuthS2S))
	}
	if r.ClientID == "" || len(r.ClientID) > 256 || strings.ContainsAny(r.ClientID, " \t\r\n") {
		errs = append(errs, errors.New("client id must be 1 to 256 characters without white space"))
	}
	if len(r.AccountID) > 256 {
		errs = append(errs, errors.New("account id is over 256 characters"))
	}
	if _, err := ParseSchedule(r.Schedule); err != nil {
		errs = append(errs, err)
	}
	switch r.State {
	case StatePendingAuthorization, StateActive, StateNeedsReauthorization, StateDisabled:
	default:
		errs = append(errs, fmt.Errorf("state %q is unknown", pipeline.Bound(r.State, 32)))
	}
	return errors.Join(errs...)
}

// ParseSchedule reads a schedule: ScheduleManual (0) or a Go duration of at
// least a minute.
func ParseSchedule(s string) (time.Duration, error) {
	if s == ScheduleManual {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("schedule %q is not %q or a duration of at least 1m such as 24h", pipeline.Bound(s, 32), ScheduleManual)
	}
	return d, nil
}

// ErrNotFound reports a connector the registry does not hold.
var ErrNotFound = errors.New("connector: no such connector")

// ErrConflict reports a compare-and-set that lost: the record changed since
// it was read.
var ErrConflict = errors.New("connector: the record changed meanwhile")

// ErrExists reports an add of a connector that is registered already.
var ErrExists = errors.New("connector: already registered")

// Entry is a record with the revision it was read at.
type Entry struct {
	Record
	Revision uint64
}

// Registry reads and writes the connector records, and keeps a live copy of
// all of them once Watch runs.
type Registry struct {
	kv  jetstream.KeyValue
	now func() time.Time

	mu      sync.RWMutex
	entries map[pipeline.ConnectorRef]Entry
	// gone holds the revision at which each connector was removed: a read
	// of an older revision that arrives after the removal (a Get under
	// way while it happened) must not put the connector back.
	gone   map[pipeline.ConnectorRef]uint64
	synced chan struct{}
	// changed is closed and replaced on every change the watch sees.
	changed chan struct{}
}

// registryConfig is the configuration of the registry's bucket.
func registryConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "the connectors: settings, state and sealed secrets",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	}
}

// Open creates the bucket if it is missing and returns its registry; it
// leaves an existing bucket's configuration to its owner (OpenOwned).
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Registry, error) {
	kv, err := natsx.OpenKeyValue(ctx, js, registryConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("open connector registry: %w", err)
	}
	return registryOf(kv), nil
}

// OpenOwned is Open for the bucket's owner, the webhook service, whose
// admin API writes the records: it also applies the configuration
// (replicas) to an existing bucket.
func OpenOwned(ctx context.Context, js jetstream.JetStream, replicas int) (*Registry, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, registryConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("open connector registry: %w", err)
	}
	return registryOf(kv), nil
}

func registryOf(kv jetstream.KeyValue) *Registry {
	return &Registry{kv: kv, now: time.Now, entries: map[pipeline.ConnectorRef]Entry{},
		gone: map[pipeline.ConnectorRef]uint64{}, synced: make(chan struct{}), changed: make(chan struct{})}
}

// Watch keeps the registry's copy of every record up to date until ctx ends.
func (r *Registry) Watch(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch connector registry: %w", err)
	}
	defer w.Stop() //nolint:errcheck
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("connector registry: the watch ended")
			}
			if e == nil {
				if initial {
					initial = false
					close(r.synced)
				}
				continue
			}
			r.apply(e)
		}
	}
}

func (r *Registry) apply(e jetstream.KeyValueEntry) {
	ref, err := pipeline.ParseKey(e.Key())
	if err != nil {
		return // not a connector's key: nothing this registry wrote
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.newer(ref, e.Revision()) {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		delete(r.entries, ref)
		r.gone[ref] = e.Revision()
	default:
		var rec Record
		if json.Unmarshal(e.Value(), &rec) != nil || rec.Ref() != ref {
			// Nothing this registry wrote: the connector is not served
			// from a copy that no longer holds.
			delete(r.entries, ref)
			break
		}
		r.entries[ref] = Entry{Record: rec, Revision: e.Revision()}
	}
	r.notify()
}

// newer reports whether revision rev of ref is newer than what the copy
// holds or last saw removed. r.mu is held.
func (r *Registry) newer(ref pipeline.ConnectorRef, rev uint64) bool {
	if old, ok := r.entries[ref]; ok && old.Revision > rev {
		return false
	}
	return rev > r.gone[ref]
}

// notify wakes whoever waits on Changed. r.mu is held.
func (r *Registry) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// wrote puts a record this registry has just stored into the copy, so that
// the writer reads its own write before the watch brings it.
func (r *Registry) wrote(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.newer(e.Ref(), e.Revision) {
		return
	}
	r.entries[e.Ref()] = e
	r.notify()
}

// removed takes a connector this registry has just removed out of the
// copy. The removal's own revision is unknown until the watch brings it;
// no revision of the record up to the one the copy held can come back.
func (r *Registry) removed(ref pipeline.ConnectorRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.entries[ref]
	if !ok {
		return
	}
	delete(r.entries, ref)
	r.gone[ref] = max(r.gone[ref], old.Revision)
	r.notify()
}

// Synced is closed once the watch has read every record that existed when
// it started.
func (r *Registry) Synced() <-chan struct{} { return r.synced }

// Changed returns a channel closed at the next change the watch sees.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

// Lookup returns the watched copy of a connector's record.
func (r *Registry) Lookup(ref pipeline.ConnectorRef) (Entry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[ref]
	return e, ok
}

// Find returns a connector's record from the watched copy, or, when the
// copy has none or stale says the copy's is not to be trusted, from the
// bucket: the copy may lag a change made a moment ago (a registration, an
// authorization), and a refusal should not rest on it. ok is false when
// the bucket has no such connector either.
func (r *Registry) Find(ctx context.Context, ref pipeline.ConnectorRef, stale func(Entry) bool) (e Entry, ok bool, err error) {
	if e, ok := r.Lookup(ref); ok && (stale == nil || !stale(e)) {
		return e, true, nil
	}
	e, err = r.Get(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		return Entry{}, false, nil
	}
	return e, err == nil, err
}

// All returns the watched copy of every record, ordered by tenant and
// connector. The copy holds this registry's own changes at once and those
// of other processes when the watch brings them; List reads the bucket.
func (r *Registry) All() []Entry {
	r.mu.RLock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Ref().Key(), b.Ref().Key()) })
	return out
}

// List reads every connector's record from the bucket (not the watched
// copy), ordered by tenant and connector: what an administrator asks to
// see must include a change another replica made a moment ago.
func (r *Registry) List(ctx context.Context) ([]Entry, error) {
	keys, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	var refs []pipeline.ConnectorRef
	seen := map[pipeline.ConnectorRef]bool{}
	for k := range keys.Keys() {
		// A key written during the listing may come twice.
		if ref, err := pipeline.ParseKey(k); err == nil && !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	_ = keys.Stop() // stopped already when the keys ran out
	if err := ctx.Err(); err != nil {
		// The keys ran out because ctx ended: the list is not whole.
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	out := make([]Entry, 0, len(refs))
	for _, ref := range refs {
		e, err := r.Get(ctx, ref)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the keys were listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Ref().Key(), b.Ref().Key()) })
	return out, nil
}

// Get reads a connector's record from the bucket (not the watched copy).
func (r *Registry) Get(ctx context.Context, ref pipeline.ConnectorRef) (Entry, error) {
	e, err := r.kv.Get(ctx, ref.Key())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry{}, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read connector %s: %w", ref, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Entry{}, fmt.Errorf("read connector %s: %w", ref, err)
	}
	r.apply(e)
	return Entry{Record: rec, Revision: e.Revision()}, nil
}

// Create stores a new connector; ErrExists when it is registered already.
func (r *Registry) Create(ctx context.Context, rec Record) (Entry, error) {
	if err := rec.Validate(); err != nil {
		return Entry{}, err
	}
	now := r.now().UTC()
	rec.CreatedAt, rec.UpdatedAt = now, now
	b, err := json.Marshal(rec)
	if err != nil {
		return Entry{}, err
	}
	rev, err := r.kv.Create(ctx, rec.Ref().Key(), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return Entry{}, fmt.Errorf("%s: %w", rec.Ref(), ErrExists)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("register connector %s: %w", rec.Ref(), err)
	}
	out := Entry{Record: rec, Revision: rev}
	r.wrote(out)
	return out, nil
}

// Update replaces a connector's record if it is still at e.Revision;
// ErrConflict when it changed meanwhile.
func (r *Registry) Update(ctx context.Context, e Entry) (Entry, error) {
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	e.UpdatedAt = r.now().UTC()
	b, err := json.Marshal(e.Record)
	if err != nil {
		return Entry{}, err
	}
	rev, err := r.kv.Update(ctx, e.Ref().Key(), b, e.Revision)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Entry{}, fmt.Errorf("%s: %w", e.Ref(), ErrConflict)
		}
		return Entry{}, fmt.Errorf("update connector %s: %w", e.Ref(), err)
	}
	e.Revision = rev
	r.wrote(e)
	return e, nil
}

// Modify reads a connector's record, applies fn and stores the result,
// again from a fresh read when another change came first.
func (r *Registry) Modify(ctx context.Context, ref pipeline.ConnectorRef, fn func(*Record) error) (Entry, error) {
	for {
		e, err := r.Get(ctx, ref)
		if err != nil {
			return Entry{}, err
		}
		if err := fn(&e.Record); err != nil {
			return Entry{}, err
		}
		out, err := r.Update(ctx, e)
		if errors.Is(err, ErrConflict) {
			if ctx.Err() != nil {
				return Entry{}, ctx.Err()
			}
			continue
		}
		return out, err
	}
}

// Delete removes a connector's record.
func (r *Registry) Delete(ctx context.Context, ref pipeline.ConnectorRef) error {
	if err := r.kv.Delete(ctx, ref.Key()); err != nil {
		return fmt.Errorf("remove connector %s: %w", ref, err)
	}
	r.removed(ref)
	return nil
}

// Purge removes a connector's record and every stored revision of it, so
// that none of its sealed secrets stays in the bucket's stream.
func (r *Registry) Purge(ctx context.Context, ref pipeline.ConnectorRef) error {
	if err := r.kv.Purge(ctx, ref.Key()); err != nil {
		return fmt.Errorf("remove connector %s: %w", ref, err)
	}
	r.removed(ref)
	return nil
}
