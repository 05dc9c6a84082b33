package service

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check is one readiness check: nil when the dependency is reachable.
type Check func(ctx context.Context) error

// NewRegistry returns a Prometheus registry with the Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// OpsMux serves GET /healthz (the process is alive), GET /readyz (every
// check passes) and GET /metrics.
func OpsMux(reg *prometheus.Registry, checks map[string]Check) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		code := http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status[name] = err.Error()
				code = http.StatusServiceUnavailable
			} else {
				status[name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// Profiling adds Go's profiles under /debug/pprof/ to mux, for finding
// where the time goes. Only for an address the public cannot reach: the
// webhook's, which Zoom must reach, has none.
func Profiling(mux *http.ServeMux) *http.ServeMux {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve serves h on addr until ctx ends, then shuts down within 3 seconds.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener is Serve on a listener the caller opened. A request must
// arrive whole within 10 seconds, and an idle connection closes after a
// minute. Requests still running 3 seconds into the shutdown are cut off.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	return ServeListenerWith(ctx, ln, h, ServerOptions{})
}

// ServerOptions tunes ServeListenerWith.
type ServerOptions struct {
	// MaxHeaderBytes bounds a request's line and headers; zero is Go's
	// default (1 MiB).
	MaxHeaderBytes int
}

// ServeListenerWith is ServeListener with options: the same timeouts and
// the same shutdown.
func ServeListenerWith(ctx context.Context, ln net.Listener, h http.Handler, o ServerOptions) error {
	srv := &http.Server{Handler: h, MaxHeaderBytes: o.MaxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// A connection that sent nothing yet, or a long profile, is no
		// reason to fail the shutdown.
		err = srv.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}
