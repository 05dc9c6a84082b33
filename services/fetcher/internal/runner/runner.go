// Package runner handles the fetcher's messages: sync triggers (claim or
// join the connector's run, fetch it, close it) and hints to re-read one
// user.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// Client is what the runner needs of a connector's Zoom client.
type Client interface {
	syncer.Zoom
	GetUser(ctx context.Context, userID string) ([]byte, error)
}

// Clients gives the Zoom client of each connector the fetcher serves. An
// error matching ErrNotServed refuses the connector until its settings
// change: ErrUnknownConnector for one that is not configured at all,
// connector.ErrNotActive for one whose state keeps it from syncing, others
// for one that cannot be served as configured (its secrets do not open).
// Its text is shown to whoever triggered the sync: it names no other
// connector and no secret. Any other error is transient (the registry could
// not be read): the trigger or hint is tried again.
type Clients interface {
	Client(ctx context.Context, c pipeline.ConnectorRef) (Client, error)
}

// ErrNotServed is matched by the errors of Clients that refuse a connector.
var ErrNotServed = errors.New("connector not served")

// ErrUnknownConnector reports a connector the fetcher does not serve: not
// the environment's, not in the registry.
var ErrUnknownConnector = errors.New("unknown connector")

// NotServed returns err, which says why a connector is not served, as an
// error that also matches ErrNotServed and reads as err.
func NotServed(err error) error { return notServed{err} }

type notServed struct{ err error }

func (e notServed) Error() string   { return e.err.Error() }
func (e notServed) Unwrap() []error { return []error{e.err, ErrNotServed} }

// Unknown is the error of Clients for a connector that is not configured.
func Unknown(c pipeline.ConnectorRef) error {
	return NotServed(fmt.Errorf("%w %s: no such connector is configured", ErrUnknownConnector, c))
}

// Fixed is a fixed set of connectors and their clients.
type Fixed map[pipeline.ConnectorRef]Client

// Client implements Clients.
func (f Fixed) Client(_ context.Context, c pipeline.ConnectorRef) (Client, error) {
	if z, ok := f[c]; ok {
		return z, nil
	}
	return nil, Unknown(c)
}

// Config configures a Runner.
type Config struct {
	// Runs holds the run state of every connector.
	Runs *runstate.Store
	// Syncer fetches the runs and publishes what the runner sends.
	Syncer *syncer.Syncer
	// Clients are the Zoom clients of the connectors the runner serves; a
	// trigger or hint for any other connector is refused.
	Clients Clients
	// Log receives the runs' progress and the refusals.
	Log zerolog.Logger
	// MaxAttempts bounds the fetches of one run: its first and its
	// resumptions after the fetcher stopped or crashed. Default 1.
	MaxAttempts int
	// AckWait is the ack wait of the trigger consumer: the trigger of a
	// run being fetched is kept alive every third of it, and at least
	// every second.
	AckWait time.Duration
	// HintQuiet and HintMaxWait bound the batch of a connector's hints:
	// it is served once no hint came for HintQuiet, or when its first
	// hint has waited HintMaxWait. Defaults DefaultHintQuiet and
	// DefaultHintMaxWait.
	HintQuiet, HintMaxWait time.Duration
	// HintObserver, when set, is told how each batch was served.
	HintObserver HintObserver
	// HintRounds, when set, is the bucket through which the replicas'
	// batches share one listing (hintround.go); nil lists per batch.
	// HintRoundGather is how long a round waits for batches to join,
	// default DefaultRoundGather. HintRoundMaxWait bounds how long a batch
	// waits for its round to end, default DefaultRoundMaxWait.
	// HintRoundBeat is how often a lister says it is alive while it lists,
	// default DefaultRoundBeat: a listing round whose lister has not said
	// so for roundBeatsMissed beats lost it, and its batches leave it.
	HintRounds       jetstream.KeyValue
	HintRoundGather  time.Duration
	HintRoundMaxWait time.Duration
	HintRoundBeat    time.Duration
}

