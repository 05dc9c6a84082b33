package provision

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Zoom is what the actions need of a connector's Zoom client.
type Zoom interface {
	GetUser(ctx context.Context, userID string) ([]byte, error)
	PendingUser(ctx context.Context, email string) ([]byte, bool, error)
	ReadGroup(ctx context.Context, groupID string) (zoom.Group, error)
	ReadRole(ctx context.Context, roleID string) (zoom.Role, error)
	GroupAdminEmails(ctx context.Context, groupID string) ([]string, error)
	AddGroupMember(ctx context.Context, groupID, userID string) error
	RemoveGroupMember(ctx context.Context, groupID, userID string) error
	AddGroupAdmin(ctx context.Context, groupID, userID string) error
	RemoveGroupAdmin(ctx context.Context, groupID, userID string) error
	AddRoleMember(ctx context.Context, roleID, userID string) error
	RemoveRoleMember(ctx context.Context, roleID, userID string) error
	SetUserType(ctx context.Context, userID string, typ int) error
	SetUserStatus(ctx context.Context, userID, action string) error
	DeleteUser(ctx context.Context, userID, action, transferEmail string) error
	CreateUser(ctx context.Context, action, email string, typ int) (zoom.User, error)
}

// memberRole is Zoom's Member role, which a user whose role is taken away
// falls back to.
const memberRole = "2"

// maxCalls bounds the Zoom calls one action records for the audit.
const maxCalls = 16

// maxError bounds a result's error text.
const maxError = 1024

// action runs one request against Zoom: read, write when the effect is not
// there yet, read back.
type action struct {
	z   Zoom
	req request
	// writing is called once Zoom was read and the write is about to go,
	// with who the write is for (the user's key and email): it records
	// that the request got there, so that a worker taking the request up
	// again after a crash knows the write may have been made, and holds
	// back their other changes until the result is committed.
	writing func(who []string) error
	// held is who writing was called for.
	held []string
	// email is the request's user's email, once read.
	email string
	// resumed says an earlier run of this request got to its write: an
	// effect found in place is then this request's own.
	resumed bool

	calls []pipeline.ZoomCall
	// read is the latest read of the request's user; reads are the reads
	// the writer publishes once the result is committed.
	read   *pipeline.UserRead
	reads  []pipeline.UserRead
	admins *pipeline.GroupAdminsRead
}

// outcome is what an action ends with. err, when not nil, is an error
// that is not the request's result: the worker could not keep a record of
// its progress, or it is stopping; the request is taken up again.
type outcome struct {
	result clarity.ProvisionResult
	err    error
}

// errStopped marks an action cut short by the worker's stop.
var errStopped = errors.New("provisioning worker stopping")

// call runs one Zoom call and records it for the audit with status ok when
// it succeeds.
func (a *action) call(name string, ok int, f func() error) error {
	err := f()
	st, code := zoom.Answer(err)
	if err == nil {
		st = ok
	}
	if len(a.calls) < maxCalls {
		a.calls = append(a.calls, pipeline.ZoomCall{Call: name, Status: st, Code: code})
	}
	return err
}

// readUser reads a user: by GET /users/{userId}, or for the request's
// pending user (whom that shows only by id) from the pending listing. A
// read of the request's user is kept in a.read.
func (a *action) readUser(ctx context.Context, id string) (zoom.User, error) {
	mine := id == a.req.zoomUser
	at := time.Now()
	var body []byte
	var err error
	if mine && a.req.pending {
		var ok bool
		err = a.call("GET /users?status=pending", http.StatusOK, func() (err error) {
			body, ok, err = a.z.PendingUser(ctx, id)
			return err
		})
		if err == nil && !ok {
			err = fmt.Errorf("%w: Zoom lists no pending user %s", zoom.ErrUserNotFound, id)
		}
		if err == nil {
			body, err = withStatus(body, zoom.UserStatusPending)
		}
	} else {
		err = a.call("GET /users/{userId}", http.StatusOK, func() (err error) {
			body, err = a.z.GetUser(ctx, id)
			return err
		})
	}
	if mine {
		key := id
		if a.req.pending {
			key = "pending:" + strings.ToLower(id)
		}
		switch {
		case errors.Is(err, zoom.ErrUserNotFound):
			a.read = &pipeline.UserRead{UserID: key, NotFound: true, ReadAtMs: at.UnixMilli()}
		case err == nil:
			a.read = &pipeline.UserRead{UserID: key, Body: body, ReadAtMs: at.UnixMilli()}
		}
	}
	if err != nil {
		return zoom.User{}, err
	}
	var u zoom.User
	if err := zoom.Decode(body, &u); err != nil {
		return zoom.User{}, fmt.Errorf("read user %s: %w", bound(id, 80), err)
	}
	if mine && u.Email != "" {
		a.email = strings.ToLower(u.Email)
	}
	return u, nil
}

