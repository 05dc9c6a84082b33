package natsx

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Dead-letter headers, set on every message moved to a dead-letter subject.
const (
	HeaderDLQReason   = "Zoom-Dlq-Reason"
	HeaderDLQStream   = "Zoom-Dlq-Stream"
	HeaderDLQSequence = "Zoom-Dlq-Sequence"
	HeaderDLQSubject  = "Zoom-Dlq-Subject"
	HeaderDLQConsumer = "Zoom-Dlq-Consumer"
	HeaderDLQAttempts = "Zoom-Dlq-Deliveries"
)

// ErrPermanent marks an error that no redelivery can cure (undecodable
// input, say): the message goes to the dead-letter subject at once.
var ErrPermanent = errors.New("permanent")

// ErrAbandon tells the loop to neither ack nor nak the message: the
// delivery is stale (a redelivery of it is being handled elsewhere), and
// only the current delivery may settle it.
var ErrAbandon = errors.New("abandoned delivery")

// Permanent wraps err so that the consume loop dead-letters the message.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// ErrUnavailable marks an error saying that something the handler needs (its
// database, say) cannot be reached: the message is not at fault. The loop
// keeps the message and handles it again, after a delay growing to
// Consumer.MaxUnavailableDelay, for as long as the error lasts; such failures do not
// count towards MaxDeliver, so that an outage of any length dead-letters
// nothing.
var ErrUnavailable = errors.New("unavailable")

// Unavailable wraps err so that the consume loop retries the message in
// place (see ErrUnavailable).
func Unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// DefaultMaxUnavailableDelay is Consumer.MaxUnavailableDelay's default.
const DefaultMaxUnavailableDelay = 10 * time.Second

// Handler handles one message. A nil error acks it; an error naks it with a
// delay, or dead-letters it when permanent or out of deliveries. A handler
// may ack, nak or term the message itself; the loop then does nothing more.
// The handler gets the message as stored: decoding its data (its encoding
// header, its envelope) is the handler's, so that the loop knows nothing of
// what the messages carry, and a message the handler cannot decode is its
// permanent error.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Observer is told the outcome of every message, for metrics.
type Observer interface {
	Handled(stream string, err error, d time.Duration)
	DeadLettered(stream string)
}

// Consumer describes a durable pull consumer and how its messages are handled.
type Consumer struct {
	Stream  string
	Durable string
	// FilterSubjects limits the consumer to some subjects of the stream.
	FilterSubjects []string
	// AckWait is how long a message may stay unacknowledged before the
	// server redelivers it; handlers that run longer call InProgress.
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one message before it is dead-lettered.
	MaxDeliver int
	// Concurrency is the number of messages handled at once.
	Concurrency int
	// Grace is how long in-flight handlers may run on after shutdown begins
	// before their context is cancelled.
	Grace time.Duration
	// DeadLetter is the subject failed messages go to; empty disables it.
	DeadLetter string
	// DeadLetterID returns the Nats-Msg-Id of the dead letter of the
	// message at sequence seq of stream, so that dead-lettering the same
	// message again (its acknowledgement lost) stores it once. The id
	// scheme belongs to whoever names the messages (pipeline.DeadLetterID
	// in the services); nil is "dlq/<stream>/<seq>".
	DeadLetterID func(stream string, seq uint64) string
	// KeepAlive tells the server, every third of AckWait, that each
	// message being handled is in progress: for handlers that may wait
	// longer than AckWait (on a database lock, say) without having failed.
	// A message is then redelivered only when its handler's process is
	// gone.
	KeepAlive bool
	// MaxUnavailableDelay is the longest wait between two attempts at a
	// message whose handler found a dependency unavailable (ErrUnavailable);
	// zero is DefaultMaxUnavailableDelay.
	MaxUnavailableDelay time.Duration
	Log                 zerolog.Logger
	Observer            Observer
}

func (c *Consumer) defaults() {
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 8
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Grace == 0 {
		c.Grace = 7 * time.Second
	}
	if c.MaxUnavailableDelay <= 0 {
		c.MaxUnavailableDelay = DefaultMaxUnavailableDelay
	}
}