// Runner handles triggers and hints for a set of connectors.
type Runner struct {
	runs        *runstate.Store
	syncer      *syncer.Syncer
	clients     Clients
	log         zerolog.Logger
	maxAttempts int
	keepAlive   time.Duration
	// checkEvery is how often a run checks that its connector is still
	// served.
	checkEvery time.Duration
	now        func() time.Time
	hints      *hints
	hintObs    HintObserver
	rounds     *rounds
}

// New returns a Runner.
func New(cfg Config) *Runner {
	hs := &hints{quiet: cfg.HintQuiet, maxWait: cfg.HintMaxWait,
		open: map[pipeline.ConnectorRef]*hintBatch{}, pages: map[pipeline.ConnectorRef]map[string]int{}}
	if hs.quiet <= 0 {
		hs.quiet = DefaultHintQuiet
	}
	if hs.maxWait <= 0 {
		hs.maxWait = DefaultHintMaxWait
	}
	r := &Runner{runs: cfg.Runs, syncer: cfg.Syncer, clients: cfg.Clients, log: cfg.Log,
		maxAttempts: max(1, cfg.MaxAttempts), keepAlive: max(cfg.AckWait/3, time.Second), checkEvery: time.Second, now: time.Now,
		hints: hs, hintObs: cfg.HintObserver}
	if cfg.HintRounds != nil {
		r.rounds = newRounds(cfg.HintRounds, cfg.HintRoundGather, cfg.HintRoundMaxWait, cfg.HintRoundBeat)
	}
	return r
}

// subjectTokens returns the tenant and connector tokens of a per-connector
// subject (<a>.<b>.<tenant>.<connector>[.…]) as they were sent, valid names
// or not.
func subjectTokens(subject string) (tenant, id string, err error) {
	parts := strings.SplitN(subject, ".", 5)
	if len(parts) < 4 {
		return "", "", fmt.Errorf("subject %q has no tenant and connector", bound(subject, 80))
	}
	return parts[2], parts[3], nil
}

// HandleTrigger handles one message of a connector's sync subject.
func (r *Runner) HandleTrigger(ctx context.Context, msg jetstream.Msg) error {
	tenant, id, err := subjectTokens(msg.Subject())
	if err != nil {
		return natsx.Permanent(err)
	}
	var trig clarity.Trigger
	if body := strings.TrimSpace(string(msg.Data())); body != "" {
		if err := json.Unmarshal([]byte(body), &trig); err != nil {
			return natsx.Permanent(fmt.Errorf("trigger body is not JSON {\"mode\":\"full\",\"request_id\":\"…\"}: %w", err))
		}
	}
	md, err := msg.Metadata()
	if err != nil {
		return natsx.Permanent(fmt.Errorf("trigger without JetStream metadata: %w", err))
	}
	log := r.log.With().Str("tenant", bound(tenant, 80)).Str("connector", bound(id, 80)).
		Str("request_id", bound(trig.RequestID, maxRequestID+20)).Logger()

	// A trigger that names no connector of this fetcher is answered
	// directly, on its own subject: sent on to the writer, it would make
	// the writer create the connector it names.
	c, err := pipeline.NewConnectorRef(tenant, id)
	if err != nil {
		return r.refuseUnserved(ctx, msg.Subject(), md, trig, err)
	}
	client, err := r.clients.Client(ctx, c)
	switch {
	case errors.Is(err, ErrNotServed):
		// Unknown, not active, or not servable as configured: the
		// refusal says why and names no other connector, as it goes to
		// whoever sent the trigger, who may be another tenant's. A
		// registered connector is refused the same way, without a run:
		// nothing of it reaches the writer until it may sync.
		return r.refuseUnserved(ctx, msg.Subject(), md, trig, err)
	case err != nil:
		return err
	}
	if len(trig.RequestID) > maxRequestID {
		// Every message of the run names its request ids, and the run
		// state holds them: one without a bound could make them too large
		// for NATS.
		n := len(trig.RequestID)
		trig.RequestID = ""
		return r.refuse(ctx, c, trig,
			fmt.Sprintf("request_id is %d bytes long; at most %d are accepted", n, maxRequestID))
	}
	if trig.Mode != "" && trig.Mode != "full" {
		return r.refuse(ctx, c, trig,
			fmt.Sprintf("unsupported sync mode %q: only \"full\" is supported", bound(trig.Mode, 64)))
	}

	decision, st, _, err := r.runs.Claim(ctx, c, md.Sequence.Stream, trig.RequestID, "full")
	if err != nil {
		return err
	}
	switch decision {
	case runstate.Coalesced:
		log.Info().Str("run_id", st.RunID).Msg("trigger joined the running sync")
		return nil
	case runstate.Served:
		log.Info().Str("run_id", st.RunID).Msg("trigger already served by its ended run")
		return nil
	}
	kctx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	go natsx.KeepAlive(kctx, msg, r.keepAlive)

	for {
		log := log.With().Str("run_id", st.RunID).Int("attempt", st.Attempt).Logger()
		if !st.Ended {
			if err := r.fetchAndEnd(ctx, log, c, st, client); err != nil {
				return err
			}
		} else {
			// A resumed run whose end was about to go out, or went out:
			// fetching it again would change nothing the writer takes
			// (a run ends once). Should the crash have come just before
			// the end was published, the writer fails the run once it
			// makes no progress.
			log.Warn().Msg("run resumed after its end; not fetched again")
		}
		next, err := r.closeRun(ctx, c, st, md.Sequence.Stream)
		if err != nil || next == nil {
			return err
		}
		st = *next
	}
}

