// Package ingest hands the messages on zoom.records.> to the store: the
// pipeline's handler decodes each and checks it against its subject's
// connector, and the store applies it.
package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// Store is what the handler needs of the store.
type Store interface {
	StartRun(ctx context.Context, c pipeline.ConnectorRef, run *pb.Run) error
	ApplyPage(ctx context.Context, c pipeline.ConnectorRef, b *pb.RecordBatch) error
	ApplyPages(ctx context.Context, c pipeline.ConnectorRef, bs []*pb.RecordBatch) error
	ApplyChange(ctx context.Context, c pipeline.ConnectorRef, b *pb.RecordBatch) error
	ApplyChanges(ctx context.Context, c pipeline.ConnectorRef, bs []*pb.RecordBatch) error
	Fetched(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFetched) error
	Fail(ctx context.Context, c pipeline.ConnectorRef, f *pb.RunFailed) error
	Finalize(ctx context.Context, c pipeline.ConnectorRef, runID string) (bool, error)
}

// Known reports whether the deployment serves a connector: the writer
// stores nothing for any other, so that a name published by mistake (or
// malice) creates no connector.
type Known func(ctx context.Context, c pipeline.ConnectorRef) (bool, error)

// Handler returns the consume handler of the writer. It returns no
// outputs: what the writer publishes leaves through its outbox, committed
// with the records. A message for a connector that known does not know is
// dead-lettered.
func Handler(s Store, known Known) natsx.Handler {
	return pipeline.Handle(outboxOnly{}, func(ctx context.Context, in pipeline.Envelope) ([]pipeline.Out, error) {
		ok, err := known(ctx, in.Connector)
		if err != nil {
			return nil, fmt.Errorf("look up connector %s: %w", in.Connector, err)
		}
		if !ok {
			return nil, natsx.Permanent(fmt.Errorf("unknown connector %s: it is not registered", in.Connector))
		}
		err = handle(ctx, s, in)
		switch {
		case errors.Is(err, store.ErrBadBatch):
			return nil, natsx.Permanent(err)
		case postgres.Unavailable(err) && ctx.Err() == nil:
			// The database is away: the message waits for it rather than
			// run out of deliveries.
			return nil, natsx.Unavailable(err)
		}
		return nil, err
	})
}

// outboxOnly is the publisher of a handler that publishes nothing itself.
type outboxOnly struct{}

// errNoOutputs reports a handler that returned outputs after all.
var errNoOutputs = errors.New("ingest: the writer publishes through its outbox only")

// PublishMsg refuses every message.
func (outboxOnly) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return nil, errNoOutputs
}

func handle(ctx context.Context, s Store, in pipeline.Envelope) error {
	c := in.Connector
	switch b := in.Body.Body.(type) {
	case *pb.Envelope_RunStarted:
		return s.StartRun(ctx, c, b.RunStarted.Run)
	case *pb.Envelope_Records:
		if b.Records.Run == nil {
			return s.ApplyChange(ctx, c, b.Records)
		}
		// A page completes its run itself when it is the last one missing.
		return s.ApplyPage(ctx, c, b.Records)
	case *pb.Envelope_RecordBatches:
		// A bundle of pages of one run, or of changes (users a listing
		// read back), applied in one transaction.
		bs := b.RecordBatches.Batches
		if len(bs) > 0 && bs[0].Run == nil {
			return s.ApplyChanges(ctx, c, bs)
		}
		return s.ApplyPages(ctx, c, bs)
	case *pb.Envelope_RunFetched:
		if err := s.Fetched(ctx, c, b.RunFetched); err != nil {
			return err
		}
		_, err := s.Finalize(ctx, c, b.RunFetched.Run.GetRunId())
		return err
	case *pb.Envelope_RunFailed:
		return s.Fail(ctx, c, b.RunFailed)
	default:
		return natsx.Permanent(fmt.Errorf("unexpected message %T on the records stream", in.Body.Body))
	}
}
