// Package provision is the fetcher's provisioning worker: it carries out
// the grants and revocations Clarity asks for on zoom.provision.<tenant>.<connector>
// with each connector's own Zoom client (its tokens, its account's pacing),
// reading Zoom first so that an effect already in place makes no write, and
// reading back after a write so that only what Zoom shows is claimed.
//
// Requests are read in stream order, from the first one not yet served;
// those of one user run one at a time in that order, those of different
// users side by side. A request's progress is kept in a JetStream bucket
// (idempotency.go), so that a request id runs once and answers its first
// result, also when the worker dies half-way: the request is then taken up
// again from the stream, in order. The result goes to the Clarity-Reply-To
// subject, when the request names one, and to the writer, which publishes
// it as an event in sequence with the records the action changed, and then
// has those records read again from Zoom.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/semaphore"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// maxAheadBytes bounds the bytes of the requests read ahead of their turn;
// requestOverhead is what a request costs beyond its body.
const (
	maxAheadBytes   = 64 << 20
	requestOverhead = 1 << 10
)

// Defaults of Config.
const (
	DefaultWorkers     = 64
	DefaultMaxInFlight = 2048
	DefaultGrace       = 5 * time.Second
)

// Config configures a Worker.
type Config struct {
	// JetStream reads the requests and keeps their progress; Conn publishes
	// the replies.
	JetStream jetstream.JetStream
	Conn      *nats.Conn
	// Clients gives each connector's Zoom client, or why it is not served.
	Clients runner.Clients
	// Replicas of the provisioning bucket.
	Replicas int
	// Keep is how long a request's result is kept to answer its id again,
	// default pipeline.DefaultProvisionKeep.
	Keep time.Duration
	// Workers bounds the users served at once, default DefaultWorkers.
	Workers int
	// MaxInFlight bounds the requests read ahead of their turn, default
	// DefaultMaxInFlight.
	MaxInFlight int
	// Grace is how long the requests running when the worker stops may
	// take to finish, default DefaultGrace; the others are taken up again
	// at the next start.
	Grace time.Duration
	// Holder names this replica in the provisioning lease.
	Holder string
	// Observer, when set, is told of each request served.
	Observer Observer
	Log      zerolog.Logger
}

// Worker serves provisioning requests.
type Worker struct {
	cfg    Config
	ledger *ledger
	holds  *holds
	lease  *lease
	now    func() time.Time
}

// New opens the provisioning bucket and returns a Worker.
func New(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.Keep <= 0 {
		cfg.Keep = pipeline.DefaultProvisionKeep
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	l, err := openLedger(ctx, cfg.JetStream, cfg.Replicas, cfg.Keep)
	if err != nil {
		return nil, err
	}
	if cfg.Holder == "" {
		cfg.Holder = "fetcher"
	}
	// Each process holds the lease under a name of its own: a restarted
	// replica is another holder.
	holder := cfg.Holder + "/" + strconv.Itoa(os.Getpid()) + "/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ls, err := openLease(ctx, cfg.JetStream, cfg.Replicas, holder, cfg.Log)
	if err != nil {
		return nil, err
	}
	h, err := openHolds(ctx, cfg.JetStream, cfg.Replicas, cfg.Log)
	if err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, ledger: l, holds: h, lease: ls, now: time.Now}, nil
}

// Run serves requests, whenever this replica holds the provisioning
// lease, until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	return w.lease.hold(ctx, w.serve)
}

// serve serves requests until ctx ends.
func (w *Worker) serve(ctx context.Context) error {
	stream, err := w.cfg.JetStream.Stream(ctx, pipeline.StreamProvision)
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("provisioning: %w", err)
	}
	// Running requests get Grace to finish once ctx ends because the
	// worker stops; when the lease was lost, another replica may serve the
	// same requests already: they are cut short at once.
	jobs, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			it.Stop()
			grace := w.cfg.Grace
			if errors.Is(context.Cause(ctx), errLeaseLost) {
				grace = 0
			}
			t := time.AfterFunc(grace, cancel)
			<-stopped
			t.Stop()
		case <-stopped:
		}
	}()
	q := newUserQueues(w.cfg.Workers)
	slots := make(chan struct{}, w.cfg.MaxInFlight)
	ahead := semaphore.NewWeighted(maxAheadBytes)
	w.cfg.Log.Info().Msg("provisioning worker started")
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		msg, err := it.Next()
		if err != nil {
			<-slots
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			w.cfg.Log.Warn().Err(err).Msg("provisioning: reading requests")
			continue
		}
		// What the requests read ahead hold is bounded too: a request may
		// be as large as a NATS message.
		weight := min(int64(len(msg.Data()))+requestOverhead, maxAheadBytes)
		if err := ahead.Acquire(ctx, weight); err != nil {
			<-slots
			break
		}
		key := queueKey(msg)
		q.submit(key, func() {
			defer func() { ahead.Release(weight); <-slots }()
			if ctx.Err() != nil {
				return // not begun: taken up again at the next start
			}
			w.serveOne(jobs, stream, msg)
		})
	}
	q.wait()
	close(stopped)
	return nil
}

