package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/follow"
)

func runFollow(ctx context.Context, args []string, out, errw io.Writer) int {
	fs, tenant, connector := flags("follow", errw)
	state := fs.String("state", "zoomctl-follow.state", "file that keeps the local copy and its position (and FILE.journal)")
	every := fs.Duration("counts-every", 10*time.Second, "print the record counts this often (0: only at start and end)")
	quiet := fs.Bool("quiet", false, "print the counts only, not each change")
	natsURL := fs.String("nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: zoomctl follow [--tenant T] [--connector C] [--state FILE] [--counts-every D] [--quiet]")
		fmt.Fprintln(fs.Output(), "\nKeeps a local copy of the connector's records in FILE: loads a snapshot from the")
		fmt.Fprintln(fs.Output(), "writer, then applies the change events that follow it, until interrupted; run again,")
		fmt.Fprintln(fs.Output(), "it resumes where it stopped. Prints each change as it applies and the record counts.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	ref, err := connectorRef(*tenant, *connector)
	if err != nil {
		return fail(errw, ExitUsage, "%v", err)
	}
	if *state == "" {
		return fail(errw, ExitUsage, "follow: --state must name a file")
	}
	nc, _, err := connectNATS(ctx, *natsURL, "zoomctl-follow")
	if err != nil {
		return fail(errw, ExitError, "%v", err)
	}
	defer nc.Close()

	p := &followPrinter{out: out}
	store := follow.NewFileStore(*state)
	defer store.Close()
	cfg := follow.Config{
		Conn: nc, Connector: ref, Store: store,
		Loaded: func(pos follow.Position, n int) {
			p.printf("snapshot sequence=%d records=%d next=%d\n", pos.Sequence, n, pos.Next)
		},
		Resumed: func(pos follow.Position, n int) {
			p.printf("resumed sequence=%d records=%d next=%d\n", pos.Sequence, n, pos.Next)
		},
		Log: zerolog.New(errw).With().Timestamp().Logger().Level(zerolog.WarnLevel),
	}
	if !*quiet {
		cfg.Apply = func(c follow.Change) {
			p.printf("applied %d %q %s %s %q\n", c.Sequence, c.ID, c.Op, c.Kind, c.Key)
		}
	}
	f, err := follow.New(cfg)
	if err != nil {
		return fail(errw, ExitUsage, "follow: %v", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	if *every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					p.counts(f)
				}
			}
		}()
	}
	err = f.Run(ctx)
	close(done)
	wg.Wait()
	p.counts(f)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fail(errw, ExitError, "follow: %v", err)
	}
	return ExitOK
}

// followPrinter writes whole lines from the follower and the ticker.
type followPrinter struct {
	mu  sync.Mutex
	out io.Writer
}

func (p *followPrinter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

// counts prints one line: the records of each kind, their total and the
// sequence they are consistent with.
func (p *followPrinter) counts(f *follow.Follower) {
	c := f.Counts()
	parts := make([]string, 0, len(clarity.Kinds))
	total := 0
	for _, k := range clarity.Kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, c[k]))
		total += c[k]
	}
	slices.Sort(parts)
	p.printf("records %s total=%d sequence=%d\n", strings.Join(parts, " "), total, f.Position().Sequence)
}
