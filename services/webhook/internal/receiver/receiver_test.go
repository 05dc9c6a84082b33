package receiver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// deactivated is Zoom's example user.deactivated notification (Users events
// OpenAPI), as Zoom would send it: compact, with its own field order.
const deactivated = `{"event":"user.deactivated","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB",` +
	`"operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg",` +
	`"first_name":"Jill","last_name":"Chill","email":"jchill@example.com","type":3}}}`

// urlValidation is Zoom's documented endpoint.url_validation request.
const urlValidation = `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`

func TestRefused(t *testing.T) {
	h := newHarness(t, nil)
	valid := []byte(deactivated)
	stale := strconv.FormatInt(testNow.Add(-MaxSkew-time.Second).Unix(), 10)
	future := strconv.FormatInt(testNow.Add(MaxSkew+time.Second).Unix(), 10)
	big := bytes.Repeat([]byte(" "), MaxBody+1)
	exact := bytes.Repeat([]byte("x"), MaxBody)

	tests := []struct {
		name   string
		method string
		path   string
		ts     string
		sig    string
		body   []byte
		want   int
		result string
	}{
		{"get on default route", http.MethodGet, "/webhooks/zoom", testTS, Sign(testSecret, testTS, valid), valid, http.StatusMethodNotAllowed, ResultBadMethod},
		{"put on connector route", http.MethodPut, "/webhooks/zoom/default/zoom", testTS, Sign(testSecret, testTS, valid), valid, http.StatusMethodNotAllowed, ResultBadMethod},
		{"unknown tenant", http.MethodPost, "/webhooks/zoom/other/zoom", testTS, Sign(testSecret, testTS, valid), valid, http.StatusNotFound, ResultUnknownConnector},
		{"unknown connector", http.MethodPost, "/webhooks/zoom/default/nope", testTS, Sign(testSecret, testTS, valid), valid, http.StatusNotFound, ResultUnknownConnector},
		{"connector not a token", http.MethodPost, "/webhooks/zoom/default/zo%2Aom", testTS, Sign(testSecret, testTS, valid), valid, http.StatusNotFound, ResultUnknownConnector},
		{"connector not a valid name", http.MethodPost, "/webhooks/zoom/default/Zoom", testTS, Sign(testSecret, testTS, valid), valid, http.StatusNotFound, ResultUnknownConnector},
		{"over MaxBody", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, big), big, http.StatusRequestEntityTooLarge, ResultTooLarge},
		{"no signature", http.MethodPost, "/webhooks/zoom", testTS, "", valid, http.StatusUnauthorized, ResultBadSignature},
		{"no timestamp", http.MethodPost, "/webhooks/zoom", "", Sign(testSecret, testTS, valid), valid, http.StatusUnauthorized, ResultBadSignature},
		{"wrong secret", http.MethodPost, "/webhooks/zoom", testTS, Sign("another secret", testTS, valid), valid, http.StatusUnauthorized, ResultBadSignature},
		{"other timestamp signed", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, stale, valid), valid, http.StatusUnauthorized, ResultBadSignature},
		{"other body signed", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, append(valid, ' ')), valid, http.StatusUnauthorized, ResultBadSignature},
		{"upper-case hex", http.MethodPost, "/webhooks/zoom", testTS, "v0=" + strings.ToUpper(Sign(testSecret, testTS, valid)[3:]), valid, http.StatusUnauthorized, ResultBadSignature},
		{"stale timestamp", http.MethodPost, "/webhooks/zoom", stale, Sign(testSecret, stale, valid), valid, http.StatusUnauthorized, ResultStaleTimestamp},
		{"future timestamp", http.MethodPost, "/webhooks/zoom", future, Sign(testSecret, future, valid), valid, http.StatusUnauthorized, ResultStaleTimestamp},
		{"timestamp in ms", http.MethodPost, "/webhooks/zoom", testTS + "000", Sign(testSecret, testTS+"000", valid), valid, http.StatusUnauthorized, ResultStaleTimestamp},
		{"timestamp not a number", http.MethodPost, "/webhooks/zoom", "soon", Sign(testSecret, "soon", valid), valid, http.StatusUnauthorized, ResultStaleTimestamp},
		{"invalid JSON", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, []byte(`{"event":`)), []byte(`{"event":`), http.StatusBadRequest, ResultBadJSON},
		{"exactly MaxBody, not JSON", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, exact), exact, http.StatusBadRequest, ResultBadJSON},
		{"JSON array", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, []byte(`[]`)), []byte(`[]`), http.StatusBadRequest, ResultBadJSON},
		{"no event", http.MethodPost, "/webhooks/zoom", testTS, Sign(testSecret, testTS, []byte(`{"payload":{}}`)), []byte(`{"payload":{}}`), http.StatusBadRequest, ResultBadJSON},
		{"url validation without token", http.MethodPost, "/webhooks/zoom", testTS,
			Sign(testSecret, testTS, []byte(`{"event":"endpoint.url_validation","payload":{}}`)),
			[]byte(`{"event":"endpoint.url_validation","payload":{}}`), http.StatusBadRequest, ResultBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.counter(t, "zoom_webhook_requests_total", "result", tt.result)
			calls := h.pub.calls.Load()
			resp, _ := h.post(t, tt.method, tt.path, tt.ts, tt.sig, tt.body)
			if resp.StatusCode != tt.want {
				t.Errorf("status got %d, want %d", resp.StatusCode, tt.want)
			}
			if got := h.counter(t, "zoom_webhook_requests_total", "result", tt.result) - before; got != 1 {
				t.Errorf("zoom_webhook_requests_total{result=%q} grew by %v, want 1", tt.result, got)
			}
			if got := h.pub.calls.Load() - calls; got != 0 {
				t.Errorf("publish attempts got %d, want 0", got)
			}
			if got := h.stored(t); got != 0 {
				t.Errorf("stored messages got %d, want 0", got)
			}
			if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow got %q, want POST", resp.Header.Get("Allow"))
			}
		})
	}
	assertNoSecrets(t, h)
}

