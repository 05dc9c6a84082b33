package cli

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

func TestJetStreamFloorPublishesTheSampledEvents(t *testing.T) {
	ctx := context.Background()
	_, js := newNATS(t, false)
	kinds := []string{clarity.KindServiceUser, clarity.KindEntitlement, clarity.KindServiceUserEntitlement}
	for i := range 30 {
		kind := kinds[i%len(kinds)]
		publishEvent(t, js, "t1", "zoom", int64(i+1), kind, clarity.OpCreated, fmt.Sprintf("key%d", i), fmt.Sprintf(`{"n":%d}`, i))
	}
	stream, err := js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}

	// Ten of the thirty, evenly spread: sequences 1, 4, 7, …
	samples, err := sampleEvents(ctx, stream, 1, 30, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 10 || samples[0].Sequence != 1 || samples[1].Sequence != 4 || samples[9].Sequence != 28 {
		seqs := []uint64{}
		for _, s := range samples {
			seqs = append(seqs, s.Sequence)
		}
		t.Fatalf("sampled sequences %v, want 1, 4, … 28", seqs)
	}
	if _, err := sampleEvents(ctx, stream, 31, 30, 10); err == nil {
		t.Fatal("sampling an empty range succeeded")
	}

	// More events than samples: the samples repeat, each with its own id,
	// and none is dropped as a duplicate.
	// jetStreamFloor checks that its stream holds all n.
	const n = 5000
	secs, err := jetStreamFloor(ctx, js.Conn(), js, samples, n)
	if err != nil {
		t.Fatal(err)
	}
	if secs <= 0 {
		t.Fatalf("floor took %v s", secs)
	}
	// The floor stream is gone, and the entitlements stream is untouched.
	if _, err := js.Stream(ctx, floorStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("floor stream after the floor: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 30 {
		t.Fatalf("the entitlements stream holds %d events, want 30", info.State.Msgs)
	}

	if _, err := jetStreamFloor(ctx, js.Conn(), js, nil, n); err == nil {
		t.Fatal("a floor without samples succeeded")
	}
}
