package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

func runEvents(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("events", errw)
	all := fs.Bool("all", false, "events of every connector of every tenant (ignores --tenant and --connector)")
	kind := fs.String("kind", "", "only events of this kind: "+strings.Join(eventKinds(), ", "))
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	since := fs.Uint64("since-seq", 0, "start at this CLARITY_ENTITLEMENTS stream sequence (the first column); 0 is the beginning")
	asJSON := fs.Bool("json", false, "print each CloudEvent as it is stored, one per line")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: zoomctl events [--tenant T] [--connector C | --all] [--kind K] [--since-seq N] [--follow] [--json]")
		fmt.Fprintln(fs.Output(), "\nPrints the change events of the CLARITY_ENTITLEMENTS stream, one per line:")
		fmt.Fprintln(fs.Output(), "stream sequence, time, type, subject and the event's data. Without --follow it")
		fmt.Fprintln(fs.Output(), "stops at the end of the stream.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *kind != "" && !slices.Contains(eventKinds(), *kind) {
		return fail(errw, ExitUsage, "events: --kind %q is not one of %s", *kind, strings.Join(eventKinds(), ", "))
	}
	filter := "clarity.entitlements.*.*." + cmp.Or(*kind, "*")
	if !*all {
		ref, err := connectorRef(*tenant, *connector)
		if err != nil {
			return fail(errw, ExitUsage, "%v", err)
		}
		filter = pipeline.EventSubject(ref, cmp.Or(*kind, "*"))
	}
	nc, js, err := connectNATS(ctx, *natsURL, "zoomctl")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()
	p := eventPrinter{out: out, json: *asJSON, connector: *all}
	if err := Events(ctx, js, filter, *since, *follow, p.print); err != nil {
		if *follow && ctx.Err() != nil {
			return ExitOK // interrupted, as --follow is meant to end
		}
		return fail(errw, ExitError, "events: %v", err)
	}
	return ExitOK
}

func eventKinds() []string { return append(slices.Clone(clarity.Kinds), clarity.KindSync) }

// Events hands fn, in stream order, each message of CLARITY_ENTITLEMENTS
// whose subject matches filter, from stream sequence since (0: the
// beginning). Without follow it returns once the messages stored when it
// started are done; with follow it goes on until ctx ends.
func Events(ctx context.Context, js jetstream.JetStream, filter string, since uint64, follow bool, fn func(jetstream.Msg) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if since > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, since
	}
	return readOrdered(ctx, js, clarity.StreamEntitlements, cfg, follow, fn)
}

// readOrdered reads a stream with an ordered consumer. Without follow it
// stops when the consumer has nothing pending: the end of the stream as it
// was when reading started, or a little later.
func readOrdered(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, follow bool, fn func(jetstream.Msg) error) error {
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s does not exist (no service has run against this NATS yet)", stream)
		}
		return fmt.Errorf("read %s: %w", stream, err)
	}
	if !follow {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if info.NumPending == 0 {
			return nil
		}
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if !follow {
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				return nil
			}
		}
	}
}

// eventPrinter writes events, readably or as stored.
type eventPrinter struct {
	out       io.Writer
	json      bool
	connector bool // name the tenant and connector on each line
}

func (p eventPrinter) print(m jetstream.Msg) error {
	var seq uint64
	if md, err := m.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	if p.json {
		var b bytes.Buffer
		if err := json.Compact(&b, m.Data()); err != nil {
			// Not JSON: print it as a JSON string, so every line still parses.
			s, _ := json.Marshal(string(m.Data()))
			b.Reset()
			b.Write(s)
		}
		b.WriteByte('\n')
		_, err := p.out.Write(b.Bytes())
		return err
	}
	var ev clarity.Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		_, err := fmt.Fprintf(p.out, "%-6d %s: not a CloudEvent (%d bytes)\n", seq, m.Subject(), len(m.Data()))
		return err
	}
	var data bytes.Buffer
	if err := json.Compact(&data, ev.Data); err != nil {
		data.Reset()
		data.Write(ev.Data)
	}
	who := ""
	if p.connector {
		who = ev.Tenant + "/" + ev.Connector + " "
	}
	_, err := fmt.Fprintf(p.out, "%-6d %s %s%-44s %s %s\n", seq, ev.Time.UTC().Format("2006-01-02T15:04:05.000Z"),
		who, ev.Type, ev.Subject, data.String())
	return err
}
