// Package relay publishes the outbox: change rows committed with the records
// become CloudEvents on clarity.entitlements.>, in sequence order, with
// Nats-Msg-Id equal to the event id, and are deleted once JetStream has them.
// A crash between publish and delete publishes the same ids again, which
// JetStream's duplicate window and consumers drop.
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
)

// Observer is told what the relay published, for metrics.
type Observer interface {
	Published(kind, op string, n int)
	Lag(d time.Duration)
}

// SyncObserver, when the Observer implements it, is told of every run's end
// as it is published.
type SyncObserver interface {
	SyncEnded(c pipeline.ConnectorRef, op string, d clarity.SyncData)
}

// Relay moves outbox rows to JetStream.
type Relay struct {
	pool     *pgxpool.Pool
	js       jetstream.JetStream
	log      zerolog.Logger
	wake     chan struct{}
	batch    int
	interval time.Duration
	obs      Observer
	pub      *publisher // made at the first round
}

// Config configures a Relay.
type Config struct {
	// Pool is the writer's database, whose outbox the relay publishes.
	Pool *pgxpool.Pool
	// JetStream publishes the events. Its connection must not buffer
	// publications while it reconnects (nats.ReconnectBufSize(-1)): see
	// Relay.connector.
	JetStream jetstream.JetStream
	Log       zerolog.Logger
	// Batch is about how many changes of one connector a round publishes,
	// in one transaction; zero is 10,000.
	Batch int
	// Interval is how often the relay looks for rows that other replicas
	// committed (this replica's store wakes it, see Wake); zero is 200 ms.
	Interval time.Duration
	// Observer, which may be nil, is told what the relay published.
	Observer Observer
}

// New returns a relay configured by cfg.
func New(cfg Config) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 10000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	return &Relay{pool: cfg.Pool, js: cfg.JetStream, log: cfg.Log, wake: make(chan struct{}, 1),
		batch: cfg.Batch, interval: cfg.Interval, obs: cfg.Observer}
}

// Wake asks the relay to look at the outbox now. It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends. Errors (NATS or Postgres away) are logged and
// retried; the rows stay in the outbox meanwhile.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	backoff := r.interval
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := r.Once(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn().Err(err).Msg("relay outbox; retrying")
				}
				if n > 0 {
					continue // other connectors are still publishing
				}
				if ctx.Err() == nil {
					sleep(ctx, backoff)
					backoff = min(backoff*2, 5*time.Second)
				}
				break
			}
			backoff = r.interval
			if n == 0 {
				break
			}
		}
	}
}

// Once publishes one batch of every connector whose outbox holds rows, and
// returns how many changes it published. A connector that fails (its rows
// cannot be published now) does not hold back the others: its error is
// returned with theirs once every connector has had its turn.
func (r *Relay) Once(ctx context.Context) (int, error) {
	ids, err := outbox.Pending(ctx, r.pool)
	if err != nil {
		return 0, err
	}
	total := 0
	var errs []error
	for _, id := range ids {
		n, err := r.connector(ctx, id)
		total += n
		if err != nil {
			if ctx.Err() != nil {
				return total, err
			}
			errs = append(errs, fmt.Errorf("connector %d: %w", id, err))
		}
	}
	return total, errors.Join(errs...)
}

// maxPending bounds the publications awaiting their acknowledgement.
const maxPending = 2048

// rowsPerRound bounds the outbox rows one round reads. Each holds the
// changes of one transaction (a page: a few thousand) or, for a transaction
// that makes many, of a part of it (10,000 to 20,000), so a handful make a
// round of r.batch changes.
const rowsPerRound = 16

// ackTimeout bounds the wait for one window of acknowledgements.
const ackTimeout = 30 * time.Second

// connector publishes the oldest outbox rows of one connector, at least one
// row and about r.batch changes, and deletes them once JetStream has
// acknowledged every change.
func (r *Relay) connector(ctx context.Context, id int64) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// One relay per connector at a time keeps the stream in sequence order.
	locked, err := outbox.TryLock(ctx, tx, id)
	if err != nil || !locked {
		return 0, err
	}
	list, err := outbox.Read(ctx, tx, id, rowsPerRound, r.batch)
	if err != nil || len(list) == 0 {
		return 0, err
	}
	// Publications are asynchronous: should the connection drop, those on
	// the wire may be lost while later ones, sent after a reconnection,
	// would be stored, out of sequence order. So the round stops at the
	// first sign of a lost connection (its publications fail at once: the
	// connection buffers none while reconnecting) and the next round
	// publishes again from its first row; JetStream drops what it has.
	if r.pub == nil {
		var err error
		if r.pub, err = newPublisher(r.js.Conn()); err != nil {
			return 0, err
		}
	}
	p := r.pub
	msg := nats.NewMsg("")
	msg.Reply = p.begin()
	var buf []byte
	total := 0
	type key struct{ kind, op string }
	counts := map[key]int{}
	var ended []syncEnd
	for _, b := range list {
		batch, err := outbox.DecodeChanges(b.Changes, b.Encoding)
		if err != nil {
			return 0, fmt.Errorf("outbox row %d: %w", b.First, err)
		}
		if want := b.Last - b.First + 1; int64(len(batch.Changes)) != want {
			return 0, fmt.Errorf("outbox row %d: got %d changes, want %d", b.First, len(batch.Changes), want)
		}
		for i, c := range batch.Changes {
			ev := clarity.NewEvent(b.Connector.Tenant, b.Connector.ID, b.First+int64(i), c.Kind, c.Op, c.Subject, b.At, c.Data)
			ev.Removal = c.Removal
			// One message and one buffer serve every event: a publication
			// copies them before it returns.
			buf = ev.AppendJSON(buf[:0])
			msg.Subject, msg.Data = pipeline.EventSubject(b.Connector, c.Kind), buf
			msg.Header.Set("Content-Type", clarity.ContentType)
			msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
			if err := p.publish(ctx, msg); err != nil {
				return 0, fmt.Errorf("publish %s: %w", ev.ID, err)
			}
			counts[key{c.Kind, c.Op}]++
			if c.Kind == clarity.KindSync && c.Op != clarity.OpStarted {
				ended = append(ended, syncEnd{b.Connector, c.Op, c.Data})
			}
		}
		total += len(batch.Changes)
	}
	if err := p.wait(ctx); err != nil {
		return 0, err
	}
	if err := outbox.Delete(ctx, tx, id, list[len(list)-1].First); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("mark published: %w", err)
	}
	if r.obs != nil {
		for k, n := range counts {
			r.obs.Published(k.kind, k.op, n)
		}
		if so, ok := r.obs.(SyncObserver); ok {
			for _, e := range ended {
				var d clarity.SyncData
				if json.Unmarshal(e.data, &d) == nil {
					so.SyncEnded(e.connector, e.op, d)
				}
			}
		}
		r.obs.Lag(time.Since(list[0].At))
	}
	return total, nil
}

type syncEnd struct {
	connector pipeline.ConnectorRef
	op        string
	data      []byte
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
