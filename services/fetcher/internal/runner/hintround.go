package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Listing rounds coalesce the hint batches of every fetcher replica: a bulk
// change in Zoom sends its webhooks to whichever replica takes each hint,
// and each replica's batch alone may be too small to be worth a listing, or
// each replica would list the account for its share. A round is one listing
// for all of them, coordinated through a key-value bucket:
//
//   - round.<tenant>.<connector> holds the connector's current round: its
//     number, state (open, listing, done, cancelled), when it starts, who
//     lists, and how many users the batches that joined it want;
//   - round.<tenant>.<connector>.<n>.want.<batch> holds the user ids and
//     versions a batch wants read, written before the batch joins;
//   - round.<tenant>.<connector>.<n>.left.<batch> holds, once the round is
//     done, what it did not serve of that batch: the ids the listing did
//     not show (or could not publish), which the batch re-reads one by one,
//     and the ids whose place the listing had passed before it learned of
//     the batch, which the batch takes to the next round (once).
//
// A batch opens a round when none is open, and lists when its start comes;
// it cancels the round when the users wanted cost fewer requests one by
// one. Batches join while the round is open and while it lists. The lister
// learns of each batch (reads its wanted users) before a page, and a page
// serves a user only for the batches learned of before the page was asked
// for: the page is then as new as a re-read asked for after the hint came
// in. So a batch that joins a listing round is served by the pages still
// to come; its users on pages already listed go on to the next round,
// which knows where they are (at or before where the listing was) and
// lists only that far. The lister publishes the wanted users it sees as
// re-reads. A lister that stops before it lists cancels its round as
// abandoned, and its batches go on to the next round; a round left open
// past its start, its longest gather and a margin lost its lister (its
// replica was killed): batches do not join it, and those that joined it
// leave it for the next round, once. While it lists, the lister says it is
// alive every beat (round.<tenant>.<connector>.<n>.beat holds when, by its
// clock): a listing round whose lister has not said so for
// roundBeatsMissed beats lost it (its replica was killed while it listed),
// and it is treated as a round left open: batches do not join it, and
// those waiting on it leave it for the next round, once. A listing,
// however long (a million users take minutes at Pro's limits), keeps its
// batches for as long as its lister lives; DefaultRoundMaxWait bounds the
// wait beyond that.

// Round states.
const (
	roundOpen      = "open"
	roundListing   = "listing"
	roundDone      = "done"
	roundCancelled = "cancelled"
)

// Defaults of the rounds.
const (
	// DefaultRoundGather is how long an open round waits for batches of
	// other replicas to join before it lists.
	DefaultRoundGather = 2 * time.Second
	// roundMinUsers is the smallest batch that goes through a round: a few
	// users are re-read at once, without waiting for one.
	roundMinUsers = 20
	// DefaultRoundMaxWait bounds how long a batch waits for a round to
	// end before it re-reads its users itself, whatever its lister says:
	// longer than a listing of the largest accounts at Pro's limits. A
	// lister that died is found by its missing beats long before.
	DefaultRoundMaxWait = 30 * time.Minute
	// DefaultRoundBeat is how often a lister says it is alive while it
	// lists.
	DefaultRoundBeat = 5 * time.Second
	// roundBeatsMissed is how many beats a listing round's lister may miss
	// (a slow bucket, clocks a little apart) before its round is taken
	// for lost.
	roundBeatsMissed = 6
	// roundCheapGather is how long past its start a round stays open
	// while the users wanted cost fewer requests one by one than a
	// listing.
	roundCheapGather = 30 * time.Second
	// roundMaxGather is how long past its start a round worth a listing
	// stays open while batches keep joining. Every page listed while a bulk change
	// still sends its webhooks is listed again for the hints that come
	// after it, so a round waits for the change to end, but not longer
	// than lets its first hints be published within two minutes: a
	// listing of 100,000 users at Pro's limits takes about 45 s.
	roundMaxGather = 45 * time.Second
	// roundDeadMargin is how long past its longest gather a round still
	// open is taken for alive: its lister checks it every half gather and
	// lists at the latest roundMaxGather past its start, so a round open
	// longer lost its lister (its replica stopped) and is never listed.
	// Batches do not join it, and those that joined leave it for the next.
	roundDeadMargin = 30 * time.Second
	// roundEndTimeout bounds how long a lister that stops tries to tell
	// its round's batches so (its own context ended).
	roundEndTimeout = 5 * time.Second
	// roundPoll is how often a waiting batch reads the round's state.
	roundPoll = 200 * time.Millisecond
)

