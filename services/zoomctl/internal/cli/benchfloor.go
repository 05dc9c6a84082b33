package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The JetStream floor: the change events of a full sync published into a
// fresh stream configured like CLARITY_ENTITLEMENTS, on the same server, with
// nothing else running. Every change must reach that stream one event at a
// time, so this is what a sync costs NATS at the least, as the COPY floor
// is what it costs PostgreSQL at the least.
const (
	floorStream  = "BENCH_FLOOR"
	floorSubject = "zoom.bench.floor"
	floorSamples = 1000 // events copied from the sync, spread over it
	floorPending = 2048 // publications awaiting their acknowledgement
)

// sampleEvents returns up to k of the events with stream sequences in
// [first, last], evenly spread, so that the floor publishes the sync's mix
// of kinds and sizes.
func sampleEvents(ctx context.Context, stream jetstream.Stream, first, last uint64, k int) ([]*jetstream.RawStreamMsg, error) {
	if last < first {
		return nil, errors.New("no events to sample")
	}
	span := last - first + 1
	step := max(1, span/uint64(k))
	var out []*jetstream.RawStreamMsg
	for seq := first; seq <= last && len(out) < k; seq += step {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("read event %d: %w", seq, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// jetStreamFloor publishes n events, cycling through samples, into a fresh
// stream and returns the seconds until JetStream acknowledged them all. The
// events keep their headers (a new Nats-Msg-Id each) and bodies; the
// acknowledgements are counted on one subscription, as the writer's relay
// does. The stream is deleted afterwards.
func jetStreamFloor(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, samples []*jetstream.RawStreamMsg, n int) (float64, error) {
	if len(samples) == 0 {
		return 0, errors.New("no sample events")
	}
	var cfg jetstream.StreamConfig
	for _, c := range pipeline.Streams(1) {
		if c.Name == clarity.StreamEntitlements {
			cfg = c
		}
	}
	cfg.Name, cfg.Subjects, cfg.Description = floorStream, []string{floorSubject + ".>"}, "zoomctl bench: JetStream floor"
	_ = js.DeleteStream(ctx, floorStream)
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		return 0, fmt.Errorf("create %s: %w", floorStream, err)
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), floorStream) }()

	msgs := make([]*nats.Msg, len(samples))
	for i, s := range samples {
		kind := s.Subject[strings.LastIndexByte(s.Subject, '.')+1:]
		// Each publication clones these headers before it sets its id.
		msgs[i] = &nats.Msg{Subject: floorSubject + "." + kind, Header: s.Header, Data: s.Data}
	}

	var (
		mu     sync.Mutex
		acked  int
		ackErr error
		signal = make(chan struct{}, 1)
	)
	inbox := nc.NewInbox()
	sub, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		mu.Lock()
		acked++
		if ackErr == nil && (len(m.Data) == 0 || bytes.Contains(m.Data, []byte(`"error"`))) {
			ackErr = fmt.Errorf("publish: %s %.200s", m.Header.Get("Status"), m.Data)
		}
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return 0, err
	}
	waitFor := func(want int) error {
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			mu.Lock()
			a, e := acked, ackErr
			mu.Unlock()
			if e != nil {
				return e
			}
			if a >= want {
				return nil
			}
			select {
			case <-signal:
			case <-timeout.C:
				return fmt.Errorf("%d of %d acknowledgements within 30s", a, want)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	start := time.Now()
	for i := range n {
		if i >= floorPending {
			mu.Lock()
			behind := i-acked >= floorPending
			mu.Unlock()
			if behind {
				if err := waitFor(i - floorPending/2); err != nil {
					return 0, err
				}
			}
		}
		src := msgs[i%len(msgs)]
		m := &nats.Msg{Subject: src.Subject, Reply: inbox, Header: maps.Clone(src.Header), Data: src.Data}
		m.Header.Set(jetstream.MsgIDHeader, "floor/"+strconv.Itoa(i))
		if err := nc.PublishMsg(m); err != nil {
			return 0, err
		}
	}
	if err := waitFor(n); err != nil {
		return 0, err
	}
	d := time.Since(start).Seconds()
	info, err := js.Stream(ctx, floorStream)
	if err != nil {
		return 0, err
	}
	st, err := info.Info(ctx)
	if err != nil {
		return 0, err
	}
	if st.State.Msgs != uint64(n) {
		return 0, fmt.Errorf("the floor stream holds %d events, not %d", st.State.Msgs, n)
	}
	return d, nil
}
