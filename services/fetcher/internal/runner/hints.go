package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// Defaults of the hint batches (Config.HintQuiet, Config.HintMaxWait).
const (
	DefaultHintQuiet   = 250 * time.Millisecond
	DefaultHintMaxWait = 5 * time.Second
)

// HintChoice says how a batch of hints was served.
type HintChoice string

// The ways a batch of hints is served.
const (
	// HintReread re-reads each user: GET /users/{id}, one request each.
	HintReread HintChoice = "reread"
	// HintListed lists the statuses the users may have (active and
	// inactive) and re-reads only the users the listing did not show.
	HintListed HintChoice = "listed"
)

// HintObserver is told how each batch of hints was served, for metrics.
type HintObserver interface {
	// HintBatch is called once per batch: how it was served, how many
	// distinct users it asked for, and the Zoom requests it spent.
	HintBatch(c pipeline.ConnectorRef, choice HintChoice, users int, requests int)
}

// listedStatuses are the listings a batch of hints may read instead of
// re-reading each user. Pending users are listed without id, so a hint
// (which names a user by id) cannot be matched with them: they are re-read.
var listedStatuses = []string{clarity.StatusActive, clarity.StatusInactive}

// usersPerPage is the page size of the client's listings (zoom.Config's
// default and maximum), which turns Zoom's total_records into pages.
const usersPerPage = zoom.DefaultPageSize

// hints batches the hints of each connector for a short window, so that a
// bulk change in Zoom (an administrator editing thousands of users, each
// change a webhook) costs a listing rather than a request per user.
type hints struct {
	quiet, maxWait time.Duration
	obs            HintObserver

	mu    sync.Mutex
	open  map[pipeline.ConnectorRef]*hintBatch
	pages map[pipeline.ConnectorRef]map[string]int // pages per status, as last listed
}

// hintBatch is the hints of one connector waiting to be served together.
type hintBatch struct {
	c      pipeline.ConnectorRef
	client Client
	reqs   []*hintReq
	first  time.Time
	last   atomic.Int64 // unix nanoseconds of the latest hint
	// ctx ends when every waiting handler's context has ended (the fetcher
	// stops): nobody is left to take the results.
	ctx     context.Context
	cancel  context.CancelFunc
	waiting atomic.Int64
}

type hintReq struct {
	h    *pb.FetchUser
	done chan error
}

// submit adds hint h of connector c to its batch and waits until the batch
// has served it.
func (r *Runner) submitHint(ctx context.Context, c pipeline.ConnectorRef, client Client, h *pb.FetchUser) error {
	hs := r.hints
	req := &hintReq{h: h, done: make(chan error, 1)}
	hs.mu.Lock()
	b := hs.open[c]
	if b == nil || b.client != client {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		b = &hintBatch{c: c, client: client, first: time.Now(), ctx: pctx, cancel: cancel}
		hs.open[c] = b
		go r.serveBatch(b)
	}
	b.reqs = append(b.reqs, req)
	b.last.Store(time.Now().UnixNano())
	b.waiting.Add(1)
	hs.mu.Unlock()
	leave := func() {
		if b.waiting.Add(-1) == 0 {
			b.cancel()
		}
	}
	stop := context.AfterFunc(ctx, leave)
	select {
	case err := <-req.done:
		stop()
		return err
	case <-ctx.Done():
		// The handler may see its context end before the function set
		// to run then has started: stopping it first, it leaves here.
		if stop() {
			leave()
		}
		return ctx.Err()
	}
}

// serveBatch waits until b closes (no hint for the quiet time, or the
// first one waited maxWait), then serves it.
func (r *Runner) serveBatch(b *hintBatch) {
	hs := r.hints
	defer b.cancel()
	for {
		hs.mu.Lock()
		wait := min(time.Until(time.Unix(0, b.last.Load()).Add(hs.quiet)), time.Until(b.first.Add(hs.maxWait)))
		if wait <= 0 || b.ctx.Err() != nil {
			if hs.open[b.c] == b {
				delete(hs.open, b.c)
			}
			hs.mu.Unlock()
			break
		}
		hs.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-b.ctx.Done():
		}
		t.Stop()
	}
	// A batch that closed on its longest wait while hints still came is
	// part of a bulk change still sending its webhooks: the next batch
	// began within the quiet time, and closes within the longest wait.
	var coming time.Time
	if time.Since(time.Unix(0, b.last.Load())) < hs.quiet {
		coming = time.Now().Add(hs.quiet + hs.maxWait)
	}
	// Every request of the batch is prompt: someone waits for the change.
	ctx := zoom.WithPriority(b.ctx, zoom.PriorityPrompt)
	results := r.serveHints(ctx, b.c, b.client, b.reqs, coming)
	for _, req := range b.reqs {
		req.done <- results[req.h.GetUserId()]
	}
}

