package runner

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
)

// listerGone takes a listing round for lost only while it is still
// listing: the lister marks its round done, then removes its beat, so a
// waiter that read the round listing and then finds no beat must not
// leave a round that just served it.
func TestListerGoneOnlyWhileListing(t *testing.T) {
	ctx := context.Background()
	kv, err := ratebudget.Bucket(ctx, natstest.JetStream(t, pipeline.Streams(1)...), 1)
	if err != nil {
		t.Fatal(err)
	}
	c := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	rs := newRounds(kv, time.Second, time.Hour, 100*time.Millisecond)
	listing := round{N: 7, State: roundListing, StartMs: time.Now().Add(-10 * time.Minute).UnixMilli()}
	store := func(o round) {
		data, _ := json.Marshal(o)
		if _, err := kv.Put(ctx, roundKey(c), data); err != nil {
			t.Fatal(err)
		}
	}
	store(listing)
	if !rs.listerGone(ctx, c, listing) {
		t.Error("a round listing for 10 minutes without a beat has not lost its lister")
	}
	if _, err := kv.Put(ctx, beatKey(c, 7), []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))); err != nil {
		t.Fatal(err)
	}
	if rs.listerGone(ctx, c, listing) {
		t.Error("a round whose lister beat just now has lost it")
	}
	// Done, its beat removed, while the waiter still holds it as listing.
	if err := kv.Delete(ctx, beatKey(c, 7)); err != nil {
		t.Fatal(err)
	}
	done := listing
	done.State = roundDone
	store(done)
	if rs.listerGone(ctx, c, listing) {
		t.Error("a round done (its beat removed) was taken for one that lost its lister")
	}
}
