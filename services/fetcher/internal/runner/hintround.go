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
//     done, the ids of that batch the listing did not show (or could not
//     publish): the batch re-reads them one by one.
//
// A batch opens a round when none is open, and lists when its start comes;
// it cancels the round when the users wanted cost fewer requests one by
// one. Every batch joined before the listing began: each page is asked for
// after every joined batch's hints came in, as a re-read would be. The
// lister publishes the wanted users it sees as re-reads. Should the lister
// die, the batches waiting give up after a bound and re-read their users.

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
	// roundMaxWait bounds how long a batch waits for a round to end before
	// it re-reads its users itself (the lister died).
	roundMaxWait = 5 * time.Minute
	// roundMaxGather is how long past its start a round stays open while
	// the users wanted cost fewer requests one by one than a listing, or
	// while batches keep joining.
	roundMaxGather = 30 * time.Second
	// roundPoll is how often a waiting batch reads the round's state.
	roundPoll = 200 * time.Millisecond
)

type round struct {
	N       int64  `json:"n"`
	State   string `json:"state"`
	StartMs int64  `json:"start_ms"`
	Owner   string `json:"owner"`
	Wanted  int    `json:"wanted"`
}

type wanted struct {
	IDs      []string `json:"ids"`
	Versions []int64  `json:"versions"`
}

// rounds is the runner's side of the listing rounds.
type rounds struct {
	kv     jetstream.KeyValue
	gather time.Duration
	id     string // this runner, in batch names
	seq    atomic.Int64
}

func newRounds(kv jetstream.KeyValue, gather time.Duration) *rounds {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	if gather <= 0 {
		gather = DefaultRoundGather
	}
	return &rounds{kv: kv, gather: gather, id: hex.EncodeToString(b)}
}

func roundKey(c pipeline.ConnectorRef) string { return "round." + c.Key() }

func roundPrefix(c pipeline.ConnectorRef, n int64) string {
	return roundKey(c) + "." + strconv.FormatInt(n, 10)
}

var errRoundBusy = errors.New("a round is listing")

// viaRound serves users through a listing round shared with the other
// replicas' batches, recording in results the users it served; the caller
// re-reads the rest. It returns the requests this replica spent, and
// whether the users went through a round at all.
func (r *Runner) viaRound(ctx context.Context, c pipeline.ConnectorRef, client Client, users map[string]*pb.FetchUser, results map[string]error) (int, bool) {
	rs := r.rounds
	batch := rs.id + "-" + strconv.FormatInt(rs.seq.Add(1), 10)
	var w wanted
	for id, h := range users {
		w.IDs = append(w.IDs, id)
		w.Versions = append(w.Versions, h.VersionMs)
	}
	data, err := json.Marshal(w)
	if err != nil || len(data) > maxWanted {
		return 0, false
	}
	deadline := time.Now().Add(roundMaxWait)
	var joined round
	for {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, false
		}
		cur, rev, err := rs.read(ctx, c)
		if err != nil {
			return 0, false
		}
		next := cur
		switch cur.State {
		case roundOpen:
			next.Wanted += len(users)
		case roundListing:
			if time.Since(time.UnixMilli(cur.StartMs)) < roundMaxWait {
				// This batch came in after the listing began: it waits
				// for the next round.
				if err := sleep(ctx, roundPoll); err != nil {
					return 0, false
				}
				continue
			}
			// The lister stopped without ending its round: open the next.
			next = round{N: cur.N + 1, State: roundOpen, StartMs: time.Now().Add(rs.gather).UnixMilli(),
				Owner: batch, Wanted: len(users)}
		default: // none yet, done or cancelled: open the next
			next = round{N: cur.N + 1, State: roundOpen, StartMs: time.Now().Add(rs.gather).UnixMilli(),
				Owner: batch, Wanted: len(users)}
		}
		// What the batch wants is stored before it joins, so that the
		// lister, which counts the users joined, finds it.
		wantKey := roundPrefix(c, next.N) + ".want." + batch
		if _, err := rs.kv.Put(ctx, wantKey, data); err != nil {
			return 0, false
		}
		if err := rs.write(ctx, c, next, rev); errors.Is(err, errConflictRound) {
			_ = rs.kv.Delete(ctx, wantKey)
			continue
		} else if err != nil {
			_ = rs.kv.Delete(ctx, wantKey)
			return 0, false
		}
		joined = next
		break
	}
	spent := 0
	if joined.Owner == batch {
		spent = r.listRound(ctx, c, client, joined)
	}
	// Wait for the round's end, then read what this batch has left.
	for {
		cur, _, err := rs.read(ctx, c)
		if err != nil || time.Now().After(deadline) || ctx.Err() != nil {
			return spent, false
		}
		if cur.N > joined.N || cur.State == roundDone || cur.State == roundCancelled {
			if cur.N == joined.N && cur.State == roundCancelled {
				_ = rs.kv.Delete(ctx, roundPrefix(c, joined.N)+".want."+batch)
				return spent, false
			}
			break
		}
		if err := sleep(ctx, roundPoll); err != nil {
			return spent, false
		}
	}
	leftKey := roundPrefix(c, joined.N) + ".left." + batch
	e, err := rs.kv.Get(ctx, leftKey)
	if err != nil {
		// No account of this batch: every user is re-read.
		return spent, false
	}
	var left wanted
	if json.Unmarshal(e.Value(), &left) != nil {
		return spent, false
	}
	_ = rs.kv.Delete(ctx, leftKey)
	notServed := map[string]bool{}
	for _, id := range left.IDs {
		notServed[id] = true
	}
	for id := range users {
		if !notServed[id] {
			results[id] = nil
		}
	}
	return spent, true
}

