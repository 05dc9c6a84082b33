package provision

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Bounds of what a request may carry. A request beyond them is answered
// failed, with zoom_status 0, and nothing is asked of Zoom.
const (
	// MaxRequestBytes bounds a request's JSON body.
	MaxRequestBytes = 16 << 10
	// MaxRequestID bounds request_id, in bytes.
	MaxRequestID = 128
	// MaxKey bounds user, entitlement and transfer_to, in bytes.
	MaxKey = 320
	// MaxEmail bounds invite_user's email, in bytes (RFC 5321).
	MaxEmail = 254
	// maxHeaders and maxHeaderValue bound what the audit keeps of the
	// request's headers.
	maxHeaders     = 8
	maxHeaderValue = 256
	// maxReplyTo bounds the Clarity-Reply-To subject.
	maxReplyTo = 256
)

// errBadRequest marks a request that no retry can serve.
var errBadRequest = errors.New("bad request")

// grant is an entitlement key parsed: its type and the Zoom id or licence.
type grant struct {
	kind string // clarity.Entitlement…
	id   string // group or role id; for a licence, its Zoom user type
	typ  int    // the Zoom user type of a licence
}

// request is a provisioning request checked and parsed.
type request struct {
	clarity.ProvisionRequest
	// zoomUser is how Zoom names the request's user: the Zoom id, or the
	// email of a pending user (key pending:<email>).
	zoomUser string
	pending  bool
	grant    grant
	// transferZoom is how Zoom names remove_user's transfer_to.
	transferZoom string
	// inviteType is invite_user's Zoom user type.
	inviteType int
}

// parseRequest decodes and checks a request's body. On error the returned
// request still carries the request id and action when they were readable
// (bounded), for the result.
func parseRequest(body []byte) (request, error) {
	var r request
	if len(body) > MaxRequestBytes {
		return r, fmt.Errorf("%w: the request is %d bytes, over the %d allowed", errBadRequest, len(body), MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r.ProvisionRequest); err != nil {
		r.ProvisionRequest = clarity.ProvisionRequest{}
		return r, fmt.Errorf("%w: the request is not a JSON object of the provisioning request's fields: %s", errBadRequest, bound(err.Error(), 200))
	}
	if dec.More() {
		r.ProvisionRequest = clarity.ProvisionRequest{}
		return r, fmt.Errorf("%w: the request holds more than one JSON value", errBadRequest)
	}
	if err := checkText("request_id", r.RequestID, MaxRequestID); err != nil {
		r.RequestID = ""
		r.Action = bound(printable(r.Action), 32)
		return r, err
	}
	if r.RequestID == "" {
		r.Action = bound(printable(r.Action), 32)
		return r, fmt.Errorf("%w: request_id is required", errBadRequest)
	}
	if err := checkText("action", r.Action, 32); err != nil {
		// The result repeats the action: only what can be stored and shown.
		r.Action = bound(printable(r.Action), 32)
		return r.cleared(), err
	}
	if !knownAction(r.Action) {
		a := r.Action
		r.Action = bound(a, 32)
		return r, fmt.Errorf("%w: unknown action %q (one of add_grant, remove_grant, deactivate_user, activate_user, remove_user, invite_user)", errBadRequest, bound(a, 32))
	}
	for _, f := range []struct{ name, v string }{
		{"user", r.User}, {"entitlement", r.Entitlement}, {"transfer_to", r.TransferTo}, {"mode", r.Mode}, {"license", r.License},
	} {
		if err := checkText(f.name, f.v, MaxKey); err != nil {
			return r.cleared(), err
		}
	}
	if err := checkText("email", r.Email, MaxEmail); err != nil {
		return r.cleared(), err
	}
	if r.Action == clarity.ActionInviteUser {
		return r.parseInvite()
	}
	if r.User == "" {
		return r.cleared(), fmt.Errorf("%w: %s needs user (a user key)", errBadRequest, r.Action)
	}
	var err error
	if r.zoomUser, r.pending, err = zoomUser("user", r.User); err != nil {
		return r.cleared(), err
	}
	switch r.Action {
	case clarity.ActionAddGrant, clarity.ActionRemoveGrant:
		if r.grant, err = parseGrant(r.Action, r.Entitlement); err != nil {
			return r.cleared(), err
		}
	case clarity.ActionRemoveUser:
		switch r.Mode {
		case "":
			r.Mode = clarity.RemoveDisassociate
		case clarity.RemoveDisassociate, clarity.RemoveDelete:
		default:
			return r.cleared(), fmt.Errorf("%w: mode %q is not disassociate or delete", errBadRequest, r.Mode)
		}
		if r.TransferTo != "" {
			var pending bool
			if r.transferZoom, pending, err = zoomUser("transfer_to", r.TransferTo); err != nil {
				return r.cleared(), err
			}
			if pending {
				return r.cleared(), fmt.Errorf("%w: transfer_to %q is a pending user, who cannot receive anything", errBadRequest, r.TransferTo)
			}
			if r.TransferTo == r.User {
				return r.cleared(), fmt.Errorf("%w: transfer_to is the user being removed", errBadRequest)
			}
		}
	}
	return r, nil
}

func (r request) parseInvite() (request, error) {
	addr, err := mail.ParseAddress(r.Email)
	if r.Email == "" || err != nil || addr.Address != r.Email {
		return r.cleared(), fmt.Errorf("%w: invite_user needs email, a plain address such as name@example.com", errBadRequest)
	}
	switch r.License {
	case "", "basic":
		r.inviteType = zoom.UserTypeBasic
	case "licensed":
		r.inviteType = zoom.UserTypeLicensed
	case "unassigned":
		r.inviteType = zoom.UserTypeUnassigned
	default:
		return r.cleared(), fmt.Errorf("%w: license %q is not basic, licensed or unassigned", errBadRequest, r.License)
	}
	if r.User != "" && !strings.EqualFold(r.User, "pending:"+r.Email) {
		return r.cleared(), fmt.Errorf("%w: invite_user names its user by email; user, when given, must be pending:<email>", errBadRequest)
	}
	r.User = "pending:" + strings.ToLower(r.Email)
	r.zoomUser, r.pending = r.Email, true
	return r, nil
}

// cleared keeps only what the result repeats: the request id and action.
func (r request) cleared() request {
	return request{ProvisionRequest: clarity.ProvisionRequest{RequestID: r.RequestID, Action: r.Action}}
}

// zoomUser reads a user key: a Zoom user id, or pending:<email>.
func zoomUser(field, key string) (string, bool, error) {
	if email, ok := strings.CutPrefix(key, "pending:"); ok {
		if _, err := mail.ParseAddress(email); err != nil || email == "" {
			return "", false, fmt.Errorf("%w: %s %q is pending: but no email", errBadRequest, field, key)
		}
		return email, true, nil
	}
	for _, r := range key {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')) {
			return "", false, fmt.Errorf("%w: %s %q is not a user key (a Zoom user id, or pending:<email>)", errBadRequest, field, bound(key, 80))
		}
	}
	return key, false, nil
}

