package pipeline

import (
	"slices"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestKindName: every record kind has its own name, every name of
// clarity.Kinds is a record kind's, and no other number has one.
func TestKindName(t *testing.T) {
	t.Parallel()
	var names []string
	for n := range pb.Kind_name {
		name := KindName(pb.Kind(n))
		if (name == "") != (n == int32(pb.Kind_KIND_UNSPECIFIED)) {
			t.Errorf("kind %v: got name %q", pb.Kind(n), name)
		}
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(clarity.Kinds))
	if !slices.Equal(names, want) {
		t.Errorf("got names %q, want %q", names, want)
	}
	if got := KindName(pb.Kind(99)); got != "" {
		t.Errorf("kind 99: got name %q, want none", got)
	}
}