// who is who a write is for: the request's user key and, once read, the
// user's email (Zoom names group admins by email).
func (a *action) who() []string {
	out := []string{a.req.User}
	if a.email != "" {
		out = append(out, a.email)
	}
	if a.req.pending {
		out = append(out, strings.ToLower(a.req.zoomUser))
	}
	return out
}

// startWrite calls writing for the request's user.
func (a *action) startWrite() error {
	a.held = a.who()
	return a.writing(a.held)
}

// withStatus adds status to a listed user, which a listing of one status
// does not repeat.
func withStatus(body []byte, status string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("listed user: %w", err)
	}
	m["status"], _ = json.Marshal(status)
	return json.Marshal(m)
}

// refreshed has the latest read of the request's user published once the
// result is committed.
func (a *action) refreshed() {
	// A user larger than maxRead (Zoom's are a few KiB) is left to the
	// next full sync: the result must fit in one message.
	if a.read != nil && len(a.read.Body) <= maxRead {
		a.reads = append(a.reads, *a.read)
	}
}

// maxRead bounds a user's body that the outcome carries.
const maxRead = 256 << 10

// run carries the action out.
func (a *action) run(ctx context.Context) outcome {
	switch a.req.Action {
	case clarity.ActionInviteUser:
		return a.invite(ctx)
	case clarity.ActionRemoveUser:
		return a.remove(ctx)
	}
	u, err := a.readUser(ctx, a.req.zoomUser)
	if err != nil {
		return a.failed(ctx, err, "read the user")
	}
	switch a.req.Action {
	case clarity.ActionAddGrant, clarity.ActionRemoveGrant:
		add := a.req.Action == clarity.ActionAddGrant
		switch a.req.grant.kind {
		case clarity.EntitlementGroup:
			return a.group(ctx, u, add)
		case clarity.EntitlementGroupAdmin:
			return a.groupAdmin(ctx, u, add)
		case clarity.EntitlementRole:
			return a.role(ctx, u, add)
		default:
			return a.license(ctx, u, add)
		}
	case clarity.ActionDeactivateUser:
		return a.status(ctx, u, zoom.StatusDeactivate, zoom.UserStatusInactive)
	default:
		return a.status(ctx, u, zoom.StatusActivate, zoom.UserStatusActive)
	}
}

func (a *action) group(ctx context.Context, u zoom.User, add bool) outcome {
	u.ID = cmp.Or(u.ID, a.req.zoomUser) // a pending user is named by email
	gid := a.req.grant.id
	has := func(u zoom.User) bool { return slices.Contains(u.GroupIDs, gid) }
	if has(u) == add {
		if !add {
			// The grant is not held: the effect is in place if the group
			// exists, and the request names no entitlement otherwise.
			if err := a.call("GET /groups/{groupId}", http.StatusOK, func() error { _, err := a.z.ReadGroup(ctx, gid); return err }); err != nil {
				return a.failed(ctx, err, "read the group")
			}
		}
		return a.inEffect()
	}
	write := func() error {
		if add {
			return a.call("POST /groups/{groupId}/members", http.StatusCreated, func() error { return a.z.AddGroupMember(ctx, gid, u.ID) })
		}
		return a.call("DELETE /groups/{groupId}/members/{memberId}", http.StatusNoContent, func() error { return a.z.RemoveGroupMember(ctx, gid, u.ID) })
	}
	return a.write(ctx, true, write, func() (bool, error) {
		v, err := a.readUser(ctx, a.req.zoomUser)
		return has(v) == add, err
	}, map[bool]string{true: "add the user to group ", false: "take the user out of group "}[add]+gid)
}

