package service_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

// TestProfilesOnlyWhereAsked: the ops routes carry no profiles unless
// Profiling adds them, so that the webhook's public address serves none.
func TestProfilesOnlyWhereAsked(t *testing.T) {
	get := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	ops := service.OpsMux(service.NewRegistry(), nil)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := get(ops, path); code != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, code)
		}
	}
	if code := get(ops, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ without Profiling: %d, want 404", code)
	}
	if code := get(service.Profiling(service.OpsMux(service.NewRegistry(), nil)), "/debug/pprof/"); code != http.StatusOK {
		t.Errorf("GET /debug/pprof/ with Profiling: %d, want 200", code)
	}
}

// TestShutdownWithAnIdleConnection: a connection that sent nothing yet
// (a load balancer's probe, say) does not make the shutdown fail.
func TestShutdownWithAnIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.ServeListener(ctx, ln, service.OpsMux(service.NewRegistry(), nil)) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\n")); err != nil { // headers never finished
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v, want none", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the server did not stop")
	}
}