// parseGrant reads an entitlement key of add_grant or remove_grant.
func parseGrant(action, key string) (grant, error) {
	kind, id, ok := strings.Cut(key, ":")
	if key == "" {
		return grant{}, fmt.Errorf("%w: %s needs entitlement (an entitlement key)", errBadRequest, action)
	}
	if !ok || id == "" {
		return grant{}, fmt.Errorf("%w: entitlement %q is not a group:, group_admin:, role: or license: key", errBadRequest, bound(key, 80))
	}
	switch kind {
	case clarity.EntitlementGroup, clarity.EntitlementGroupAdmin, clarity.EntitlementRole:
		for _, r := range id {
			if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')) {
				return grant{}, fmt.Errorf("%w: entitlement %q names no Zoom id", errBadRequest, bound(key, 80))
			}
		}
		return grant{kind: kind, id: id}, nil
	case clarity.EntitlementLicense:
		for t := range 5 {
			if k, ok := clarity.LicenseKey(t); ok && k == key {
				return grant{kind: kind, id: strconv.Itoa(t), typ: t}, nil
			}
		}
		return grant{}, fmt.Errorf("%w: entitlement %q is not license:basic, license:licensed or license:unassigned", errBadRequest, bound(key, 80))
	}
	return grant{}, fmt.Errorf("%w: entitlement %q is of kind %q, which cannot be granted (group:, group_admin:, role: or license:)", errBadRequest, bound(key, 80), bound(kind, 32))
}

// checkText refuses a field over n bytes, not UTF-8, or with control
// characters.
func checkText(field, v string, n int) error {
	switch {
	case len(v) > n:
		return fmt.Errorf("%w: %s is %d bytes, over the %d allowed", errBadRequest, field, len(v), n)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not UTF-8", errBadRequest, field)
	case strings.ContainsFunc(v, unicode.IsControl):
		return fmt.Errorf("%w: %s holds control characters", errBadRequest, field)
	}
	return nil
}

// printable is s as UTF-8 without control characters (NUL among them,
// which no Postgres text holds).
func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// requestedBy is what the audit keeps of the request's headers: the
// Clarity-… headers but the reply subject, and the message id, bounded.
func requestedBy(h nats.Header) map[string]string {
	out := map[string]string{}
	for name, vs := range h {
		if len(out) == maxHeaders {
			break
		}
		canon := strings.ToLower(name)
		if (!strings.HasPrefix(canon, "clarity-") && canon != "nats-msg-id") || canon == strings.ToLower(clarity.ReplyToHeader) || len(vs) == 0 {
			continue
		}
		out[bound(printable(name), 64)] = bound(printable(vs[0]), maxHeaderValue)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// replyTo returns the request's Clarity-Reply-To subject when it is one a
// reply can go to: a literal NATS subject (no wildcards, no spaces, no
// control characters) outside the connector's own subjects (zoom.…), the
// events Clarity consumes (clarity.entitlements.…) and the server's ($…),
// where a reply would pass for a sync trigger, an event or an API call.
// A request whose reply subject is refused is served all the same: its
// result is the event.
func replyTo(h nats.Header) (string, error) {
	s := h.Get(clarity.ReplyToHeader)
	if s == "" {
		return "", nil
	}
	if len(s) > maxReplyTo || !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n*>") ||
		strings.ContainsFunc(s, unicode.IsControl) || strings.HasPrefix(s, ".") ||
		strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return "", fmt.Errorf("%s is not a subject a reply can be published to", clarity.ReplyToHeader)
	}
	for _, p := range [...]string{"zoom.", "clarity.entitlements.", "$"} {
		if strings.HasPrefix(s, p) {
			return "", fmt.Errorf("%s is under %s…, where no reply is published", clarity.ReplyToHeader, p)
		}
	}
	return s, nil
}

// bound cuts s to n bytes at a character boundary.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