// pullExpiry is how long one pull request lasts before the iterator makes
// a new one; the server's heartbeats come at half of it. A pull request the
// server no longer holds (lost in a reconnect, or counted wrongly by either
// side) is noticed when two heartbeats are missed: after 5 s rather than
// the 30 s of nats.go's default expiry, during which the consumer would
// receive nothing.
const pullExpiry = 5 * time.Second

// Redelivery delay for the n-th failed delivery: 250ms doubling to 30s.
func nakDelay(delivered uint64) time.Duration {
	d := 250 * time.Millisecond
	for i := uint64(1); i < delivered && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}

// Run consumes until ctx is cancelled, then stops fetching, lets in-flight
// handlers finish within Grace and returns nil. Infrastructure errors (NATS
// restarting, the consumer gone) are logged and retried, never returned.
func (c Consumer) Run(ctx context.Context, js jetstream.JetStream, h Handler) error {
	c.defaults()
	// Handlers get their own context, cancelled Grace after ctx, so that a
	// shutdown finishes in-flight work instead of abandoning it.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.Grace, cancelWork)
		<-work.Done()
		t.Stop()
	})
	defer stop()

	slots := make(chan struct{}, c.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()

	var cons jetstream.Consumer
	retry := 100 * time.Millisecond
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			cons, err = js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
				Durable:        c.Durable,
				FilterSubjects: c.FilterSubjects,
				AckPolicy:      jetstream.AckExplicitPolicy,
				AckWait:        c.AckWait,
				// The loop counts deliveries itself and dead-letters at
				// MaxDeliver. The server redelivers without a bound, so
				// that a message whose dead-lettering failed (the
				// dead-letter stream away) comes back to be dead-lettered
				// again rather than stay unacknowledged for good.
				MaxDeliver:    -1,
				MaxAckPending: max(1000, c.Concurrency*4),
			})
			if err != nil {
				if ctx.Err() == nil {
					c.Log.Warn().Err(err).Str("stream", c.Stream).Msg("create consumer; retrying")
				}
				sleep(ctx, retry)
				retry = min(retry*2, 5*time.Second)
				continue
			}
		}
		// A continuous pull keeps up to Concurrency messages buffered, so
		// a free worker never waits for a request round trip.
		it, err := cons.Messages(jetstream.PullMaxMessages(c.Concurrency), jetstream.PullExpiry(pullExpiry))
		if err != nil {
			c.Log.Warn().Err(err).Str("stream", c.Stream).Msg("pull; retrying")
			cons = nil
			sleep(ctx, retry)
			retry = min(retry*2, 5*time.Second)
			continue
		}
		retry = 100 * time.Millisecond
		for ctx.Err() == nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				<-slots
				if ctx.Err() != nil {
					break
				}
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					continue // the iterator re-establishes the pull itself
				}
				c.Log.Warn().Err(err).Str("stream", c.Stream).Msg("pull ended; restarting")
				cons = nil
				sleep(ctx, retry)
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				c.handle(work, js, msg, h)
			}()
		}
		if ctx.Err() != nil {
			// Hand buffered, unstarted messages back at once rather than
			// leave them to their ack wait.
			it.Drain()
			for {
				msg, err := it.Next(jetstream.NextMaxWait(200 * time.Millisecond))
				if err != nil {
					break
				}
				_ = msg.Nak()
			}
		}
		it.Stop()
	}
	return nil
}

