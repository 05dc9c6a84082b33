package pipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/normalizer/internal/normalize"
)

// WebhookObserver counts webhook events the normalizer let pass. An Observer
// given to New that also implements it is told of each ignored event.
type WebhookObserver interface {
	WebhookIgnored(event string)
}

// HandleWebhook handles one message of zoom.webhook.<tenant>.<connector>: a
// verified Zoom notification, in the envelope the webhook service stores it
// in. It publishes the users to re-read to the fetcher's hint subject and the
// incremental change to the writer's records subject, whichever the event
// asks for; events the connector does not handle are acknowledged and
// counted.
//
// Every output's message id is derived from the input's stream position
// (pipeline.DerivedID): records for the first part of the change,
// records/<n> for the next ones, hint/<i> for the hints. A redelivered
// input thus republishes nothing that JetStream already stored, while the
// outputs of one input do not drop each other. The change goes compressed,
// and in several messages when one cannot hold it (changeMsgs): a
// notification the webhook service accepted is never refused for its size.
//
// The event's time is checked against the time JetStream stored the
// notification (normalize.Webhook): that is when it was received, by a
// clock neither the normalizer nor the webhook service can move, and the
// same on every redelivery.
func (p *Pipe) HandleWebhook(ctx context.Context, msg jetstream.Msg) error {
	in, err := pipeline.Decode(msg)
	if err != nil {
		return natsx.Permanent(err)
	}
	c := in.Connector
	ev := in.Body.GetWebhook()
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
		withConnector(p.log.Debug(), c).Str("event", ev.GetEvent()).Msg("webhook event ignored")
		return nil
	}

	input := pipeline.InputID(msg)
	if b := res.Batch; b != nil {
		if p.obs != nil {
			p.count(b, 0)
		}
		msgs, err := p.changeMsgs(c, b, input)
		if err != nil {
			return err
		}
		for i, out := range msgs {
			// The first part keeps the id a whole batch has always had,
			// with no part number.
			part := i
			if i == 0 {
				part = -1
			}
			setID(out, pipeline.DerivedID(input, kindRecords, part))
			if _, err := p.pub.PublishMsg(ctx, out); err != nil {
				return fmt.Errorf("publish records (part %d of %d): %w", i+1, len(msgs), err)
			}
		}
	}
	for i, h := range res.Hints {
		h.Tenant, h.Connector = c.Tenant, c.ID
		out, err := pipeline.NewMsg(pipeline.HintSubject(c), h, pipeline.DerivedID(input, kindHint, i))
		if err != nil {
			return fmt.Errorf("publish hint: %w", err)
		}
		if _, err := p.pub.PublishMsg(ctx, out); err != nil {
			return fmt.Errorf("publish hint: %w", err)
		}
	}
	return nil
}

// The kinds of the messages a notification yields, in their ids
// (pipeline.DerivedID).
const (
	kindRecords = "records"
	kindHint    = "hint"
)

// setID gives msg the message id id, none when id is "" (the input's
// stream position is unknown, and then nothing is deduplicated).
func setID(msg *nats.Msg, id string) {
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
}
