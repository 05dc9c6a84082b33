package cli

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// defaultRef is the connector zoomctl names without --tenant and
// --connector.
var defaultRef = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// publishDeadLetter stores a dead letter as the consume loop does: the
// original headers (here Zoom-Run-Id), the Zoom-Dlq-* ones and a Nats-Msg-Id.
func publishDeadLetter(t testing.TB, js jetstream.JetStream, stream, subject string, seq uint64, data, reason string) {
	t.Helper()
	m := nats.NewMsg(pipeline.DeadLetterSubject(stream))
	m.Data = []byte(data)
	m.Header.Set("Zoom-Run-Id", "run-"+strconv.FormatUint(seq, 10))
	m.Header.Set(natsx.HeaderDLQReason, reason)
	m.Header.Set(natsx.HeaderDLQStream, stream)
	m.Header.Set(natsx.HeaderDLQSequence, strconv.FormatUint(seq, 10))
	m.Header.Set(natsx.HeaderDLQSubject, subject)
	m.Header.Set(natsx.HeaderDLQConsumer, "normalizer")
	m.Header.Set(natsx.HeaderDLQAttempts, "8")
	m.Header.Set(jetstream.MsgIDHeader, pipeline.DeadLetterID(stream, seq))
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// seedDeadLetters stores one dead letter of ZOOM_RAW (ZOOM_DLQ sequence 1)
// and one of ZOOM_RECORDS (2).
func seedDeadLetters(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	publishDeadLetter(t, js, pipeline.StreamRaw, pipeline.RawSubject(defaultRef), 7, "raw page",
		"permanent: decode page: unexpected EOF")
	publishDeadLetter(t, js, pipeline.StreamRecords, pipeline.RecordsSubject(defaultRef), 12, "batch",
		"apply batch: timeout\nafter 8 attempts")
}

func TestDLQList(t *testing.T) {
	url, js := newNATS(t, false)
	seedDeadLetters(t, js)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // one per output line, each a substring of its line
		wantErr  string
	}{
		{
			name: "all",
			want: []string{
				"SEQ  TIME",
				"Z  ZOOM_RAW      7           zoom.raw.default.zoom      8           8     permanent: decode page: unexpected EOF",
				"Z  ZOOM_RECORDS  12          zoom.records.default.zoom  8           5     apply batch: timeout after 8 attempts",
			},
		},
		{
			name: "one stream, any case",
			args: []string{"--stream", "zoom_raw"},
			want: []string{"SEQ", "zoom.raw.default.zoom"},
		},
		{name: "none", args: []string{"--stream", "ZOOM_HINT"}, want: []string{"no dead letters"}},
		{name: "bad stream", args: []string{"--stream", "zoom.raw"}, wantCode: ExitUsage, wantErr: `zoomctl: --stream "zoom.raw" is not a stream name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errw := zoomctl(t, context.Background(), append([]string{"dlq", "list", "--nats-url", url}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errw)
			}
			lines := nonEmptyLines(out)
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d: got %q, want it to contain %q", i+1, lines[i], w)
				}
			}
			if !strings.Contains(errw, tt.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", errw, tt.wantErr)
			}
		})
	}
}

func TestDLQListJSON(t *testing.T) {
	url, js := newNATS(t, false)
	seedDeadLetters(t, js)
	code, out, errw := zoomctl(t, context.Background(), "dlq", "list", "--nats-url", url, "--json", "--stream", "ZOOM_RAW")
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, errw)
	}
	var d DeadLetter
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	want := DeadLetter{Seq: 1, Stream: "ZOOM_RAW", StreamSeq: 7, Subject: "zoom.raw.default.zoom", Consumer: "normalizer",
		Deliveries: 8, Reason: "permanent: decode page: unexpected EOF", Size: 8}
	if d.Time.IsZero() || time.Since(d.Time) > time.Minute {
		t.Errorf("got time %s, want about now", d.Time)
	}
	d.Time = time.Time{}
	if d.Seq != want.Seq || d.Stream != want.Stream || d.StreamSeq != want.StreamSeq || d.Subject != want.Subject ||
		d.Consumer != want.Consumer || d.Deliveries != want.Deliveries || d.Reason != want.Reason || d.Size != want.Size {
		t.Errorf("got %+v, want %+v", d, want)
	}
}

func TestDLQReplay(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		replayed  []string // streams that get their message back
		remaining []uint64 // ZOOM_DLQ sequences left
		wantOut   string
		wantErr   string
	}{
		{
			name:      "one",
			args:      []string{"--seq", "1"},
			replayed:  []string{pipeline.StreamRaw},
			remaining: []uint64{2},
			wantOut:   "replayed 1: 8 bytes to zoom.raw.default.zoom (was ZOOM_RAW seq 7)\n",
		},
		{
			name:      "all of one stream",
			args:      []string{"--all", "--stream", "ZOOM_RECORDS"},
			replayed:  []string{pipeline.StreamRecords},
			remaining: []uint64{1},
			wantOut:   "replayed 2: 5 bytes to zoom.records.default.zoom (was ZOOM_RECORDS seq 12)\n",
		},
		{
			name:     "all",
			args:     []string{"--all"},
			replayed: []string{pipeline.StreamRaw, pipeline.StreamRecords},
			wantOut:  "replayed 1: 8 bytes to zoom.raw.default.zoom (was ZOOM_RAW seq 7)\nreplayed 2: 5 bytes to zoom.records.default.zoom (was ZOOM_RECORDS seq 12)\n",
		},
		{
			name: "none of that stream", args: []string{"--all", "--stream", "ZOOM_HINT"},
			remaining: []uint64{1, 2}, wantOut: "no dead letters to replay\n",
		},
		{
			name: "no such dead letter", args: []string{"--seq", "99"}, wantCode: ExitFailed,
			remaining: []uint64{1, 2}, wantErr: "zoomctl: dlq replay: no dead letter with sequence 99 in ZOOM_DLQ\n",
		},
		{
			name: "not of that stream", args: []string{"--seq", "1", "--stream", "ZOOM_RECORDS"}, wantCode: ExitFailed,
			remaining: []uint64{1, 2}, wantErr: "zoomctl: dlq replay: dead letter 1 came from ZOOM_RAW, not ZOOM_RECORDS\n",
		},
		{
			name: "nothing selected", wantCode: ExitUsage,
			remaining: []uint64{1, 2}, wantErr: "zoomctl: dlq replay: give either --seq N or --all\n",
		},
		{
			name: "both selected", args: []string{"--seq", "1", "--all"}, wantCode: ExitUsage,
			remaining: []uint64{1, 2}, wantErr: "zoomctl: dlq replay: give either --seq N or --all\n",
		},
	}
	originals := map[string]struct{ subject, data, runID string }{
		pipeline.StreamRaw:     {"zoom.raw.default.zoom", "raw page", "run-7"},
		pipeline.StreamRecords: {"zoom.records.default.zoom", "batch", "run-12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, js := newNATS(t, false)
			seedDeadLetters(t, js)
			ctx := context.Background()
			code, out, errw := zoomctl(t, ctx, append([]string{"dlq", "replay", "--nats-url", url}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errw)
			}
			if out != tt.wantOut || errw != tt.wantErr {
				t.Errorf("got stdout %q, stderr %q; want %q, %q", out, errw, tt.wantOut, tt.wantErr)
			}
			for name, o := range originals {
				s, err := js.Stream(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				m, err := s.GetLastMsgForSubject(ctx, o.subject)
				replayed := err == nil
				if want := slices.Contains(tt.replayed, name); replayed != want {
					t.Errorf("%s: message back: %v (%v), want %v", name, replayed, err, want)
				}
				if !replayed {
					continue
				}
				if string(m.Data) != o.data || m.Header.Get("Zoom-Run-Id") != o.runID {
					t.Errorf("%s: got data %q, Zoom-Run-Id %q; want %q, %q", name, m.Data, m.Header.Get("Zoom-Run-Id"), o.data, o.runID)
				}
				for k := range m.Header {
					if strings.HasPrefix(k, "Zoom-Dlq-") {
						t.Errorf("%s: replayed message keeps header %s", name, k)
					}
				}
			}
			letters, err := DeadLetters(ctx, js, "zoom.dlq.>")
			if err != nil {
				t.Fatal(err)
			}
			var left []uint64
			for _, d := range letters {
				left = append(left, d.Seq)
			}
			if !slices.Equal(left, tt.remaining) {
				t.Errorf("ZOOM_DLQ holds %v, want %v", left, tt.remaining)
			}
		})
	}
}

// TestDLQRoundTrip dead-letters a message through the real consume loop,
// replays it, and checks that the loop gets it back as the original.
func TestDLQRoundTrip(t *testing.T) {
	url, js := newNATS(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	got := make(chan jetstream.Msg, 1)
	c := natsx.Consumer{
		Stream: pipeline.StreamHint, Durable: "test", MaxDeliver: 2, AckWait: 5 * time.Second,
		DeadLetter: pipeline.DeadLetterSubject(pipeline.StreamHint), DeadLetterID: pipeline.DeadLetterID, Log: zerolog.Nop(),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, js, func(_ context.Context, m jetstream.Msg) error {
			if calls.Add(1) == 1 {
				return natsx.Permanent(errors.New("user id is empty"))
			}
			got <- m
			return nil
		})
	}()
	defer func() { cancel(); <-done }()

	m := nats.NewMsg(pipeline.HintSubject(defaultRef))
	m.Data = []byte(`{"user_id":"u1"}`)
	m.Header.Set("Zoom-Trace", "t-1")
	m.Header.Set(jetstream.MsgIDHeader, "hint-1")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	var letters []DeadLetter
	for deadline := time.Now().Add(10 * time.Second); len(letters) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no dead letter within 10s")
		}
		time.Sleep(50 * time.Millisecond)
		var err error
		if letters, err = DeadLetters(ctx, js, "zoom.dlq.>"); err != nil {
			t.Fatal(err)
		}
	}
	d := letters[0]
	if d.Stream != pipeline.StreamHint || d.StreamSeq != 1 || d.Subject != "zoom.hint.default.zoom" ||
		d.Deliveries != 1 || !strings.Contains(d.Reason, "user id is empty") {
		t.Errorf("got dead letter %+v", d)
	}
	code, out, errw := zoomctl(t, ctx, "dlq", "replay", "--nats-url", url, "--seq", strconv.FormatUint(d.Seq, 10))
	if code != ExitOK {
		t.Fatalf("replay: exit %d; stderr: %s", code, errw)
	}
	if !strings.Contains(out, "replayed 1: 16 bytes to zoom.hint.default.zoom (was ZOOM_HINT seq 1)") {
		t.Errorf("replay printed %q", out)
	}
	select {
	case m := <-got:
		if string(m.Data()) != `{"user_id":"u1"}` || m.Subject() != "zoom.hint.default.zoom" || m.Headers().Get("Zoom-Trace") != "t-1" ||
			m.Headers().Get(natsx.HeaderDLQReason) != "" {
			t.Errorf("consumer got subject %s, data %s, headers %v", m.Subject(), m.Data(), m.Headers())
		}
		// The replay's id names the original message and the dead letter,
		// as zoomctl has always named it.
		if got, want := m.Headers().Get(jetstream.MsgIDHeader), "zoom-dlq-replay/ZOOM_HINT/1/"+strconv.FormatUint(d.Seq, 10); got != want {
			t.Errorf("replayed Nats-Msg-Id got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer did not get the replayed message within 10s")
	}
	if code, out, _ := zoomctl(t, ctx, "dlq", "list", "--nats-url", url); code != ExitOK || out != "no dead letters\n" {
		t.Errorf("after replay, dlq list: exit %d, %q; want 0, no dead letters", code, out)
	}
}

func TestDLQUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"dlq"}, ExitUsage, "usage: zoomctl dlq list"},
		{[]string{"dlq", "--help"}, ExitOK, "usage: zoomctl dlq list"},
		{[]string{"dlq", "purge"}, ExitUsage, `zoomctl: dlq: unknown command "purge" (list or replay)`},
		{[]string{"dlq", "list", "--help"}, ExitOK, "-stream"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, errw := zoomctl(t, context.Background(), tt.args...)
			if code != tt.wantCode || !strings.Contains(errw, tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, errw, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestDLQReplayAgain covers a replay whose delete failed: the next replay of
// the same dead letter is dropped by the stream's duplicate window and only
// deletes it; and a dead letter without its original subject, which stays.
func TestDLQReplayAgain(t *testing.T) {
	url, js := newNATS(t, false)
	ctx := context.Background()
	seedDeadLetters(t, js)
	letters, err := DeadLetters(ctx, js, pipeline.DeadLetterSubject(pipeline.StreamRaw))
	if err != nil || len(letters) != 1 {
		t.Fatalf("got %d dead letters (%v), want 1", len(letters), err)
	}
	// The first replay, which published but did not delete.
	if _, err := js.PublishMsg(ctx, letters[0].replayMsg()); err != nil {
		t.Fatal(err)
	}
	// A dead letter of unknown origin (ZOOM_DLQ sequence 3).
	if _, err := js.Publish(ctx, pipeline.DeadLetterSubject(pipeline.StreamRaw), []byte("?")); err != nil {
		t.Fatal(err)
	}

	code, out, errw := zoomctl(t, ctx, "dlq", "replay", "--nats-url", url, "--all", "--stream", "ZOOM_RAW")
	if code != ExitFailed {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "replayed 1: 8 bytes to zoom.raw.default.zoom (was ZOOM_RAW seq 7; already replayed before, not stored twice)\n"; out != want {
		t.Errorf("got stdout %q, want %q", out, want)
	}
	if want := "zoomctl: dlq replay 3: no Zoom-Dlq-Subject header: the original subject is unknown\n" +
		"zoomctl: dlq replay: 1 of 2 dead letters not replayed\n"; errw != want {
		t.Errorf("got stderr %q, want %q", errw, want)
	}
	raw, err := js.Stream(ctx, pipeline.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := raw.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("ZOOM_RAW holds %d messages, want 1", info.State.Msgs)
	}
	left, err := DeadLetters(ctx, js, "zoom.dlq.>")
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, d := range left {
		seqs = append(seqs, d.Seq)
	}
	if !slices.Equal(seqs, []uint64{2, 3}) {
		t.Errorf("ZOOM_DLQ holds %v, want [2 3]", seqs)
	}
}
