package natsx_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
)

const (
	workStream = "WORK"
	dlqStream  = "DLQ"
	deadLetter = "dlq.work"
)

// newJS starts a server with a work stream (work.>) and a dead-letter
// stream (dlq.>) and returns a JetStream handle on it.
func newJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	return natstest.JetStream(t,
		jetstream.StreamConfig{Name: workStream, Subjects: []string{"work.>"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.MemoryStorage},
		jetstream.StreamConfig{Name: dlqStream, Subjects: []string{"dlq.>"}, Storage: jetstream.MemoryStorage},
	)
}

func consumer(grace time.Duration) natsx.Consumer {
	return natsx.Consumer{
		Stream: workStream, Durable: "test", AckWait: 5 * time.Second, MaxDeliver: 3,
		Concurrency: 1, Grace: grace, DeadLetter: deadLetter, Log: zerolog.Nop(),
	}
}

// running is a consumer running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
	err    error         // Run's result, once done is closed
}

// run runs c until the test ends or the returned consumer is cancelled.
func run(t testing.TB, js jetstream.JetStream, c natsx.Consumer, h natsx.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx, js, h)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("consumer did not stop within 10s")
		}
	})
	return r
}

func publish(t testing.TB, js jetstream.JetStream, subject, body string, hdr map[string]string) {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workStreamEmpty reports whether the work stream holds no message.
func workStreamEmpty(t testing.TB, js jetstream.JetStream) func() bool {
	return func() bool {
		st, err := js.Stream(context.Background(), workStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs == 0
	}
}

// deadLetters returns the messages of the dead-letter stream.
func deadLetters(t testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	return natstest.StreamMsgs(t, js, dlqStream)
}

// attempts counts the deliveries of each message body.
type attempts struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *attempts) add(body string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[body]++
	return a.n[body]
}

func (a *attempts) get(body string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[body]
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name           string
		fail           func() error
		wantAttempts   int
		wantReason     []string
		wantDeliveries string
	}{
		{
			name:           "error retried up to MaxDeliver",
			fail:           func() error { return errors.New("zoom is down") },
			wantAttempts:   3,
			wantReason:     []string{"zoom is down"},
			wantDeliveries: "3",
		},
		{
			name:           "permanent error",
			fail:           func() error { return natsx.Permanent(errors.New("undecodable")) },
			wantAttempts:   1,
			wantReason:     []string{"permanent", "undecodable"},
			wantDeliveries: "1",
		},
		{
			name:           "panic",
			fail:           func() error { panic("nil map") },
			wantAttempts:   1,
			wantReason:     []string{"panic", "nil map"},
			wantDeliveries: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := newJS(t)
			var seen attempts
			run(t, js, consumer(time.Second), func(_ context.Context, msg jetstream.Msg) error {
				seen.add(string(msg.Data()))
				if string(msg.Data()) == "bad" {
					return tt.fail()
				}
				return nil
			})
			publish(t, js, "work.a", "bad", map[string]string{"X-Trace": "t1", jetstream.MsgIDHeader: "bad-1"})
			publish(t, js, "work.b", "good", nil)
			publish(t, js, "work.c", "after", nil)

			waitFor(t, 10*time.Second, "dead letter", func() bool { return len(deadLetters(t, js)) > 0 })
			waitFor(t, 5*time.Second, "messages behind the bad one handled", func() bool {
				return seen.get("good") == 1 && seen.get("after") == 1
			})
			// Give a wrong extra delivery time to show up.
			time.Sleep(300 * time.Millisecond)
			if got := seen.get("bad"); got != tt.wantAttempts {
				t.Errorf("got %d attempts, want %d", got, tt.wantAttempts)
			}
			dl := deadLetters(t, js)
			if len(dl) != 1 {
				t.Fatalf("got %d dead letters, want 1", len(dl))
			}
			m := dl[0]
			if got := string(m.Data); got != "bad" {
				t.Errorf("got dead letter body %q, want %q", got, "bad")
			}
			if m.Subject != deadLetter {
				t.Errorf("got dead letter subject %q, want %q", m.Subject, deadLetter)
			}
			want := map[string]string{
				natsx.HeaderDLQStream:   workStream,
				natsx.HeaderDLQSequence: "1",
				natsx.HeaderDLQSubject:  "work.a",
				natsx.HeaderDLQConsumer: "test",
				natsx.HeaderDLQAttempts: tt.wantDeliveries,
				"X-Trace":               "t1",
			}
			for k, w := range want {
				if got := m.Header.Get(k); got != w {
					t.Errorf("got header %s %q, want %q", k, got, w)
				}
			}
			reason := m.Header.Get(natsx.HeaderDLQReason)
			for _, w := range tt.wantReason {
				if !strings.Contains(reason, w) {
					t.Errorf("got reason %q, want it to mention %q", reason, w)
				}
			}
			if got := m.Header.Get(jetstream.MsgIDHeader); got == "bad-1" {
				t.Errorf("got the original Nats-Msg-Id %q on the dead letter, want its own", got)
			}
			// The dead-lettered message is done with: nothing is pending.
			waitFor(t, 5*time.Second, "work stream empty", workStreamEmpty(t, js))
		})
	}
}