// fetchAndEnd fetches the run st and publishes its end: its manifest, or
// why it failed. Before the end goes out, the run state records it, with
// the request ids it names.
func (r *Runner) fetchAndEnd(ctx context.Context, log zerolog.Logger, c pipeline.ConnectorRef, st runstate.State, client syncer.Zoom) error {
	run := &pb.Run{RunId: st.RunID, StartedAtMs: st.StartedAtMs, Mode: st.Mode, RequestIds: st.RequestIDs}
	var fetchErr error
	var res syncer.Result
	if st.Attempt > r.maxAttempts {
		fetchErr = fmt.Errorf("the run was interrupted %d times (fetcher stopped or crashed); giving up", st.Attempt-1)
	} else {
		log.Info().Msg("sync started")
		err := r.syncer.Publish(ctx, c, &pb.Envelope{Body: &pb.Envelope_RunStarted{RunStarted: &pb.RunStarted{Run: run}}},
			pipeline.RunStartedID(run.RunId))
		switch {
		case syncer.Unpublishable(err):
			// No redelivery makes it smaller: the run fails.
			fetchErr = fmt.Errorf("publish the run's start: %w", err)
		case err != nil:
			return err
		default:
			res, fetchErr = r.fetch(ctx, c, run, st.Attempt, client)
			if ctx.Err() != nil {
				// Shutting down: hand the trigger back; the run resumes.
				return ctx.Err()
			}
			if errors.Is(fetchErr, syncer.ErrPublish) {
				// NATS, not Zoom, failed: hand the trigger back, and the
				// run resumes on its redelivery.
				return fetchErr
			}
		}
	}
	// The run's end goes out with the triggers joined so far; a trigger
	// that joins after it starts the next run.
	for {
		cur, curRev, err := r.runs.Current(ctx, c)
		if err != nil {
			return err
		}
		if cur.RunID != st.RunID || cur.Attempt != st.Attempt {
			// The trigger was redelivered while this handler ran (its ack
			// wait passed during a NATS outage) and another handler resumed
			// the run: that one owns it now. This delivery is stale.
			log.Warn().Str("now_run_id", cur.RunID).Int("now_attempt", cur.Attempt).Msg("run taken over; this fetch stops")
			return natsx.ErrAbandon
		}
		cur.Ended, cur.EndedFor = true, slices.Clone(cur.RequestIDs)
		if _, err := r.runs.Update(ctx, c, cur, curRev); errors.Is(err, runstate.ErrConflict) {
			continue // a trigger joined: the end names it too
		} else if err != nil {
			return err
		}
		run.RequestIds = cur.EndedFor
		break
	}
	var env *pb.Envelope
	if fetchErr != nil {
		log.Warn().Err(fetchErr).Msg("sync failed")
		env = failedEnd(run, fetchErr.Error(), res.APIRequests)
	} else {
		log.Info().Int64("api_requests", res.APIRequests).Int("listings", len(res.Listings)).
			Strs("unavailable", res.Unavailable).Msg("sync fetched")
		env = &pb.Envelope{Body: &pb.Envelope_RunFetched{RunFetched: &pb.RunFetched{
			Run: run, Listings: res.Listings, ApiRequests: res.APIRequests, Unavailable: res.Unavailable}}}
	}
	return r.publishEnd(ctx, log, c, env, res.APIRequests, pipeline.RunEndID(run.RunId, st.Attempt))
}