// queueKey is the queue of a request: its connector and user, so that one
// user's requests run in order.
func queueKey(msg jetstream.Msg) string {
	req, err := parseRequest(msg.Data())
	if err != nil || req.User == "" {
		meta, _ := msg.Metadata()
		if meta != nil {
			return "seq:" + strconv.FormatUint(meta.Sequence.Stream, 10)
		}
		return "bad"
	}
	return msg.Subject() + "|" + strings.ToLower(req.User)
}

// serveOne handles one request until it is answered, or the worker stops.
func (w *Worker) serveOne(ctx context.Context, stream jetstream.Stream, msg jetstream.Msg) {
	wait := 200 * time.Millisecond
	for {
		err := w.process(ctx, stream, msg)
		if err == nil || ctx.Err() != nil {
			return
		}
		w.cfg.Log.Warn().Err(err).Str("subject", msg.Subject()).Dur("retry_in", wait).Msg("provisioning: request not served yet")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// process serves one request: from the ledger when it has its result,
// otherwise by running it. An error leaves the request to be tried again.
func (w *Worker) process(ctx context.Context, stream jetstream.Stream, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("request metadata: %w", err)
	}
	seq := meta.Sequence.Stream
	c, err := pipeline.FromSubject(msg.Subject())
	if err != nil {
		// No connector to answer as: the reply says why, and the request
		// goes.
		w.reply(msg, clarity.ProvisionResult{Result: clarity.ResultFailed, Error: bound(err.Error(), maxError)})
		return w.delete(ctx, stream, seq)
	}
	req, bad := parseRequest(msg.Data())
	auditKey := req.RequestID
	if auditKey == "" {
		auditKey = "seq:" + strconv.FormatUint(seq, 10)
	}
	key := pipeline.ProvisionKey(c, auditKey)
	p, rev, found, err := w.ledger.get(ctx, key)
	if err != nil {
		return err
	}
	if found && p.State == stateDone && p.Outcome != nil {
		if p.Seq != seq {
			// The same request id again: it answers the first result.
			w.reply(msg, p.Outcome.Result)
			w.cfg.Log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("request_id", req.RequestID).
				Str("result", p.Outcome.Result.Result).Msg("provisioning request repeated: first result answered")
			return w.delete(ctx, stream, seq)
		}
		return w.finish(ctx, stream, msg, key, p)
	}
	switch {
	case !found:
		// Only one message of a request id runs: the one that claims it.
		if err := w.ledger.claim(ctx, key, progress{Seq: seq, State: stateClaimed}); err != nil {
			return err
		}
	case p.Seq != seq:
		// Another message of this request id claimed it and has no result
		// yet: this one waits for that result, unless the other left the
		// stream (it expired), when this one takes the request over.
		if _, err := stream.GetMsg(ctx, p.Seq); !errors.Is(err, jetstream.ErrMsgNotFound) {
			if err != nil {
				return fmt.Errorf("look up request %d: %w", p.Seq, err)
			}
			return fmt.Errorf("request %d: %w", p.Seq, errClaimed)
		}
		p.Seq = seq
		if err := w.ledger.takeOver(ctx, key, p, rev); err != nil {
			return err
		}
	}
	o := &pipeline.ProvisionOutcome{
		Tenant: c.Tenant, Connector: c.ID, AuditKey: auditKey, Request: req.ProvisionRequest,
		RequestedBy: requestedBy(msg.Headers()), ReceivedAt: meta.Timestamp.UTC(),
	}
	resumed := found && p.State == stateWriting
	if resumed {
		w.cfg.Log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("request_id", req.RequestID).
			Msg("provisioning request taken up again: its write may have been made")
	}
	if bad != nil {
		o.Result = clarity.ProvisionResult{RequestID: req.RequestID, Action: req.Action, Result: clarity.ResultFailed,
			Error: bound(strings.TrimPrefix(bad.Error(), errBadRequest.Error()+": "), maxError)}
	} else if err := w.act(ctx, c, req, key, seq, resumed, o); err != nil {
		return err
	}
	o.FinishedAt = w.now().UTC()
	return w.finish(ctx, stream, msg, key, progress{Seq: seq, State: stateDone, Outcome: o})
}

// act runs a well-formed request with its connector's client and fills in
// o's result, calls and refreshes.
func (w *Worker) act(ctx context.Context, c pipeline.ConnectorRef, req request, key string, seq uint64, resumed bool, o *pipeline.ProvisionOutcome) error {
	fail := func(msg string) {
		o.Result = clarity.ProvisionResult{RequestID: req.RequestID, Action: req.Action, Result: clarity.ResultFailed, Error: bound(msg, maxError)}
	}
	client, err := w.cfg.Clients.Client(ctx, c)
	switch {
	case errors.Is(err, runner.ErrNotServed):
		fail("connector not served: " + err.Error())
		return nil
	case err != nil:
		return err
	}
	z, ok := client.(Zoom)
	if !ok {
		fail(fmt.Sprintf("connector %s: its Zoom client cannot make changes", c))
		return nil
	}
	// The marks live while the action runs, however long its calls take.
	marks := w.holds.forRequest(c, o.AuditKey)
	defer marks.end()
	a := &action{z: z, req: req, resumed: resumed,
		writing: func(who []string) error {
			if err := w.ledger.put(ctx, key, progress{Seq: seq, State: stateWriting}); err != nil {
				return err
			}
			return marks.mark(ctx, who)
		}}
	// Someone waits for the result: the account's rate budget serves the
	// action's calls before a full sync's pages.
	out := a.run(zoom.WithPriority(ctx, zoom.PriorityPrompt))
	if out.err != nil {
		return out.err
	}
	o.Result, o.Calls, o.Reads, o.Admins, o.Holds = out.result, a.calls, a.reads, a.admins, a.held
	if resumed && len(o.Holds) == 0 {
		// The marks of the run that died: lifted with this result.
		o.Holds = a.who()
	}
	return nil
}

// finish stores the result, answers and deletes the request.
func (w *Worker) finish(ctx context.Context, stream jetstream.Stream, msg jetstream.Msg, key string, p progress) error {
	if !p.Answered {
		if err := w.ledger.put(ctx, key, p); err != nil {
			return err
		}
		if err := w.handOver(ctx, p.Outcome); err != nil {
			return err
		}
		w.reply(msg, p.Outcome.Result)
		p.Answered = true
		if err := w.ledger.put(ctx, key, p); err != nil {
			return err
		}
		r := p.Outcome.Result
		// Known actions only: a bad request's action is anyone's text.
		action := r.Action
		if !knownAction(action) {
			action = "invalid"
		}
		w.cfg.Observer.Served(action, r.Result, w.now().Sub(p.Outcome.ReceivedAt))
		w.cfg.Log.Info().Str("tenant", p.Outcome.Tenant).Str("connector", p.Outcome.Connector).
			Str("request_id", r.RequestID).Str("action", r.Action).Str("result", r.Result).
			Int("zoom_status", r.ZoomStatus).Int("zoom_code", r.ZoomCode).Msg("provisioning request served")
	}
	meta, err := msg.Metadata()
	if err != nil {
		return err
	}
	return w.delete(ctx, stream, meta.Sequence.Stream)
}

// handOver publishes the outcome to the writer, once per request.
func (w *Worker) handOver(ctx context.Context, o *pipeline.ProvisionOutcome) error {
	c := pipeline.ConnectorRef{Tenant: o.Tenant, ID: o.Connector}
	body, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode provisioning outcome: %w", err)
	}
	m := nats.NewMsg(pipeline.ProvisionResultSubject(c))
	m.Data = body
	m.Header.Set(jetstream.MsgIDHeader, pipeline.ProvisionResultID(c, o.AuditKey))
	if _, err := w.cfg.JetStream.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("hand the provisioning result to the writer: %w", err)
	}
	return nil
}