// assertNoSecrets checks that nothing logged holds the secret or a signature.
func assertNoSecrets(tb testing.TB, h *harness) {
	tb.Helper()
	logs := h.logs.String()
	if strings.Contains(logs, testSecret) || strings.Contains(logs, "v0=") {
		tb.Errorf("logs hold the secret or a signature:\n%s", logs)
	}
}

func TestAccepted(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		wantTS int64
	}{
		{"default route", "/webhooks/zoom", deactivated, 1626230691572},
		{"connector route", "/webhooks/zoom/default/zoom", deactivated, 1626230691572},
		{"no event_ts", "/webhooks/zoom", `{"event":"group.deleted","payload":{"object":{"id":"g1"},"time_stamp":5}}`, 0},
		{"event_ts a string", "/webhooks/zoom", `{"event":"group.deleted","event_ts":"1","payload":{"object":{"id":"g1"}}}`, 0},
		{"large body, stored compressed", "/webhooks/zoom", `{"event":"group.updated","event_ts":7,"payload":{"object":{"id":"g1","name":"` +
			strings.Repeat("a long group name ", 400) + `"}}}`, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			resp, _ := h.signed(t, tt.path, []byte(tt.body))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status got %d, want 200", resp.StatusCode)
			}
			// The 200 came after the publish was acknowledged: the message
			// must be there now, without waiting.
			if got := h.stored(t); got != 1 {
				t.Fatalf("stored messages got %d, want 1", got)
			}
			s, err := h.js.Stream(context.Background(), pipeline.StreamWebhook)
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.GetLastMsgForSubject(context.Background(), pipeline.WebhookSubject(testRef))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(tt.body))
			if got, want := m.Header.Get(jetstream.MsgIDHeader), "wh/"+testTenant+"/"+testConnector+"/"+hex.EncodeToString(sum[:]); got != want {
				t.Errorf("Nats-Msg-Id got %q, want %q", got, want)
			}
			if got, want := m.Header.Get(pipeline.HeaderEncoding) != "", len(tt.body) >= 4<<10; got != want {
				t.Errorf("stored compressed got %v, want %v (body of %d bytes)", got, want, len(tt.body))
			}
			var env pb.Envelope
			if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
				t.Fatal(err)
			}
			var n struct{ Event string }
			_ = json.Unmarshal([]byte(tt.body), &n)
			want := &pb.Envelope{Tenant: testTenant, Connector: testConnector, Body: &pb.Envelope_Webhook{Webhook: &pb.WebhookEvent{
				Event: n.Event, EventTsMs: tt.wantTS, Body: []byte(tt.body), ReceivedAtMs: testNow.UnixMilli(),
			}}}
			if !proto.Equal(&env, want) {
				t.Errorf("stored envelope got %v, want %v", &env, want)
			}
			if got := h.counter(t, "zoom_webhook_requests_total", "result", ResultAccepted); got != 1 {
				t.Errorf("accepted got %v, want 1", got)
			}
			if got := h.counter(t, "zoom_webhook_events_total", "event", n.Event); got != 1 {
				t.Errorf("zoom_webhook_events_total{event=%q} got %v, want 1", n.Event, got)
			}
			assertNoSecrets(t, h)
		})
	}
}

