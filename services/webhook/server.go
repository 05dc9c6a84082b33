package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/claritysecurity/zoom-connector/services/webhook/internal/receiver"
)

// maxHeaderBytes bounds the request line and headers a caller may send to
// the public address. Zoom's come to well under 2 KiB; Go's default, 1 MiB,
// would let anyone make each connection hold that much before any check.
// Go's server allows 4 KiB over it, and answers 431 beyond.
const maxHeaderBytes = 16 << 10

// publicHandler is the handler of the public address: the webhook routes and
// GET /healthz and GET /readyz, which ops answers, behind rc's limit on
// concurrent requests. Nothing else of ops (metrics, profiles) is reachable
// through it.
func publicHandler(rc *receiver.Receiver, ops http.Handler, routes ...route) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", ops)
	mux.Handle("GET /readyz", ops)
	rc.Register(mux)
	for _, r := range routes {
		mux.Handle(r.pattern, r.handler)
	}
	return rc.Limit(mux)
}

// route is one more route of the public address: the OAuth redirect.
type route struct {
	pattern string
	handler http.Handler
}

// servePublic serves h on ln, the public address, until ctx ends. It is
// service.ServeListener with maxHeaderBytes: the same timeouts (a request
// must arrive whole within 10 seconds, an idle connection closes after a
// minute) and the same shutdown (requests still running 3 seconds into it
// are cut off).
func servePublic(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		IdleTimeout:       time.Minute,
	}
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
		// A connection that sent nothing yet is no reason to fail the
		// shutdown.
		err = srv.Close()
	}
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}