// fetch runs the syncer's fetch of run under a context that ends when its
// connector stops being served (disabled, removed, in need of a new
// authorization, its settings no longer usable): the run then fails with
// the reason instead of reading on from Zoom with credentials an operator
// has withdrawn. A client that holds a valid token would not notice by
// itself.
func (r *Runner) fetch(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run, attempt int, client syncer.Zoom) (syncer.Result, error) {
	fctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	go r.watchServed(fctx, c, stop)
	res, err := r.syncer.Fetch(fctx, c, run, attempt, client)
	switch {
	case err == nil, ctx.Err() != nil:
		// Fetched (a change at its very end does not undo a complete
		// fetch), or shutting down (the caller hands the trigger back).
	case fctx.Err() != nil:
		err = context.Cause(fctx)
	case errors.Is(err, connector.ErrNotActive):
		// The connector's token source found out first (Zoom refused its
		// refresh token): say so as a refusal would, with what to do,
		// rather than through the request that found out.
		if _, why := r.clients.Client(ctx, c); errors.Is(why, connector.ErrNotActive) {
			err = fmt.Errorf("the sync was stopped: %w", why)
		}
	}
	return res, err
}

// watchServed checks every r.checkEvery, until ctx ends, that c is still
// served, and stops the fetch with the reason when it is not. While c is
// served the check reads only the registry's watched copy: it costs no
// request.
func (r *Runner) watchServed(ctx context.Context, c pipeline.ConnectorRef, stop context.CancelCauseFunc) {
	t := time.NewTicker(r.checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A transient failure to read the registry stops nothing.
		if _, err := r.clients.Client(ctx, c); errors.Is(err, ErrNotServed) {
			stop(fmt.Errorf("the sync was stopped: %w", err))
			return
		}
	}
}

// Bounds of what a run's messages carry, so that each fits in a NATS
// message (1 MiB by default) whatever Zoom or a trigger sent.
const (
	// maxErrorText bounds the error of a failed run. The Zoom client
	// already bounds what it quotes of Zoom; this is the second line.
	maxErrorText = 4 << 10
	// maxRequestID bounds the request id of a trigger.
	maxRequestID = 256
	// maxEndRequestIDs is how many request ids the end of a run names
	// when naming all of them makes it too large to publish.
	maxEndRequestIDs = 1000
)

// failedEnd is the end of a run that failed with the error text msg.
func failedEnd(run *pb.Run, msg string, apiRequests int64) *pb.Envelope {
	return &pb.Envelope{Body: &pb.Envelope_RunFailed{RunFailed: &pb.RunFailed{
		Run: run, Error: bound(msg, maxErrorText), ApiRequests: apiRequests}}}
}

