package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

// TestRun runs the service as main does: it must serve a signed
// notification and the ops routes on WEBHOOK_ADDR, store the notification,
// and return nil once its context ends.
func TestRun(t *testing.T) {
	srv := natstest.Run(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("NATS_URL", srv.ClientURL())
	t.Setenv("WEBHOOK_ADDR", addr)
	t.Setenv("ZOOM_WEBHOOK_SECRET_TOKEN", "main-test-secret")
	t.Setenv("CLARITY_TENANT", "acme")
	t.Setenv("CONNECTOR_ID", "z1")
	t.Setenv("LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(cancel)

	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	body := []byte(`{"event":"user.deleted","event_ts":1,"payload":{"object":{"id":"u1"}}}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	tests := []struct {
		path string
		want int
	}{
		{"/webhooks/zoom", http.StatusOK},
		{"/webhooks/zoom/acme/z1", http.StatusOK},
		{"/webhooks/zoom/default/zoom", http.StatusNotFound},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, base+tt.path, bytes.NewReader(body))
		req.Header.Set(receiver.HeaderTimestamp, ts)
		req.Header.Set(receiver.HeaderSignature, receiver.Sign("main-test-secret", ts, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST %s got %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
	}

	nc, js, err := natsx.Connect(context.Background(), srv.ClientURL(), "check", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	s, err := js.Stream(context.Background(), clarity.StreamWebhook)
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

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of its context ending")
	}
}