func TestDuplicate(t *testing.T) {
	h := newHarness(t, nil)
	body := []byte(deactivated)
	// Zoom signs each attempt anew; a retry differs in its timestamp and
	// signature, never in its body.
	later := strconv.FormatInt(testNow.Add(-time.Minute).Unix(), 10)
	attempts := []struct {
		ts         string
		wantResult string
	}{
		{testTS, ResultAccepted},
		{testTS, ResultDuplicate},
		{later, ResultDuplicate},
	}
	for i, a := range attempts {
		resp, got := h.post(t, http.MethodPost, "/webhooks/zoom", a.ts, Sign(testSecret, a.ts, body), body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d: status got %d, want 200", i, resp.StatusCode)
		}
		if want := `{"status":"` + a.wantResult + `"}`; string(got) != want {
			t.Errorf("attempt %d: answer got %s, want %s", i, got, want)
		}
	}
	if got := h.stored(t); got != 1 {
		t.Errorf("stored messages got %d, want 1", got)
	}
	if got := h.counter(t, "zoom_webhook_requests_total", "result", ResultDuplicate); got != 2 {
		t.Errorf("duplicate got %v, want 2", got)
	}
}

func TestURLValidation(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.signed(t, "/webhooks/zoom/default/zoom", []byte(urlValidation))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status got %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type got %q, want application/json", ct)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	// Computed apart from the code under test, and once more by openssl:
	// printf qgg8vlvZRS6UYooatFL8Aw | openssl dgst -sha256 -hmac "$secret".
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte("qgg8vlvZRS6UYooatFL8Aw"))
	want := map[string]string{"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": hex.EncodeToString(m.Sum(nil))}
	const openssl = "80600a8ea10a02fa7c5ad660927f7d77917c7e4f22802b730c9d1619cb066036"
	if len(got) != 2 || got["plainToken"] != want["plainToken"] || got["encryptedToken"] != want["encryptedToken"] || got["encryptedToken"] != openssl {
		t.Errorf("answer got %v, want %v", got, want)
	}
	if got := h.stored(t); got != 0 {
		t.Errorf("stored messages got %d, want 0", got)
	}
	if got := h.counter(t, "zoom_webhook_requests_total", "result", ResultURLValidation); got != 1 {
		t.Errorf("url_validation got %v, want 1", got)
	}
}

func TestUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(testing.TB, *harness)
	}{
		{"stream deleted", func(tb testing.TB, h *harness) {
			if err := h.js.DeleteStream(context.Background(), pipeline.StreamWebhook); err != nil {
				tb.Fatal(err)
			}
		}},
		{"server down", func(_ testing.TB, h *harness) {
			h.srv.Shutdown()
			h.srv.WaitForShutdown()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.PublishTimeout = 500 * time.Millisecond })
			tt.breakIt(t, h)
			start := time.Now()
			resp, _ := h.signed(t, "/webhooks/zoom", []byte(deactivated))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status got %d, want 503", resp.StatusCode)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("answer took %v, want well within 3s", d)
			}
			if got := h.counter(t, "zoom_webhook_requests_total", "result", ResultUnavailable); got != 1 {
				t.Errorf("unavailable got %v, want 1", got)
			}
		})
	}
}

