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
}

// Pipe converts messages.
type Pipe struct {
	pub Publisher
	log zerolog.Logger
	obs Observer
}

// New returns a Pipe publishing with pub.
func New(pub Publisher, log zerolog.Logger, obs Observer) *Pipe {
	return &Pipe{pub: pub, log: log, obs: obs}
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
	if raw, ok := env.Body.(*pb.Envelope_RawPage); ok {
		batch, stats, err := normalize.PageStats(raw.RawPage)
		if err != nil {
			if errors.Is(err, normalize.ErrBadPage) {
				return natsx.Permanent(err)
			}
			return err
		}
		if stats.Skipped > 0 {
			p.log.Warn().Str("tenant", env.Tenant).Str("connector", env.Connector).
				Str("listing", raw.RawPage.GetRef().GetListing().String()).Int("skipped", stats.Skipped).
				Msg("items without id or email skipped")
		}
		if p.obs != nil {
			p.count(batch, stats.Skipped)
		}
		out = &pb.Envelope{Tenant: env.Tenant, Connector: env.Connector, Body: &pb.Envelope_Records{Records: batch}}
	}
	return p.forward(ctx, out, msg)
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