type round struct {
	N       int64  `json:"n"`
	State   string `json:"state"`
	StartMs int64  `json:"start_ms"`
	Owner   string `json:"owner"`
	Wanted  int    `json:"wanted"`
	// Reach is the furthest position (listing pages) that the users
	// joined are listed at or before, as far as batches that a listing
	// had passed know; it counts only when Whole is false (no batch
	// wants users that could be anywhere).
	Reach int  `json:"reach,omitempty"`
	Whole bool `json:"whole,omitempty"`
	// ComingMs is until when a batch that joined expects more batches: it
	// closed on its longest wait while hints still came.
	ComingMs int64 `json:"coming_ms,omitempty"`
	// Abandoned is set on a round cancelled because its lister stopped
	// before it listed (not because re-reads cost less): its batches go
	// on to the next round.
	Abandoned bool `json:"abandoned,omitempty"`
}

// dead says whether round o is open past when its lister would have
// listed it: the lister stopped without ending it.
func (o round) dead(now time.Time) bool {
	return o.State == roundOpen && now.After(time.UnixMilli(o.StartMs).Add(roundMaxGather+roundDeadMargin))
}

// wanted is users, their hints' versions and, for each, where it is
// listed at or before (0: anywhere).
type wanted struct {
	IDs      []string `json:"ids"`
	Versions []int64  `json:"versions"`
	Reach    []int    `json:"reach,omitempty"`
}

// roundOutcome is what a round did not serve of one batch: users to
// re-read one by one (the listing did not show them, or they could not be
// published), and users whose pages the listing had asked for before it
// learned of the batch, for the next round.
type roundOutcome struct {
	Reread wanted `json:"reread"`
	Next   wanted `json:"next"`
}

// reachSlack is how many pages past where a listing passed a user the next
// round still looks for it: users added or removed meanwhile move it.
const reachSlack = 2

// rounds is the runner's side of the listing rounds.
type rounds struct {
	kv      jetstream.KeyValue
	gather  time.Duration
	maxWait time.Duration // DefaultRoundMaxWait unless configured
	beat    time.Duration // DefaultRoundBeat unless configured
	id      string        // this runner, in batch names
	seq     atomic.Int64
}

func newRounds(kv jetstream.KeyValue, gather, maxWait, beat time.Duration) *rounds {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	if gather <= 0 {
		gather = DefaultRoundGather
	}
	if maxWait <= 0 {
		maxWait = DefaultRoundMaxWait
	}
	if beat <= 0 {
		beat = DefaultRoundBeat
	}
	return &rounds{kv: kv, gather: gather, maxWait: maxWait, beat: beat, id: hex.EncodeToString(b)}
}

func roundKey(c pipeline.ConnectorRef) string { return "round." + c.Key() }

func roundPrefix(c pipeline.ConnectorRef, n int64) string {
	return roundKey(c) + "." + strconv.FormatInt(n, 10)
}

func beatKey(c pipeline.ConnectorRef, n int64) string { return roundPrefix(c, n) + ".beat" }

// sayAlive stores that round n's lister is alive now.
func (rs *rounds) sayAlive(ctx context.Context, c pipeline.ConnectorRef, n int64) error {
	_, err := rs.kv.Put(ctx, beatKey(c, n), []byte(strconv.FormatInt(time.Now().UnixMilli(), 10)))
	return err
}

