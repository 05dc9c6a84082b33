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
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// Client is what the runner needs of a connector's Zoom client.
type Client interface {
	syncer.Zoom
	GetUser(ctx context.Context, userID string) ([]byte, error)
}

// Runner handles triggers and hints for a set of connectors.
type Runner struct {
	runs        *runstate.Store
	syncer      *syncer.Syncer
	clients     map[string]Client // by "<tenant>.<connector>"
	log         zerolog.Logger
	maxAttempts int
	keepAlive   time.Duration
	now         func() time.Time
}

// New returns a Runner. clients maps "<tenant>.<connector>" to its client.
func New(runs *runstate.Store, s *syncer.Syncer, clients map[string]Client, log zerolog.Logger, maxAttempts int, ackWait time.Duration) *Runner {
	return &Runner{runs: runs, syncer: s, clients: clients, log: log, maxAttempts: max(1, maxAttempts),
		keepAlive: max(ackWait/3, time.Second), now: time.Now}
}

// HandleTrigger handles one message of zoom.sync.<tenant>.<connector>.
func (r *Runner) HandleTrigger(ctx context.Context, msg jetstream.Msg) error {
	tenant, connector, err := clarity.SplitSubject(msg.Subject())
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
	log := r.log.With().Str("tenant", tenant).Str("connector", connector).Str("request_id", trig.RequestID).Logger()

	client, known := r.clients[tenant+"."+connector]
	if trig.Mode != "" && trig.Mode != "full" {
		return r.refuse(ctx, tenant, connector, trig, fmt.Sprintf("unsupported sync mode %q: only \"full\" is supported", trig.Mode))
	}
	if !known {
		return r.refuse(ctx, tenant, connector, trig, fmt.Sprintf("unknown connector %s/%s: this fetcher serves %s", tenant, connector, strings.Join(r.names(), ", ")))
	}

	decision, st, _, err := r.runs.Claim(ctx, tenant, connector, md.Sequence.Stream, trig.RequestID, "full")
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
			if err := r.fetchAndEnd(ctx, log, tenant, connector, st, client); err != nil {
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
		next, err := r.closeRun(ctx, tenant, connector, st, md.Sequence.Stream)
		if err != nil || next == nil {
			return err
		}
		st = *next
	}
}

