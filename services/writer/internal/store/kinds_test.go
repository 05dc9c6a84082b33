package store

import (
	"strconv"
	"testing"

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
