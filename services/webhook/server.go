package main

import (
	"context"
	"net"
	"net/http"

	"github.com/claritysecurity/zoom-connector/pkg/service"
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

// servePublic serves h on ln, the public address, until ctx ends: the
// service's usual server, with request lines and headers bounded to
// maxHeaderBytes.
func servePublic(ctx context.Context, ln net.Listener, h http.Handler) error {
	return service.ServeListenerWith(ctx, ln, h, service.ServerOptions{MaxHeaderBytes: maxHeaderBytes})
}
