package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// DeadLetter is one message of the ZOOM_DLQ stream, as zoomctl dlq list
// shows it.
type DeadLetter struct {
	// Seq is the message's sequence in ZOOM_DLQ: what replay --seq takes.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Stream, StreamSeq and Subject say where the message came from.
	Stream     string `json:"stream"`
	StreamSeq  uint64 `json:"stream_seq"`
	Subject    string `json:"subject"`
	Consumer   string `json:"consumer,omitempty"`
	Deliveries int    `json:"deliveries"`
	Reason     string `json:"reason"`
	Size       int    `json:"size"`

	header nats.Header
	data   []byte
}

func newDeadLetter(seq uint64, at time.Time, h nats.Header, data []byte) DeadLetter {
	d := DeadLetter{
		Seq: seq, Time: at.UTC(), header: h, data: data, Size: len(data),
		Stream:   h.Get(natsx.HeaderDLQStream),
		Subject:  h.Get(natsx.HeaderDLQSubject),
		Consumer: h.Get(natsx.HeaderDLQConsumer),
		Reason:   h.Get(natsx.HeaderDLQReason),
	}
	d.StreamSeq, _ = strconv.ParseUint(h.Get(natsx.HeaderDLQSequence), 10, 64)
	d.Deliveries, _ = strconv.Atoi(h.Get(natsx.HeaderDLQAttempts))
	return d
}

// replayMsg is the original message again: its subject, data and headers,
// without the dead-letter headers. Its Nats-Msg-Id names the dead letter, so
// that a replay repeated within the stream's duplicate window (after a
// failed delete, say) is dropped by JetStream.
func (d DeadLetter) replayMsg() *nats.Msg {
	m := nats.NewMsg(d.Subject)
	m.Data = d.data
	for k, v := range d.header {
		if strings.HasPrefix(strings.ToLower(k), "zoom-dlq-") || k == jetstream.MsgIDHeader ||
			strings.HasPrefix(k, "Nats-Expected-") {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(jetstream.MsgIDHeader, pipeline.ReplayID(d.Stream, d.StreamSeq, d.Seq))
	return m
}

func runDLQ(ctx context.Context, args []string, out, errw io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(errw, "usage: zoomctl dlq list [--stream S] [--json]")
		fmt.Fprintln(errw, "       zoomctl dlq replay (--seq N | --all) [--stream S]")
		fmt.Fprintln(errw)
		fmt.Fprintln(errw, "Messages that kept failing are moved to the ZOOM_DLQ stream (subject zoom.dlq.<stream>)")
		fmt.Fprintln(errw, "with the reason. list shows them; replay publishes each selected one again to its")
		fmt.Fprintln(errw, "original subject, with its original headers, and removes it from ZOOM_DLQ.")
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	switch args[0] {
	case "list":
		return runDLQList(ctx, args[1:], out, errw)
	case "replay":
		return runDLQReplay(ctx, args[1:], out, errw)
	}
	return fail(errw, ExitUsage, "dlq: unknown command %q (list or replay)", args[0])
}

// dlqFlags are the flags shared by dlq list and replay.
func dlqFlags(name, usage, about string, errw io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("zoomctl dlq "+name, flag.ContinueOnError)
	fs.SetOutput(errw)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\n%s\n\n", usage, about)
		fs.PrintDefaults()
	}
	stream := fs.String("stream", "", "only dead letters of this stream, such as ZOOM_RAW (default: all)")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	return fs, stream, natsURL
}

// dlqFilter is the ZOOM_DLQ subject of stream's dead letters, or all of them.
// A stream name that cannot stand as one token of a subject is refused: in
// the filter it would match other streams' dead letters, or none.
func dlqFilter(stream string) (string, error) {
	if stream == "" {
		return pipeline.DeadLetterSubject(">"), nil // every stream's
	}
	if strings.ContainsAny(stream, ".*> \t\r\n") {
		return "", fmt.Errorf("--stream %q is not a stream name (it holds a dot, a wildcard or white space)", stream)
	}
	return pipeline.DeadLetterSubject(stream), nil
}

func runDLQList(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, stream, natsURL := dlqFlags("list", "zoomctl dlq list [--stream S] [--json]",
		"Lists the dead letters of ZOOM_DLQ: sequence, time, original stream, sequence and subject,\n"+
			"deliveries, size and the reason.", errw)
	asJSON := fs.Bool("json", false, "print one JSON object per dead letter and line")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	filter, err := dlqFilter(*stream)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	nc, js, err := connectNATS(ctx, *natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()
	letters, err := DeadLetters(ctx, js, filter)
	if err != nil {
		return fail(errw, ExitError, "dlq list: %v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		for _, d := range letters {
			if err := enc.Encode(d); err != nil {
				return fail(errw, ExitError, "dlq list: %v", err)
			}
		}
		return ExitOK
	}
	if len(letters) == 0 {
		fmt.Fprintln(out, "no dead letters")
		return ExitOK
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSTREAM\tSTREAM SEQ\tSUBJECT\tDELIVERIES\tSIZE\tREASON")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", d.Seq, d.Time.Format("2006-01-02 15:04:05Z"),
			d.Stream, d.StreamSeq, d.Subject, d.Deliveries, d.Size, strings.Join(strings.Fields(d.Reason), " "))
	}
	tw.Flush()
	return ExitOK
}

// DeadLetters returns the messages of ZOOM_DLQ whose subject matches filter,
// in stream order.
func DeadLetters(ctx context.Context, js jetstream.JetStream, filter string) ([]DeadLetter, error) {
	var letters []DeadLetter
	err := readOrdered(ctx, js, pipeline.StreamDeadLetter,
		jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy},
		false, func(m jetstream.Msg) error {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			letters = append(letters, newDeadLetter(md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data()))
			return nil
		})
	return letters, err
}