// TestDefaultPublishTimeout checks that, with the default timeout, a
// JetStream that does not answer still gets Zoom its answer within 3 seconds.
func TestDefaultPublishTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 2.5s")
	}
	h := newHarness(t, nil)
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	start := time.Now()
	resp, _ := h.signed(t, "/webhooks/zoom", []byte(deactivated))
	d := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable || d > 3*time.Second {
		t.Errorf("got %d after %v, want 503 within 3s", resp.StatusCode, d)
	}
}

type failingConnectors struct{}

func (failingConnectors) Lookup(context.Context, pipeline.ConnectorRef) (Connector, error) {
	return Connector{}, errors.New("database down")
}

func TestLookupFailure(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Connectors = failingConnectors{} })
	resp, _ := h.signed(t, "/webhooks/zoom", []byte(deactivated))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status got %d, want 503", resp.StatusCode)
	}
	if got := h.stored(t); got != 0 {
		t.Errorf("stored messages got %d, want 0", got)
	}
}

func TestOpsRoutes(t *testing.T) {
	h := newHarness(t, nil)
	h.signed(t, "/webhooks/zoom", []byte(deactivated))
	tests := []struct {
		path     string
		want     int
		contains string
	}{
		{"/healthz", http.StatusOK, `"ok"`},
		{"/readyz", http.StatusOK, `"nats":"ok"`},
		{"/metrics", http.StatusOK, `zoom_webhook_requests_total{result="accepted"} 1`},
		{"/metrics", http.StatusOK, `zoom_webhook_events_total{event="user.deactivated"} 1`},
	}
	for _, tt := range tests {
		resp, body := h.post(t, http.MethodGet, tt.path, "", "", nil)
		if resp.StatusCode != tt.want || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s got %d %s, want %d with %s", tt.path, resp.StatusCode, body, tt.want, tt.contains)
		}
	}
	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	deadline := time.Now().Add(5 * time.Second)
	for h.nc.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if resp, body := h.post(t, http.MethodGet, "/readyz", "", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with NATS down got %d %s, want 503", resp.StatusCode, body)
	}
}

// TestTooLargeChunked sends a body without Content-Length, so that only the
// bounded read can catch it.
func TestTooLargeChunked(t *testing.T) {
	h := newHarness(t, nil)
	body := bytes.Repeat([]byte(" "), MaxBody+1)
	req, err := http.NewRequest(http.MethodPost, h.http.URL+"/webhooks/zoom", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderTimestamp, testTS)
	req.Header.Set(HeaderSignature, Sign(testSecret, testTS, body))
	resp, err := h.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status got %d (content length %d), want 413 for a chunked body", resp.StatusCode, req.ContentLength)
	}
	if got := h.stored(t); got != 0 {
		t.Errorf("stored messages got %d, want 0", got)
	}
}

// paddedNotification is deactivated followed by JSON whitespace, n bytes in
// all: a genuine notification of exactly the size a test needs.
func paddedNotification(tb testing.TB, n int) []byte {
	tb.Helper()
	if n < len(deactivated) {
		tb.Fatalf("a notification needs at least %d bytes, asked for %d", len(deactivated), n)
	}
	return append([]byte(deactivated), bytes.Repeat([]byte(" "), n-len(deactivated))...)
}

