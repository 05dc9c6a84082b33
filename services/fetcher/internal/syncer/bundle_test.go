package syncer

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

func TestBundle(t *testing.T) {
	t.Parallel()
	type sent struct {
		env *pb.Envelope
		id  string
	}
	var got []sent
	publish := func(env *pb.Envelope, id string) error {
		got = append(got, sent{env, id})
		return nil
	}
	page := func(n, size int) *pb.RawPage {
		return &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_GROUP_ADMINS, ListingKey: "g" + strconv.Itoa(n), Page: 1},
			Body: bytes.Repeat([]byte("x"), size)}
	}
	b := &bundle{}

	// Nothing to flush publishes nothing.
	if err := b.flush(publish); err != nil || len(got) != 0 {
		t.Fatalf("empty flush: got %d messages, error %v; want none", len(got), err)
	}

	// Full by page count.
	for i := range bundlePages {
		if b.full() {
			t.Fatalf("full after %d small pages, want %d", i, bundlePages)
		}
		b.add(page(i, 100), "run/1/admins:g"+strconv.Itoa(i)+"/0/1")
	}
	if !b.full() {
		t.Fatalf("not full after %d pages", bundlePages)
	}
	if err := b.flush(publish); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	pages := got[0].env.GetRawPages().GetPages()
	if len(pages) != bundlePages || pages[0].Ref.ListingKey != "g0" || pages[bundlePages-1].Ref.ListingKey != "g"+strconv.Itoa(bundlePages-1) {
		t.Fatalf("got a bundle of %d pages, want the %d pages in order", len(pages), bundlePages)
	}
	if want := "run/1/admins:g0/0/1+" + strconv.Itoa(bundlePages); got[0].id != want {
		t.Errorf("bundle id got %q, want %q", got[0].id, want)
	}

	// Emptied: full by size next, and a lone page goes as itself.
	if b.full() || len(b.pages) != 0 || b.bytes != 0 {
		t.Fatalf("after a flush: %d pages, %d bytes; want none", len(b.pages), b.bytes)
	}
	b.add(page(100, bundleBytes), "run/1/admins:g100/0/1")
	if !b.full() {
		t.Fatal("not full after a page of the byte bound")
	}
	if err := b.flush(publish); err != nil {
		t.Fatal(err)
	}
	if p := got[1].env.GetRawPage(); p == nil || p.Ref.ListingKey != "g100" || got[1].id != "run/1/admins:g100/0/1" {
		t.Errorf("lone page: got %v with id %q, want the page itself with its own id", got[1].env, got[1].id)
	}
}
