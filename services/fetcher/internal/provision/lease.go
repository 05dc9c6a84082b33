package provision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The worker reads the requests in stream order, so one worker serves them
// at a time: the fetcher replica that holds the lease, a key of a bucket
// whose entries expire LeaseTTL after they were last written. The holder
// writes it again every LeaseTTL/3; a replica that dies (SIGKILL) leaves
// it to expire, and another takes over within LeaseTTL.
const (
	leaseKey = "worker"
	// LeaseTTL is how long a lease outlives its holder's last renewal.
	LeaseTTL = 6 * time.Second
)

// errLeaseLost is the cause of the end of a held context whose lease was
// lost (not renewed in time, or taken by another replica): another replica
// may be serving the same requests already.
var errLeaseLost = errors.New("provisioning lease lost")

// lease is the provisioning worker's lease.
type lease struct {
	kv     jetstream.KeyValue
	holder string
	log    zerolog.Logger
}

func openLease(ctx context.Context, js jetstream.JetStream, replicas int, holder string, log zerolog.Logger) (*lease, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      pipeline.ProvisionLeaseBucket,
		Description: "which fetcher replica serves provisioning requests",
		History:     1,
		TTL:         LeaseTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open provisioning lease bucket: %w", err)
	}
	return &lease{kv: kv, holder: holder, log: log}, nil
}

// hold runs fn whenever this replica holds the lease, with a context that
// ends when the lease is lost (its cause then errLeaseLost), until ctx ends.
func (l *lease) hold(ctx context.Context, fn func(ctx context.Context) error) error {
	for ctx.Err() == nil {
		rev, err := l.kv.Create(ctx, leaseKey, []byte(l.holder))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
				l.log.Warn().Err(err).Msg("provisioning lease: not taken")
			}
			select {
			case <-ctx.Done():
			case <-time.After(LeaseTTL / 3):
			}
			continue
		}
		l.log.Info().Str("holder", l.holder).Msg("provisioning lease taken")
		held, release := context.WithCancelCause(ctx)
		renewed := make(chan struct{})
		go func() {
			defer close(renewed)
			defer release(nil)
			for {
				select {
				case <-held.Done():
					return
				case <-time.After(LeaseTTL / 3):
				}
				r, err := l.kv.Update(held, leaseKey, []byte(l.holder), rev)
				if err != nil {
					if held.Err() == nil {
						l.log.Warn().Err(err).Msg("provisioning lease lost")
						release(errLeaseLost)
					}
					return
				}
				rev = r
			}
		}()
		err = fn(held)
		release(nil)
		<-renewed
		if ctx.Err() != nil {
			// Stopping: the lease goes at once, so a replica that stays
			// takes over without waiting for it to expire.
			_ = l.kv.Delete(context.WithoutCancel(ctx), leaseKey, jetstream.LastRevision(rev))
			return err
		}
		if err != nil {
			return err
		}
	}
	return nil
}
