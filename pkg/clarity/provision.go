package clarity

// KindProvisioning is the kind of the events that carry provisioning
// results: clarity.entitlements.<tenant>.<connector>.provisioning, type
// clarity.provisioning.<result>.
const KindProvisioning = "provisioning"

// ProvisionSubject is where Clarity sends provisioning requests of a
// connector.
func ProvisionSubject(tenant, connector string) string {
	return "zoom.provision." + tenant + "." + connector
}

// ReplyToHeader names the subject a provisioning request's result is also
// published to.
const ReplyToHeader = "Clarity-Reply-To"

// Provisioning actions.
const (
	ActionAddGrant       = "add_grant"
	ActionRemoveGrant    = "remove_grant"
	ActionDeactivateUser = "deactivate_user"
	ActionActivateUser   = "activate_user"
	ActionRemoveUser     = "remove_user"
	ActionInviteUser     = "invite_user"
)

// Modes of remove_user.
const (
	RemoveDisassociate = "disassociate"
	RemoveDelete       = "delete"
)

// Provisioning results.
const (
	ResultSucceeded       = "succeeded"
	ResultAlreadyInEffect = "already_in_effect"
	ResultFailed          = "failed"
)

// ProvisionRequest is the JSON body of a provisioning request.
type ProvisionRequest struct {
	RequestID   string `json:"request_id"`
	Action      string `json:"action"`
	User        string `json:"user,omitempty"`
	Entitlement string `json:"entitlement,omitempty"`
	// Mode and TransferTo are remove_user's.
	Mode       string `json:"mode,omitempty"`
	TransferTo string `json:"transfer_to,omitempty"`
	// Email and License are invite_user's.
	Email   string `json:"email,omitempty"`
	License string `json:"license,omitempty"`
}

// ProvisionResult is a provisioning request's result: the reply, and the
// data of its event.
type ProvisionResult struct {
	RequestID  string `json:"request_id"`
	Action     string `json:"action"`
	Result     string `json:"result"`
	Error      string `json:"error"`
	ZoomStatus int    `json:"zoom_status"`
	ZoomCode   int    `json:"zoom_code"`
}
