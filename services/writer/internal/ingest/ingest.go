// Package ingest decodes the messages on zoom.records.> and hands each to
// the store.
package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// Store is what the handler needs of the store.
type Store interface {
	StartRun(ctx context.Context, tenant, connector string, run *pb.Run) error
	ApplyPage(ctx context.Context, tenant, connector string, b *pb.RecordBatch) error
	ApplyPages(ctx context.Context, tenant, connector string, bs []*pb.RecordBatch) error
	ApplyChange(ctx context.Context, tenant, connector string, b *pb.RecordBatch) error
	Fetched(ctx context.Context, tenant, connector string, f *pb.RunFetched) error
	Fail(ctx context.Context, tenant, connector string, f *pb.RunFailed) error
	Finalize(ctx context.Context, tenant, connector, runID string) (bool, error)
}

// Handler returns the consume handler of the writer.
func Handler(s Store) natsx.Handler {
	return func(ctx context.Context, msg jetstream.Msg) error {
		var env pb.Envelope
		if err := proto.Unmarshal(msg.Data(), &env); err != nil {
			return natsx.Permanent(fmt.Errorf("decode envelope: %w", err))
		}
		tenant, connector := env.Tenant, env.Connector
		if clarity.CheckToken("tenant", tenant) != nil || clarity.CheckToken("connector", connector) != nil {
			return natsx.Permanent(fmt.Errorf("envelope names no valid tenant and connector"))
		}
		err := handle(ctx, s, tenant, connector, &env)
		switch {
		case errors.Is(err, store.ErrBadBatch):
			return natsx.Permanent(err)
		case postgres.Unavailable(err) && ctx.Err() == nil:
			// The database is away: the message waits for it rather than
			// run out of deliveries.
			return natsx.Unavailable(err)
		}
		return err
	}
}

func handle(ctx context.Context, s Store, tenant, connector string, env *pb.Envelope) error {
	switch b := env.Body.(type) {
	case *pb.Envelope_RunStarted:
		return s.StartRun(ctx, tenant, connector, b.RunStarted.Run)
	case *pb.Envelope_Records:
		if b.Records.Run == nil {
			return s.ApplyChange(ctx, tenant, connector, b.Records)
		}
		// A page completes its run itself when it is the last one missing.
		return s.ApplyPage(ctx, tenant, connector, b.Records)
	case *pb.Envelope_RecordBatches:
		// A bundle of pages of one run, applied in one transaction.
		return s.ApplyPages(ctx, tenant, connector, b.RecordBatches.Batches)
	case *pb.Envelope_RunFetched:
		if err := s.Fetched(ctx, tenant, connector, b.RunFetched); err != nil {
			return err
		}
		_, err := s.Finalize(ctx, tenant, connector, b.RunFetched.Run.GetRunId())
		return err
	case *pb.Envelope_RunFailed:
		return s.Fail(ctx, tenant, connector, b.RunFailed)
	default:
		return natsx.Permanent(fmt.Errorf("unexpected message %T on the records stream", env.Body))
	}
}
