// Package ratebudget shares one rate budget per Zoom account among every
// replica and every connector that reaches the account. Zoom limits requests
// per account, per rate category and per second, whichever app or process
// sends them; pacing each process under its own share lets three replicas
// spend three shares.
//
// The budget is coordinated through a JetStream key-value bucket that the
// deployment already runs: one key per account and category holds the
// second it counts and how many requests were granted in it, changed by
// compare-and-set, so that across all replicas at most the budget of the
// second is granted. The same key carries the account's hold after a 429
// (until Zoom's announced reset, a daily limit's midnight included) and the
// limit Zoom's X-RateLimit-Limit reported. A fixed second, rather than a
// token bucket, keeps each grant one read and one write of a small key, and
// matches how Zoom counts.
//
// When the bucket cannot be reached the budget falls back to a conservative
// local share (the budget divided by the replicas expected), never to no
// limit, and tries the bucket again every Config.Retry.
package ratebudget

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Defaults of Config.
const (
	DefaultShare            = 0.5
	DefaultExpectedReplicas = 3
	DefaultReserve          = 0.2
	DefaultRetry            = 5 * time.Second
	DefaultOpTimeout        = time.Second
	// edgeGuard is the end of each second in which no request is granted
	// for that second: a grant at its very end could reach Zoom in the
	// next one and make that second exceed the budget.
	edgeGuard = 30 * time.Millisecond
)

// Config configures a Budget.
type Config struct {
	// JetStream holds the bucket; nil keeps every account on the local
	// share (a single process).
	JetStream jetstream.JetStream
	// Replicas is the bucket's replica count (3 on a 3-node cluster).
	Replicas int
	// Plan is the accounts' Zoom plan, which sets the per-second limits.
	Plan zoom.Plan
	// Share is the part of the plan's limit the connector may use, in
	// (0, 1], default 0.5: the limit is shared with every other app on
	// the account.
	Share float64
	// ExpectedReplicas is how many replicas may draw on one account at
	// once, default 3: without the bucket each takes the budget divided by
	// it.
	ExpectedReplicas int
	// Reserve is the part of each second's budget that only prompt
	// requests may take, default 0.2 (at least one request when the budget
	// is two or more): a full sync never takes all of a second. While
	// prompt requests come (in this or the last second, from any
	// replica), bulk ones get only a quarter of the budget.
	Reserve float64
	// MaxWait is the longest hold a request waits through; a longer one
	// (a daily limit) fails it at once with a *zoom.HoldError. Default
	// zoom.DefaultMaxRateLimitWait.
	MaxWait time.Duration
	// Retry is how long the budget stays on the local share after the
	// bucket failed before trying it again, default 5 s.
	Retry time.Duration
	// OpTimeout bounds one read or write of the bucket, default 1 s.
	OpTimeout time.Duration
	// Observer, when set, is told of grants, holds and the coordinator's
	// state.
	Observer Observer
	Log      zerolog.Logger
}

// Observer is told what the budget does, for metrics.
type Observer interface {
	// Granted is called for each request let through, with the category,
	// the priority, how long it waited and whether the shared bucket
	// (rather than the local share) granted it.
	Granted(c zoom.Category, p zoom.Priority, waited time.Duration, shared bool)
	// Coordinated is called when the budget starts (true) or stops
	// (false) using the shared bucket.
	Coordinated(ok bool)
}

// Budget is the rate budget of every Zoom account the process reaches. It
// is safe for concurrent use; its zero value is not.
type Budget struct {
	cfg Config
	kv  jetstream.KeyValue

	mu    sync.Mutex
	gates map[gateKey]*gate

	// downUntil is when to try the bucket again after it failed (unix
	// nanoseconds; 0 while it works).
	downUntil atomic.Int64
}

type gateKey struct {
	account string
	cat     zoom.Category
}