func runDLQReplay(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, stream, natsURL := dlqFlags("replay", "zoomctl dlq replay (--seq N | --all) [--stream S]",
		"Publishes each selected dead letter again to its original subject, with its original\n"+
			"headers, and deletes it from ZOOM_DLQ once JetStream has stored it.", errw)
	seq := fs.Uint64("seq", 0, "replay the dead letter with this ZOOM_DLQ sequence (the SEQ column of dlq list)")
	all := fs.Bool("all", false, "replay every dead letter (of --stream, when given)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if (*seq == 0) == !*all {
		return fail(errw, ExitUsage, "dlq replay: give either --seq N or --all")
	}
	filter, err := dlqFilter(*stream)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	nc, js, err := connectNATS(ctx, *natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()
	dlq, err := js.Stream(ctx, pipeline.StreamDeadLetter)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fail(errw, ExitError, "dlq replay: stream %s does not exist (no service has run against this NATS yet)", pipeline.StreamDeadLetter)
		}
		return fail(errw, ExitError, "dlq replay: %v", err)
	}

	var letters []DeadLetter
	if *all {
		if letters, err = DeadLetters(ctx, js, filter); err != nil {
			return fail(errw, ExitError, "dlq replay: %v", err)
		}
		if len(letters) == 0 {
			fmt.Fprintln(out, "no dead letters to replay")
			return ExitOK
		}
	} else {
		m, err := dlq.GetMsg(ctx, *seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return fail(errw, ExitFailed, "dlq replay: no dead letter with sequence %d in %s", *seq, pipeline.StreamDeadLetter)
			}
			return fail(errw, ExitError, "dlq replay: %v", err)
		}
		d := newDeadLetter(m.Sequence, m.Time, m.Header, m.Data)
		if *stream != "" && !strings.EqualFold(d.Stream, *stream) {
			return fail(errw, ExitFailed, "dlq replay: dead letter %d came from %s, not %s", *seq, d.Stream, *stream)
		}
		letters = []DeadLetter{d}
	}

	failed := 0
	for _, d := range letters {
		dupe, err := replay(ctx, js, dlq, d)
		if err != nil {
			if ctx.Err() != nil {
				return fail(errw, ExitError, "dlq replay: %v", err)
			}
			fmt.Fprintf(errw, "zoomctl: dlq replay %d: %v\n", d.Seq, err)
			failed++
			continue
		}
		note := ""
		if dupe {
			note = "; already replayed before, not stored twice"
		}
		fmt.Fprintf(out, "replayed %d: %s to %s (was %s seq %d%s)\n", d.Seq, size(d.Size), d.Subject, d.Stream, d.StreamSeq, note)
	}
	if failed > 0 {
		return fail(errw, ExitFailed, "dlq replay: %d of %d dead letters not replayed", failed, len(letters))
	}
	return ExitOK
}

func size(n int) string {
	if n == 1 {
		return "1 byte"
	}
	return strconv.Itoa(n) + " bytes"
}

// replay publishes d to its original subject, waits for JetStream to store
// it, and only then deletes it from the dead-letter stream: a failure in
// between leaves the dead letter where it was.
func replay(ctx context.Context, js jetstream.JetStream, dlq jetstream.Stream, d DeadLetter) (dupe bool, err error) {
	if d.Subject == "" {
		return false, fmt.Errorf("no %s header: the original subject is unknown", natsx.HeaderDLQSubject)
	}
	var opts []jetstream.PublishOpt
	if d.Stream != "" {
		// The subject must still land in the stream it came from.
		opts = append(opts, jetstream.WithExpectStream(d.Stream))
	}
	ack, err := js.PublishMsg(ctx, d.replayMsg(), opts...)
	if err != nil {
		return false, fmt.Errorf("publish to %s: %w", d.Subject, err)
	}
	// A duplicate means this dead letter was replayed moments ago but not
	// deleted; the stream kept the first copy, so deleting is all that is left.
	dupe = ack.Duplicate
	if err := dlq.DeleteMsg(ctx, d.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return dupe, fmt.Errorf("republished to %s, but delete from %s: %w", d.Subject, pipeline.StreamDeadLetter, err)
	}
	return dupe, nil
}