func (c Consumer) handle(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg, h Handler) {
	start := time.Now()
	var delivered uint64 = 1
	var streamSeq uint64
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
		streamSeq = md.Sequence.Stream
	}
	if c.KeepAlive {
		kctx, stop := context.WithCancel(ctx)
		defer stop()
		go KeepAlive(kctx, msg, max(c.AckWait/3, 100*time.Millisecond))
	}
	err := safeHandle(ctx, msg, h)
	if errors.Is(err, ErrUnavailable) {
		err = c.untilAvailable(ctx, msg, h, err)
	}
	if c.Observer != nil {
		c.Observer.Handled(c.Stream, err, time.Since(start))
	}
	if errors.Is(err, ErrAbandon) {
		return
	}
	if err == nil {
		if aerr := msg.Ack(); aerr != nil && !errors.Is(aerr, jetstream.ErrMsgAlreadyAckd) {
			c.Log.Warn().Err(aerr).Str("subject", msg.Subject()).Msg("ack")
		}
		return
	}
	log := c.Log.With().Err(err).Str("stream", c.Stream).Str("subject", msg.Subject()).
		Uint64("stream_seq", streamSeq).Uint64("delivered", delivered).Logger()
	if ctx.Err() != nil && !errors.Is(err, ErrPermanent) {
		// Shutting down: hand the message back at once for another replica.
		_ = msg.Nak()
		log.Info().Msg("handed back on shutdown")
		return
	}
	if !errors.Is(err, ErrPermanent) && int(delivered) < c.MaxDeliver {
		delay := nakDelay(delivered)
		log.Warn().Dur("retry_in", delay).Msg("message failed; will retry")
		_ = msg.NakWithDelay(delay)
		return
	}
	if c.DeadLetter == "" {
		log.Error().Msg("message failed for good; dropped (no dead-letter subject)")
		_ = msg.Term()
		return
	}
	dl := nats.NewMsg(c.DeadLetter)
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		// Publish expectations (message id, expected stream or sequence)
		// were about the original publication; on the dead letter they
		// would be checked against the wrong stream.
		if k != jetstream.MsgIDHeader && !strings.HasPrefix(k, "Nats-Expected") {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(HeaderDLQReason, truncate(err.Error(), 1000))
	dl.Header.Set(HeaderDLQStream, c.Stream)
	dl.Header.Set(HeaderDLQSequence, strconv.FormatUint(streamSeq, 10))
	dl.Header.Set(HeaderDLQSubject, msg.Subject())
	dl.Header.Set(HeaderDLQConsumer, c.Durable)
	dl.Header.Set(HeaderDLQAttempts, strconv.FormatUint(delivered, 10))
	dl.Header.Set(jetstream.MsgIDHeader, c.deadLetterID(streamSeq))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, perr := js.PublishMsg(pctx, dl); perr != nil {
		log.Error().AnErr("dlq_error", perr).Msg("dead-letter publish; will retry")
		_ = msg.NakWithDelay(nakDelay(delivered))
		return
	}
	if c.Observer != nil {
		c.Observer.DeadLettered(c.Stream)
	}
	log.Error().Str("dead_letter", c.DeadLetter).Msg("message dead-lettered")
	_ = msg.Ack()
}

// deadLetterID is the Nats-Msg-Id of the dead letter of the message at
// sequence seq of the consumer's stream.
func (c Consumer) deadLetterID(seq uint64) string {
	if c.DeadLetterID != nil {
		return c.DeadLetterID(c.Stream, seq)
	}
	return "dlq/" + c.Stream + "/" + strconv.FormatUint(seq, 10)
}

// untilAvailable handles msg again, with growing delays, while the handler
// finds a dependency unavailable, and returns the first other outcome. The
// message is kept meanwhile (the server is told it is in progress), so that
// it is neither redelivered nor counted as failing. When ctx ends it
// returns the last error, and the message is handed back.
func (c Consumer) untilAvailable(ctx context.Context, msg jetstream.Msg, h Handler, err error) error {
	if !c.KeepAlive { // else handle keeps it alive already
		kctx, stop := context.WithCancel(ctx)
		defer stop()
		go KeepAlive(kctx, msg, max(c.AckWait/3, 100*time.Millisecond))
	}
	delay := 250 * time.Millisecond
	for n := 1; errors.Is(err, ErrUnavailable); n++ {
		if n == 1 || n%10 == 0 {
			c.Log.Warn().Err(err).Str("stream", c.Stream).Str("subject", msg.Subject()).Int("attempts", n).
				Msg("a dependency is unavailable; the message is kept and retried")
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, c.MaxUnavailableDelay)
		err = safeHandle(ctx, msg, h)
	}
	return err
}

// safeHandle turns a handler panic into a permanent error, so that one bad
// message cannot take the service down with it.
func safeHandle(ctx context.Context, msg jetstream.Msg, h Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", r))
		}
	}()
	return h(ctx, msg)
}

// KeepAlive tells the server every interval that msg is still being worked
// on, until ctx ends. It is for handlers that run longer than AckWait.
func KeepAlive(ctx context.Context, msg jetstream.Msg, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = msg.InProgress()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// truncate is s cut to at most n bytes, before a character (never inside
// one), with no marker: the dead-letter reason header keeps its size.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
