package ratebudget_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// TestBackgroundYieldsToBulk: background requests (the enrichment of users)
// wait while bulk requests want the budget, and go once they stop.
func TestBackgroundYieldsToBulk(t *testing.T) {
	srv := natstest.Run(t)
	sim := newSim(t)
	r := newReplica(t, sim, connect(t, srv.ClientURL()), ratebudget.Config{})
	users := sim.Org().Users
	var background atomic.Int64
	hammering := make(chan struct{})
	var during int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := zoom.WithPriority(context.Background(), zoom.PriorityBackground)
		for i := 0; i < 40; i++ {
			if _, err := r.client.GetUser(ctx, users[i].ID); err != nil {
				t.Errorf("background get user: %v", err)
				return
			}
			background.Add(1)
		}
	}()
	var bulk int64
	go func() {
		defer close(hammering)
		bulk = hammer(3*time.Second, t, sim, []replica{r}, 6)
		during = background.Load()
	}()
	<-hammering
	<-done
	t.Logf("%d bulk reads; %d background reads while they ran, %d in all", bulk, during, background.Load())
	if bulk == 0 {
		t.Fatal("no bulk read went")
	}
	if during > bulk/20 {
		t.Errorf("%d background reads went while %d bulk reads wanted the budget, want (nearly) none", during, bulk)
	}
	if background.Load() != 40 {
		t.Errorf("%d background reads went in all, want all 40 once the bulk reads stopped", background.Load())
	}
}
