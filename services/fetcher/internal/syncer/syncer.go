// Package syncer fetches one full-sync run: it walks every Zoom listing the
// run needs and publishes each page, raw, on the connector's raw subject as
// it arrives, then reports the page count of every listing.
package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Zoom is what a run needs of the Zoom client.
type Zoom interface {
	Pages(ctx context.Context, l zoom.Listing, fn func(p zoom.RawPage) error) error
	Requests() zoom.Stats
}

// Progress is told about every page published, for progress reports and
// metrics.
type Progress interface {
	Page(c pipeline.ConnectorRef, l zoom.Listing, p zoom.RawPage)
}

// Config configures a Syncer.
type Config struct {
	// JetStream stores the pages.
	JetStream jetstream.JetStream
	// Concurrency bounds the listings walked at once, default 1.
	Concurrency int
	// Log receives what the syncer skips (groups deleted during a run).
	Log zerolog.Logger
	// Progress, when set, is told about every page published.
	Progress Progress
}

// Syncer publishes the pages of runs.
type Syncer struct {
	js          jetstream.JetStream
	concurrency int
	log         zerolog.Logger
	progress    Progress
}

// New returns a Syncer.
func New(cfg Config) *Syncer {
	return &Syncer{js: cfg.JetStream, concurrency: max(1, cfg.Concurrency), log: cfg.Log, progress: cfg.Progress}
}

// ErrPublish reports that pages could not be stored in JetStream (NATS away):
// the run is not at fault and resumes once NATS is back.
var ErrPublish = errors.New("publish page")

// Result is what a complete fetch reports.
type Result struct {
	Listings    []*pb.ListingCount
	APIRequests int64
	// Unavailable names the listings the account's plan does not offer
	// (clarity.UnavailableGroups, clarity.UnavailableRoles), in that
	// order: Zoom refused them as paid-only, and the run went on without
	// them.
	Unavailable []string
}

// encodeError is a message that cannot be encoded: publishing it again
// fails again. It reads as the codec's error.
type encodeError struct{ err error }

func (e encodeError) Error() string { return e.err.Error() }
func (e encodeError) Unwrap() error { return e.err }

// Unpublishable reports whether err is a publication that no retry can
// make succeed: the message is too large for NATS, or cannot be encoded.
// The caller fails what it was doing instead of trying again.
func Unpublishable(err error) bool {
	return natsx.TooLarge(err) || errors.As(err, new(encodeError))
}

// Publish sends one envelope for connector c, with message id msgID (none
// when empty), and waits for JetStream to store it.
func (s *Syncer) Publish(ctx context.Context, c pipeline.ConnectorRef, env *pb.Envelope, msgID string) error {
	msg, err := envelopeMsg(c, env, msgID)
	if err != nil {
		return err
	}
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish to %s: %w", msg.Subject, sizeError(msg, err))
	}
	return nil
}

// PublishEvent publishes a change event of the given kind on its subject,
// as the writer's relay does: structured JSON, with Nats-Msg-Id equal to
// its id. The event's tenant and connector are taken as they are: a refusal
// answers a trigger on the very tokens it was sent on, valid names or not.
func (s *Syncer) PublishEvent(ctx context.Context, kind string, ev clarity.Event) error {
	msg := nats.NewMsg(clarity.EventSubject(ev.Tenant, ev.Connector, kind))
	msg.Data = ev.AppendJSON(nil)
	msg.Header.Set("Content-Type", clarity.ContentType)
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish event %s: %w", ev.ID, sizeError(msg, err))
	}
	return nil
}

// sizeError adds the size of msg to err when err is a refusal for size.
func sizeError(msg *nats.Msg, err error) error {
	if !natsx.TooLarge(err) {
		return err
	}
	return fmt.Errorf("message of %d bytes: %w", len(msg.Data), err)
}

// envelopeMsg is env, addressed to connector c, as a message of c's raw
// subject.
func envelopeMsg(c pipeline.ConnectorRef, env *pb.Envelope, msgID string) (*nats.Msg, error) {
	env.Tenant, env.Connector = c.Tenant, c.ID
	msg, err := pipeline.NewMsg(pipeline.RawSubject(c), env, msgID)
	if err != nil {
		return nil, encodeError{err}
	}
	return msg, nil
}

