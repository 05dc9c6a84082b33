package connector

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Readers Get a connector while it is removed: none may put it back into
// the watched copy.
func TestRemovalsRacingReads(t *testing.T) {
	r := newRegistry(t)
	watch(t, r)
	ctx := context.Background()
	hits := 0
	for i := range 100 {
		rec := s2s("acme", fmt.Sprintf("z%d", i))
		if _, err := r.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		waitFor(t, r, "created", func() bool { _, ok := r.Lookup(rec.Ref()); return ok })
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, _ = r.Get(ctx, rec.Ref())
				}
			})
		}
		time.Sleep(time.Millisecond)
		if err := r.Purge(ctx, rec.Ref()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		time.Sleep(20 * time.Millisecond)
		if _, ok := r.Lookup(rec.Ref()); ok {
			hits++
		}
	}
	t.Logf("removed connectors still in the watched copy: %d of 100", hits)
	if hits > 0 {
		t.Fail()
	}
}
