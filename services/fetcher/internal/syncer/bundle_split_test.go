package syncer

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestBundleTooLargeGoesPageByPage: a bundle that NATS refuses for its
// size is published page by page, each under the id it has on its own.
func TestBundleTooLargeGoesPageByPage(t *testing.T) {
	t.Parallel()
	var ids []string
	publish := func(env *pb.Envelope, id string) error {
		if env.GetRawPages() != nil {
			return fmt.Errorf("publish %s: %w", id, nats.ErrMaxPayload)
		}
		ids = append(ids, id)
		return nil
	}
	b := &bundle{}
	var want []string
	for i := range 3 {
		id := "run/1/admins:g" + strconv.Itoa(i) + "/0/1"
		b.add(&pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_GROUP_ADMINS, ListingKey: "g" + strconv.Itoa(i), Page: 1},
			Body: bytes.Repeat([]byte("x"), 10)}, id)
		want = append(want, id)
	}
	if err := b.flush(publish); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("published %v, want each page under its own id %v", ids, want)
	}

	// Any other failure is the caller's to handle.
	b.add(&pb.RawPage{Ref: &pb.PageRef{Page: 1}}, "a")
	b.add(&pb.RawPage{Ref: &pb.PageRef{Page: 1}}, "b")
	boom := errors.New("nats away")
	if err := b.flush(func(*pb.Envelope, string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("flush got %v, want %v", err, boom)
	}
}
