package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

const mainTestSecret = "main-test-secret"

// freeAddr returns a local address nothing listens on.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startRun runs the service as main does, with its public and internal
// addresses on free local ports and env added to its environment, and
// waits until the public address is ready. It returns the NATS server's URL
// and the base URLs of both addresses. When the test ends it stops the
// service, and fails the test unless run then returns nil within 10
// seconds.
func startRun(tb testing.TB, env map[string]string) (natsURL, public, ops string) {
	tb.Helper()
	srv := natstest.Run(tb)
	publicAddr, opsAddr := freeAddr(tb), freeAddr(tb)
	base := map[string]string{
		"NATS_URL":                  srv.ClientURL(),
		"WEBHOOK_ADDR":              publicAddr,
		"WEBHOOK_OPS_ADDR":          opsAddr,
		"ZOOM_WEBHOOK_SECRET_TOKEN": mainTestSecret,
		"CLARITY_TENANT":            "acme",
		"CONNECTOR_ID":              "z1",
		"LOG_LEVEL":                 "warn",
	}
	for k, v := range env {
		base[k] = v
	}
	for k, v := range base {
		tb.Setenv(k, v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("run returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("run did not return within 10s of its context ending")
		}
	})

	public, ops = "http://"+publicAddr, "http://"+opsAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			tb.Fatalf("run returned %v before it was ready", err)
		default:
		}
		resp, err := http.Get(public + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv.ClientURL(), public, ops
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not ready within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// postSigned posts body to url, signed with the test secret now, with the
// extra headers given.
func postSigned(tb testing.TB, url string, body []byte, header http.Header) *http.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(receiver.HeaderTimestamp, ts)
	req.Header.Set(receiver.HeaderSignature, receiver.Sign(mainTestSecret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestRun runs the service as main does: it must serve signed
// notifications with health and readiness on WEBHOOK_ADDR, health,
// readiness, metrics and profiles on WEBHOOK_OPS_ADDR only, store the
// notification, and return nil once its context ends.
func TestRun(t *testing.T) {
	natsURL, public, ops := startRun(t, nil)

	body := []byte(`{"event":"user.deleted","event_ts":1,"payload":{"object":{"id":"u1"}}}`)
	posts := []struct {
		path string
		want int
	}{
		{"/webhooks/zoom", http.StatusOK},
		{"/webhooks/zoom/acme/z1", http.StatusOK},
		{"/webhooks/zoom/default/zoom", http.StatusNotFound},
	}
	for _, tt := range posts {
		if resp := postSigned(t, public+tt.path, body, nil); resp.StatusCode != tt.want {
			t.Errorf("POST %s got %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}

	routes := []struct {
		name        string
		method, url string
		want        int
		contains    string // a part of the body; empty for any
		contentType string // the prefix of Content-Type; empty for any
	}{
		{"public health", http.MethodGet, public + "/healthz", http.StatusOK, `"ok"`, ""},
		{"public readiness", http.MethodGet, public + "/readyz", http.StatusOK, `"nats":"ok"`, ""},
		{"no metrics on the public address", http.MethodGet, public + "/metrics", http.StatusNotFound, "", ""},
		{"no profiles on the public address", http.MethodGet, public + "/debug/pprof/", http.StatusNotFound, "", ""},
		{"internal health", http.MethodGet, ops + "/healthz", http.StatusOK, `"ok"`, ""},
		{"internal readiness", http.MethodGet, ops + "/readyz", http.StatusOK, `"nats":"ok"`, ""},
		{"internal metrics", http.MethodGet, ops + "/metrics", http.StatusOK, `zoom_webhook_requests_total{result="accepted"} 1`, "text/plain"},
		{"internal profiles", http.MethodGet, ops + "/debug/pprof/", http.StatusOK, "", ""},
		{"no webhooks on the internal address", http.MethodPost, ops + "/webhooks/zoom", http.StatusNotFound, "", ""},
	}
	for _, tt := range routes {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.url, err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || !strings.Contains(string(got), tt.contains) {
				t.Errorf("%s %s got %d %.200s, want %d with %q", tt.method, tt.url, resp.StatusCode, got, tt.want, tt.contains)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("%s %s Content-Type got %q, want %q…", tt.method, tt.url, ct, tt.contentType)
			}
		})
	}

	nc, js, err := natsx.Connect(context.Background(), natsURL, "check", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := js.Stream(context.Background(), pipeline.StreamWebhook)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Both routes got the same body: one stored notification.
	if info.State.Msgs != 1 {
		t.Errorf("stored notifications got %d, want 1", info.State.Msgs)
	}
}

// TestPublicLimits: the public address refuses headers over its limit with
// 431 and bodies over WEBHOOK_MAX_BODY with 413, and serves what is within
// both.
func TestPublicLimits(t *testing.T) {
	_, public, _ := startRun(t, map[string]string{"WEBHOOK_MAX_BODY": "2048"})
	notification := func(n int) []byte {
		b := []byte(`{"event":"user.deleted","event_ts":2,"payload":{"object":{"id":"u2"}}}`)
		return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
	}
	tests := []struct {
		name   string
		header int // bytes of an extra header's value
		body   int
		want   int
	}{
		{"a few KiB of headers", 4 << 10, 1024, http.StatusOK},
		{"64 KiB of headers", 64 << 10, 1024, http.StatusRequestHeaderFieldsTooLarge},
		{"a body at WEBHOOK_MAX_BODY", 0, 2048, http.StatusOK},
		{"a body over WEBHOOK_MAX_BODY", 0, 2049, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.header > 0 {
				header.Set("X-Padding", strings.Repeat("a", tt.header))
			}
			if resp := postSigned(t, public+"/webhooks/zoom", notification(tt.body), header); resp.StatusCode != tt.want {
				t.Errorf("status got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
