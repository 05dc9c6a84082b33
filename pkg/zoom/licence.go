package zoom

import (
	"strconv"
	"strings"
)

// Code is a Zoom enum value that Zoom sends as a string of digits
// (plan_united_type, "1") or as an integer (license_option, 16): it reads
// either spelling, and anything else (a fraction, a word, an object) as
// empty, so that an odd value costs the user one entitlement rather than
// its whole page. It holds the decimal digits, without sign or leading
// zeros.
type Code string

// UnmarshalJSON reads a JSON string or number of decimal digits.
func (c *Code) UnmarshalJSON(b []byte) error {
	*c = ""
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	// A uint64 has at most 20 digits (the largest known option,
	// 576460752303423488, has 18); longer is no code.
	if s == "" || len(s) > 20 {
		return nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil
	}
	*c = Code(strconv.FormatUint(v, 10))
	return nil
}

// LicenseInfo is one item of a user's license_info_list: a licence of one
// subscription. Zoom returns the list "only for accounts with multiple
// subscription plans enabled that contain duplicate plans".
type LicenseInfo struct {
	// LicenseType is MEETING (the paid user type) or ZOOM_WORKPLACE_BUNDLE
	// (a Zoom Workplace plan); another type is kept as Zoom spells it.
	LicenseType string `json:"license_type"`
	// LicenseOption is the plan option within the type: for MEETING 2
	// (Licensed), for ZOOM_WORKPLACE_BUNDLE the plan (16, Business Plus
	// with US/CA Unlimited, …).
	LicenseOption  Code   `json:"license_option"`
	SubscriptionID string `json:"subscription_id,omitempty"`
}

// The license types of LicenseInfo the connector names.
const (
	LicenseTypeMeeting   = "MEETING"
	LicenseTypeWorkplace = "ZOOM_WORKPLACE_BUNDLE"
)