var userListings = []struct {
	status  string
	listing pb.Listing
}{
	{zoom.UserStatusActive, pb.Listing_LISTING_USERS_ACTIVE},
	{zoom.UserStatusInactive, pb.Listing_LISTING_USERS_INACTIVE},
	{zoom.UserStatusPending, pb.Listing_LISTING_USERS_PENDING},
}

// Fetch walks every listing of a full sync and publishes its pages. It
// returns only when every page is stored in JetStream, or with the first
// error (Zoom refusing for good, or ctx ending).
func (s *Syncer) Fetch(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run, attempt int, z Zoom) (Result, error) {
	before := z.Requests().Total
	acks := newAckWaiter()
	defer acks.stop()

	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	var counts []*pb.ListingCount
	// A free (Basic) account is refused groups and roles: the run goes on
	// without them, and says so, rather than failing on every sync.
	var groupsOff, rolesOff bool
	planRefused := func(err error, off *bool, what string) bool {
		if !errors.Is(err, zoom.ErrPlanUnavailable) {
			return false
		}
		mu.Lock()
		first := !*off
		*off = true
		mu.Unlock()
		if first {
			s.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("run_id", run.RunId).Err(err).
				Msg(what + " are not available on the account's plan; the sync goes on without them and deletes none of them")
		}
		return true
	}
	noGroups := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return groupsOff
	}
	// publish stores one message asynchronously; acks checks its
	// acknowledgement.
	publish := func(env *pb.Envelope, id string) error {
		msg, err := envelopeMsg(c, env, id)
		if err != nil {
			return err
		}
		f, err := s.js.PublishMsgAsync(msg)
		if natsx.TooLarge(err) {
			// Not NATS being away: the page itself is larger than a
			// message may be, and the run fails rather than resuming
			// into the same wall.
			return fmt.Errorf("publish %s: %w", id, sizeError(msg, err))
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPublish, err)
		}
		return acks.add(gctx, f)
	}
	single := func(p *pb.RawPage, id string) error {
		return publish(&pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: p}}, id)
	}
	// walk lists l and hands each page to send, with the page's message id.
	walk := func(l zoom.Listing, pl pb.Listing, key string, send func(*pb.RawPage, string) error, onPage func(zoom.RawPage) error) error {
		pass, pages := firstPass(attempt), int32(0)
		err := z.Pages(gctx, l, func(p zoom.RawPage) error {
			if p.Restarted {
				pass++
			}
			pages = int32(p.Number)
			page := &pb.RawPage{
				Run: run,
				Ref: &pb.PageRef{Listing: pl, ListingKey: key, Page: int32(p.Number), Last: p.Last, Pass: pass},
				// The page is ordered against webhooks by when it was asked
				// for: Zoom may have changed while the answer was on its way.
				FetchedAtMs: p.RequestedAt.UnixMilli(),
				Body:        p.Body,
			}
			if err := send(page, pipeline.PageID(run.RunId, attempt, l.String(), int(pass), p.Number)); err != nil {
				return err
			}
			if s.progress != nil {
				s.progress.Page(c, l, p)
			}
			if onPage != nil {
				return onPage(p)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", l, err)
		}
		mu.Lock()
		counts = append(counts, &pb.ListingCount{Listing: pl, ListingKey: key, Pages: pages, Pass: pass})
		mu.Unlock()
		return nil
	}

	// Listings run side by side up to the concurrency limit; a group's
	// admins are listed as soon as the group's page arrives.
	sem := make(chan struct{}, s.concurrency)
	spawn := func(f func() error) {
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-sem }()
			return f()
		})
	}
	spawn(func() error {
		err := walk(zoom.RolesListing(), pb.Listing_LISTING_ROLES, "", single, nil)
		if planRefused(err, &rolesOff, clarity.UnavailableRoles) {
			return nil
		}
		return err
	})
	// GET /roles lists one type of roles a call: the Zoom IQ roles are a
	// listing of their own, keyed by their type. Refused by the plan, the
	// account has none (a free account is refused the common ones too,
	// which spares every role).
	spawn(func() error {
		err := walk(zoom.IQRolesListing(), pb.Listing_LISTING_ROLES, zoom.RoleTypeIQ, single, nil)
		if errors.Is(err, zoom.ErrPlanUnavailable) {
			return nil
		}
		return err
	})
	for _, u := range userListings {
		spawn(func() error { return walk(zoom.UsersListing(u.status), u.listing, "", single, nil) })
	}
	// A group's admins are listed as soon as its page arrives, by a fixed
	// set of workers: a goroutine per group waiting for a slot would cost
	// memory in proportion to the account. An account has a group for every
	// fifty users or so, and most groups' admins fit one small page: each
	// worker bundles its pages, so that the rest of the pipeline handles
	// one message and one transaction per bundle instead of per group.
	groups := &idQueue{ready: make(chan struct{}, 1)}
	for range s.concurrency {
		g.Go(func() error {
			b := &bundle{}
			send := func(p *pb.RawPage, id string) error {
				b.add(p, id)
				if !b.full() {
					return nil
				}
				return b.flush(publish)
			}
			for {
				id, ok, err := groups.pop(gctx)
				if err != nil {
					return err
				}
				if !ok {
					return b.flush(publish)
				}
				if noGroups() {
					// Refused once, the other groups' admins would be too:
					// their requests are spared.
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-gctx.Done():
					return gctx.Err()
				}
				err = walk(zoom.GroupAdminsListing(id), pb.Listing_LISTING_GROUP_ADMINS, id, send, nil)
				<-sem
				if errors.Is(err, zoom.ErrGroupNotFound) {
					// Deleted since the groups page was read: it has no
					// admins, and the run does not expect its listing.
					s.log.Info().Str("group_id", id).Msg("group deleted during the sync; its admins are skipped")
					err = nil
				}
				if planRefused(err, &groupsOff, clarity.UnavailableGroups) {
					// The plan changed while the run listed groups: the
					// run takes groups as unavailable, and deletes none.
					err = nil
				}
				if err != nil {
					return err
				}
			}
		})
	}
	seen := map[string]bool{}
	spawn(func() error {
		defer groups.close()
		err := walk(zoom.GroupsListing(), pb.Listing_LISTING_GROUPS, "", single, func(p zoom.RawPage) error {
			var list struct {
				Groups []struct {
					ID string `json:"id"`
				} `json:"groups"`
			}
			if err := zoom.Decode(p.Body, &list); err != nil {
				return fmt.Errorf("decode groups page: %w", err)
			}
			for _, gr := range list.Groups {
				// A restarted listing repeats groups; list each group's admins once.
				if gr.ID == "" || seen[gr.ID] {
					continue
				}
				seen[gr.ID] = true
				groups.push(gr.ID)
			}
			return nil
		})
		if planRefused(err, &groupsOff, clarity.UnavailableGroups) {
			return nil
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return Result{APIRequests: z.Requests().Total - before}, err
	}
	if err := acks.wait(ctx); err != nil {
		return Result{APIRequests: z.Requests().Total - before}, err
	}
	res := Result{Listings: counts, APIRequests: z.Requests().Total - before}
	if groupsOff {
		res.Unavailable = append(res.Unavailable, clarity.UnavailableGroups)
	}
	if rolesOff {
		res.Unavailable = append(res.Unavailable, clarity.UnavailableRoles)
	}
	return res, nil
}

// passesPerAttempt is the room each attempt at a run has for the passes of
// a listing (a pass per restart of it; the Zoom client allows a few).
const passesPerAttempt = 1000

// firstPass is the pass of every listing's first pass in an attempt at a
// run. Attempts number their passes apart: the writer counts a run's pages
// by listing, pass and number, and a page of an earlier attempt, applied
// before a crash, must not stand in for the page of the same number that
// the attempt completing the run publishes (the listing may have moved
// since: its users on other pages).
func firstPass(attempt int) int32 {
	return int32(max(attempt, 1)-1) * passesPerAttempt
}

// Bundles of group-admin pages are published when they reach either
// bound.
const (
	bundlePages = 64
	bundleBytes = 256 << 10
)

// bundle gathers pages to publish as one RawPages message.
type bundle struct {
	pages []*pb.RawPage
	ids   []string // each page's message id
	bytes int
}

func (b *bundle) add(p *pb.RawPage, id string) {
	b.pages = append(b.pages, p)
	b.ids = append(b.ids, id)
	b.bytes += len(p.Body)
}

func (b *bundle) full() bool { return len(b.pages) >= bundlePages || b.bytes >= bundleBytes }

// flush publishes the bundle, if any, and empties it. A bundle of one page
// goes as that page. A bundle's message id is pipeline.BundleID: each page
// is in one bundle per attempt. A bundle too large for a
// NATS message (its last page alone took it over) goes page by page, each
// under its own id, as a page that is not bundled would.
func (b *bundle) flush(publish func(*pb.Envelope, string) error) error {
	pages, ids := b.pages, b.ids
	*b = bundle{} // the envelope keeps the pages; the next bundle starts anew
	switch len(pages) {
	case 0:
		return nil
	case 1:
		return publish(&pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: pages[0]}}, ids[0])
	}
	err := publish(&pb.Envelope{Body: &pb.Envelope_RawPages{RawPages: &pb.RawPages{Pages: pages}}},
		pipeline.BundleID(ids[0], len(pages)))
	if !natsx.TooLarge(err) {
		return err
	}
	for i, p := range pages {
		if err := publish(&pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: p}}, ids[i]); err != nil {
			return err
		}
	}
	return nil
}

