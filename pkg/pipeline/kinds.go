package pipeline

import (
	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// KindName returns the name that events and subjects give a record kind
// (clarity.KindServiceUser, …), or "" for a number that is no record kind.
// It is the one mapping from the wire's and the database's kind numbers to
// those names.
func KindName(k pb.Kind) string {
	switch k {
	case pb.Kind_KIND_SERVICE_USER:
		return clarity.KindServiceUser
	case pb.Kind_KIND_ENTITLEMENT:
		return clarity.KindEntitlement
	case pb.Kind_KIND_SERVICE_USER_ENTITLEMENT:
		return clarity.KindServiceUserEntitlement
	case pb.Kind_KIND_SERVICE_USER_ATTRIBUTE:
		return clarity.KindServiceUserAttribute
	}
	return ""
}