// serveHints serves the hints reqs of connector c and returns the outcome
// for each user id. coming, when set, is until when more hints of the
// connector are expected.
func (r *Runner) serveHints(ctx context.Context, c pipeline.ConnectorRef, client Client, reqs []*hintReq, coming time.Time) map[string]error {
	// One read per user: the newest hint's version is the one the read
	// answers.
	users := map[string]*pb.FetchUser{}
	var order []string
	for _, req := range reqs {
		h := req.h
		if u, ok := users[h.GetUserId()]; ok {
			u.VersionMs = max(u.VersionMs, h.VersionMs)
			continue
		}
		users[h.GetUserId()] = &pb.FetchUser{Tenant: h.Tenant, Connector: h.Connector, UserId: h.UserId, VersionMs: h.VersionMs}
		order = append(order, h.GetUserId())
	}
	results := make(map[string]error, len(users))
	choice, spent := HintReread, 0
	joined := false
	if r.rounds != nil && len(users) < roundMinUsers {
		// A few users join a round that is open now, which lists anyway:
		// they cost it nothing, and the end of a bulk change (a batch
		// that closed on a quiet time with what was left) is served by
		// the listing the rest of the change waits for. None open: they
		// are re-read (or listed) here, without waiting for one.
		var n int
		n, _, _, joined = r.viaRound(ctx, c, client, users, nil, results, false, coming, true)
		spent += n
		if len(results) > 0 {
			choice = HintListed
		}
	}
	if r.rounds != nil && len(users) >= roundMinUsers {
		// A round shared with the other replicas' batches: one listing
		// for all of them, or none when re-reads cost less. Users the
		// round had already passed when this batch joined it (its listing
		// was under way) go on to the next round, once.
		todo, reach := users, map[string]int(nil)
		for attempt := 0; attempt < 2 && len(todo) >= roundMinUsers; attempt++ {
			var n int
			n, todo, reach, _ = r.viaRound(ctx, c, client, todo, reach, results, attempt == 0, coming, false)
			coming = time.Time{}
			spent += n
		}
		if len(results) > 0 {
			choice = HintListed
		}
	} else if !joined && len(users) > r.listingPages(c, 1) {
		// Worth a listing, as far as is known: the listing may still
		// find itself dearer on its first page and stop there.
		listed := make(map[string]*listedUser, len(users))
		for id, h := range users {
			listed[id] = &listedUser{h: h}
		}
		n, _ := r.listHinted(ctx, c, client, listed, nil)
		spent += n
		for id, u := range listed {
			if u.done {
				results[id] = u.err
			}
		}
		if len(results) > 0 {
			choice = HintListed
		}
	}
	if choice == HintListed && len(results) < len(users) {
		r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int("users", len(users)).
			Int("reread", len(users)-len(results)).Msg("hint batch re-reads the users its listing did not serve")
	}
	for _, id := range order {
		if _, done := results[id]; done {
			continue
		}
		results[id] = r.reread(ctx, c, client, users[id])
		spent++
	}
	if r.hintObs != nil {
		r.hintObs.HintBatch(c, choice, len(users), spent)
	}
	return results
}

// listingPages is what listing every status of listedStatuses costs for
// connector c, as its last listing counted; unknown for a status counts
// unknown pages.
func (r *Runner) listingPages(c pipeline.ConnectorRef, unknown int) int {
	hs := r.hints
	hs.mu.Lock()
	defer hs.mu.Unlock()
	n := 0
	for _, s := range listedStatuses {
		if p, ok := hs.pages[c][s]; ok {
			n += p
		} else {
			n += unknown
		}
	}
	return n
}

func (r *Runner) learnPages(c pipeline.ConnectorRef, status string, totalRecords int) {
	hs := r.hints
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.pages[c] == nil {
		hs.pages[c] = map[string]int{}
	}
	hs.pages[c][status] = max(1, (totalRecords+usersPerPage-1)/usersPerPage)
}