// TestDeadLetterReasonCutBetweenCharacters: a reason longer than the
// header keeps is cut before a character, never inside one, and stays
// within 1000 bytes.
func TestDeadLetterReasonCutBetweenCharacters(t *testing.T) {
	t.Parallel()
	js := newJS(t)
	prefix := natsx.ErrPermanent.Error() + ": "
	kept := prefix + strings.Repeat("a", 1000-len(prefix)-1)
	run(t, js, consumer(time.Second), func(context.Context, jetstream.Msg) error {
		return natsx.Permanent(errors.New(kept[len(prefix):] + "日本"))
	})
	publish(t, js, "work.a", "bad", nil)
	waitFor(t, 10*time.Second, "dead letter", func() bool { return len(deadLetters(t, js)) > 0 })
	reason := deadLetters(t, js)[0].Header.Get(natsx.HeaderDLQReason)
	if !utf8.ValidString(reason) || len(reason) > 1000 || reason != kept {
		t.Errorf("got reason of %d bytes ending %q (valid UTF-8: %v), want the %d bytes before 日",
			len(reason), reason[max(0, len(reason)-8):], utf8.ValidString(reason), len(kept))
	}
}

// TestDeadLetterID: the dead letter's Nats-Msg-Id is what the consumer's
// DeadLetterID makes of the stream and sequence, and "dlq/<stream>/<seq>"
// without one.
func TestDeadLetterID(t *testing.T) {
	tests := []struct {
		name string
		id   func(stream string, seq uint64) string
		want string
	}{
		{"unset", nil, "dlq/WORK/2"},
		{"set", func(stream string, seq uint64) string { return fmt.Sprintf("dead/%s/%d", stream, seq) }, "dead/WORK/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := newJS(t)
			c := consumer(time.Second)
			c.DeadLetterID = tt.id
			run(t, js, c, func(_ context.Context, msg jetstream.Msg) error {
				if string(msg.Data()) == "bad" {
					return natsx.Permanent(errors.New("undecodable"))
				}
				return nil
			})
			publish(t, js, "work.a", "good", nil)
			publish(t, js, "work.b", "bad", nil)
			waitFor(t, 5*time.Second, "dead letter", func() bool { return len(deadLetters(t, js)) == 1 })
			if got := deadLetters(t, js)[0].Header.Get(jetstream.MsgIDHeader); got != tt.want {
				t.Errorf("got Nats-Msg-Id %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHandlerGetsMessageAsStored: the loop hands the handler the data and
// headers as published, an encoding header among them, and decodes
// nothing; a message its handler cannot decode is dead-lettered as it was
// published.
func TestHandlerGetsMessageAsStored(t *testing.T) {
	js := newJS(t)
	type seen struct {
		data     string
		encoding string
	}
	got := make(chan seen, 1)
	run(t, js, consumer(time.Second), func(_ context.Context, m jetstream.Msg) error {
		got <- seen{string(m.Data()), m.Headers().Get("Zoom-Encoding")}
		return natsx.Permanent(errors.New("decode s2 data: corrupt input"))
	})
	publish(t, js, "work.a", "not s2 at all", map[string]string{"Zoom-Encoding": "s2"})
	select {
	case s := <-got:
		if s != (seen{"not s2 at all", "s2"}) {
			t.Errorf("handler got data %q with Zoom-Encoding %q, want %q with %q", s.data, s.encoding, "not s2 at all", "s2")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler got no message within 5s")
	}
	waitFor(t, 5*time.Second, "the message dead-lettered", func() bool { return len(deadLetters(t, js)) == 1 })
	dl := deadLetters(t, js)[0]
	if string(dl.Data) != "not s2 at all" || dl.Header.Get("Zoom-Encoding") != "s2" {
		t.Errorf("got dead letter %q with Zoom-Encoding %q, want the message as published", dl.Data, dl.Header.Get("Zoom-Encoding"))
	}
}

func TestDroppedWithoutDeadLetterSubject(t *testing.T) {
	js := newJS(t)
	var seen attempts
	c := consumer(time.Second)
	c.DeadLetter = ""
	run(t, js, c, func(_ context.Context, msg jetstream.Msg) error {
		seen.add(string(msg.Data()))
		if string(msg.Data()) == "bad" {
			return natsx.Permanent(errors.New("undecodable"))
		}
		return nil
	})
	publish(t, js, "work.a", "bad", nil)
	publish(t, js, "work.b", "good", nil)
	waitFor(t, 5*time.Second, "good handled", func() bool { return seen.get("good") == 1 })
	time.Sleep(200 * time.Millisecond)
	if got := seen.get("bad"); got != 1 {
		t.Errorf("got %d attempts, want 1", got)
	}
	if got := len(deadLetters(t, js)); got != 0 {
		t.Errorf("got %d dead letters, want none", got)
	}
}

func TestShutdownGrace(t *testing.T) {
	tests := []struct {
		name string
		// work is how long the handler runs unless its context ends first.
		work, grace time.Duration
		// wantCancelled: the handler's context ended before its work did.
		wantCancelled bool
	}{
		{name: "handler finishes within grace", work: 400 * time.Millisecond, grace: 3 * time.Second},
		{name: "handler outlives grace", work: time.Minute, grace: 300 * time.Millisecond, wantCancelled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := newJS(t)
			started := make(chan struct{}, 1)
			type result struct {
				err      error
				finished time.Time
			}
			results := make(chan result, 2)
			r := run(t, js, consumer(tt.grace), func(ctx context.Context, _ jetstream.Msg) error {
				started <- struct{}{}
				select {
				case <-time.After(tt.work):
					results <- result{nil, time.Now()}
					return nil
				case <-ctx.Done():
					results <- result{ctx.Err(), time.Now()}
					return ctx.Err()
				}
			})
			publish(t, js, "work.a", "slow", nil)
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("handler not called within 5s")
			}
			cancelled := time.Now()
			r.cancel()
			var stopped time.Duration
			select {
			case <-r.done:
				stopped = time.Since(cancelled)
				if r.err != nil {
					t.Errorf("run: got %v, want nil", r.err)
				}
			case <-time.After(tt.grace + 5*time.Second):
				t.Fatalf("run did not return within grace %s and 5s", tt.grace)
			}
			var res result
			select {
			case res = <-results:
			default:
				t.Fatal("run returned before its handler did")
			}
			if got := res.err != nil; got != tt.wantCancelled {
				t.Errorf("got handler context error %v, want cancelled %v", res.err, tt.wantCancelled)
			}
			if !tt.wantCancelled && stopped >= tt.grace {
				t.Errorf("got run stopped %s after cancel, want within grace %s", stopped, tt.grace)
			}
			if tt.wantCancelled && (stopped < tt.grace || stopped > tt.grace+2*time.Second) {
				t.Errorf("got run stopped %s after cancel, want about grace %s", stopped, tt.grace)
			}

			// A finished message was acknowledged; an abandoned one is
			// handed back and delivered again to the next consumer.
			var seen attempts
			run(t, js, consumer(tt.grace), func(_ context.Context, msg jetstream.Msg) error {
				seen.add(string(msg.Data()))
				return nil
			})
			publish(t, js, "work.b", "marker", nil)
			waitFor(t, 5*time.Second, "marker handled", func() bool { return seen.get("marker") == 1 })
			want := 0
			if tt.wantCancelled {
				want = 1
				waitFor(t, 5*time.Second, "abandoned message redelivered", func() bool { return seen.get("slow") == 1 })
			}
			if got := seen.get("slow"); got != want {
				t.Errorf("got the message delivered %d times to the next consumer, want %d", got, want)
			}
		})
	}
}

// TestUnavailableKeepsTheMessage: a handler whose database is down for
// longer than MaxDeliver attempts allow loses nothing: the message is kept,
// handled again until the database is back, never redelivered, and never
// dead-lettered.
func TestUnavailableKeepsTheMessage(t *testing.T) {
	js := newJS(t)
	c := consumer(time.Second)
	c.MaxUnavailableDelay = 200 * time.Millisecond
	c.AckWait = time.Second // the outage outlasts it: the message must be kept alive
	c.Concurrency = 2       // a free worker would take a redelivery
	var mu sync.Mutex
	var deliveries []uint64
	run(t, js, c, func(_ context.Context, msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		deliveries = append(deliveries, md.NumDelivered)
		if len(deliveries) <= 15 { // c.MaxDeliver is 3; about 3 s, three ack waits
			return natsx.Unavailable(errors.New("connect: connection refused"))
		}
		return nil
	})
	publish(t, js, "work.a", "page", nil)

	waitFor(t, 15*time.Second, "work stream empty", workStreamEmpty(t, js))
	time.Sleep(300 * time.Millisecond) // a wrong redelivery would show up
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 16 {
		t.Errorf("handled %d times, want 16", len(deliveries))
	}
	for i, d := range deliveries {
		if d != 1 {
			t.Errorf("attempt %d came with delivery %d, want 1: the message was redelivered", i+1, d)
		}
	}
	if dl := deadLetters(t, js); len(dl) != 0 {
		t.Errorf("got %d dead letters, want none", len(dl))
	}
}

// TestDeadLetterStreamAway: a message out of deliveries while its
// dead-letter stream is away keeps coming back, and is dead-lettered once
// the stream is back: it is never left unacknowledged for good.
func TestDeadLetterStreamAway(t *testing.T) {
	js := newJS(t)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, dlqStream); err != nil {
		t.Fatal(err)
	}
	c := consumer(time.Second)
	c.MaxDeliver = 2
	var seen attempts
	run(t, js, c, func(_ context.Context, msg jetstream.Msg) error {
		seen.add(string(msg.Data()))
		return errors.New("always fails")
	})
	publish(t, js, "work.a", "bad", nil)
	// Past MaxDeliver, and past the one more delivery the server used to
	// allow: every dead-lettering so far failed.
	waitFor(t, 15*time.Second, "deliveries past the bound", func() bool { return seen.get("bad") >= 4 })
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: dlqStream, Subjects: []string{"dlq.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dead letter", func() bool { return len(deadLetters(t, js)) == 1 })
	waitFor(t, 5*time.Second, "work stream empty", workStreamEmpty(t, js))
}

// TestKeepAlive: with KeepAlive, a handler that runs longer than AckWait
// keeps its message: it is not redelivered meanwhile.
func TestKeepAlive(t *testing.T) {
	js := newJS(t)
	c := consumer(time.Second)
	c.AckWait = time.Second
	c.Concurrency = 2 // a free worker would take a redelivery
	c.KeepAlive = true
	var mu sync.Mutex
	var deliveries []uint64
	run(t, js, c, func(ctx context.Context, msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		mu.Lock()
		deliveries = append(deliveries, md.NumDelivered)
		mu.Unlock()
		select { // waits on a lock, say
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
		}
		return nil
	})
	publish(t, js, "work.a", "slow", nil)
	waitFor(t, 15*time.Second, "work stream empty", workStreamEmpty(t, js))
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(deliveries) != 1 || deliveries[0] != 1 {
		t.Errorf("deliveries %v, want one, the first", deliveries)
	}
}
