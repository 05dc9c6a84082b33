package main

import (
	"context"
	"crypto/rand"
	"encoding/json"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// progressReporter tells whoever listens (the webhook's admin console) how
// each connector's full sync goes: after every page published, one core
// NATS message on pipeline.ProgressSubject with the page and the
// connector's Zoom client's counters (requests, 429s, time waited). It
// passes every page on to next (the metrics) first.
type progressReporter struct {
	next    syncer.Progress
	nc      *nats.Conn
	clients runner.Clients
	// id names this process, so that counters of two processes are not
	// mixed.
	id string
}

func newProgressReporter(next syncer.Progress, nc *nats.Conn, clients runner.Clients) *progressReporter {
	return &progressReporter{next: next, nc: nc, clients: clients, id: "fetcher-" + rand.Text()[:12]}
}

// Page reports one page. A failed publish is dropped: progress is a view,
// and the sync does not wait for it.
func (p *progressReporter) Page(c pipeline.ConnectorRef, l zoom.Listing, page zoom.RawPage) {
	p.next.Page(c, l, page)
	msg := pipeline.Progress{Fetcher: p.id, Listing: l.String(), Page: page.Number, Last: page.Last}
	// The connector's client is at hand for a connector being synced: no
	// registry read.
	if cl, err := p.clients.Client(context.Background(), c); err == nil {
		st := cl.Requests()
		msg.Requests, msg.RateLimited, msg.WaitedMS = st.Total, st.RateLimited, st.Waited.Milliseconds()
	}
	if b, err := json.Marshal(msg); err == nil && len(b) <= pipeline.MaxProgress {
		_ = p.nc.Publish(pipeline.ProgressSubject(c), b)
	}
}