func (a *action) groupAdmin(ctx context.Context, u zoom.User, add bool) outcome {
	u.ID = cmp.Or(u.ID, a.req.zoomUser) // a pending user is named by email
	gid := a.req.grant.id
	var readAt time.Time
	isAdmin := func() (bool, error) {
		var emails []string
		readAt = time.Now()
		err := a.call("GET /groups/{groupId}/admins", http.StatusOK, func() (err error) {
			emails, err = a.z.GroupAdminEmails(ctx, gid)
			return err
		})
		return slices.ContainsFunc(emails, func(e string) bool { return strings.EqualFold(e, u.Email) }), err
	}
	now, err := isAdmin()
	if err != nil {
		return a.failed(ctx, err, "list the group's admins")
	}
	if now == add {
		o := a.inEffect()
		if o.result.Result == clarity.ResultSucceeded {
			// Taken up again after its write: the grant is refreshed as
			// after any write.
			a.admins = &pipeline.GroupAdminsRead{GroupID: gid, Email: strings.ToLower(u.Email), IsAdmin: add, ReadAtMs: readAt.UnixMilli()}
		}
		return o
	}
	if a.req.pending {
		return a.refused("a pending user cannot be a group's admin until they accept the invitation")
	}
	write := func() error {
		if add {
			return a.call("POST /groups/{groupId}/admins", http.StatusCreated, func() error { return a.z.AddGroupAdmin(ctx, gid, u.ID) })
		}
		return a.call("DELETE /groups/{groupId}/admins/{userId}", http.StatusNoContent, func() error { return a.z.RemoveGroupAdmin(ctx, gid, u.ID) })
	}
	o := a.write(ctx, false, write, func() (bool, error) {
		v, err := isAdmin()
		return v == add, err
	}, map[bool]string{true: "make the user an admin of group ", false: "take the user's admin rights on group "}[add]+gid)
	if o.result.Result == clarity.ResultSucceeded {
		a.admins = &pipeline.GroupAdminsRead{GroupID: gid, Email: strings.ToLower(u.Email), IsAdmin: add, ReadAtMs: readAt.UnixMilli()}
	}
	return o
}

func (a *action) role(ctx context.Context, u zoom.User, add bool) outcome {
	u.ID = cmp.Or(u.ID, a.req.zoomUser) // a pending user is named by email
	rid := a.req.grant.id
	if (u.RoleID == rid) == add {
		if !add {
			// Not held: in effect if the role exists.
			if err := a.call("GET /roles/{roleId}", http.StatusOK, func() error { _, err := a.z.ReadRole(ctx, rid); return err }); err != nil {
				return a.failed(ctx, err, "read the role")
			}
		}
		return a.inEffect()
	}
	write := func() error {
		switch {
		case add && rid == memberRole:
			// Zoom adds no one to the Member role: taking the user's role
			// away gives it.
			return a.call("DELETE /roles/{roleId}/members/{memberId}", http.StatusNoContent, func() error { return a.z.RemoveRoleMember(ctx, u.RoleID, u.ID) })
		case add:
			return a.call("POST /roles/{roleId}/members", http.StatusCreated, func() error { return a.z.AddRoleMember(ctx, rid, u.ID) })
		default:
			return a.call("DELETE /roles/{roleId}/members/{memberId}", http.StatusNoContent, func() error { return a.z.RemoveRoleMember(ctx, rid, u.ID) })
		}
	}
	return a.write(ctx, true, write, func() (bool, error) {
		v, err := a.readUser(ctx, a.req.zoomUser)
		return (v.RoleID == rid) == add, err
	}, map[bool]string{true: "give the user role ", false: "take role "}[add]+rid)
}

func (a *action) license(ctx context.Context, u zoom.User, add bool) outcome {
	u.ID = cmp.Or(u.ID, a.req.zoomUser) // a pending user is named by email
	want := a.req.grant.typ
	if !add {
		if want == zoom.UserTypeBasic {
			return a.refused("every user holds a licence: license:basic is taken away by granting license:licensed or license:unassigned")
		}
		if u.Type != want {
			return a.inEffect()
		}
		want = zoom.UserTypeBasic
	} else if u.Type == want {
		return a.inEffect()
	}
	return a.write(ctx, true,
		func() error {
			return a.call("PATCH /users/{userId}", http.StatusNoContent, func() error { return a.z.SetUserType(ctx, u.ID, want) })
		},
		func() (bool, error) {
			v, err := a.readUser(ctx, a.req.zoomUser)
			return v.Type == want, err
		}, "change the user's licence to "+clarity.License(want))
}