// beating says round n's lister is alive every beat until the returned
// stop is called, which also removes the beat.
func (rs *rounds) beating(ctx context.Context, c pipeline.ConnectorRef, n int64) (stop func()) {
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(rs.beat)
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
				_ = rs.sayAlive(bctx, c, n) // missed beats are what the waiters count
			}
		}
	}()
	return func() {
		cancel()
		<-done
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), roundEndTimeout)
		defer dcancel()
		_ = rs.kv.Delete(dctx, beatKey(c, n))
	}
}

// listerGone says whether round o, listing, lost its lister: its last
// beat is roundBeatsMissed beats old, or it never beat (a lister beats
// before it lists) and the round is past when it would have listed. A
// beat that cannot be read tells nothing: the round is taken for alive.
func (rs *rounds) listerGone(ctx context.Context, c pipeline.ConnectorRef, o round) bool {
	if o.State != roundListing {
		return false
	}
	silent := time.Duration(roundBeatsMissed) * rs.beat
	last := time.UnixMilli(o.StartMs).Add(roundMaxGather + roundDeadMargin)
	e, err := rs.kv.Get(ctx, beatKey(c, o.N))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return false
	default:
		ms, perr := strconv.ParseInt(string(e.Value()), 10, 64)
		if perr != nil {
			return false
		}
		last = time.UnixMilli(ms)
	}
	if !time.Now().After(last.Add(silent)) {
		return false
	}
	// The lister removes its beat once its round is done: a round read
	// after the beat that is no longer listing has not lost its lister.
	cur, _, err := rs.read(ctx, c)
	return err == nil && cur.N == o.N && cur.State == roundListing
}

// viaRound serves users through a listing round shared with the other
// replicas' batches, recording in results the users it served; the caller
// re-reads the rest, except those it returns: users the round's listing
// had already passed when this batch joined it, worth the next round
// (only when carry is set; otherwise they are re-read too). reach, when
// set, bounds where each user is listed (listedUser.reach). With joinOnly
// it joins only a round that is open now, and opens none. It returns the
// requests this replica spent, and whether the batch joined a round.
func (r *Runner) viaRound(ctx context.Context, c pipeline.ConnectorRef, client Client, users map[string]*pb.FetchUser, reach map[string]int, results map[string]error, carry bool, coming time.Time, joinOnly bool) (int, map[string]*pb.FetchUser, map[string]int, bool) {
	rs := r.rounds
	batch := rs.id + "-" + strconv.FormatInt(rs.seq.Add(1), 10)
	var w wanted
	furthest, whole := 0, false
	for id, h := range users {
		w.IDs = append(w.IDs, id)
		w.Versions = append(w.Versions, h.VersionMs)
		if n := reach[id]; n > 0 {
			w.Reach = append(w.Reach, n)
			furthest = max(furthest, n)
		} else {
			w.Reach = append(w.Reach, 0)
			whole = true
		}
	}
	data, err := json.Marshal(w)
	if err != nil || len(data) > maxWanted {
		return 0, nil, nil, false
	}
	deadline := time.Now().Add(rs.maxWait)
	spent := 0
	// A batch whose round lost its lister goes on to the next round, once.
	for attempt := 0; ; attempt++ {
		joined, ok := rs.join(ctx, c, batch, len(users), data, furthest, whole, coming, joinOnly, deadline)
		if !ok {
			return spent, nil, nil, attempt > 0
		}
		if joined.Owner == batch {
			spent += r.listRound(ctx, c, client, joined)
		}
		// Wait for the round's end, then read what this batch has left.
		lost := false
		var beatRead time.Time
		for {
			cur, _, err := rs.read(ctx, c)
			if err != nil || time.Now().After(deadline) || ctx.Err() != nil {
				return spent, nil, nil, true
			}
			gone := false
			if cur.N == joined.N && cur.State == roundListing && time.Since(beatRead) >= rs.beat/2 {
				beatRead = time.Now()
				gone = rs.listerGone(ctx, c, cur)
			}
			if cur.N == joined.N && (gone || cur.dead(time.Now()) || (cur.State == roundCancelled && cur.Abandoned)) {
				// Its lister stopped before it listed, or died while it
				// listed: nobody serves it (further).
				_ = rs.kv.Delete(ctx, roundPrefix(c, joined.N)+".want."+batch)
				lost = true
				break
			}
			if cur.N > joined.N || cur.State == roundDone || cur.State == roundCancelled {
				if cur.N == joined.N && cur.State == roundCancelled {
					_ = rs.kv.Delete(ctx, roundPrefix(c, joined.N)+".want."+batch)
					return spent, nil, nil, true
				}
				break
			}
			if err := sleep(ctx, roundPoll); err != nil {
				return spent, nil, nil, true
			}
		}
		if lost {
			if attempt == 0 {
				coming = time.Time{}
				continue
			}
			return spent, nil, nil, true
		}
		leftKey := roundPrefix(c, joined.N) + ".left." + batch
		e, err := rs.kv.Get(ctx, leftKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) && attempt == 0 {
			// A later round began and this one told nothing: it lost
			// its lister (a batch found it dead and opened the next).
			_ = rs.kv.Delete(ctx, roundPrefix(c, joined.N)+".want."+batch)
			coming = time.Time{}
			continue
		}
		if err != nil {
			// No account of this batch: every user is re-read.
			return spent, nil, nil, true
		}
		_ = rs.kv.Delete(ctx, leftKey)
		next, nextReach, ok := served(e.Value(), users, results, carry)
		if !ok {
			return spent, nil, nil, true
		}
		return spent, next, nextReach, true
	}
}

