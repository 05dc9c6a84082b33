// Package pipe is the normalizer's message handling: raw pages in, record
// batches out; run control passes through unchanged.
package pipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/normalizer/internal/normalize"
)

// Observer counts what the normalizer produced.
type Observer interface {
	Records(kind pb.Kind, n int)
	Skipped(n int)
	Page(l pb.Listing)
}

// Config configures a Pipe.
type Config struct {
	// Publisher stores what the pipe publishes. A jetstream.JetStream also
	// tells the server's largest message (see MaxPayload).
	Publisher pipeline.Publisher
	Log       zerolog.Logger
	// Observer, which may be nil, counts what the pipe produced; one that
	// also implements WebhookObserver is told of each ignored webhook
	// event.
	Observer Observer
	// MaxPayload is the largest message the pipe publishes, headers
	// included; zero is the package's MaxPayload. The server's own limit
	// lowers it when Publisher tells it and it is smaller.
	MaxPayload int
}

// Pipe converts messages.
type Pipe struct {
	pub pipeline.Publisher
	log zerolog.Logger
	obs Observer
	// maxPayload is the largest message the pipe publishes, headers
	// included.
	maxPayload int
}

// New returns a Pipe configured by cfg.
func New(cfg Config) *Pipe {
	p := &Pipe{pub: cfg.Publisher, log: cfg.Log, obs: cfg.Observer, maxPayload: cfg.MaxPayload}
	if p.maxPayload <= 0 {
		p.maxPayload = MaxPayload
	}
	if c, ok := cfg.Publisher.(interface{ Conn() *nats.Conn }); ok && c.Conn() != nil {
		if mp := c.Conn().MaxPayload(); mp > 0 && mp < int64(p.maxPayload) {
			p.maxPayload = int(mp)
		}
	}
	return p
}

// Raw returns the consume handler of zoom.raw.>: HandleRaw run through
// pipeline.Handle, which decodes each message, checks it against its
// subject's connector, and publishes the record batch it yields under the
// raw message's own id (<stream>/<sequence>), so that a redelivered page
// that was already forwarded is dropped by JetStream.
func (p *Pipe) Raw() natsx.Handler {
	return pipeline.Handle(p.pub, p.HandleRaw)
}

