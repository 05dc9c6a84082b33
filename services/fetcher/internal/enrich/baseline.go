package enrich

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// baselineWorkers bounds the details of one baseline read at once: each
// waits for the account's budget at background priority anyway.
const baselineWorkers = 16

// baselineStatuses are the listings a baseline reads: pending users have no
// id to read them by.
var baselineStatuses = []string{clarity.StatusActive, clarity.StatusInactive}

// baseline reads the details of every user of connector c, when it has
// enrichment on and no baseline yet, and records the baseline done. The
// users come from listings at background priority (a page lists 300):
// enrichment turned on for a connector already synced has had no event of
// them. input names the sync event that started it, for the ids of what it
// publishes.
func (e *Enricher) baseline(ctx context.Context, c pipeline.ConnectorRef, input string) error {
	on, done := e.state(c)
	if !on || done || e.cfg.BaselineDone == nil || e.cfg.BaselineNeeded == nil {
		return nil
	}
	// Two full syncs that end close together start one baseline: the
	// second finds it done.
	e.mu.Lock()
	l := e.baselines[c]
	if l == nil {
		l = &sync.Mutex{}
		e.baselines[c] = l
	}
	e.mu.Unlock()
	l.Lock()
	defer l.Unlock()
	need, since, err := e.cfg.BaselineNeeded(ctx, c)
	if err != nil || !need {
		return err
	}
	client, err := e.cfg.Clients.Client(ctx, c)
	switch {
	case errors.Is(err, runner.ErrNotServed):
		return nil // its next full sync, once it is served, starts it
	case err != nil:
		return err
	}
	e.cfg.Log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Msg("enrichment: reading the details of every user")
	bg := zoom.WithPriority(ctx, zoom.PriorityBackground)
	type listed struct {
		id, digest string
	}
	ids := make(chan listed)
	g, gctx := errgroup.WithContext(bg)
	var n atomic.Int64
	g.Go(func() error {
		defer close(ids)
		for _, status := range baselineStatuses {
			err := client.Pages(gctx, zoom.UsersListing(status), func(p zoom.RawPage) error {
				var page struct {
					Users []listedUser `json:"users"`
				}
				if err := zoom.Decode(p.Body, &page); err != nil {
					return fmt.Errorf("list %s users page %d: %w", status, p.Number, err)
				}
				for _, u := range page.Users {
					if u.ID == "" || len(u.ID) > maxKeyBytes {
						continue
					}
					select {
					case ids <- listed{u.ID, profileOfListed(u, status).digest()}:
					case <-gctx.Done():
						return gctx.Err()
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	for range baselineWorkers {
		g.Go(func() error {
			for u := range ids {
				id := u.id
				if e.cfg.Memo != nil {
					// Read since enrichment was turned on, with the
					// profile it has now: by a baseline cut short, or
					// as it was created or changed.
					digest, at, err := e.cfg.Memo.get(gctx, c, id)
					if err != nil {
						return err
					}
					if digest == u.digest && at.After(since) {
						continue
					}
				}
				// A user listed twice (moved while the listings paged)
				// publishes one page: the id is the user's.
				msgID := pipeline.DerivedID(input, "baseline/"+id, -1)
				asked := e.now()
				err := e.fetch(gctx, c, client, id, asked, msgID)
				if errors.Is(err, natsx.ErrPermanent) {
					// Zoom refuses this user's details for good: the
					// others are read all the same.
					e.cfg.Log.Warn().Str("tenant", c.Tenant).Str("connector", c.ID).Err(err).
						Msg("enrichment: a user's details could not be read")
					continue
				}
				if err != nil {
					return err
				}
				e.mu.Lock()
				e.remember(userRef{c, id}, asked)
				e.mu.Unlock()
				if e.cfg.Memo != nil {
					if err := e.cfg.Memo.put(gctx, c, id, u.digest); err != nil {
						return err
					}
				}
				n.Add(1)
			}
			return nil
		})
	}
	err = g.Wait()
	var limited *zoom.RateLimitError
	switch {
	case errors.As(err, &limited):
		return natsx.Unavailable(err)
	case err != nil:
		return err
	}
	if err := e.cfg.BaselineDone(ctx, c); err != nil {
		return err
	}
	e.cfg.Log.Info().Str("tenant", c.Tenant).Str("connector", c.ID).Int64("users", n.Load()).
		Msg("enrichment: the details of every user read")
	return nil
}