// reply publishes r to the request's Clarity-Reply-To subject, if any.
// A reply is a plain NATS message: no one may be listening any more.
func (w *Worker) reply(msg jetstream.Msg, r clarity.ProvisionResult) {
	to, err := replyTo(msg.Headers())
	if err != nil {
		w.cfg.Log.Warn().Err(err).Str("request_id", r.RequestID).
			Str("reply_to", bound(printable(msg.Headers().Get(clarity.ReplyToHeader)), 80)).
			Msg("provisioning: no reply (the result is the event only)")
		return
	}
	if to == "" {
		return
	}
	body, err := json.Marshal(r)
	if err != nil {
		return
	}
	m := nats.NewMsg(to)
	m.Data = body
	m.Header.Set("Content-Type", "application/json")
	if err := w.cfg.Conn.PublishMsg(m); err != nil {
		w.cfg.Log.Warn().Err(err).Str("request_id", r.RequestID).Msg("provisioning: reply not published")
	}
}

// delete removes a served request from the stream.
func (w *Worker) delete(ctx context.Context, stream jetstream.Stream, seq uint64) error {
	err := stream.DeleteMsg(ctx, seq)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !isNoMessage(err) {
		return fmt.Errorf("delete served request %d: %w", seq, err)
	}
	return nil
}

// isNoMessage reports the server's answer to deleting a message it does not
// hold (deleted by an earlier try), which does not match
// jetstream.ErrMsgNotFound: the client wraps ErrMsgDeleteUnsuccessful
// around the server's error as text ("no message found", err_code 10057).
func isNoMessage(err error) bool {
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}

// knownAction reports whether a is one of the provisioning actions.
func knownAction(a string) bool {
	switch a {
	case clarity.ActionAddGrant, clarity.ActionRemoveGrant, clarity.ActionDeactivateUser,
		clarity.ActionActivateUser, clarity.ActionRemoveUser, clarity.ActionInviteUser:
		return true
	}
	return false
}