// HandleRaw handles one envelope of zoom.raw.<tenant>.<connector>: a raw
// page becomes one record batch, a bundle of pages one message of record
// batches, one per page in order, and run control goes on unchanged, all to
// the connector's records subject.
func (p *Pipe) HandleRaw(_ context.Context, in pipeline.Envelope) ([]pipeline.Out, error) {
	c := in.Connector
	out := in.Body
	switch raw := in.Body.Body.(type) {
	case *pb.Envelope_RawPage:
		batch, err := p.page(c, raw.RawPage)
		if err != nil {
			return nil, err
		}
		out = &pb.Envelope{Tenant: c.Tenant, Connector: c.ID, Body: &pb.Envelope_Records{Records: batch}}
	case *pb.Envelope_RawPages:
		// A bundle goes on as one message. A bundle of pages of a run: a
		// page that cannot be read fails the whole bundle, as it would
		// fail its run anyway. A bundle of users read back (the users of
		// one listing page that hints wanted): a user that cannot be read
		// is left out, said and counted, and the others go on.
		pages := raw.RawPages.GetPages()
		if len(pages) == 0 {
			return nil, natsx.Permanent(fmt.Errorf("%w: empty bundle of pages", normalize.ErrBadPage))
		}
		reads := pages[0].GetRef().GetListing() == pb.Listing_LISTING_USER
		batches := make([]*pb.RecordBatch, 0, len(pages))
		for _, pg := range pages {
			if (pg.GetRef().GetListing() == pb.Listing_LISTING_USER) != reads {
				return nil, natsx.Permanent(fmt.Errorf("%w: users read back and pages of a run in one bundle", normalize.ErrBadPage))
			}
			b, err := p.page(c, pg)
			if reads && errors.Is(err, normalize.ErrBadPage) {
				withConnector(p.log.Error(), c).Err(err).Msg("user read back left out of its bundle: it cannot be read")
				if p.obs != nil {
					p.obs.Skipped(1)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			batches = append(batches, b)
		}
		if len(batches) == 0 {
			return nil, natsx.Permanent(fmt.Errorf("%w: no user of the bundle can be read", normalize.ErrBadPage))
		}
		if reads {
			return p.readOuts(c, in, batches)
		}
		out = &pb.Envelope{Tenant: c.Tenant, Connector: c.ID,
			Body: &pb.Envelope_RecordBatches{RecordBatches: &pb.RecordBatches{Batches: batches}}}
	}
	// Kind "" and no part: the output takes the input's own id, the id a
	// page's batch has always had.
	return []pipeline.Out{{Subject: pipeline.RecordsSubject(c), Body: out, Part: -1}}, nil
}

// readOuts returns the outputs of a bundle of users read back, batches
// (one change each): one message of changes, or several when one cannot
// hold them (readGroups), the first under the input's own id and the next
// ones under its id and their part. A user whose change is too large for a
// message alone is left out, said and counted, as one that cannot be read.
func (p *Pipe) readOuts(c pipeline.ConnectorRef, in pipeline.Envelope, batches []*pb.RecordBatch) ([]pipeline.Out, error) {
	stemLen := 64 // an input id: a stream's name, "/" and a sequence
	if in.Msg != nil {
		stemLen = len(pipeline.InputID(in.Msg))
	}
	groups, tooLarge, err := p.readGroups(c, batches, stemLen)
	if err != nil {
		return nil, natsx.Permanent(err)
	}
	for _, b := range tooLarge {
		withConnector(p.log.Error(), c).Str("user", b.GetReplaceUser()).Int("records", len(b.GetRecords())).
			Msg("user read back left out of its bundle: its records do not fit in a message")
		if p.obs != nil {
			p.obs.Skipped(1)
		}
	}
	if len(groups) == 0 {
		return nil, natsx.Permanent(fmt.Errorf("%w: no user of the bundle fits in a message", normalize.ErrBadPage))
	}
	outs := make([]pipeline.Out, len(groups))
	for i, g := range groups {
		part := i
		if i == 0 {
			// The first part keeps the id a whole bundle has.
			part = -1
		}
		outs[i] = pipeline.Out{Subject: pipeline.RecordsSubject(c), Part: part,
			Body: &pb.Envelope{Tenant: c.Tenant, Connector: c.ID,
				Body: &pb.Envelope_RecordBatches{RecordBatches: &pb.RecordBatches{Batches: g}}}}
	}
	return outs, nil
}

// page normalizes one raw page of connector c.
func (p *Pipe) page(c pipeline.ConnectorRef, raw *pb.RawPage) (*pb.RecordBatch, error) {
	batch, stats, err := normalize.PageStats(raw)
	if err != nil {
		if errors.Is(err, normalize.ErrBadPage) {
			return nil, natsx.Permanent(err)
		}
		return nil, err
	}
	if stats.Skipped > 0 {
		withConnector(p.log.Warn(), c).Str("listing", raw.GetRef().GetListing().String()).
			Int("skipped", stats.Skipped).Msg("items without id or email skipped")
	}
	if p.obs != nil {
		p.obs.Page(raw.GetRef().GetListing())
		p.count(batch, stats.Skipped)
	}
	return batch, nil
}

func (p *Pipe) count(b *pb.RecordBatch, skipped int) {
	var n [5]int
	for _, r := range b.Records {
		if int(r.Kind) < len(n) {
			n[r.Kind]++
		}
	}
	for k, c := range n {
		if c > 0 {
			p.obs.Records(pb.Kind(k), c)
		}
	}
	if skipped > 0 {
		p.obs.Skipped(skipped)
	}
}

// withConnector adds the connector's fields to a log event.
func withConnector(e *zerolog.Event, c pipeline.ConnectorRef) *zerolog.Event {
	return e.Str("tenant", c.Tenant).Str("connector", c.ID)
}
