package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// newNATS starts an embedded JetStream server, with the connector's streams
// unless bare, and returns its URL and a JetStream handle on it.
func newNATS(t testing.TB, bare bool) (string, jetstream.JetStream) {
	t.Helper()
	var streams []jetstream.StreamConfig
	if !bare {
		streams = pipeline.Streams(1)
	}
	js := natstest.JetStream(t, streams...)
	return js.Conn().ConnectedUrl(), js
}

// publishEvent publishes a change event as the writer's relay does.
func publishEvent(t testing.TB, js jetstream.JetStream, tenant, connector string, seq int64, kind, op, subject, data string) clarity.Event {
	t.Helper()
	ev := clarity.NewEvent(tenant, connector, seq, kind, op, subject,
		time.Date(2026, 11, 28, 12, 0, int(seq), 0, time.UTC), json.RawMessage(data))
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(clarity.EventSubject(tenant, connector, kind))
	m.Data = body
	m.Header.Set("Content-Type", clarity.ContentType)
	m.Header.Set(jetstream.MsgIDHeader, ev.ID)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return ev
}

// seedEvents publishes three events of default/zoom (stream sequences 1, 2
// and 4) and one of acme/zoom (3).
func seedEvents(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	publishEvent(t, js, "default", "zoom", 1, clarity.KindServiceUser, clarity.OpCreated, "u1",
		`{"id": "u1", "email": "ann@example.com"}`)
	publishEvent(t, js, "default", "zoom", 2, clarity.KindEntitlement, clarity.OpCreated, "group:g1",
		`{"id":"group:g1","type":"group","zoom_id":"g1","name":"Sales","description":""}`)
	publishEvent(t, js, "acme", "zoom", 1, clarity.KindServiceUser, clarity.OpDeleted, "u9", `{"id":"u9"}`)
	publishEvent(t, js, "default", "zoom", 3, clarity.KindSync, clarity.OpCompleted, "run-1",
		`{"run_id":"run-1","request_ids":["r"],"mode":"full","started_at":"x","stats":{"created":2}}`)
}

func TestEvents(t *testing.T) {
	url, js := newNATS(t, false)
	seedEvents(t, js)
	base := []string{"events", "--nats-url", url}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // one per output line, each a substring of its line
		wantErr  string
	}{
		{
			name: "from the beginning",
			args: []string{"--tenant", "default", "--connector", "zoom"},
			want: []string{
				`1      2026-11-28T12:00:01.000Z clarity.service_user.created                 u1 {"id":"u1","email":"ann@example.com"}`,
				`2      2026-11-28T12:00:02.000Z clarity.entitlement.created                  group:g1 {"id":"group:g1","type":"group"`,
				`4      2026-11-28T12:00:03.000Z clarity.sync.completed                       run-1 {"run_id":"run-1"`,
			},
		},
		{
			name: "one kind",
			args: []string{"--tenant", "default", "--connector", "zoom", "--kind", "entitlement"},
			want: []string{"clarity.entitlement.created"},
		},
		{
			name: "since a stream sequence",
			args: []string{"--tenant", "default", "--connector", "zoom", "--since-seq", "3"},
			want: []string{"4      2026-11-28T12:00:03.000Z clarity.sync.completed"},
		},
		{
			name: "every connector",
			args: []string{"--all", "--kind", "service_user"},
			want: []string{"default/zoom clarity.service_user.created", "acme/zoom clarity.service_user.deleted"},
		},
		{
			name: "nothing to show",
			args: []string{"--tenant", "default", "--connector", "nobody"},
		},
		{
			name: "past the end",
			args: []string{"--tenant", "default", "--connector", "zoom", "--since-seq", "99"},
		},
		{name: "unknown kind", args: []string{"--kind", "users"}, wantCode: ExitUsage, wantErr: `zoomctl: events: --kind "users" is not one of`},
		{name: "bad tenant", args: []string{"--tenant", "a.b"}, wantCode: ExitUsage, wantErr: `zoomctl: pipeline: invalid name: --tenant "a.b" must be`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code, out, errw := zoomctl(t, ctx, append(base, tt.args...)...)
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

func TestEventsJSON(t *testing.T) {
	url, js := newNATS(t, false)
	seedEvents(t, js)
	code, out, errw := zoomctl(t, context.Background(), "events", "--nats-url", url, "--tenant", "default", "--connector", "zoom", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d; stderr: %s", code, errw)
	}
	var ids []string
	for _, l := range nonEmptyLines(out) {
		var ev clarity.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q is not a CloudEvent: %v", l, err)
		}
		if ev.SpecVersion != "1.0" {
			t.Errorf("got specversion %q, want 1.0", ev.SpecVersion)
		}
		ids = append(ids, ev.ID)
	}
	if got, want := strings.Join(ids, " "), "default/zoom/1 default/zoom/2 default/zoom/3"; got != want {
		t.Errorf("got ids %s, want %s", got, want)
	}
}

func TestEventsFollow(t *testing.T) {
	url, js := newNATS(t, false)
	seedEvents(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errw syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"events", "--nats-url", url, "--tenant", "default", "--connector", "zoom", "--follow"}, &out, &errw)
	}()
	waitFor(t, &out, "clarity.sync.completed")
	publishEvent(t, js, "default", "zoom", 4, clarity.KindServiceUser, clarity.OpUpdated, "u1", `{"id":"u1"}`)
	waitFor(t, &out, "clarity.service_user.updated")
	select {
	case code := <-done:
		t.Fatalf("events --follow ended on its own with exit %d", code)
	default:
	}
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Errorf("exit %d after interrupt, want 0; stderr: %s", code, errw.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events --follow did not stop within 5s of the interrupt")
	}
	if n := len(nonEmptyLines(out.String())); n != 4 {
		t.Errorf("got %d lines, want 4:\n%s", n, out.String())
	}
}

func TestEventsWithoutStream(t *testing.T) {
	url, _ := newNATS(t, true)
	code, _, errw := zoomctl(t, context.Background(), "events", "--nats-url", url)
	if code != ExitError || !strings.Contains(errw, "stream CLARITY_ENTITLEMENTS does not exist") {
		t.Errorf("got exit %d, stderr %q; want exit 3 naming the missing stream", code, errw)
	}
}

func nonEmptyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// syncBuffer is a bytes.Buffer safe to write and read from two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits up to 10 seconds for b to contain s.
func waitFor(t testing.TB, b *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q after 10s; got:\n%s", s, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
