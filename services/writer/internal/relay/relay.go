// Package relay publishes the outbox: change rows committed with the records
// become CloudEvents on clarity.entitlements.>, in sequence order, with
// Nats-Msg-Id equal to the event id, and are deleted once JetStream has them.
// A crash between publish and delete publishes the same ids again, which
// JetStream's duplicate window and consumers drop.
package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// Observer is told what the relay published, for metrics.
type Observer interface {
	Published(kind, op string, n int)
	Lag(d time.Duration)
}

// SyncObserver, when the Observer implements it, is told of every run's end
// as it is published.
type SyncObserver interface {
	SyncEnded(tenant, connector, op string, d clarity.SyncData)
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
}

// New returns a relay publishing up to batch rows per transaction and
// polling every interval for rows other replicas committed.
func New(pool *pgxpool.Pool, js jetstream.JetStream, log zerolog.Logger, batch int, interval time.Duration, obs Observer) *Relay {
	if batch <= 0 {
		batch = 1000
	}
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	return &Relay{pool: pool, js: js, log: log, wake: make(chan struct{}, 1), batch: batch, interval: interval, obs: obs}
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
// returns how many rows it published.
func (r *Relay) Once(ctx context.Context) (int, error) {
	// One index probe per connector: the outbox churns through every change,
	// and a scan of it would also read the dead rows vacuum has not reclaimed.
	rows, err := r.pool.Query(ctx, `
		SELECT c.id FROM connectors c
		WHERE EXISTS (SELECT 1 FROM outbox o WHERE o.connector_id = c.id)`)
	if err != nil {
		return 0, fmt.Errorf("list outbox: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("list outbox: %w", err)
	}
	total := 0
	for _, id := range ids {
		n, err := r.connector(ctx, id)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// lockSpace keeps the relay's advisory locks apart from any other use.
const lockSpace = 0x5a4f4f4d

type row struct {
	seq                     int64
	kind, op, subject, data string
	at                      time.Time
	tenant, connector       string
}

func (r *Relay) connector(ctx context.Context, id int64) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	// One relay per connector at a time keeps the stream in sequence order.
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, lockSpace, int32(id)).Scan(&locked); err != nil {
		return 0, fmt.Errorf("lock outbox: %w", err)
	}
	if !locked {
		return 0, nil
	}
	q, err := tx.Query(ctx, `
		SELECT o.seq, o.kind, o.op, o.subject, o.data::text, o.at, c.tenant, c.connector
		FROM outbox o JOIN connectors c ON c.id = o.connector_id
		WHERE o.connector_id = $1 ORDER BY o.seq LIMIT $2`, id, r.batch)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	var list []row
	for q.Next() {
		var x row
		if err := q.Scan(&x.seq, &x.kind, &x.op, &x.subject, &x.data, &x.at, &x.tenant, &x.connector); err != nil {
			q.Close()
			return 0, fmt.Errorf("read outbox: %w", err)
		}
		list = append(list, x)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(list) == 0 {
		return 0, nil
	}
	futures := make([]jetstream.PubAckFuture, 0, len(list))
	for _, x := range list {
		ev := clarity.NewEvent(x.tenant, x.connector, x.seq, x.kind, x.op, x.subject, x.at, json.RawMessage(x.data))
		body, err := json.Marshal(ev)
		if err != nil {
			return 0, fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		msg := nats.NewMsg(clarity.EventSubject(x.tenant, x.connector, x.kind))
		msg.Data = body
		msg.Header.Set("Content-Type", clarity.ContentType)
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("publish: %w", err)
		case <-timeout.C:
			return 0, fmt.Errorf("publish: no acknowledgement within 30s")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	last := list[len(list)-1].seq
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE connector_id = $1 AND seq <= $2`, id, last); err != nil {
		return 0, fmt.Errorf("mark published: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("mark published: %w", err)
	}
	if r.obs != nil {
		so, _ := r.obs.(SyncObserver)
		for _, x := range list {
			r.obs.Published(x.kind, x.op, 1)
			if so != nil && x.kind == clarity.KindSync && x.op != clarity.OpStarted {
				var d clarity.SyncData
				if json.Unmarshal([]byte(x.data), &d) == nil {
					so.SyncEnded(x.tenant, x.connector, x.op, d)
				}
			}
		}
		r.obs.Lag(time.Since(list[0].at))
	}
	return len(list), nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