// idQueue is an unbounded queue of ids with one producer, closed when the
// producer is done.
type idQueue struct {
	mu     sync.Mutex
	ids    []string
	closed bool
	ready  chan struct{} // signalled when ids or closed change
}

func (q *idQueue) push(id string) {
	q.mu.Lock()
	q.ids = append(q.ids, id)
	q.mu.Unlock()
	q.signal()
}

func (q *idQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *idQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop returns the next id, or ok false once the queue is closed and empty.
func (q *idQueue) pop(ctx context.Context) (id string, ok bool, err error) {
	for {
		q.mu.Lock()
		if len(q.ids) > 0 {
			id, q.ids = q.ids[0], q.ids[1:]
			more := len(q.ids) > 0 || q.closed
			q.mu.Unlock()
			if more {
				q.signal() // wake another worker
			}
			return id, true, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			q.signal()
			return "", false, nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return "", false, ctx.Err()
		}
	}
}

// ackWaiter checks publish acknowledgements as they come, so that no page
// body is held after JetStream has stored it.
type ackWaiter struct {
	futures chan jetstream.PubAckFuture
	done    chan struct{}
	mu      sync.Mutex
	err     error
	once    sync.Once
}

func newAckWaiter() *ackWaiter {
	a := &ackWaiter{futures: make(chan jetstream.PubAckFuture, 512), done: make(chan struct{})}
	go a.loop()
	return a
}

func (a *ackWaiter) loop() {
	defer close(a.done)
	for f := range a.futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if natsx.TooLarge(err) {
				// The stream refused the message for its size: a
				// resumed run would meet the same refusal.
				a.fail(fmt.Errorf("publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), sizeError(f.Msg(), err)))
				continue
			}
			a.fail(fmt.Errorf("%w: %w", ErrPublish, err))
		case <-time.After(30 * time.Second):
			a.fail(fmt.Errorf("%w: no acknowledgement within 30s", ErrPublish))
		}
	}
}

func (a *ackWaiter) fail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		a.err = err
	}
}

func (a *ackWaiter) add(ctx context.Context, f jetstream.PubAckFuture) error {
	a.mu.Lock()
	err := a.err
	a.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case a.futures <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *ackWaiter) stop() { a.once.Do(func() { close(a.futures) }) }

// wait returns once every acknowledgement has arrived, with the first error.
func (a *ackWaiter) wait(ctx context.Context) error {
	a.stop()
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}
