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
type deadLetters struct {
	js  jetstream.JetStream
	now func() time.Time

	mu     sync.Mutex
	at     time.Time
	counts map[pipeline.ConnectorRef]int
	err    error
}

// count returns the counts, read again when older than deadLetterTTL.
func (d *deadLetters) count(ctx context.Context) (map[pipeline.ConnectorRef]int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.counts != nil && d.now().Sub(d.at) < deadLetterTTL {
		return d.counts, d.err
	}
	d.counts, d.err = d.read(ctx)
	d.at = d.now()
	return d.counts, d.err
}

func (d *deadLetters) read(ctx context.Context) (map[pipeline.ConnectorRef]int, error) {
	out := map[pipeline.ConnectorRef]int{}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
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