// fetchAndEnd fetches the run st and publishes its end: its manifest, or
// why it failed. Before the end goes out, the run state records it, with
// the request ids it names.
func (r *Runner) fetchAndEnd(ctx context.Context, log zerolog.Logger, tenant, connector string, st runstate.State, client syncer.Zoom) error {
	run := &pb.Run{RunId: st.RunID, StartedAtMs: st.StartedAtMs, Mode: st.Mode, RequestIds: st.RequestIDs}
	var fetchErr error
	var res syncer.Result
	if st.Attempt > r.maxAttempts {
		fetchErr = fmt.Errorf("the run was interrupted %d times (fetcher stopped or crashed); giving up", st.Attempt-1)
	} else {
		log.Info().Msg("sync started")
		if err := r.syncer.Publish(ctx, tenant, connector, &pb.Envelope{Body: &pb.Envelope_RunStarted{RunStarted: &pb.RunStarted{Run: run}}},
			run.RunId+"/started"); err != nil {
			return err
		}
		res, fetchErr = r.syncer.Fetch(ctx, tenant, connector, run, st.Attempt, client)
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
	// The run's end goes out with the triggers joined so far; a trigger
	// that joins after it starts the next run.
	for {
		cur, curRev, err := r.runs.Current(ctx, tenant, connector)
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
		if _, err := r.runs.Update(ctx, tenant, connector, cur, curRev); errors.Is(err, runstate.ErrConflict) {
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
		env = &pb.Envelope{Body: &pb.Envelope_RunFailed{RunFailed: &pb.RunFailed{
			Run: run, Error: fetchErr.Error(), ApiRequests: res.APIRequests}}}
	} else {
		log.Info().Int64("api_requests", res.APIRequests).Int("listings", len(res.Listings)).Msg("sync fetched")
		env = &pb.Envelope{Body: &pb.Envelope_RunFetched{RunFetched: &pb.RunFetched{
			Run: run, Listings: res.Listings, ApiRequests: res.APIRequests}}}
	}
	// The state says the end is out: it must get out. A publication that
	// fails (NATS away) is tried again, under the same message id, until
	// it is stored or the fetcher stops.
	id := fmt.Sprintf("%s/end/%d", run.RunId, st.Attempt)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := r.syncer.Publish(ctx, tenant, connector, env, id)
		if err == nil || ctx.Err() != nil {
			return err
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("publish the run's end; retrying")
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// closeRun closes the ended run st, or, when triggers joined after its end
// went out, claims the next run for them (by compare-and-set, again should
// yet another join meanwhile) and returns it; trigger is the stream
// sequence of the trigger whose handler runs them.
func (r *Runner) closeRun(ctx context.Context, tenant, connector string, st runstate.State, trigger uint64) (*runstate.State, error) {
	for {
		cur, rev, err := r.runs.Current(ctx, tenant, connector)
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
			err := r.runs.Close(ctx, tenant, connector, cur, rev)
			if errors.Is(err, runstate.ErrConflict) {
				continue
			}
			return nil, err
		}
		next := runstate.State{RunID: runstate.NewRunID(), StartedAtMs: max(r.now().UnixMilli(), cur.StartedAtMs+1),
			Mode: "full", RequestIDs: left, Active: true, TriggerSeq: trigger, Attempt: 1}
		if _, err := r.runs.Update(ctx, tenant, connector, next, rev); errors.Is(err, runstate.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return &next, nil
	}
}

// refuse ends a trigger that cannot run with a failed run, so that whoever
// waits on it learns why.
func (r *Runner) refuse(ctx context.Context, tenant, connector string, trig clarity.Trigger, reason string) error {
	r.log.Warn().Str("tenant", tenant).Str("connector", connector).Str("reason", reason).Msg("trigger refused")
	run := &pb.Run{RunId: runstate.NewRunID(), StartedAtMs: r.now().UnixMilli(), Mode: "full"}
	if trig.RequestID != "" {
		run.RequestIds = []string{trig.RequestID}
	}
	return r.syncer.Publish(ctx, tenant, connector, &pb.Envelope{Body: &pb.Envelope_RunFailed{RunFailed: &pb.RunFailed{Run: run, Error: reason}}}, "")
}

func (r *Runner) names() []string {
	var out []string
	for k := range r.clients {
		out = append(out, strings.Replace(k, ".", "/", 1))
	}
	slices.Sort(out)
	return out
}

// HandleHint handles one message of zoom.hint.<tenant>.<connector>: it
// re-reads a user from Zoom and passes the answer on as a raw page.
func (r *Runner) HandleHint(ctx context.Context, msg jetstream.Msg) error {
	var h pb.FetchUser
	if err := proto.Unmarshal(msg.Data(), &h); err != nil {
		return natsx.Permanent(fmt.Errorf("decode hint: %w", err))
	}
	client, ok := r.clients[h.Tenant+"."+h.Connector]
	if !ok || h.UserId == "" {
		return natsx.Permanent(fmt.Errorf("hint for unknown connector %s/%s or without user id", h.Tenant, h.Connector))
	}
	page := &pb.RawPage{
		Ref:       &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true},
		UserId:    h.UserId,
		VersionMs: h.VersionMs,
	}
	// The read is ordered against other events by when it was asked for: a
	// change Zoom made while the answer was on its way may be missing from it.
	page.FetchedAtMs = r.now().UnixMilli()
	body, err := client.GetUser(ctx, h.UserId)
	switch {
	case errors.Is(err, zoom.ErrUserNotFound):
		page.NotFound = true
	case err != nil:
		if zoom.IsPermanent(err) {
			return natsx.Permanent(err)
		}
		return err
	default:
		page.Body = body
	}
	return r.syncer.Publish(ctx, h.Tenant, h.Connector, &pb.Envelope{Body: &pb.Envelope_RawPage{RawPage: page}}, "")
}
