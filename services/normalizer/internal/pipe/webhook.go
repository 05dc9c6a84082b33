package pipe

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/normalizer/internal/normalize"
)

// WebhookObserver counts webhook events the normalizer let pass. An Observer
// given to New that also implements it is told of each ignored event.
type WebhookObserver interface {
	WebhookIgnored(event string)
}

// HandleWebhook handles one message of zoom.webhook.<tenant>.<connector>: a
// verified Zoom notification. It publishes the users to re-read to the
// fetcher's hint subject and the incremental change to the writer's records
// subject, whichever the event asks for; events the connector does not handle
// are acknowledged and counted.
//
// Every output's message id is the input's stream position and a suffix of
// its own, so that a redelivered input republishes nothing that JetStream
// already stored, while the outputs of one input do not drop each other.
// The change goes compressed, and in several messages when one cannot hold
// it (changeMsgs): a notification the webhook service accepted is never
// refused for its size.
//
// The event's time is checked against the time JetStream stored the
// notification (normalize.Webhook): that is when it was received, by a
// clock neither the normalizer nor the webhook service can move, and the
// same on every redelivery.
func (p *Pipe) HandleWebhook(ctx context.Context, msg jetstream.Msg) error {
	var env pb.Envelope
	if err := proto.Unmarshal(msg.Data(), &env); err != nil {
		return natsx.Permanent(fmt.Errorf("decode envelope: %w", err))
	}
	if clarity.CheckToken("tenant", env.Tenant) != nil || clarity.CheckToken("connector", env.Connector) != nil {
		return natsx.Permanent(fmt.Errorf("envelope names no valid tenant and connector"))
	}
	ev := env.GetWebhook()
	if ev == nil {
		return natsx.Permanent(fmt.Errorf("envelope holds no webhook event"))
	}
	var received int64
	if md, err := msg.Metadata(); err == nil && !md.Timestamp.IsZero() {
		received = md.Timestamp.UnixMilli()
	}
	res, err := normalize.Webhook(ev, received)
	if err != nil {
		if errors.Is(err, normalize.ErrBadPage) {
			return natsx.Permanent(err)
		}
		return err
	}
	if res.Ignored {
		if o, ok := p.obs.(WebhookObserver); ok {
			o.WebhookIgnored(ev.GetEvent())
		}
		p.log.Debug().Str("tenant", env.Tenant).Str("connector", env.Connector).Str("event", ev.GetEvent()).
			Msg("webhook event ignored")
		return nil
	}

	id := outputID(msg)
	if b := res.Batch; b != nil {
		if p.obs != nil {
			p.count(b, 0)
		}
		msgs, err := p.changeMsgs(clarity.RecordsSubject(env.Tenant, env.Connector), env.Tenant, env.Connector, b, id)
		if err != nil {
			return err
		}
		for i, out := range msgs {
			// The first part keeps the id a whole batch has always had.
			suffix := "/records"
			if i > 0 {
				suffix += "/" + strconv.Itoa(i)
			}
			if err := p.send(ctx, out, id, suffix); err != nil {
				return fmt.Errorf("publish records (part %d of %d): %w", i+1, len(msgs), err)
			}
		}
	}
	for i, h := range res.Hints {
		h.Tenant, h.Connector = env.Tenant, env.Connector
		if err := p.publish(ctx, clarity.HintSubject(env.Tenant, env.Connector), h, id, "/hint/"+strconv.Itoa(i)); err != nil {
			return fmt.Errorf("publish hint: %w", err)
		}
	}
	return nil
}

// outputID is the stem of the message ids of what msg yields, "" when its
// stream position is unknown (then nothing is deduplicated, as in forward).
func outputID(msg jetstream.Msg) string {
	md, err := msg.Metadata()
	if err != nil {
		return ""
	}
	return md.Stream + "/" + strconv.FormatUint(md.Sequence.Stream, 10)
}

// publish stores m on subject, compressed when large, with the message id
// stem+suffix (none when stem is empty).
func (p *Pipe) publish(ctx context.Context, subject string, m proto.Message, stem, suffix string) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	out := nats.NewMsg(subject)
	out.Data = b
	natsx.Compress(out)
	return p.send(ctx, out, stem, suffix)
}

// send stores out with the message id stem+suffix (none when stem is
// empty).
func (p *Pipe) send(ctx context.Context, out *nats.Msg, stem, suffix string) error {
	if stem != "" {
		out.Header.Set(jetstream.MsgIDHeader, stem+suffix)
	}
	_, err := p.pub.PublishMsg(ctx, out)
	return err
}