// Open returns a Budget, creating its bucket when cfg.JetStream is set.
func Open(ctx context.Context, cfg Config) (*Budget, error) {
	cfg.Plan = cmp.Or(cfg.Plan, zoom.DefaultPlan)
	cfg.Share = cmp.Or(cfg.Share, DefaultShare)
	cfg.ExpectedReplicas = cmp.Or(cfg.ExpectedReplicas, DefaultExpectedReplicas)
	cfg.Reserve = cmp.Or(cfg.Reserve, DefaultReserve)
	cfg.MaxWait = cmp.Or(cfg.MaxWait, zoom.DefaultMaxRateLimitWait)
	cfg.Retry = cmp.Or(cfg.Retry, DefaultRetry)
	cfg.OpTimeout = cmp.Or(cfg.OpTimeout, DefaultOpTimeout)
	switch {
	case cfg.Share <= 0 || cfg.Share > 1:
		return nil, fmt.Errorf("ratebudget: share %g is not in (0, 1]", cfg.Share)
	case cfg.ExpectedReplicas < 1:
		return nil, fmt.Errorf("ratebudget: expected replicas %d is below 1", cfg.ExpectedReplicas)
	case cfg.Reserve < 0 || cfg.Reserve >= 1:
		return nil, fmt.Errorf("ratebudget: reserve %g is not in [0, 1)", cfg.Reserve)
	}
	if _, err := zoom.ParsePlan(string(cfg.Plan)); err != nil {
		return nil, fmt.Errorf("ratebudget: %w", err)
	}
	b := &Budget{cfg: cfg, gates: map[gateKey]*gate{}}
	if cfg.JetStream != nil {
		kv, err := b.ensure(ctx)
		if err != nil {
			return nil, err
		}
		b.kv = kv
	}
	return b, nil
}

// ensure creates the bucket, or updates its configuration.
func (b *Budget) ensure(ctx context.Context) (jetstream.KeyValue, error) {
	return Bucket(ctx, b.cfg.JetStream, b.cfg.Replicas)
}

// Bucket creates the budget's bucket, or updates its configuration, and
// returns it. The fetcher's listing rounds of hint batches share it: both
// are short-lived coordination of the replicas reaching one account.
func Bucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: pipeline.BudgetBucket,
		Description: "the rate budget of each Zoom account (requests granted this second, holds after a 429) " +
			"and the listing rounds of the fetchers' hint batches",
		History: 1,
		// Counters are worth nothing after a restart, and a hold lost
		// with the server costs one more 429: memory is enough.
		Storage: jetstream.MemoryStorage,
		// A round's batch stores the ids it wants read.
		MaxValueSize: 512 << 10,
		// Every batch of a listing round writes keys of its own and
		// deletes them; a deleted key stays as a marker, and a key left
		// behind (a batch that gave up before its outcome came) stays
		// for good. Entries older than KeyLifetime go, markers with them.
		TTL:      KeyLifetime,
		Replicas: max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("ratebudget: open bucket %s: %w", pipeline.BudgetBucket, err)
	}
	return kv, nil
}

// KeyLifetime is how long the budget's bucket keeps an entry nothing wrote
// again: longer than a daily limit's hold (until the next midnight UTC)
// and than any listing round, whose keys are rewritten while it lasts. An
// account's counter or a connector's round key that expires is made again
// at its next use; a hold Zoom asked for beyond it is lost, which costs one
// more 429.
const KeyLifetime = 48 * time.Hour

// get reads key, creating the bucket again when a restarted server lost it
// (it lives in memory).
func (b *Budget) get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := b.kv.Get(ctx, key)
	// A direct get of a stream that is gone finds no responder.
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, nats.ErrNoResponders) {
		if _, cerr := b.ensure(ctx); cerr != nil {
			return nil, cerr
		}
		e, err = b.kv.Get(ctx, key)
	}
	return e, err
}

