package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

func runSync(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("sync", errw)
	wait := fs.Bool("wait", false, "follow the sync and exit 0 on sync.completed, 1 on sync.failed")
	timeout := fs.Duration("timeout", 0, "with --wait, give up after this long (exit 3); 0 waits for ever")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	requestID := fs.String("request-id", "", "request id of the trigger (default: a new random id)")
	confirm := fs.String("confirm-deletions", "", "apply the deletions that the completed run `RUN_ID` held (the accidental-deletion guard) instead of triggering a sync")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if *confirm != "" {
		return confirmDeletions(ctx, *natsURL, ref, *confirm, out, errw)
	}
	if *requestID == "" {
		*requestID = NewRequestID()
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	_, js, err := connectNATS(ctx, *natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	// One replica, as a stream the services have not made yet gets on a
	// single server; services that start with more update it.
	if err := natsx.CreateMissingStreams(ctx, js, pipeline.Streams(1)...); err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	var w *Watcher
	if *wait {
		// Subscribe before triggering so that no event of the run is missed.
		if w, err = NewWatcher(ctx, js, ref); err != nil {
			return fail(errw, ExitError, "%v", err)
		}
		defer w.Stop()
	}
	if err := Trigger(ctx, js, ref, *requestID); err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	fmt.Fprintf(out, "sync triggered for %s (request_id %s)\n", ref, *requestID)
	if !*wait {
		return ExitOK
	}
	p := newProgress(errw)
	res, err := w.Wait(ctx, *requestID, p.event)
	p.done()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(errw, ExitError, "no end of the sync within %s", *timeout)
		}
		return fail(errw, ExitError, "%v", err)
	}
	s := res.Data.Stats
	fmt.Fprintf(out, "sync %s: run %s, %d created, %d updated, %d deleted, %d unchanged, %d Zoom requests\n",
		res.Op, res.Data.RunID, s.Created, s.Updated, s.Deleted, s.Unchanged, s.APIRequests)
	if h := res.Data.Held; res.Data.Deletions == "held" && h != nil {
		fmt.Fprintf(out, "deletions held: %d users and %d entitlements are no longer in Zoom but were kept (DELETE_THRESHOLD); "+
			"to delete them: zoomctl sync --tenant %s --connector %s --confirm-deletions %s\n",
			h.ServiceUser, h.Entitlement, ref.Tenant, ref.ID, res.Data.RunID)
	}
	if res.Op == clarity.OpFailed {
		fmt.Fprintf(out, "error: %s\n", res.Data.Error)
		return ExitFailed
	}
	return ExitOK
}

// NewRequestID returns a random request id.
func NewRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "zoomctl-" + hex.EncodeToString(b)
}

// Trigger publishes a full-sync trigger of the connector and waits for
// JetStream to store it. It has no Nats-Msg-Id: an operator who triggers
// twice with one request id asks for two syncs.
func Trigger(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef, requestID string) error {
	if _, err := js.PublishMsg(ctx, pipeline.NewTrigger(ref, requestID, "")); err != nil {
		return fmt.Errorf("publish trigger: %w", err)
	}
	return nil
}

// Watcher follows a connector's change events from the moment it was made.
type Watcher struct {
	cc   jetstream.ConsumeContext
	msgs chan jetstream.Msg
}

// NewWatcher starts following new events of the connector.
func NewWatcher(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef) (*Watcher, error) {
	return watch(ctx, js, pipeline.EventSubject(ref, ">"))
}

// NewSyncWatcher starts following new sync events of the connector only:
// enough for Wait, without a million change events to read.
func NewSyncWatcher(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef) (*Watcher, error) {
	return watch(ctx, js, pipeline.EventSubject(ref, clarity.KindSync))
}