// publishEnd publishes env, the end of a run. The run state says the end
// is out: it must get out. A publication that fails because NATS is away
// is tried again, under the same message id, until it is stored or the
// fetcher stops. One that no attempt can store (too large for NATS) is
// replaced by the run's failure, which says why; should even that be too
// large (a run that served thousands of triggers), it names only the first
// maxEndRequestIDs of them. Only when that fails too does the trigger go to
// the dead letters: its run then no longer holds the connector.
func (r *Runner) publishEnd(ctx context.Context, log zerolog.Logger, c pipeline.ConnectorRef, env *pb.Envelope, apiRequests int64, id string) error {
	for wait := 250 * time.Millisecond; ; {
		err := r.syncer.Publish(ctx, c, env, id)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if syncer.Unpublishable(err) {
			next := smallerEnd(env, apiRequests, err)
			if next == nil {
				return natsx.Permanent(fmt.Errorf("publish the run's end: %w", err))
			}
			log.Warn().Err(err).Msg("the run's end cannot be published; publishing a smaller failure instead")
			env = next
			continue
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("publish the run's end; retrying")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// smallerEnd returns what to publish instead of the run's end env, which
// NATS refused with err: the run's failure, saying why, in place of its
// manifest; a failure naming only the first maxEndRequestIDs triggers in
// place of one naming more; nil when nothing smaller is left to try.
func smallerEnd(env *pb.Envelope, apiRequests int64, err error) *pb.Envelope {
	if f := env.GetRunFetched(); f != nil {
		return failedEnd(f.Run, "the run's end could not be published: "+err.Error(), apiRequests)
	}
	f := env.GetRunFailed()
	if n := len(f.GetRun().GetRequestIds()); n > maxEndRequestIDs {
		run := proto.CloneOf(f.Run)
		run.RequestIds = run.RequestIds[:maxEndRequestIDs]
		return failedEnd(run, fmt.Sprintf("the run served %d triggers, of which only the first %d are named: %s",
			n, maxEndRequestIDs, f.Error), apiRequests)
	}
	return nil
}

// closeRun closes the ended run st, or, when triggers joined after its end
// went out, claims the next run for them (by compare-and-set, again should
// yet another join meanwhile) and returns it; trigger is the stream
// sequence of the trigger whose handler runs them.
func (r *Runner) closeRun(ctx context.Context, c pipeline.ConnectorRef, st runstate.State, trigger uint64) (*runstate.State, error) {
	for {
		cur, rev, err := r.runs.Current(ctx, c)
		if err != nil {
			return nil, err
		}
		if cur.RunID != st.RunID || cur.Attempt != st.Attempt {
			return nil, natsx.ErrAbandon
		}
		var left []string
		for _, id := range cur.RequestIDs {
			if !slices.Contains(cur.EndedFor, id) {
				left = append(left, id)
			}
		}
		if len(left) == 0 {
			err := r.runs.Close(ctx, c, cur, rev)
			if errors.Is(err, runstate.ErrConflict) {
				continue
			}
			return nil, err
		}
		next := runstate.State{RunID: runstate.NewRunID(), StartedAtMs: max(r.now().UnixMilli(), cur.StartedAtMs+1),
			Mode: "full", RequestIDs: left, Active: true, TriggerSeq: trigger, Attempt: 1}
		if _, err := r.runs.Update(ctx, c, next, rev); errors.Is(err, runstate.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return &next, nil
	}
}

// refuse ends a trigger of a known connector that cannot run with a failed
// run, so that whoever waits on it learns why.
func (r *Runner) refuse(ctx context.Context, c pipeline.ConnectorRef, trig clarity.Trigger, reason string) error {
	r.log.Warn().Str("tenant", c.Tenant).Str("connector", c.ID).Str("reason", reason).Msg("trigger refused")
	run := &pb.Run{RunId: runstate.NewRunID(), StartedAtMs: r.now().UnixMilli(), Mode: "full"}
	if trig.RequestID != "" {
		run.RequestIds = []string{trig.RequestID}
	}
	return r.syncer.Publish(ctx, c, failedEnd(run, reason, 0), "")
}

// refuseUnserved answers a trigger, received on subject, for a connector
// this fetcher does not serve (unknown, not active, not servable as
// configured, or whose name is not a valid one: why says which) with a
// clarity.sync.failed event, published directly on the event subject of
// the tenant and connector the trigger's subject names, as they were sent:
// nothing is sent towards the writer, which would create the connector it
// names, and nothing is stored for it. The fetcher does not know the
// sequence the writer last committed for the connector, if it ever did:
// the event's sequence is 0. Its id, run id and times derive from the
// trigger's place in its stream, so that a redelivery publishes the same
// event, which JetStream's duplicate window drops.
func (r *Runner) refuseUnserved(ctx context.Context, subject string, md *jetstream.MsgMetadata, trig clarity.Trigger, why error) error {
	tenant, id, err := subjectTokens(subject)
	if err != nil {
		return natsx.Permanent(err)
	}
	reason := bound(why.Error(), maxErrorText)
	what := "trigger for a connector that is not served refused"
	if errors.Is(why, ErrUnknownConnector) {
		what = "trigger for an unknown connector refused"
	}
	r.log.Warn().Str("tenant", bound(tenant, 80)).Str("connector", bound(id, 80)).Str("reason", reason).Msg(what)
	at := md.Timestamp.UTC()
	runID := "refused-" + strconv.FormatUint(md.Sequence.Stream, 10)
	d := clarity.SyncData{
		RunID:      runID,
		RequestIDs: []string{},
		Mode:       "full",
		StartedAt:  at.Format(time.RFC3339Nano),
		FinishedAt: at.Format(time.RFC3339Nano),
		Error:      reason,
	}
	if req := trig.RequestID; req != "" && len(req) <= maxRequestID {
		d.RequestID, d.RequestIDs = req, []string{req}
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ev := clarity.NewEvent(tenant, id, 0, clarity.KindSync, clarity.OpFailed, runID, at, data)
	ev.ID = pipeline.RefusalID(tenant, id, runID)
	if err := r.syncer.PublishEvent(ctx, clarity.KindSync, ev); err != nil {
		if syncer.Unpublishable(err) {
			return natsx.Permanent(err)
		}
		return err
	}
	return nil
}

// bound returns s as valid UTF-8 (as a protobuf string must be) and at most
// n bytes long: cut at a character boundary and marked as cut.
func bound(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	marker := fmt.Sprintf("… (truncated from %d bytes)", len(s))
	cut := max(n-len(marker), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// HandleHint handles one message of a connector's hint subject: it re-reads
// a user from Zoom, alone or with the other users hinted at about the same
// time, and passes the answer on as a raw page.
func (r *Runner) HandleHint(ctx context.Context, msg jetstream.Msg) error {
	var h pb.FetchUser
	// The consume loop hands over the data decoded, and hides the header
	// that says how it was encoded: Unmarshal decodes only what still is.
	if err := pipeline.Unmarshal(msg.Headers(), msg.Data(), &h); err != nil {
		return natsx.Permanent(fmt.Errorf("hint: %w", err))
	}
	c, err := pipeline.NewConnectorRef(h.Tenant, h.Connector)
	if err != nil {
		return natsx.Permanent(fmt.Errorf("hint: %w", err))
	}
	if from, err := pipeline.FromSubject(msg.Subject()); err != nil || from != c {
		return natsx.Permanent(fmt.Errorf("hint for %s on another connector's subject", c))
	}
	client, err := r.clients.Client(ctx, c)
	switch {
	case errors.Is(err, connector.ErrNotActive):
		// The connector syncs again once it is active, and its full sync
		// then reads every user: the hint is dropped, not retried.
		r.dropHint(c, err)
		return nil
	case errors.Is(err, ErrNotServed):
		return natsx.Permanent(fmt.Errorf("hint: %w", err))
	case err != nil:
		return err
	}
	if h.UserId == "" {
		return natsx.Permanent(fmt.Errorf("hint for %s without user id", c))
	}
	// The hint waits for the other hints of its connector that come in
	// within a short window: together they may cost one listing rather
	// than a request each (hints.go).
	return r.submitHint(ctx, c, client, &h)
}

// dropHint logs a hint dropped because its connector may not sync.
func (r *Runner) dropHint(c pipeline.ConnectorRef, why error) {
	r.log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Str("reason", bound(why.Error(), maxErrorText)).
		Msg("hint dropped: the connector is not active")
}
