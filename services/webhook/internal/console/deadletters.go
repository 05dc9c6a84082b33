package console

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// deadLetterTTL is how long a count of the dead letters is shown before
// they are counted again.
const deadLetterTTL = 10 * time.Second

// maxDeadLetters bounds the dead letters read for one count.
const maxDeadLetters = 100_000

// deadLetters counts the messages waiting in ZOOM_DLQ for each connector,
// from the subject each was taken from (zoomctl dlq list shows them).
// One count at a time is read, without the lock: while it is read (up to
// readDeadLetters of NATS requests), pages are served the last counts.
type deadLetters struct {
	js  jetstream.JetStream
	now func() time.Time

	mu     sync.Mutex
	at     time.Time
	counts map[pipeline.ConnectorRef]int
	err    error
	// reading is closed when the count being read is stored; nil when
	// none is being read.
	reading chan struct{}
}

// readDeadLetters bounds the reading of one count.
const readDeadLetters = 5 * time.Second

// count returns the counts, and starts reading them again when they are
// older than deadLetterTTL. Only the first count, when there is none yet,
// is waited for (as long as ctx allows).
func (d *deadLetters) count(ctx context.Context) (map[pipeline.ConnectorRef]int, error) {
	d.mu.Lock()
	if d.counts != nil && d.now().Sub(d.at) < deadLetterTTL {
		defer d.mu.Unlock()
		return d.counts, d.err
	}
	if d.reading == nil {
		d.reading = make(chan struct{})
		go d.refresh(d.reading)
	}
	reading := d.reading
	if d.counts != nil {
		defer d.mu.Unlock()
		return d.counts, d.err
	}
	d.mu.Unlock()
	select {
	case <-reading:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts, d.err
}

// refresh reads the counts, of no request's context (a page that gave up
// leaves them to the next), and stores them; when they cannot be read,
// the last ones stay, with the error.
func (d *deadLetters) refresh(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), readDeadLetters)
	defer cancel()
	counts, err := d.read(ctx)
	d.mu.Lock()
	if err != nil && d.counts != nil {
		counts = d.counts // the last counts, with why they are not new
	}
	d.counts, d.err, d.at, d.reading = counts, err, d.now(), nil
	d.mu.Unlock()
	close(done)
}

func (d *deadLetters) read(ctx context.Context) (map[pipeline.ConnectorRef]int, error) {
	out := map[pipeline.ConnectorRef]int{}
	stream, err := d.js.Stream(ctx, pipeline.StreamDeadLetter)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return out, err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{HeadersOnly: true, DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxResetAttempts: 1})
	if err != nil {
		return out, err
	}
	for read := 0; read < maxDeadLetters; {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return out, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if ref, err := pipeline.FromSubject(m.Headers().Get(natsx.HeaderDLQSubject)); err == nil {
				out[ref]++
			}
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= info.State.LastSeq {
				return out, nil
			}
		}
		if n == 0 {
			return out, batch.Error()
		}
		read += n
	}
	return out, nil
}