// join stores what batch wants (data, for users users) and joins the
// connector's open or listing round, or opens the next; with joinOnly, it
// joins only a round open now. It returns the round as joined, or false
// when the batch joined none.
func (rs *rounds) join(ctx context.Context, c pipeline.ConnectorRef, batch string, users int, data []byte, furthest int, whole bool, coming time.Time, joinOnly bool, deadline time.Time) (round, bool) {
	for {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return round{}, false
		}
		cur, rev, err := rs.read(ctx, c)
		if err != nil {
			return round{}, false
		}
		next := cur
		switch {
		case (cur.State == roundOpen && !cur.dead(time.Now())) ||
			(!joinOnly && cur.State == roundListing && time.Since(time.UnixMilli(cur.StartMs)) < rs.maxWait && !rs.listerGone(ctx, c, cur)):
			// Open, or listing: a batch that joins a listing round is
			// served by the pages asked for after its lister learned of
			// it; the users the listing had passed go on to the next.
			next.Wanted += users
			next.Reach = max(next.Reach, furthest)
			next.Whole = next.Whole || whole
			if !coming.IsZero() {
				next.ComingMs = max(next.ComingMs, coming.UnixMilli())
			}
		case joinOnly:
			// None open now: a few users are not worth waiting for one.
			return round{}, false
		default:
			// None yet, done, cancelled, or a lister that stopped
			// without ending its round (open past its longest gather,
			// listing without a beat, or past the longest wait): open the
			// next.
			next = round{N: cur.N + 1, State: roundOpen, StartMs: time.Now().Add(rs.gather).UnixMilli(),
				Owner: batch, Wanted: users, Reach: furthest, Whole: whole}
			if !coming.IsZero() {
				next.ComingMs = coming.UnixMilli()
			}
		}
		// What the batch wants is stored before it joins, so that the
		// lister, which counts the users joined, finds it.
		wantKey := roundPrefix(c, next.N) + ".want." + batch
		if _, err := rs.kv.Put(ctx, wantKey, data); err != nil {
			return round{}, false
		}
		if err := rs.write(ctx, c, next, rev); errors.Is(err, errConflictRound) {
			_ = rs.kv.Delete(ctx, wantKey)
			continue
		} else if err != nil {
			_ = rs.kv.Delete(ctx, wantKey)
			return round{}, false
		}
		return next, true
	}
}