// AccountKey names a Zoom account in the bucket without quoting its id:
// the account id for Server-to-Server connectors, the account the token
// reaches for OAuth ones. fallback (the connector, say) names the budget
// when the account is not known yet, so that its requests are paced all the
// same.
func AccountKey(accountID, fallback string) string {
	if accountID != "" {
		return "a" + digest(accountID)
	}
	return "c" + digest(fallback)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// Account returns the budget of the account named key (see AccountKey), as
// a zoom.Budget for the clients that reach it.
func (b *Budget) Account(key string) zoom.Budget {
	return &account{b: b, key: key}
}

type account struct {
	b   *Budget
	key string
}

func (a *account) Take(ctx context.Context, c zoom.Category, p zoom.Priority) (time.Duration, error) {
	return a.b.gate(a.key, c).take(ctx, p)
}

func (a *account) Limited(c zoom.Category, l zoom.RateLimited) {
	a.b.gate(a.key, c).limited(l)
}

// gate returns the state of one account and category in this process.
func (b *Budget) gate(account string, c zoom.Category) *gate {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := gateKey{account, c}
	g, ok := b.gates[k]
	if !ok {
		plan := float64(zoom.PlanLimit(b.cfg.Plan, c))
		if plan == 0 {
			plan = float64(zoom.PlanLimit(b.cfg.Plan, zoom.CategoryHeavy))
		}
		g = &gate{b: b, key: account + "." + string(c), cat: c, plan: plan}
		g.local = rate.NewLimiter(rate.Limit(plan*b.cfg.Share/float64(b.cfg.ExpectedReplicas)), 1)
		b.gates[k] = g
	}
	return g
}

// slot is the value of an account's key for one category.
type slot struct {
	// Second is the unix second N counts.
	Second int64 `json:"s"`
	// N is the requests granted in Second.
	N int `json:"n"`
	// HoldUntil (unix milliseconds) keeps every request back after a
	// 429, Daily saying whether a daily limit caused it.
	HoldUntil int64 `json:"h,omitempty"`
	Daily     bool  `json:"d,omitempty"`
	// Limit is the per-second limit Zoom's X-RateLimit-Limit reported,
	// when lower than the plan's.
	Limit int `json:"l,omitempty"`
	// PromptSecond is the last second a prompt request was granted in:
	// while prompt requests come, in this or the last second, bulk ones
	// get a quarter of the budget, whichever replica they come from.
	PromptSecond int64 `json:"p,omitempty"`
}

// gate is one account's category in this process.
type gate struct {
	b    *Budget
	key  string
	cat  zoom.Category
	plan float64
	// local paces the fallback share.
	local *rate.Limiter
	// prompt counts the prompt requests waiting here: bulk ones let them
	// go first. foreground counts the prompt and bulk ones: background
	// ones let them go first.
	prompt     atomic.Int64
	foreground atomic.Int64

	mu        sync.Mutex
	holdUntil time.Time
	daily     bool
	limit     int // Zoom's reported limit, 0 when none
}

// capacity is how many requests of priority p one second grants;
// promptActive says prompt requests were granted in this or the last
// second.
func (g *gate) capacity(p zoom.Priority, zoomLimit int, promptActive bool) int {
	limit := g.plan
	if zoomLimit > 0 && float64(zoomLimit) < limit {
		limit = float64(zoomLimit)
	}
	n := max(1, int(math.Floor(limit*g.b.cfg.Share)))
	if p == zoom.PriorityPrompt || n < 2 {
		return n
	}
	if promptActive {
		return max(1, n/4)
	}
	return n - max(1, int(math.Floor(float64(n)*g.b.cfg.Reserve)))
}

// take waits until one request of priority p may go.
func (g *gate) take(ctx context.Context, p zoom.Priority) (time.Duration, error) {
	start := time.Now()
	if p == zoom.PriorityPrompt {
		g.prompt.Add(1)
		defer g.prompt.Add(-1)
	}
	if p != zoom.PriorityBackground {
		g.foreground.Add(1)
		defer g.foreground.Add(-1)
	}
	for {
		if err := ctx.Err(); err != nil {
			return time.Since(start), err
		}
		now := time.Now()
		if until, daily := g.hold(); until.After(now) {
			d := until.Sub(now)
			if d > g.b.cfg.MaxWait {
				return time.Since(start), &zoom.HoldError{Until: until, Daily: daily}
			}
			if err := sleep(ctx, d); err != nil {
				return time.Since(start), err
			}
			continue
		}
		if (p == zoom.PriorityBulk && g.prompt.Load() > 0) || (p == zoom.PriorityBackground && g.foreground.Load() > 0) {
			// A request of a higher priority waits in this process: it
			// goes first.
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return time.Since(start), err
			}
			continue
		}
		if g.b.coordinated(now) {
			ok, retry, err := g.takeShared(ctx, p)
			if err == nil {
				g.b.up()
				if ok {
					g.b.granted(g.cat, p, time.Since(start), true)
					return time.Since(start), nil
				}
				if err := sleep(ctx, retry); err != nil {
					return time.Since(start), err
				}
				continue
			}
			if ctx.Err() != nil {
				return time.Since(start), ctx.Err()
			}
			g.b.down(err)
		}
		// The local share, in priority order: a reservation that must wait
		// is given back, so that a prompt request arriving meanwhile can
		// take the next token first.
		r := g.local.Reserve()
		d := r.Delay()
		if d == 0 {
			g.b.granted(g.cat, p, time.Since(start), false)
			return time.Since(start), nil
		}
		r.Cancel()
		if err := sleep(ctx, min(d, 50*time.Millisecond)); err != nil {
			return time.Since(start), err
		}
	}
}

