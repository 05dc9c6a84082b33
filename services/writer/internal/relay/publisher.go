package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// publisher publishes a round's events asynchronously, with at most
// maxPending awaiting their acknowledgement, on one connection that must
// not drop meanwhile.
//
// JetStream acknowledges a publication by replying to it. Every publication
// of a round names the same reply subject, the round's, in the relay's own
// inbox, and one subscription counts the replies: per event there is no
// reply subject, future, timer or JSON decoding to make, which the nats.go
// JetStream client's asynchronous publishing spends on each (at a million
// events per sync, more than the publication itself). Replies to an earlier
// round, late, are ignored.
type publisher struct {
	nc     *nats.Conn
	inbox  string // the relay's inbox; a round replies to inbox.<round>
	signal chan struct{}

	reconnects uint64 // at the round's start
	sent       int    // publications of the round

	mu    sync.Mutex
	reply string // the current round's reply subject
	round uint64
	acked int
	err   error // the round's first failed acknowledgement
}

func newPublisher(nc *nats.Conn) (*publisher, error) {
	p := &publisher{nc: nc, inbox: nc.NewInbox(), signal: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(p.inbox+".*", p.handle)
	if err != nil {
		return nil, fmt.Errorf("subscribe to acknowledgements: %w", err)
	}
	// Bounded by maxPending, not by the client's defaults.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, fmt.Errorf("subscribe to acknowledgements: %w", err)
	}
	return p, nil
}

// begin starts a round and returns the reply subject its publications
// name.
func (p *publisher) begin() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.round++
	p.reply = p.inbox + "." + strconv.FormatUint(p.round, 10)
	p.acked, p.err = 0, nil
	p.sent = 0
	p.reconnects = p.nc.Stats().Reconnects
	return p.reply
}

// handle counts one acknowledgement.
func (p *publisher) handle(m *nats.Msg) {
	err := ackError(m)
	p.mu.Lock()
	if m.Subject != p.reply {
		p.mu.Unlock()
		return
	}
	p.acked++
	if err != nil && p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// ackError returns the error a JetStream reply reports, if any.
func ackError(m *nats.Msg) error {
	if status := m.Header.Get("Status"); status != "" {
		if status == "503" {
			return errors.New("no stream captures the subject (no responders)")
		}
		return fmt.Errorf("status %s %s", status, m.Header.Get("Description"))
	}
	if !bytes.Contains(m.Data, []byte(`"error"`)) && bytes.Contains(m.Data, []byte(`"stream"`)) {
		return nil // {"stream":"…","seq":…}, the common case
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil || (resp.Error == nil && resp.Stream == "") {
		return fmt.Errorf("unexpected acknowledgement %.100q", m.Data)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s (code %d, error code %d)", resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	}
	return nil
}

// errConnectionLost stops a round whose connection dropped.
var errConnectionLost = errors.New("relay: NATS connection lost during the round")

// lost reports whether the connection dropped since the round began.
func (p *publisher) lost() bool {
	return !p.nc.IsConnected() || p.nc.Stats().Reconnects != p.reconnects
}

// publish publishes msg, whose Reply is the round's subject (begin).
func (p *publisher) publish(ctx context.Context, msg *nats.Msg) error {
	if p.lost() {
		return errConnectionLost
	}
	// A failed publication ends the round: those after it, stored, would
	// precede it in the stream once the next round publishes it again.
	if err := p.failed(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if p.sent-p.acknowledged() >= maxPending {
		// Wait for the older half only, so that publishing goes on while
		// the newer half is being stored.
		if err := p.waitFor(ctx, p.sent-maxPending/2); err != nil {
			return err
		}
	}
	if err := p.nc.PublishMsg(msg); err != nil {
		return err
	}
	p.sent++
	return nil
}

// failed returns the round's first failed acknowledgement, if any.
func (p *publisher) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *publisher) acknowledged() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// wait returns once every publication of the round is acknowledged, or
// with the first error.
func (p *publisher) wait(ctx context.Context) error { return p.waitFor(ctx, p.sent) }

// waitFor returns once n publications of the round are acknowledged, or
// with the first error. Replies come in the order of the publications.
func (p *publisher) waitFor(ctx context.Context, n int) error {
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	// A reply lost with the connection never comes: the round stops as
	// soon as the connection is seen to drop.
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	for {
		p.mu.Lock()
		acked, err := p.acked, p.err
		p.mu.Unlock()
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		if acked >= n {
			return nil
		}
		select {
		case <-p.signal:
		case <-check.C:
			if p.lost() {
				return errConnectionLost
			}
		case <-timeout.C:
			return fmt.Errorf("publish: %d of %d acknowledgements within %s", acked, n, ackTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