// errDearer stops a listing that turned out dearer than re-reading the
// users it has not shown yet.
var errDearer = errors.New("listing dearer than re-reads")

// listedUser is a user a listing looks for: the hint it answers, since
// when (a page asked for earlier than since is too old for the hint), and
// once shown on a page that new, the outcome of publishing it.
type listedUser struct {
	h     *pb.FetchUser
	since time.Time
	// reach, when above 0, is the position (pages of listedStatuses in
	// listing order, as paged through) that the user is listed at or
	// before: a listing that had passed it. 0 is anywhere.
	reach int
	// done once the user was published from a page asked for at or after
	// since; servedAt is that page's request time.
	done     bool
	servedAt time.Time
	err      error
}

// listCursor is where a listing of listedStatuses is: the pages handed
// over so far, in listing order.
type listCursor struct {
	status string
	pos    int
}

// listHinted lists the users of listedStatuses and publishes each wanted
// user it shows on a page asked for at or after the user's since, as a
// re-read of that user, marking it done with the outcome. A user the
// listing did not show (deleted, pending, or moved between statuses while
// the listings paged) stays not done, for the caller to re-read: a
// listing, partial or not, deletes nobody. After each page, more (the
// caller's late joiners) gets the listing's position and may add users to
// users; their since must be later than the page's request. The listing
// stops as soon as the pages left cost as much as re-reading the users not
// yet shown (none left included); the pages left are those up to the
// furthest reach of the users not done. It returns the requests spent and
// whether it listed every page.
func (r *Runner) listHinted(ctx context.Context, c pipeline.ConnectorRef, client Client, users map[string]*listedUser, more func(listCursor)) (int, bool) {
	spent, before := 0, 0 // before: pages of the statuses listed so far
	for i, status := range listedStatuses {
		listed, number := 0, 0
		err := client.Pages(ctx, zoom.UsersListing(status), func(p zoom.RawPage) error {
			spent++
			if p.Number == 1 {
				listed = 0 // a restarted listing counts again
				r.learnPages(c, status, p.TotalRecords)
			}
			listed += p.Items
			number = p.Number
			if err := r.publishListed(ctx, c, p, status, users); err != nil {
				return err
			}
			if more != nil {
				more(listCursor{status: status, pos: before + p.Number})
			}
			// Pages left in this listing (from Zoom's count of its
			// items) and the later ones, up to the furthest a user not
			// shown yet may be listed, against those users.
			end := before + p.Number + (max(0, p.TotalRecords-listed)+usersPerPage-1)/usersPerPage
			for _, s := range listedStatuses[i+1:] {
				end += r.pagesOf(c, s)
			}
			pending, reach := 0, 0
			for _, u := range users {
				if u.done {
					continue
				}
				pending++
				if u.reach <= 0 {
					reach = end
				} else {
					reach = max(reach, u.reach)
				}
			}
			// None left where they can be (0) and some pending: the
			// pages after cannot show them.
			left := max(0, min(end, reach)-(before+p.Number))
			if !p.Last && (left >= pending || left == 0) {
				return errDearer
			}
			return nil
		})
		before += number
		if err != nil {
			// Dearer than the re-reads left, or failed: whatever the
			// listing did not show is re-read.
			return spent, false
		}
	}
	return spent, true
}

func (r *Runner) pagesOf(c pipeline.ConnectorRef, status string) int {
	hs := r.hints
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if p, ok := hs.pages[c][status]; ok {
		return p
	}
	return 1
}