// TestBodyLimit: a genuine, signed notification of 64 KiB is accepted and
// one byte more is 413, whether the body declares its length or comes
// chunked, without any attempt to store it.
func TestBodyLimit(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name    string
		size    int
		chunked bool
		want    int
	}{
		{"64 KiB", 64 << 10, false, http.StatusOK},
		{"64 KiB chunked", 64 << 10, true, http.StatusOK},
		{"64 KiB and one byte", 64<<10 + 1, false, http.StatusRequestEntityTooLarge},
		{"64 KiB and one byte chunked", 64<<10 + 1, true, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := paddedNotification(t, tt.size)
			var r io.Reader = bytes.NewReader(body)
			if tt.chunked {
				// A reader of unknown length makes the client send the body
				// chunked, without Content-Length.
				r = io.MultiReader(r)
			}
			req, err := http.NewRequest(http.MethodPost, h.http.URL+"/webhooks/zoom", r)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(HeaderTimestamp, testTS)
			req.Header.Set(HeaderSignature, Sign(testSecret, testTS, body))
			calls := h.pub.calls.Load()
			resp, err := h.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status got %d, want %d", resp.StatusCode, tt.want)
			}
			if got := h.pub.calls.Load() - calls; tt.want != http.StatusOK && got != 0 {
				t.Errorf("publish attempts got %d, want 0", got)
			}
		})
	}
}

// TestShed holds as many requests as the limit allows, in the two ways a
// caller can hold one: a JetStream slow to acknowledge, and a client that
// stops in the middle of its body. The next request must be answered 503
// with Retry-After while they are held, without any of its body being sent;
// the held requests must then complete, and new ones be served again.
func TestShed(t *testing.T) {
	const limit = 3
	tests := []struct {
		name         string
		blockPublish bool
		// sent is how much of its body each held request sends before
		// the shed one.
		sent func(body []byte) int
	}{
		{"held by a slow publish", true, func(b []byte) int { return len(b) }},
		{"held by a slow body", false, func(b []byte) int { return len(b) - 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			releaseAll := func() { once.Do(func() { close(release) }) }
			t.Cleanup(releaseAll)
			h := newHarness(t, func(c *Config) {
				c.MaxConcurrent = limit
				// The held requests must outlast the test's steps by far;
				// the test releases them itself.
				c.PublishTimeout = time.Minute
				if tt.blockPublish {
					c.Publisher = &blockingPublisher{Publisher: c.Publisher, release: release}
				}
			})

			held := make([]net.Conn, limit)
			bodies := make([][]byte, limit)
			for i := range held {
				bodies[i] = []byte(strings.Replace(deactivated, "1626230691572", strconv.Itoa(1626230691573+i), 1))
				held[i] = h.rawPost(t, "/webhooks/zoom", bodies[i], tt.sent(bodies[i]))
			}
			h.waitInFlight(t, limit)

			over := h.rawPost(t, "/webhooks/zoom", []byte(deactivated), 0)
			resp, err := readResponse(over)
			if err != nil {
				t.Fatalf("the request over the limit got no answer while the others were held: %v", err)
			}
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status over the limit got %d, want 503", resp.StatusCode)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After got %q, want a number of seconds", resp.Header.Get("Retry-After"))
			}
			if !resp.Close {
				t.Error("the connection stays open after a shed request, want it closed so that its unread body is never parsed")
			}
			if got := h.counter(t, "zoom_webhook_requests_total", "result", ResultOverloaded); got != 1 {
				t.Errorf("zoom_webhook_requests_total{result=%q} got %v, want 1", ResultOverloaded, got)
			}

			releaseAll()
			for i, conn := range held {
				if sent := tt.sent(bodies[i]); sent < len(bodies[i]) {
					if _, err := conn.Write(bodies[i][sent:]); err != nil {
						t.Fatal(err)
					}
				}
				resp, err := readResponse(conn)
				if err != nil {
					t.Fatalf("held request %d: %v", i, err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("held request %d got %d, want 200", i, resp.StatusCode)
				}
			}
			// The held requests are stored, and the shed one, whose body
			// differs from theirs, is not.
			if got, want := h.stored(t), uint64(limit); got != want {
				t.Errorf("stored messages got %d, want %d", got, want)
			}

			h.waitInFlight(t, 0)
			for i := range limit + 1 {
				body := []byte(strings.Replace(deactivated, "1626230691572", strconv.Itoa(1626230700000+i), 1))
				if resp, _ := h.signed(t, "/webhooks/zoom", body); resp.StatusCode != http.StatusOK {
					t.Errorf("request %d after the held ones got %d, want 200", i, resp.StatusCode)
				}
			}
		})
	}
}
