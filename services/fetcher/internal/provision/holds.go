package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// holds marks the users a write is under way for (pipeline.ProvisionHoldBucket):
// the writer holds back their incremental changes (a webhook Zoom sends for
// the write, a re-read) until the write's result is committed, so that the
// changes follow the result's event. The writer lifts the marks.
type holds struct {
	kv jetstream.KeyValue
	// renewEvery is how often the marks of a running action are written
	// again, so that they outlive the bucket's TTL while it runs (a Zoom
	// call may retry for minutes).
	renewEvery time.Duration
	log        zerolog.Logger
}

func openHolds(ctx context.Context, js jetstream.JetStream, replicas int, log zerolog.Logger) (*holds, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, pipeline.ProvisionHoldConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("open provisioning holds bucket: %w", err)
	}
	return &holds{kv: kv, renewEvery: pipeline.ProvisionHoldTTL / 3, log: log}, nil
}

// marks are the marks of one request: made when its write is due, renewed
// until its action ends.
type marks struct {
	h        *holds
	c        pipeline.ConnectorRef
	auditKey string

	mu   sync.Mutex
	revs map[string]uint64 // by bucket key, the revision last written
	stop chan struct{}
	done chan struct{}
}

// forRequest returns the marks of request auditKey of connector c.
func (h *holds) forRequest(c pipeline.ConnectorRef, auditKey string) *marks {
	return &marks{h: h, c: c, auditKey: auditKey, revs: map[string]uint64{}}
}

// mark marks each of who (user keys, emails): the mark names the request,
// so that only its result lifts it, not that of an earlier request for the
// same user. The marks are renewed until end.
func (m *marks) mark(ctx context.Context, who []string) error {
	for _, w := range who {
		key := pipeline.ProvisionHoldKey(m.c, w)
		rev, err := m.h.kv.Put(ctx, key, []byte(m.auditKey))
		if err != nil {
			return fmt.Errorf("mark a provisioning write under way: %w", err)
		}
		m.mu.Lock()
		m.revs[key] = rev
		m.mu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stop == nil {
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.renew(context.WithoutCancel(ctx), m.stop, m.done)
	}
	return nil
}

// renew writes the marks again every renewEvery until stop is closed (by
// end): each at the revision it wrote, so that a mark another request made
// since stays its. It takes its channels as arguments: end clears the
// fields before it closes stop.
func (m *marks) renew(ctx context.Context, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(m.h.renewEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		for key, rev := range m.revs {
			r, err := m.h.kv.Update(ctx, key, []byte(m.auditKey), rev)
			switch {
			case err == nil:
				m.revs[key] = r
			case errors.Is(err, jetstream.ErrKeyExists):
				delete(m.revs, key) // marked again by another request, or lifted
			default:
				m.h.log.Warn().Err(err).Msg("provisioning: a hold mark not renewed; tried again")
			}
		}
		m.mu.Unlock()
	}
}

// end stops renewing the marks; the writer lifts them with the result.
func (m *marks) end() {
	m.mu.Lock()
	stop, done := m.stop, m.done
	m.stop = nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