// served records in results the users of a batch that its round's outcome
// (data) says were served, and returns the users for the next round (with
// carry; nil otherwise) and where they are listed. false: the outcome does
// not read, and every user is re-read.
func served(data []byte, users map[string]*pb.FetchUser, results map[string]error, carry bool) (map[string]*pb.FetchUser, map[string]int, bool) {
	var out roundOutcome
	if json.Unmarshal(data, &out) != nil {
		return nil, nil, false
	}
	notServed := map[string]bool{}
	for _, id := range out.Reread.IDs {
		notServed[id] = true
	}
	var next map[string]*pb.FetchUser
	nextReach := map[string]int{}
	for i, id := range out.Next.IDs {
		notServed[id] = true
		if h, ok := users[id]; ok && carry {
			if next == nil {
				next = map[string]*pb.FetchUser{}
			}
			next[id] = h
			if i < len(out.Next.Reach) && out.Next.Reach[i] > 0 {
				nextReach[id] = out.Next.Reach[i]
			}
		}
	}
	for id := range users {
		if !notServed[id] {
			results[id] = nil
		}
	}
	return next, nextReach, true
}

var errConflictRound = errors.New("round changed concurrently")

// abandonRound cancels round n, still open, whose lister stops before it
// lists (its context ended, or the bucket failed it): the batches that
// joined it go on to the next round at once rather than wait for a lister
// that is gone. Best effort: a round left open is found dead later.
func (r *Runner) abandonRound(ctx context.Context, c pipeline.ConnectorRef, n int64) {
	rs := r.rounds
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), roundEndTimeout)
	defer cancel()
	for {
		cur, rev, err := rs.read(ctx, c)
		if err != nil || cur.N != n || cur.State != roundOpen {
			return
		}
		cur.State, cur.Abandoned = roundCancelled, true
		err = rs.write(ctx, c, cur, rev)
		if errors.Is(err, errConflictRound) {
			continue // a batch joined meanwhile
		}
		if err != nil {
			r.log.Warn().Err(err).Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", n).
				Msg("hint listing round left open: its lister stopped and could not cancel it")
			return
		}
		r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", n).Int("users", cur.Wanted).
			Msg("hint listing round cancelled: its lister stopped; its batches go on to the next round")
		return
	}
}

func (rs *rounds) read(ctx context.Context, c pipeline.ConnectorRef) (round, uint64, error) {
	e, err := rs.kv.Get(ctx, roundKey(c))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return round{}, 0, nil
	}
	if err != nil {
		return round{}, 0, err
	}
	var cur round
	if json.Unmarshal(e.Value(), &cur) != nil {
		return round{}, e.Revision(), nil
	}
	return cur, e.Revision(), nil
}

func (rs *rounds) write(ctx context.Context, c pipeline.ConnectorRef, st round, rev uint64) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = rs.kv.Create(ctx, roundKey(c), data)
	} else {
		_, err = rs.kv.Update(ctx, roundKey(c), data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return errConflictRound
	}
	return err
}