func watch(ctx context.Context, js jetstream.JetStream, subject string) (*Watcher, error) {
	cons, err := js.OrderedConsumer(ctx, clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	w := &Watcher{msgs: make(chan jetstream.Msg, 1024)}
	w.cc, err = cons.Consume(func(m jetstream.Msg) { w.msgs <- m })
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	return w, nil
}

// Stop ends the watch.
func (w *Watcher) Stop() { w.cc.Stop() }

// Result is the end of a run.
type Result struct {
	Op   string // completed or failed
	Data clarity.SyncData
}

// Wait returns the end of the run that served requestID, handing every
// event seen meanwhile to onEvent (which may be nil).
func (w *Watcher) Wait(ctx context.Context, requestID string, onEvent func(clarity.Event)) (Result, error) {
	for {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case m := <-w.msgs:
			// Without onEvent only sync events need decoding: a full sync
			// of a large account brings a million others.
			if onEvent == nil && !strings.HasSuffix(m.Subject(), "."+clarity.KindSync) {
				continue
			}
			var ev clarity.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				continue
			}
			if onEvent != nil {
				onEvent(ev)
			}
			if !strings.HasPrefix(ev.Type, "clarity.sync.") {
				continue
			}
			var d clarity.SyncData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				continue
			}
			op := strings.TrimPrefix(ev.Type, "clarity.sync.")
			if (op == clarity.OpCompleted || op == clarity.OpFailed) && slices.Contains(d.RequestIDs, requestID) {
				return Result{Op: op, Data: d}, nil
			}
		}
	}
}

// progress prints a one-line live count of the change events.
type progress struct {
	w       io.Writer
	counts  map[string]int
	total   int
	started time.Time
	last    time.Time
	run     string
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, counts: map[string]int{}, started: time.Now()}
}

func (p *progress) event(ev clarity.Event) {
	if ev.Type == "clarity.sync.started" {
		var d clarity.SyncData
		_ = json.Unmarshal(ev.Data, &d)
		p.run = d.RunID
		fmt.Fprintf(p.w, "run %s started\n", d.RunID)
		return
	}
	if strings.HasPrefix(ev.Type, "clarity.sync.") {
		return
	}
	p.total++
	p.counts[ev.Type[strings.LastIndexByte(ev.Type, '.')+1:]]++
	if time.Since(p.last) >= 200*time.Millisecond {
		p.print()
	}
}

func (p *progress) print() {
	p.last = time.Now()
	el := time.Since(p.started).Seconds()
	fmt.Fprintf(p.w, "\r%d changes (%d created, %d updated, %d deleted), %.0f/s, %.1fs   ",
		p.total, p.counts["created"], p.counts["updated"], p.counts["deleted"], float64(p.total)/max(el, 0.001), el)
}

func (p *progress) done() {
	if p.total > 0 {
		p.print()
		fmt.Fprintln(p.w)
	}
}

// confirmDeletions asks the writers, through the admin API, to apply the
// deletions that run runID held, and prints what they did.
func confirmDeletions(ctx context.Context, natsURL string, ref pipeline.ConnectorRef, runID string, out, errw io.Writer) int {
	nc, _, err := connectNATS(ctx, natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()
	reply, err := ConfirmDeletions(ctx, nc, ref, runID)
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	held := clarity.HeldCounts{}
	if reply.Held != nil {
		held = *reply.Held
	}
	fmt.Fprintf(out, "deletions of run %s confirmed: %d users and %d entitlements were held; %d records deleted now\n",
		runID, held.ServiceUser, held.Entitlement, reply.Deleted)
	return ExitOK
}

// ConfirmDeletions sends the admin request that applies the deletions run
// runID held, and returns the writer's answer; a refusal is an error.
func ConfirmDeletions(ctx context.Context, nc *nats.Conn, ref pipeline.ConnectorRef, runID string) (connector.ConfirmDeletionsReply, error) {
	body, err := json.Marshal(connector.ConfirmDeletionsRequest{RunID: runID})
	if err != nil {
		return connector.ConfirmDeletionsReply{}, err
	}
	// Confirming waits for the connector's other writes, a run's
	// completion among them.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, connector.AdminSubject(ref, connector.OpConfirmDeletions), body)
	if errors.Is(err, nats.ErrNoResponders) {
		return connector.ConfirmDeletionsReply{}, errors.New("confirm deletions: no writer is running to answer")
	}
	if err != nil {
		return connector.ConfirmDeletionsReply{}, fmt.Errorf("confirm deletions: %w", err)
	}
	var reply connector.ConfirmDeletionsReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return reply, fmt.Errorf("confirm deletions: the answer is not JSON: %w", err)
	}
	if reply.Error != "" {
		return reply, fmt.Errorf("confirm deletions: %s", reply.Error)
	}
	return reply, nil
}