// publishListed publishes the wanted users on listing page p as re-reads,
// in one message: those not done whose since the page's request is not
// older than.
func (r *Runner) publishListed(ctx context.Context, c pipeline.ConnectorRef, p zoom.RawPage, status string, users map[string]*listedUser) error {
	var page struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := zoom.Decode(p.Body, &page); err != nil {
		return fmt.Errorf("list %s page %d: %w", p.Listing, p.Number, err)
	}
	var served []*listedUser
	var reads []*pb.RawPage
	for _, item := range page.Users {
		var u struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if json.Unmarshal(item, &u) != nil || u.ID == "" {
			continue
		}
		w, ok := users[u.ID]
		if !ok || w.done {
			// Not wanted, or shown twice (moved while the listings
			// paged): the first read stands.
			continue
		}
		if p.RequestedAt.Before(w.since) {
			// Asked for before the hint was known here: possibly older
			// than the change. A later page (or round) must show it.
			continue
		}
		body := []byte(item)
		if u.Status == "" {
			// A re-read body carries its status; a listed item may not.
			var m map[string]json.RawMessage
			if json.Unmarshal(item, &m) == nil {
				m["status"], _ = json.Marshal(status)
				if b, err := json.Marshal(m); err == nil {
					body = b
				}
			}
		}
		// The page was asked for after the hint came in: it is as new as
		// a re-read asked for then.
		w.done, w.servedAt = true, p.RequestedAt
		served = append(served, w)
		reads = append(reads, readPage(w.h, p.RequestedAt, body, false))
	}
	r.publishReads(ctx, c, served, reads)
	return nil
}

// publishReads publishes the users a listing page served (reads, one per
// user of served, in order) as one message, which the writer applies in
// one transaction, and sets each user's outcome. A bundle too large for a
// message goes user by user. A bundle that fails otherwise is tried once
// more before each of its users is left to be re-read: a page's users
// are worth a second try of one message.
func (r *Runner) publishReads(ctx context.Context, c pipeline.ConnectorRef, served []*listedUser, reads []*pb.RawPage) {
	if len(reads) == 0 {
		return
	}
	if len(reads) > 1 {
		env := &pb.Envelope{Body: &pb.Envelope_RawPages{RawPages: &pb.RawPages{Pages: reads}}}
		err := r.syncer.Publish(ctx, c, env, "")
		if err != nil && !syncer.Unpublishable(err) && ctx.Err() == nil {
			err = r.syncer.Publish(ctx, c, env, "")
		}
		if !syncer.Unpublishable(err) {
			for _, w := range served {
				w.err = err
			}
			return
		}
	}
	for i, w := range served {
		w.err = r.publishPage(ctx, c, w.h, reads[i])
	}
}

// reread re-reads user h from Zoom and publishes the answer.
func (r *Runner) reread(ctx context.Context, c pipeline.ConnectorRef, client Client, h *pb.FetchUser) error {
	// The read is ordered against other events by when it was asked for: a
	// change Zoom made while the answer was on its way may be missing from it.
	asked := r.now()
	body, err := client.GetUser(ctx, h.UserId)
	switch {
	case errors.Is(err, zoom.ErrUserNotFound):
		return r.publishRead(ctx, c, h, asked, nil, true)
	case errors.Is(err, connector.ErrNotActive):
		// Zoom refused the connector's authorization meanwhile (its token
		// source says so, and has set the connector's state): no retry
		// helps until it is authorized again.
		r.dropHint(c, err)
		return nil
	case err != nil:
		if zoom.IsPermanent(err) {
			return natsx.Permanent(err)
		}
		return err
	}
	return r.publishRead(ctx, c, h, asked, body, false)
}

// publishRead publishes what Zoom answered for user h, asked at asked: its
// body, or that it does not exist.
func (r *Runner) publishRead(ctx context.Context, c pipeline.ConnectorRef, h *pb.FetchUser, asked time.Time, body []byte, notFound bool) error {
	return r.publishPage(ctx, c, h, readPage(h, asked, body, notFound))
}

// readPage is what Zoom answered for user h, asked at asked, as a raw page.
func readPage(h *pb.FetchUser, asked time.Time, body []byte, notFound bool) *pb.RawPage {
	return &pb.RawPage{
		Ref:         &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true},
		UserId:      h.UserId,
		VersionMs:   h.VersionMs,
		FetchedAtMs: asked.UnixMilli(),
		Body:        body,
		NotFound:    notFound,
	}
}

// publishPage publishes page, the read of user h.
func (r *Runner) publishPage(ctx context.Context, c pipeline.ConnectorRef, h *pb.FetchUser, page *pb.RawPage) error {
	err := r.syncer.Publish(ctx, c, &pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: page}}, "")
	if syncer.Unpublishable(err) {
		// The user's record is larger than a NATS message: no redelivery
		// changes that.
		return natsx.Permanent(fmt.Errorf("user %s: %w", bound(h.UserId, 80), err))
	}
	return err
}