// listRound runs round o, which this batch opened: at its start it either
// cancels it (the users wanted cost fewer requests one by one) or lists,
// publishing every wanted user it sees on a page asked for after it
// learned of the user's batch. Batches keep joining while it lists: after
// each page it takes in the batches that joined meanwhile. At the end it
// tells each batch what it did not serve. It returns the requests spent.
func (r *Runner) listRound(ctx context.Context, c pipeline.ConnectorRef, client Client, o round) int {
	rs := r.rounds
	if err := sleep(ctx, time.Until(time.UnixMilli(o.StartMs))); err != nil {
		r.abandonRound(ctx, c, o.N)
		return 0
	}
	var cur round
	var rev uint64
	lastWanted := -1
	for {
		var err error
		cur, rev, err = rs.read(ctx, c)
		if err != nil {
			r.abandonRound(ctx, c, o.N)
			return 0
		}
		if cur.N != o.N || cur.State != roundOpen {
			return 0
		}
		next := cur
		next.State = roundListing
		cost := r.listingPages(c, 1)
		if !cur.Whole && cur.Reach > 0 {
			cost = min(cost, cur.Reach)
		}
		worth := cur.Wanted > cost
		// A batch expected takes a moment to join: it stores what it
		// wants first.
		coming := time.Now().Before(time.UnixMilli(cur.ComingMs).Add(rs.gather / 2))
		gathered := time.Since(time.UnixMilli(o.StartMs))
		if (!worth && gathered < roundCheapGather) || (worth && gathered < roundMaxGather && (cur.Wanted > lastWanted || coming)) {
			// Not worth a listing yet, or batches still joining or to
			// come (a bulk change still sending its webhooks): one
			// listing later serves more of them than two now. A hint
			// waiting a little longer costs less than a request each.
			lastWanted = cur.Wanted
			if err := sleep(ctx, rs.gather/2); err != nil {
				r.abandonRound(ctx, c, o.N)
				return 0
			}
			continue
		}
		if !worth {
			next.State = roundCancelled
			r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", o.N).Int("users", cur.Wanted).
				Msg("hint listing round cancelled: re-reads cost less")
		} else {
			// Alive before the round says it lists: a listing round
			// without a beat is one whose lister died.
			_ = rs.sayAlive(ctx, c, o.N)
		}
		if err := rs.write(ctx, c, next, rev); errors.Is(err, errConflictRound) {
			continue // a batch joined meanwhile
		} else if err != nil {
			r.abandonRound(ctx, c, o.N)
			return 0
		}
		if next.State == roundCancelled {
			return 0
		}
		break
	}
	stopBeating := rs.beating(ctx, c, o.N)
	defer stopBeating()
	l := &roundLister{r: r, c: c, prefix: roundPrefix(c, o.N), batches: map[string]*roundBatch{}, users: map[string]*listedUser{}}
	// Every batch that joined stored what it wants first: those joined
	// before the listing began are served by any of its pages.
	l.take(ctx, listCursor{})
	spent, complete := 0, true
	if len(l.users) > 0 {
		spent, complete = r.listHinted(ctx, c, client, l.users, func(at listCursor) {
			// Batches that joined while the page was on its way: only
			// later pages serve them.
			e, err := rs.kv.Get(ctx, roundKey(c))
			if err != nil || e.Revision() == l.rev {
				return
			}
			l.take(ctx, at)
		})
	}
	// The listing is over; batches that join until the round is done are
	// told so (all their users go on to the next round).
	l.complete = complete
	end := listCursor{pos: listingOver}
	if ctx.Err() != nil {
		// Stopped while listing: the batches are still told what the
		// listing did not serve, rather than wait for it.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), roundEndTimeout)
		defer cancel()
	}
	for {
		cur, rev, err := rs.read(ctx, c)
		if err == nil {
			l.take(ctx, end)
		}
		// Told before the round is done: its batches read their outcome
		// once it is, or once a later round began (the round listed so
		// long that batches took its lister for dead).
		l.tell(ctx)
		if err != nil || cur.N != o.N {
			return spent
		}
		cur.State = roundDone
		if err := rs.write(ctx, c, cur, rev); errors.Is(err, errConflictRound) {
			continue
		} else if err != nil {
			return spent
		}
		break
	}
	served, late := 0, 0
	for _, u := range l.users {
		if u.done && u.err == nil {
			served++
		}
	}
	for _, b := range l.batches {
		if b.late {
			late++
		}
	}
	r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", o.N).Int("batches", len(l.batches)).
		Int("late_batches", late).Int("users", len(l.users)).Int("served", served).Int("requests", spent).
		Dur("gathered", time.Since(time.UnixMilli(o.StartMs))).Msg("hint listing round")
	return spent
}

// roundLister is a lister's account of the batches of its round.
type roundLister struct {
	r       *Runner
	c       pipeline.ConnectorRef
	prefix  string
	rev     uint64 // the round key's revision when batches were last taken in
	batches map[string]*roundBatch
	users   map[string]*listedUser
	// complete once the listing showed every page: a late batch's users
	// it did not serve are then on pages it had passed.
	complete bool
}

