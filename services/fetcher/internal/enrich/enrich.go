// Package enrich reads the details of users (GET /users/{id}) for the
// connectors with enrichment on: the attributes that only those details
// hold (clarity.EnrichmentAttributes). It follows the service_user change
// events: a user created or updated (its listed data changed) is read once,
// at the lowest priority of its account's rate budget, and its details go
// to the normalizer as a raw page of listing LISTING_USER_DETAIL. An
// account whose users do not change costs nothing.
package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// Consumer names the fetcher's durable consumer of the service_user events.
const Consumer = pipeline.ConsumerFetcherEnrich

// DefaultQuiet is Config.Quiet's default.
const DefaultQuiet = time.Second

// attrLastClientVersion is the attribute of the user's Zoom client version.
const attrLastClientVersion = "last_client_version"

// pendingPrefix starts the key of a pending user (clarity.UserKey).
const pendingPrefix = "pending:"

// maxKeyBytes bounds the user key an event names: a Zoom user id is far
// shorter; the normalizer bounds ids at 512 bytes.
const maxKeyBytes = 512

// Publisher hands a raw page to the normalizer (syncer.Syncer's Publish).
type Publisher interface {
	Publish(ctx context.Context, c pipeline.ConnectorRef, env *pb.Envelope, msgID string) error
}

// Config configures an Enricher.
type Config struct {
	// Clients gives each connector's Zoom client.
	Clients runner.Clients
	// State reports whether connector c has enrichment on, and whether
	// its baseline is done (every user read since it was turned on).
	State func(c pipeline.ConnectorRef) (on, baseline bool)
	// BaselineNeeded confirms, from the registry itself rather than a
	// copy that may lag, that connector c has enrichment on and no
	// baseline, and says since when it is on (a user read since needs no
	// read in the baseline: one cut short resumes where it was);
	// BaselineDone records that every user of connector c listed after a
	// full sync has been read.
	BaselineNeeded func(ctx context.Context, c pipeline.ConnectorRef) (bool, time.Time, error)
	BaselineDone   func(ctx context.Context, c pipeline.ConnectorRef) error
	// Publisher publishes the details read.
	Publisher Publisher
	// Memo remembers each user's profile at its last read; nil reads a
	// user at each of its service_user events, logins included.
	Memo *Memo
	// Quiet is how long a read waits before it goes, so that the events of
	// one user that come meanwhile share it (DefaultQuiet when zero).
	Quiet time.Duration
	Log   zerolog.Logger
}

// Enricher serves the service_user events (Handle).
type Enricher struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	pending map[userRef]*read
	recent  map[userRef]time.Time
	// baselines holds a lock per connector: one baseline of a connector
	// at a time in this process.
	baselines map[pipeline.ConnectorRef]*sync.Mutex
}

type userRef struct {
	c  pipeline.ConnectorRef
	id string
}

// read is one GET /users/{id} under way: the events that it covers wait
// for its outcome.
type read struct {
	started bool
	asked   time.Time // when it started
	done    chan struct{}
	err     error
}

// clockSkew is how far the clocks of NATS (an event's time of storage) and
// of the fetcher are taken to differ at most.
const clockSkew = 500 * time.Millisecond

// The reads remembered, so that the events of a user that come after its
// read went (its attributes' after its own, in a first sync) cost nothing:
// at most maxRecent, those older than recentFor forgotten first.
const (
	maxRecent = 200_000
	recentFor = 10 * time.Minute
)

// New returns an Enricher.
func New(cfg Config) *Enricher {
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	return &Enricher{cfg: cfg, now: time.Now, pending: map[userRef]*read{}, recent: map[userRef]time.Time{}, baselines: map[pipeline.ConnectorRef]*sync.Mutex{}}
}

// Filters are the subject filters of the events the Enricher reads: the
// service_user events and the service_user_attribute events (a user's
// listed data), and the sync events (a completed full sync starts the
// baseline of a connector that needs one).
func Filters() []string {
	return []string{pipeline.EventsOfKind(clarity.KindServiceUser), pipeline.EventsOfKind(clarity.KindServiceUserAttribute),
		pipeline.EventsOfKind(clarity.KindSync)}
}

