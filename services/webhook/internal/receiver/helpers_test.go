package receiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
)

const (
	testSecret    = "Zoom-Webhook-Secret-Token-For-Tests"
	testTenant    = "default"
	testConnector = "zoom"
)

// testRef is the connector the test receiver serves, on its own route and
// as the default.
var testRef = pipeline.ConnectorRef{Tenant: testTenant, ID: testConnector}

// testNow is the receiver's clock in tests: the x-zm-request-timestamp of
// Zoom's documented example.
var testNow = time.Unix(1739923528, 0)

var testTS = strconv.FormatInt(testNow.Unix(), 10)

// syncBuffer collects log output written from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countingPublisher passes publishes on to JetStream and counts them, so
// that a test can tell that nothing was even attempted.
type countingPublisher struct {
	Publisher
	calls atomic.Int64
}

func (p *countingPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.calls.Add(1)
	return p.Publisher.PublishMsg(ctx, msg, opts...)
}

// harness is a receiver on a real embedded NATS server, served over real
// HTTP behind its concurrency limit. Its mux holds the ops routes as well,
// metrics among them, which main serves on another address.
type harness struct {
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	pub  *countingPublisher
	reg  *prometheus.Registry
	rc   *Receiver
	mux  *http.ServeMux
	http *httptest.Server
	logs *syncBuffer
}

func newHarness(tb testing.TB, modify func(*Config)) *harness {
	tb.Helper()
	h := &harness{srv: natstest.Run(tb), logs: &syncBuffer{}}
	ctx := context.Background()
	var err error
	h.nc, h.js, err = natsx.Connect(ctx, h.srv.ClientURL(), "test", zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.nc.Close)
	if err := natsx.EnsureStreams(ctx, h.js, pipeline.Streams(1)...); err != nil {
		tb.Fatal(err)
	}
	h.pub = &countingPublisher{Publisher: h.js}
	h.reg = prometheus.NewRegistry()
	cfg := Config{
		Connectors: NewStatic(Connector{Ref: testRef, Secret: testSecret}),
		Default:    testRef,
		Publisher:  h.pub,
		Log:        zerolog.New(h.logs).Level(zerolog.DebugLevel),
		Metrics:    NewMetrics(h.reg),
		Now:        func() time.Time { return testNow },
	}
	if modify != nil {
		modify(&cfg)
	}
	h.rc = New(cfg)
	h.mux = service.OpsMux(h.reg, map[string]service.Check{
		"nats": func(context.Context) error { return natsx.Ready(h.nc) },
	})
	h.rc.Register(h.mux)
	h.http = httptest.NewServer(h.rc.Limit(h.mux))
	tb.Cleanup(h.http.Close)
	return h
}

// post sends body to path with the given timestamp and signature headers
// (none when empty).
func (h *harness) post(tb testing.TB, method, path, ts, sig string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if ts != "" {
		req.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// signed posts body signed with the test secret at the test clock.
func (h *harness) signed(tb testing.TB, path string, body []byte) (*http.Response, []byte) {
	tb.Helper()
	return h.post(tb, http.MethodPost, path, testTS, Sign(testSecret, testTS, body), body)
}

// stored is the number of messages in the webhook stream.
func (h *harness) stored(tb testing.TB) uint64 {
	tb.Helper()
	s, err := h.js.Stream(context.Background(), pipeline.StreamWebhook)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// counter reads one labelled counter from the registry; 0 when absent.
func (h *harness) counter(tb testing.TB, name, label, value string) float64 {
	tb.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// gauge reads one unlabelled gauge from the registry; 0 when absent.
func (h *harness) gauge(tb testing.TB, name string) float64 {
	tb.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// waitInFlight waits until exactly n requests are being served, and fails
// the test when that does not happen within 10 seconds.
func (h *harness) waitInFlight(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.gauge(tb, "zoom_webhook_requests_in_flight") != float64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("requests in flight got %v, want %d within 10s", h.gauge(tb, "zoom_webhook_requests_in_flight"), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawPost opens a connection of its own to the harness and sends a POST of
// body to path, signed with the test secret, that declares the whole body's
// length but sends only its first sent bytes: a client that stops in the
// middle of its body, or at its very start. The connection closes when the
// test ends.
func (h *harness) rawPost(tb testing.TB, path string, body []byte, sent int) net.Conn {
	tb.Helper()
	conn, err := net.Dial("tcp", h.http.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, len(body))
	fmt.Fprintf(&b, "%s: %s\r\n%s: %s\r\n\r\n", HeaderTimestamp, testTS, HeaderSignature, Sign(testSecret, testTS, body))
	b.Write(body[:sent])
	if _, err := conn.Write(b.Bytes()); err != nil {
		tb.Fatal(err)
	}
	return conn
}

// readResponse reads the answer to the request sent on conn. It gives up
// after 5 seconds, so that a request the server holds fails the test
// instead of hanging it.
func readResponse(conn net.Conn) (*http.Response, error) {
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// blockingPublisher holds every publish until release is closed (or the
// request's context ends), like a JetStream that is slow to acknowledge.
type blockingPublisher struct {
	Publisher
	release chan struct{}
}

func (p *blockingPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Publisher.PublishMsg(ctx, msg, opts...)
}