// listingOver is the position of batches that joined after the last page.
const listingOver = 1 << 30

// roundBatch is a batch that joined the round: what it wants, when the
// lister learned of it, and where the listing was then.
type roundBatch struct {
	w       wanted
	learned time.Time
	at      listCursor
	late    bool // joined while the listing paged
	told    bool
}

// take takes in the batches that joined and are not known yet; at is
// where the listing is (no page yet: the zero cursor).
func (l *roundLister) take(ctx context.Context, at listCursor) {
	kv := l.r.rounds.kv
	if e, err := kv.Get(ctx, roundKey(l.c)); err == nil {
		l.rev = e.Revision()
	}
	lister, err := kv.ListKeysFiltered(ctx, l.prefix+".want.*")
	if err != nil {
		return
	}
	defer func() { _ = lister.Stop() }()
	for k := range lister.Keys() {
		if _, known := l.batches[k]; known {
			continue
		}
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var w wanted
		if json.Unmarshal(e.Value(), &w) != nil || len(w.IDs) != len(w.Versions) {
			continue
		}
		// Learned now: the pages asked for from here on are newer than
		// every hint of the batch.
		b := &roundBatch{w: w, learned: time.Now(), at: at, late: at.pos > 0}
		l.batches[k] = b
		for i, id := range w.IDs {
			reach := 0
			if i < len(w.Reach) && w.Reach[i] > 0 {
				reach = w.Reach[i] + reachSlack
			}
			u, ok := l.users[id]
			if !ok {
				l.users[id] = &listedUser{h: &pb.FetchUser{Tenant: l.c.Tenant, Connector: l.c.ID, UserId: id, VersionMs: w.Versions[i]},
					since: b.learned, reach: reach}
				continue
			}
			u.h.VersionMs = max(u.h.VersionMs, w.Versions[i])
			if reach == 0 || u.reach == 0 {
				u.reach = 0
			} else {
				u.reach = max(u.reach, reach)
			}
			if u.done {
				// Published before this batch was known: a page asked
				// for from now on must show it again.
				u.done, u.since = false, b.learned
			}
		}
	}
}

// tell writes each batch's outcome not written yet: the users not served
// by a page asked for after the batch was learned of, to re-read (the
// listing did not show them where it looked after the batch joined) or for
// the next round (the listing had passed their place before it).
func (l *roundLister) tell(ctx context.Context) {
	kv := l.r.rounds.kv
	for k, b := range l.batches {
		if b.told {
			continue
		}
		var out roundOutcome
		for i, id := range b.w.IDs {
			u := l.users[id]
			if u.err == nil && !u.servedAt.IsZero() && !u.servedAt.Before(b.learned) {
				continue
			}
			if b.late && (l.complete || b.at.pos == listingOver) {
				// The listing had passed pages before it learned of the
				// batch: the user may be on one of them, at or before
				// where the listing was then.
				reach := b.at.pos
				if reach == listingOver {
					reach = 0
				}
				out.Next.IDs = append(out.Next.IDs, id)
				out.Next.Versions = append(out.Next.Versions, b.w.Versions[i])
				out.Next.Reach = append(out.Next.Reach, reach)
				continue
			}
			// Not shown where the listing looked after it learned of
			// the batch, or the listing stopped early because re-reads
			// cost less than its pages left, or failed.
			out.Reread.IDs = append(out.Reread.IDs, id)
			out.Reread.Versions = append(out.Reread.Versions, b.w.Versions[i])
		}
		data, _ := json.Marshal(out)
		batch := k[len(l.prefix+".want."):]
		if _, err := kv.Put(ctx, l.prefix+".left."+batch, data); err != nil {
			continue // that batch finds no account and re-reads its users
		}
		b.told = true
		_ = kv.Delete(ctx, k)
	}
}

// maxWanted bounds what one batch stores of its users in the bucket.
const maxWanted = 256 << 10

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