// Handle is the consume handler of one event. A user created or updated,
// or one of its attributes but the enrichment ones created or updated, of
// a connector with enrichment on, is read (and the events of that user
// that come while its read waits share it). A completed full sync of a
// connector with enrichment on and no baseline yet reads every user it
// lists (baseline.go). Every other event is acknowledged as it is: a
// grant's (group, role, licence: no profile edit), a deletion's.
func (e *Enricher) Handle(ctx context.Context, msg jetstream.Msg) error {
	c, err := pipeline.FromSubject(msg.Subject())
	if err != nil {
		return natsx.Permanent(err)
	}
	var ev struct {
		Type      string          `json:"type"`
		Subject   string          `json:"subject"`
		Tenant    string          `json:"tenant"`
		Connector string          `json:"connector"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		return natsx.Permanent(fmt.Errorf("service_user event: %w", err))
	}
	if ev.Tenant != c.Tenant || ev.Connector != c.ID {
		return nil // another connector's event on this one's subject: none of ours
	}
	if ev.Type == "clarity."+clarity.KindSync+"."+clarity.OpCompleted {
		return e.baseline(ctx, c, pipeline.InputID(msg))
	}
	kind, op, ok := strings.Cut(strings.TrimPrefix(ev.Type, "clarity."), ".")
	if !ok {
		return nil
	}
	key := ev.Subject
	var digest string
	switch {
	case kind == clarity.KindServiceUser && op == clarity.OpDeleted:
		if e.cfg.Memo != nil && key != "" && len(key) <= maxKeyBytes {
			return e.cfg.Memo.forget(ctx, c, key)
		}
		return nil
	case op != clarity.OpCreated && op != clarity.OpUpdated:
		return nil
	case kind == clarity.KindServiceUser:
		var p profile
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			return natsx.Permanent(fmt.Errorf("service_user event of %s: %w", c, err))
		}
		digest = p.digest()
	case kind == clarity.KindServiceUserAttribute:
		// <user key>|<name>: a Zoom id holds no '|', and a pending user,
		// whose key might, is not read anyway. The enrichment attributes
		// are what a read gives, and the client version changes with
		// every update of the user's Zoom client: they ask for none.
		user, name, ok := strings.Cut(key, "|")
		if !ok || clarity.IsEnrichmentAttribute(name) || name == attrLastClientVersion {
			return nil
		}
		key = user
	default:
		return nil
	}
	// A pending user has no id to read it by; it is read once it accepts
	// its invitation (created under its id).
	if key == "" || strings.HasPrefix(key, pendingPrefix) {
		return nil
	}
	if len(key) > maxKeyBytes {
		return natsx.Permanent(fmt.Errorf("service_user event of %s: a user key of %d bytes", c, len(key)))
	}
	if on, _ := e.state(c); !on {
		return nil
	}
	if digest != "" && e.cfg.Memo != nil {
		// The same profile as at the last read: a login, nothing to read.
		if was, _, err := e.cfg.Memo.get(ctx, c, key); err != nil {
			return err
		} else if was == digest {
			return nil
		}
	}
	client, err := e.cfg.Clients.Client(ctx, c)
	switch {
	case errors.Is(err, runner.ErrNotServed):
		// Not active, or not served at all: its next full sync, once it
		// is, creates or updates what changed meanwhile.
		return nil
	case err != nil:
		return err
	}
	md, err := msg.Metadata()
	if err != nil {
		return natsx.Permanent(fmt.Errorf("event without metadata: %w", err))
	}
	if err := e.read(ctx, c, client, key, md.Timestamp, pipeline.DerivedID(pipeline.InputID(msg), "details", -1)); err != nil {
		return err
	}
	if digest != "" && e.cfg.Memo != nil {
		return e.cfg.Memo.put(ctx, c, key, digest)
	}
	return nil
}

func (e *Enricher) state(c pipeline.ConnectorRef) (on, baseline bool) {
	if e.cfg.State == nil {
		return false, false
	}
	return e.cfg.State(c)
}

// read reads user id of connector c for an event stored at stored, unless
// a read asked after that covers it: a read gives Zoom's state when it is
// answered, which has every change the event stands for (the writer read
// it from Zoom before the event was stored). An event that comes while a
// read waits, or shortly after one, costs nothing.
func (e *Enricher) read(ctx context.Context, c pipeline.ConnectorRef, client runner.Client, id string, stored time.Time, msgID string) error {
	k := userRef{c, id}
	covers := func(asked time.Time) bool { return asked.After(stored.Add(clockSkew)) }
	e.mu.Lock()
	if asked, ok := e.recent[k]; ok && covers(asked) {
		e.mu.Unlock()
		return nil
	}
	if r := e.pending[k]; r != nil && (!r.started || covers(r.asked)) {
		e.mu.Unlock()
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := &read{done: make(chan struct{})}
	e.pending[k] = r
	e.mu.Unlock()

	t := time.NewTimer(e.cfg.Quiet)
	select {
	case <-t.C:
		e.mu.Lock()
		r.started, r.asked = true, e.now()
		e.mu.Unlock()
		r.err = e.fetch(ctx, c, client, id, r.asked, msgID)
	case <-ctx.Done():
		t.Stop()
		r.err = ctx.Err()
	}
	e.mu.Lock()
	if e.pending[k] == r {
		delete(e.pending, k)
	}
	if r.err == nil {
		e.remember(k, r.asked)
	}
	e.mu.Unlock()
	close(r.done)
	return r.err
}

// remember notes that user k was read as asked at asked, forgetting the
// reads older than recentFor once maxRecent are noted. e.mu is held.
func (e *Enricher) remember(k userRef, asked time.Time) {
	if len(e.recent) >= maxRecent {
		for u, at := range e.recent {
			if e.now().Sub(at) > recentFor {
				delete(e.recent, u)
			}
		}
	}
	if len(e.recent) < maxRecent {
		e.recent[k] = asked
	}
}

// fetch reads user id's details at background priority and publishes them.
func (e *Enricher) fetch(ctx context.Context, c pipeline.ConnectorRef, client runner.Client, id string, asked time.Time, msgID string) error {
	body, err := client.GetUser(zoom.WithPriority(ctx, zoom.PriorityBackground), id)
	var limited *zoom.RateLimitError
	switch {
	case errors.Is(err, zoom.ErrUserNotFound):
		// Gone since: its deletion comes by a webhook or the next sync.
		return nil
	case errors.Is(err, connector.ErrNotActive):
		return nil
	case errors.As(err, &limited):
		// The account's budget is spent (a daily limit until midnight UTC):
		// the event waits in place, costing no request.
		return natsx.Unavailable(err)
	case err != nil:
		if zoom.IsPermanent(err) {
			return natsx.Permanent(err)
		}
		return err
	}
	page := &pb.RawPage{
		Ref:         &pb.PageRef{Listing: pb.Listing_LISTING_USER_DETAIL, Page: 1, Last: true},
		UserId:      id,
		VersionMs:   asked.UnixMilli(),
		FetchedAtMs: asked.UnixMilli(),
		Body:        body,
	}
	err = e.cfg.Publisher.Publish(ctx, c, &pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: page}}, msgID)
	if syncer.Unpublishable(err) {
		return natsx.Permanent(fmt.Errorf("details of user %.80s: %w", id, err))
	}
	return err
}
