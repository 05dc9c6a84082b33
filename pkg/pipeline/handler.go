package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// Publisher stores a message in JetStream.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Envelope is one decoded message of a per-connector internal subject.
type Envelope struct {
	// Connector is the connector the message is for: its subject's, which
	// the envelope names too.
	Connector ConnectorRef
	// Body is the decoded envelope.
	Body *pb.Envelope
	// Msg is the message as received, for its metadata, or to ack or keep
	// alive.
	Msg jetstream.Msg
}

// Out is a message a handler asks to publish once it has handled its input.
type Out struct {
	// Subject is where it goes.
	Subject string
	// Body is what it carries, encoded with NewMsg.
	Body proto.Message
	// Kind and Part make its id, DerivedID(InputID(input), Kind, Part):
	// different outputs of one input need different kinds or parts.
	Kind string
	Part int
}

// EnvelopeHandler handles one envelope and returns what to publish.
type EnvelopeHandler func(ctx context.Context, in Envelope) ([]Out, error)

// ErrBadEnvelope reports a message that is no valid envelope of its
// subject's connector; no retry helps.
var ErrBadEnvelope = errors.New("pipeline: invalid envelope")

// Handle returns the consume-loop handler that runs h: it decodes the
// message once, checks that its envelope names its subject's connector,
// runs h, and publishes h's outputs in order, each with an id derived from
// the input's (so a redelivered input publishes nothing twice) and
// compressed when that pays. An output that can never be published (too
// large) fails the input for good.
func Handle(pub Publisher, h EnvelopeHandler) natsx.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		in, err := Decode(msg)
		if err != nil {
			return natsx.Permanent(err)
		}
		outs, err := h(ctx, in)
		if err != nil {
			return err
		}
		input := InputID(msg)
		for _, o := range outs {
			m, err := NewMsg(o.Subject, o.Body, DerivedID(input, o.Kind, o.Part))
			if err != nil {
				return natsx.Permanent(err)
			}
			if _, err := pub.PublishMsg(ctx, m); err != nil {
				if natsx.TooLarge(err) {
					return natsx.Permanent(fmt.Errorf("publish to %s (%d bytes): %w", o.Subject, len(m.Data), err))
				}
				return fmt.Errorf("publish to %s: %w", o.Subject, err)
			}
		}
		return nil
	}
}

// Decode reads the envelope of msg and checks it against its subject.
func Decode(msg jetstream.Msg) (Envelope, error) {
	ref, err := FromSubject(msg.Subject())
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	var env pb.Envelope
	if err := Unmarshal(msg.Headers(), msg.Data(), &env); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	if env.Tenant != ref.Tenant || env.Connector != ref.ID {
		return Envelope{}, fmt.Errorf("%w: the envelope names another connector than its subject %s", ErrBadEnvelope, ref)
	}
	return Envelope{Connector: ref, Body: &env, Msg: msg}, nil
}
