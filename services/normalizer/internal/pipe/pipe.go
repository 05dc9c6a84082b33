// Package pipe is the normalizer's message handling: raw pages in, record
// batches out; run control passes through unchanged.
package pipe

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/normalizer/internal/normalize"
)

// Publisher stores a message in JetStream.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Observer counts what the normalizer produced.
type Observer interface {
	Records(kind pb.Kind, n int)
	Skipped(n int)
	Page(l pb.Listing)
}

// Pipe converts messages.
type Pipe struct {
	pub Publisher
	log zerolog.Logger
	obs Observer
	// maxPayload is the largest message the pipe publishes, headers
	// included.
	maxPayload int
}

// New returns a Pipe publishing with pub. Its messages are at most
// MaxPayload bytes, or the server's own limit when pub tells it (a
// jetstream.JetStream does) and it is smaller.
func New(pub Publisher, log zerolog.Logger, obs Observer) *Pipe {
	p := &Pipe{pub: pub, log: log, obs: obs, maxPayload: MaxPayload}
	if c, ok := pub.(interface{ Conn() *nats.Conn }); ok && c.Conn() != nil {
		if mp := c.Conn().MaxPayload(); mp > 0 && mp < int64(p.maxPayload) {
			p.maxPayload = int(mp)
		}
	}
	return p
}

// HandleRaw handles one message of zoom.raw.<tenant>.<connector>.
func (p *Pipe) HandleRaw(ctx context.Context, msg jetstream.Msg) error {
	var env pb.Envelope
	if err := proto.Unmarshal(msg.Data(), &env); err != nil {
		return natsx.Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if clarity.CheckToken("tenant", env.Tenant) != nil || clarity.CheckToken("connector", env.Connector) != nil {
		return natsx.Permanent(fmt.Errorf("envelope names no valid tenant and connector"))
	}
	out := &env
	switch raw := env.Body.(type) {
	case *pb.Envelope_RawPage:
		batch, err := p.page(&env, raw.RawPage)
		if err != nil {
			return err
		}
		out = &pb.Envelope{Tenant: env.Tenant, Connector: env.Connector, Body: &pb.Envelope_Records{Records: batch}}
	case *pb.Envelope_RawPages:
		// A bundle goes on as one message: a page that cannot be read
		// fails the whole bundle, as it would fail its run anyway.
		pages := raw.RawPages.GetPages()
		if len(pages) == 0 {
			return natsx.Permanent(fmt.Errorf("%w: empty bundle of pages", normalize.ErrBadPage))
		}
		batches := make([]*pb.RecordBatch, len(pages))
		for i, pg := range pages {
			b, err := p.page(&env, pg)
			if err != nil {
				return err
			}
			batches[i] = b
		}
		out = &pb.Envelope{Tenant: env.Tenant, Connector: env.Connector,
			Body: &pb.Envelope_RecordBatches{RecordBatches: &pb.RecordBatches{Batches: batches}}}
	}
	return p.forward(ctx, out, msg)
}

// page normalizes one raw page of env.
func (p *Pipe) page(env *pb.Envelope, raw *pb.RawPage) (*pb.RecordBatch, error) {
	batch, stats, err := normalize.PageStats(raw)
	if err != nil {
		if errors.Is(err, normalize.ErrBadPage) {
			return nil, natsx.Permanent(err)
		}
		return nil, err
	}
	if stats.Skipped > 0 {
		p.log.Warn().Str("tenant", env.Tenant).Str("connector", env.Connector).
			Str("listing", raw.GetRef().GetListing().String()).Int("skipped", stats.Skipped).
			Msg("items without id or email skipped")
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

// forward publishes env to the writer's subject. The message id is derived
// from the input's stream position, so a redelivered input that was already
// forwarded is dropped by JetStream.
func (p *Pipe) forward(ctx context.Context, env *pb.Envelope, in jetstream.Msg) error {
	b, err := proto.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode envelope: %w", err)
	}
	out := nats.NewMsg(clarity.RecordsSubject(env.Tenant, env.Connector))
	out.Data = b
	natsx.Compress(out)
	if md, err := in.Metadata(); err == nil {
		out.Header.Set(jetstream.MsgIDHeader, md.Stream+"/"+strconv.FormatUint(md.Sequence.Stream, 10))
	}
	if _, err := p.pub.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("publish records: %w", err)
	}
	return nil
}