var errConflictRound = errors.New("round changed concurrently")

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

// listRound runs round o, which this batch opened: at its start it closes
// it to new batches, and either cancels it (the users wanted cost fewer
// requests one by one) or lists, publishing every wanted user it sees, and
// tells each batch what it did not serve. It returns the requests spent.
func (r *Runner) listRound(ctx context.Context, c pipeline.ConnectorRef, client Client, o round) int {
	rs := r.rounds
	if err := sleep(ctx, time.Until(time.UnixMilli(o.StartMs))); err != nil {
		return 0
	}
	var cur round
	lastWanted := -1
	for {
		var rev uint64
		var err error
		cur, rev, err = rs.read(ctx, c)
		if err != nil || cur.N != o.N || cur.State != roundOpen {
			return 0
		}
		next := cur
		next.State = roundListing
		worth := cur.Wanted > r.listingPages(c, 1)
		if time.Since(time.UnixMilli(o.StartMs)) < roundMaxGather && (!worth || cur.Wanted > lastWanted) {
			// Not worth a listing yet, or batches still joining (a bulk
			// change still sending its webhooks): one listing later
			// serves more of them than two now. A hint waiting a little
			// longer costs less than a request each.
			lastWanted = cur.Wanted
			if err := sleep(ctx, rs.gather/2); err != nil {
				return 0
			}
			continue
		}
		if !worth {
			next.State = roundCancelled
			r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", o.N).Int("users", cur.Wanted).
				Msg("hint listing round cancelled: re-reads cost less")
		}
		if err := rs.write(ctx, c, next, rev); errors.Is(err, errConflictRound) {
			continue // a batch joined meanwhile
		} else if err != nil {
			return 0
		}
		if next.State == roundCancelled {
			return 0
		}
		break
	}
	prefix := roundPrefix(c, o.N)
	// Every batch that joined stored what it wants first.
	wants := map[string]wanted{}
	users := map[string]*pb.FetchUser{}
	lister, err := rs.kv.ListKeysFiltered(ctx, prefix+".want.*")
	if err == nil {
		for k := range lister.Keys() {
			e, err := rs.kv.Get(ctx, k)
			if err != nil {
				continue
			}
			var w wanted
			if json.Unmarshal(e.Value(), &w) != nil || len(w.IDs) != len(w.Versions) {
				continue
			}
			wants[k] = w
			for i, id := range w.IDs {
				if h, ok := users[id]; ok {
					h.VersionMs = max(h.VersionMs, w.Versions[i])
					continue
				}
				users[id] = &pb.FetchUser{Tenant: c.Tenant, Connector: c.ID, UserId: id, VersionMs: w.Versions[i]}
			}
		}
		_ = lister.Stop()
	}
	results := map[string]error{}
	spent := 0
	if len(users) > 0 {
		spent = r.listHinted(ctx, c, client, users, results)
	}
	served := 0
	for _, err := range results {
		if err == nil {
			served++
		}
	}
	r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("round", o.N).Int("batches", len(wants)).
		Int("users", len(users)).Int("served", served).Int("requests", spent).
		Dur("gathered", time.Since(time.UnixMilli(o.StartMs))).Msg("hint listing round")
	for k, w := range wants {
		var left wanted
		for i, id := range w.IDs {
			if err, ok := results[id]; !ok || err != nil {
				left.IDs = append(left.IDs, id)
				left.Versions = append(left.Versions, w.Versions[i])
			}
		}
		data, _ := json.Marshal(left)
		batch := k[len(prefix+".want."):]
		if _, err := rs.kv.Put(ctx, prefix+".left."+batch, data); err != nil {
			continue // that batch finds no account and re-reads its users
		}
		_ = rs.kv.Delete(ctx, k)
	}
	for {
		cur, rev, err := rs.read(ctx, c)
		if err != nil || cur.N != o.N {
			return spent
		}
		cur.State = roundDone
		if err := rs.write(ctx, c, cur, rev); !errors.Is(err, errConflictRound) {
			return spent
		}
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
