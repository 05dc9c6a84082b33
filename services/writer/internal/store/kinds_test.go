package store

import (
	"slices"
	"strconv"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// TestKindSQL: the kinds that SQL text names are the kinds of pb.Kind.
func TestKindSQL(t *testing.T) {
	t.Parallel()
	for sql, kind := range map[string]pb.Kind{
		userKindSQL:        pb.Kind_KIND_SERVICE_USER,
		entitlementKindSQL: pb.Kind_KIND_ENTITLEMENT,
		grantKindSQL:       pb.Kind_KIND_SERVICE_USER_ENTITLEMENT,
		attributeKindSQL:   pb.Kind_KIND_SERVICE_USER_ATTRIBUTE,
	} {
		if want := strconv.Itoa(int(kind)); sql != want {
			t.Errorf("%v as SQL: got %s, want %s", kind, sql, want)
		}
	}
	if want := "(3, 4)"; dependentKindsSQL != want {
		t.Errorf("dependent kinds as SQL: got %s, want %s", dependentKindsSQL, want)
	}
}

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