func (a *action) status(ctx context.Context, u zoom.User, act, want string) outcome {
	u.ID = cmp.Or(u.ID, a.req.zoomUser) // a pending user is named by email
	if u.Status == want {
		return a.inEffect()
	}
	return a.write(ctx, true,
		func() error {
			return a.call("PUT /users/{userId}/status", http.StatusOK, func() error { return a.z.SetUserStatus(ctx, u.ID, act) })
		},
		func() (bool, error) {
			v, err := a.readUser(ctx, a.req.zoomUser)
			return v.Status == want, err
		}, act+" the user")
}

func (a *action) remove(ctx context.Context) outcome {
	u, err := a.readUser(ctx, a.req.zoomUser)
	if errors.Is(err, zoom.ErrUserNotFound) && a.resumed {
		// This request's own removal, made before the worker stopped.
		a.refreshed()
		return a.succeeded()
	}
	if err != nil {
		return a.failed(ctx, err, "read the user")
	}
	var transfer string
	if a.req.TransferTo != "" {
		t, err := a.readUser(ctx, a.req.transferZoom)
		if err != nil {
			return a.failed(ctx, err, "read transfer_to")
		}
		if t.Status != zoom.UserStatusActive {
			return a.refused(fmt.Sprintf("transfer_to %s is %s: only an active user can receive the removed user's meetings and recordings", a.req.TransferTo, bound(t.Status, 32)))
		}
		transfer = t.Email
	}
	id := u.ID
	if a.req.pending || id == "" {
		id = a.req.zoomUser
	}
	if err := a.startWrite(); err != nil {
		return outcome{err: err}
	}
	if err := a.call("DELETE /users/{userId}", http.StatusNoContent, func() error { return a.z.DeleteUser(ctx, id, a.req.Mode, transfer) }); err != nil {
		// The client repeats a write whose answer was lost: a removal
		// made then answers 404 to its repeat. Zoom decides.
		if ctx.Err() == nil {
			if _, rerr := a.readUser(ctx, a.req.zoomUser); errors.Is(rerr, zoom.ErrUserNotFound) {
				a.refreshed()
				return a.succeeded()
			}
		}
		return a.failed(ctx, err, a.req.Mode+" the user")
	}
	_, err = a.readUser(ctx, a.req.zoomUser)
	switch {
	case errors.Is(err, zoom.ErrUserNotFound):
		a.refreshed()
		return a.succeeded()
	case err != nil:
		return a.failed(ctx, err, "read the user back")
	}
	return a.notShown("remove the user")
}

func (a *action) invite(ctx context.Context) outcome {
	// Anyone with the email in the account, pending or not, is in effect.
	err := a.call("GET /users/{userId}", http.StatusOK, func() error { _, err := a.z.GetUser(ctx, a.req.Email); return err })
	switch {
	case err == nil:
		if a.resumed {
			// This request's own invitation: its records are read.
			if _, err := a.readUser(ctx, a.req.zoomUser); err == nil {
				a.refreshed()
			}
			return a.succeeded()
		}
		return a.inEffect()
	case !errors.Is(err, zoom.ErrUserNotFound):
		return a.failed(ctx, err, "look the email up")
	}
	if err := a.startWrite(); err != nil {
		return outcome{err: err}
	}
	if err := a.call("POST /users", http.StatusCreated, func() error {
		_, err := a.z.CreateUser(ctx, zoom.CreateInvite, a.req.Email, a.req.inviteType)
		return err
	}); err != nil {
		// The client repeats a write whose answer was lost: an invitation
		// made then answers 409 to its repeat. Zoom decides.
		if ctx.Err() == nil {
			if _, rerr := a.readUser(ctx, a.req.zoomUser); rerr == nil {
				a.refreshed()
				return a.succeeded()
			}
		}
		return a.failed(ctx, err, "invite the user")
	}
	if _, err := a.readUser(ctx, a.req.zoomUser); err != nil {
		if errors.Is(err, zoom.ErrUserNotFound) {
			return a.notShown("invite the user")
		}
		return a.failed(ctx, err, "read the invited user back")
	}
	a.refreshed()
	return a.succeeded()
}

