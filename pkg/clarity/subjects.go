package clarity

// StreamEntitlements is the JetStream stream that captures every change
// event (clarity.entitlements.>): downstream consumers read it.
const StreamEntitlements = "CLARITY_ENTITLEMENTS"

// SyncSubject is where anyone triggers a sync of a connector.
func SyncSubject(tenant, connector string) string { return "zoom.sync." + tenant + "." + connector }

// EventSubject is where change events of one kind are published.
func EventSubject(tenant, connector, kind string) string {
	return "clarity.entitlements." + tenant + "." + connector + "." + kind
}