// takeShared tries to take one request of the current second from the
// bucket. It returns whether it did, or how long to wait before trying
// again; an error means the bucket cannot be reached.
func (g *gate) takeShared(ctx context.Context, p zoom.Priority) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, g.b.cfg.OpTimeout)
	defer cancel()
	for range 50 {
		now := time.Now()
		sec := now.Unix()
		next := time.Unix(sec+1, 0)
		if next.Sub(now) < edgeGuard {
			return false, next.Sub(now) + jitter(), nil
		}
		var st slot
		var rev uint64
		e, err := g.b.get(ctx, g.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return false, 0, err
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				// A value this code did not write is replaced.
				st = slot{}
			}
		}
		g.learn(st)
		if hold := time.UnixMilli(st.HoldUntil); hold.After(now) {
			return false, 0, nil // take waits through the hold
		}
		if st.Second != sec {
			st.Second, st.N = sec, 0
		}
		if st.N >= g.capacity(p, st.Limit, st.PromptSecond >= sec-1) {
			return false, next.Sub(now) + jitter(), nil
		}
		st.N++
		if p == zoom.PriorityPrompt {
			st.PromptSecond = sec
		}
		if err := g.write(ctx, st, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			return false, 0, err
		}
		return true, 0, nil
	}
	// Fifty replicas' writes in a row came first: try again shortly.
	return false, 10 * time.Millisecond, nil
}

var errConflict = errors.New("ratebudget: changed concurrently")

// write stores st at key if it is still at revision rev (0: absent).
func (g *gate) write(ctx context.Context, st slot, rev uint64) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = g.b.kv.Create(ctx, g.key, data)
	} else {
		_, err = g.b.kv.Update(ctx, g.key, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return errConflict
	}
	return err
}

// learn keeps what the bucket says of holds and Zoom's limit.
func (g *gate) learn(st slot) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if hold := time.UnixMilli(st.HoldUntil); st.HoldUntil > 0 && hold.After(g.holdUntil) {
		g.holdUntil, g.daily = hold, st.Daily
	}
	if st.Limit > 0 {
		g.limit = st.Limit
	}
}

func (g *gate) hold() (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holdUntil, g.daily
}

// limited holds the account's category back after a 429, here at once and
// in the bucket for the other replicas.
func (g *gate) limited(l zoom.RateLimited) {
	g.mu.Lock()
	if l.Until.After(g.holdUntil) {
		g.holdUntil, g.daily = l.Until, l.Daily
	}
	if l.Limit > 0 {
		g.limit = l.Limit
	}
	g.mu.Unlock()
	g.b.cfg.Log.Warn().Str("account", g.key).Time("until", l.Until).Bool("daily", l.Daily).Int("zoom_limit", l.Limit).
		Msg("ratebudget: Zoom answered 429; holding the account's requests of the category back")
	if g.b.kv == nil || !g.b.coordinated(time.Now()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.b.cfg.OpTimeout)
	defer cancel()
	for range 50 {
		var st slot
		var rev uint64
		e, err := g.b.get(ctx, g.key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			g.b.down(err)
			return
		default:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &st) // a foreign value is replaced
		}
		if ms := l.Until.UnixMilli(); ms > st.HoldUntil {
			st.HoldUntil, st.Daily = ms, l.Daily
		}
		if l.Limit > 0 {
			st.Limit = l.Limit
		}
		if err := g.write(ctx, st, rev); errors.Is(err, errConflict) {
			continue
		} else if err != nil {
			g.b.down(err)
		}
		return
	}
}

// coordinated reports whether to use the bucket now: it is configured,
// and did not fail within the last Retry.
func (b *Budget) coordinated(now time.Time) bool {
	if b.kv == nil {
		return false
	}
	until := b.downUntil.Load()
	return until == 0 || now.UnixNano() >= until
}

func (b *Budget) down(err error) {
	b.cfg.Log.Debug().Err(err).Msg("ratebudget: bucket failed")
	next := time.Now().Add(b.cfg.Retry).UnixNano()
	if b.downUntil.Swap(next) == 0 {
		b.cfg.Log.Warn().Err(err).Dur("retry_in", b.cfg.Retry).
			Msg("ratebudget: the shared budget cannot be reached; pacing under this replica's conservative share")
		if b.cfg.Observer != nil {
			b.cfg.Observer.Coordinated(false)
		}
	}
}

func (b *Budget) up() {
	if b.downUntil.Swap(0) != 0 {
		b.cfg.Log.Info().Msg("ratebudget: the shared budget is back")
		if b.cfg.Observer != nil {
			b.cfg.Observer.Coordinated(true)
		}
	}
}

// Coordinated reports whether the budget uses the shared bucket at the
// moment (rather than the local share).
func (b *Budget) Coordinated() bool { return b.coordinated(time.Now()) }

func (b *Budget) granted(c zoom.Category, p zoom.Priority, waited time.Duration, shared bool) {
	if b.cfg.Observer != nil {
		b.cfg.Observer.Granted(c, p, waited, shared)
	}
}

// jitter spreads the replicas that wait for the same next second.
func jitter() time.Duration { return time.Duration(rand.Int64N(int64(5 * time.Millisecond))) }

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