// write records that the write is due, makes it and reads back: succeeded
// only when Zoom shows the effect, also when the write answered an error. With refresh, the user as read back is
// published once the result is committed.
func (a *action) write(ctx context.Context, refresh bool, do func() error, shows func() (bool, error), what string) outcome {
	if err := a.startWrite(); err != nil {
		return outcome{err: err}
	}
	if err := do(); err != nil {
		// The client repeats a write whose answer was lost (a transport
		// error, a 5xx): the write made then may answer an error to its
		// repeat. What Zoom shows decides.
		if ctx.Err() == nil {
			if ok, rerr := shows(); rerr == nil && ok {
				if refresh {
					a.refreshed()
				}
				return a.succeeded()
			}
		}
		return a.failed(ctx, err, what)
	}
	ok, err := shows()
	if err != nil {
		return a.failed(ctx, err, "read back after trying to "+what)
	}
	if !ok {
		return a.notShown(what)
	}
	if refresh {
		a.refreshed()
	}
	return a.succeeded()
}

func (a *action) inEffect() outcome {
	if a.resumed {
		// The effect found is this request's own write, made before the
		// worker stopped: what it answers is that it succeeded.
		a.refreshed()
		return a.succeeded()
	}
	return a.result(clarity.ResultAlreadyInEffect, "", 0, 0)
}

func (a *action) succeeded() outcome { return a.result(clarity.ResultSucceeded, "", 0, 0) }

// refused fails a request that Zoom was not asked to carry out.
func (a *action) refused(msg string) outcome {
	return a.result(clarity.ResultFailed, msg, 0, 0)
}

// notShown fails a write that Zoom answered with success but does not show.
func (a *action) notShown(what string) outcome {
	// Zoom's answer to the write: the last call that was not a read.
	var last pipeline.ZoomCall
	for _, c := range a.calls {
		if !strings.HasPrefix(c.Call, "GET ") {
			last = c
		}
	}
	return a.result(clarity.ResultFailed, fmt.Sprintf(
		"Zoom answered success when asked to %s, but reading it back does not show the change: "+
			"nothing changed (for a licence, the account may have none left)", what), last.Status, last.Code)
}

// failed turns a Zoom error into the result, or into an outcome error when
// the worker is stopping.
func (a *action) failed(ctx context.Context, err error, what string) outcome {
	if ctx.Err() != nil {
		return outcome{err: fmt.Errorf("%w: %w", errStopped, ctx.Err())}
	}
	status, code := zoom.Answer(err)
	var msg string
	switch {
	case errors.Is(err, connector.ErrNotActive):
		msg = "could not " + what + ": " + err.Error()
	case errors.Is(err, zoom.ErrUserNotFound):
		msg = fmt.Sprintf("could not %s: no such user in this connector's Zoom account (Zoom: %s)", what, zoomSaid(err))
	case zoom.MissingScope(err):
		var api *zoom.APIError
		endpoint := ""
		if errors.As(err, &api) {
			endpoint = api.Endpoint
		}
		msg = fmt.Sprintf("could not %s: the connector's Zoom app lacks the %s scope (Zoom: %s); add it to the app and authorize it again",
			what, zoom.ScopeHint(endpoint), zoomSaid(err))
	case errors.Is(err, zoom.ErrRateLimited):
		msg = fmt.Sprintf("could not %s: Zoom kept answering 429 (rate limited) beyond the retries the account's pacing allows: %s", what, zoomSaid(err))
	case status != 0:
		msg = fmt.Sprintf("Zoom refused to %s: %s", what, zoomSaid(err))
	default:
		msg = fmt.Sprintf("could not %s: %v", what, err)
	}
	return a.result(clarity.ResultFailed, msg, status, code)
}

// zoomSaid is Zoom's answer in err: status, code and message.
func zoomSaid(err error) string {
	var api *zoom.APIError
	if errors.As(err, &api) {
		s := fmt.Sprintf("%d", api.StatusCode)
		if api.Code != 0 {
			s += fmt.Sprintf(" code %d", api.Code)
		}
		if api.Message != "" {
			s += " " + api.Message
		}
		return s
	}
	return err.Error()
}

func (a *action) result(result, msg string, status, code int) outcome {
	return outcome{result: clarity.ProvisionResult{
		RequestID: a.req.RequestID, Action: a.req.Action, Result: result,
		Error: bound(msg, maxError), ZoomStatus: status, ZoomCode: code,
	}}
}
