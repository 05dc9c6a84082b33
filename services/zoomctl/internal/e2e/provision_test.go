package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// provStack is a stack for provisioning tests: no webhook service, so that
// the only record changes an action causes are the ones its worker has
// read again from Zoom (a webhook could bring them ahead of the result).
type provStack struct {
	*devstack.Stack
	c    *collector
	acct *zoomtest.Account
	ref  pipeline.ConnectorRef
}

func startProvStack(t *testing.T, org *zoomtest.Org, env map[string]string) *provStack {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"CONNECTOR_SECRETS_KEY": "k1:" + base64.StdEncoding.EncodeToString(raw)}
	for k, v := range env {
		all[k] = v
	}
	s := startStackEnv(t, org, zoomtest.Options{}, map[string]int{"webhook": 0}, all)
	p := &provStack{Stack: s, c: collect(t, s), acct: s.Sim.DefaultAccount(), ref: s.Config().Connector}
	if op, d := sync1(t, s, p.c); op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	return p
}

// send sends one request to ref and returns its reply.
func (p *provStack) send(t *testing.T, ref pipeline.ConnectorRef, req clarity.ProvisionRequest) clarity.ProvisionResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := cli.Provision(ctx, p.NC, p.JS, ref, req, map[string]string{cli.RequestedByHeader: "e2e@clarity.test"})
	if err != nil {
		t.Fatalf("request %s: %v", req.RequestID, err)
	}
	return res
}

// resultEvent waits for the result event of requestID among c's events and
// returns its index and the event.
func resultEvent(t *testing.T, c *collector, requestID string) (int, clarity.Event) {
	t.Helper()
	var idx int
	var ev clarity.Event
	waitFor(t, 30*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, e := range c.events {
			if strings.HasPrefix(e.Type, "clarity.provisioning.") && e.Subject == requestID {
				idx, ev = i, e
				return true
			}
		}
		return false
	})
	return idx, ev
}

// resultEvents counts the result events of requestID.
func resultEvents(c *collector, requestID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if strings.HasPrefix(e.Type, "clarity.provisioning.") && e.Subject == requestID {
			n++
		}
	}
	return n
}

// requireResult checks a reply against the result wanted.
func requireResult(t *testing.T, got clarity.ProvisionResult, req clarity.ProvisionRequest, result string, status, code int) {
	t.Helper()
	if got.RequestID != req.RequestID || got.Action != req.Action || got.Result != result || got.ZoomStatus != status || got.ZoomCode != code {
		t.Fatalf("request %s %s: got %+v, want %s with zoom %d/%d", req.RequestID, req.Action, got, result, status, code)
	}
	if result == clarity.ResultFailed && got.Error == "" {
		t.Fatalf("request %s: failed without an error message", req.RequestID)
	}
	if result != clarity.ResultFailed && got.Error != "" {
		t.Fatalf("request %s: %s with error %q", req.RequestID, result, got.Error)
	}
}

// user returns the account's user with id or email key.
func user(acct *zoomtest.Account, key string) (zoomtest.User, bool) {
	for _, u := range acct.Org().Users {
		if u.ID == key || strings.EqualFold(u.Email, key) {
			return u, true
		}
	}
	return zoomtest.User{}, false
}

// pickUsers returns n active users with the Member role and a Basic
// licence, in the org's order, skipping those in skip.
func pickUsers(t *testing.T, org *zoomtest.Org, n int) []zoomtest.User {
	t.Helper()
	var out []zoomtest.User
	for _, u := range org.Users {
		if u.Status == zoomtest.StatusActive && u.RoleID == zoomtest.RoleMember && u.Type == zoomtest.TypeBasic && u.ID != "" {
			out = append(out, u)
			if len(out) == n {
				return out
			}
		}
	}
	t.Fatalf("the org has %d active Basic members, want %d", len(out), n)
	return nil
}

func customRole(t *testing.T, org *zoomtest.Org) string {
	t.Helper()
	for _, r := range org.Roles {
		if r.ID != zoomtest.RoleOwner && r.ID != zoomtest.RoleAdmin && r.ID != zoomtest.RoleMember {
			return r.ID
		}
	}
	t.Fatal("the org has no custom role")
	return ""
}

// TestProvisioningActions runs every action against the simulator through
// the real services: each time the effect in Zoom, the reply, the result
// event, the record change events that follow it and, for the same request
// again under a new id, already_in_effect with no write request; under the
// same id, the first result again.
func TestProvisioningActions(t *testing.T) {
	org := zoomtest.Generate(301, zoomtest.Size{Users: 60, Groups: 4, Roles: 5})
	p := startProvStack(t, org, nil)
	users := pickUsers(t, org, 6)
	group := ""
	for _, g := range org.Groups {
		if !slices.Contains(users[0].GroupIDs, g.ID) {
			group = g.ID
			break
		}
	}
	if group == "" {
		t.Fatal("the first user is in every group")
	}
	role := customRole(t, org)
	invited := "new.hire." + strconv.Itoa(int(time.Now().UnixNano()%1e6)) + "@example.com"

	type step struct {
		name  string
		req   clarity.ProvisionRequest
		key   string // the user key whose records change
		shows func(acct *zoomtest.Account) bool
	}
	in := func(id string, f func(u zoomtest.User) bool) func(*zoomtest.Account) bool {
		return func(a *zoomtest.Account) bool { u, ok := user(a, id); return ok && f(u) }
	}
	admin := func(id string, want bool) func(*zoomtest.Account) bool {
		return func(a *zoomtest.Account) bool {
			u, _ := user(a, id)
			for _, g := range a.Org().Groups {
				if g.ID == group {
					return slices.ContainsFunc(g.Admins, func(x zoomtest.GroupAdmin) bool { return strings.EqualFold(x.Email, u.Email) }) == want
				}
			}
			return false
		}
	}
	u0, u1, u2, u3, u4, u5 := users[0].ID, users[1].ID, users[2].ID, users[3].ID, users[4].ID, users[5].ID
	steps := []step{
		{"add group", clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u0, Entitlement: "group:" + group}, u0,
			in(u0, func(u zoomtest.User) bool { return slices.Contains(u.GroupIDs, group) })},
		{"remove group", clarity.ProvisionRequest{Action: clarity.ActionRemoveGrant, User: u0, Entitlement: "group:" + group}, u0,
			in(u0, func(u zoomtest.User) bool { return !slices.Contains(u.GroupIDs, group) })},
		{"add group admin", clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u1, Entitlement: "group_admin:" + group}, u1,
			admin(u1, true)},
		{"remove group admin", clarity.ProvisionRequest{Action: clarity.ActionRemoveGrant, User: u1, Entitlement: "group_admin:" + group}, u1,
			admin(u1, false)},
		{"add role", clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u2, Entitlement: "role:" + role}, u2,
			in(u2, func(u zoomtest.User) bool { return u.RoleID == role })},
		{"remove role gives Member", clarity.ProvisionRequest{Action: clarity.ActionRemoveGrant, User: u2, Entitlement: "role:" + role}, u2,
			in(u2, func(u zoomtest.User) bool { return u.RoleID == zoomtest.RoleMember })},
		{"add licence", clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u3, Entitlement: "license:licensed"}, u3,
			in(u3, func(u zoomtest.User) bool { return u.Type == zoomtest.TypeLicensed })},
		{"remove licence makes basic", clarity.ProvisionRequest{Action: clarity.ActionRemoveGrant, User: u3, Entitlement: "license:licensed"}, u3,
			in(u3, func(u zoomtest.User) bool { return u.Type == zoomtest.TypeBasic })},
		{"deactivate", clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: u4}, u4,
			in(u4, func(u zoomtest.User) bool { return u.Status == zoomtest.StatusInactive })},
		{"activate", clarity.ProvisionRequest{Action: clarity.ActionActivateUser, User: u4}, u4,
			in(u4, func(u zoomtest.User) bool { return u.Status == zoomtest.StatusActive })},
		{"invite", clarity.ProvisionRequest{Action: clarity.ActionInviteUser, Email: invited, License: "licensed"}, "pending:" + invited,
			in(invited, func(u zoomtest.User) bool {
				return u.Status == zoomtest.StatusPending && u.Type == zoomtest.TypeLicensed
			})},
		{"remove pending", clarity.ProvisionRequest{Action: clarity.ActionRemoveUser, User: "pending:" + invited}, "pending:" + invited,
			func(a *zoomtest.Account) bool { _, ok := user(a, invited); return !ok }},
		{"delete with transfer", clarity.ProvisionRequest{Action: clarity.ActionRemoveUser, User: u5, Mode: clarity.RemoveDelete, TransferTo: u0}, u5,
			func(a *zoomtest.Account) bool { _, ok := user(a, u5); return !ok }},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			req := st.req
			req.RequestID = fmt.Sprintf("act-%d", i)
			if st.shows(p.acct) {
				t.Fatalf("the effect is in place before the request")
			}
			mark := p.c.mark()
			writes := p.acct.WriteRequests()
			res := p.send(t, p.ref, req)
			requireResult(t, res, req, clarity.ResultSucceeded, 0, 0)
			if !st.shows(p.acct) {
				t.Fatalf("succeeded, but Zoom does not show the effect")
			}
			if got := p.acct.WriteRequests() - writes; got != 1 {
				t.Errorf("write requests: got %d, want 1", got)
			}
			idx, ev := resultEvent(t, p.c, req.RequestID)
			var data clarity.ProvisionResult
			if err := json.Unmarshal(ev.Data, &data); err != nil || data != res {
				t.Fatalf("result event data %s (%v), want the reply %+v", ev.Data, err, res)
			}
			if ev.Type != "clarity.provisioning.succeeded" || idx < mark {
				t.Fatalf("result event %s at %d, want clarity.provisioning.succeeded after %d", ev.Type, idx, mark)
			}
			if seq, err := strconv.ParseInt(ev.Sequence, 10, 64); err != nil || seq <= 0 {
				t.Fatalf("result event sequence %q", ev.Sequence)
			}
			// The records follow Zoom, and the events of the user's records
			// come after the result's.
			waitFor(t, 30*time.Second, func() bool { return len(diffRecords(p.c.snapshot(), expected(p.Stack))) == 0 })
			changed := 0
			for j, e := range p.c.since(mark) {
				if e.Subject == st.key || strings.HasPrefix(e.Subject, st.key+"|") {
					changed++
					if mark+j < idx {
						t.Errorf("change event %s %s (at %d) before the result event (at %d)", e.Type, e.Subject, mark+j, idx)
					}
				}
			}
			if changed == 0 {
				t.Errorf("no change event of %s's records after the result", st.key)
			}
			requireSame(t, "snapshot", snapshot(t, p.Stack), expected(p.Stack))

			// The same request under a new id: in effect, no write.
			again := req
			again.RequestID = req.RequestID + "-again"
			writes = p.acct.WriteRequests()
			res = p.send(t, p.ref, again)
			if strings.HasPrefix(st.name, "remove pending") || strings.HasPrefix(st.name, "delete") {
				// The user is gone: there is no user to remove.
				requireResult(t, res, again, clarity.ResultFailed, 404, 1001)
			} else {
				requireResult(t, res, again, clarity.ResultAlreadyInEffect, 0, 0)
			}
			if got := p.acct.WriteRequests() - writes; got != 0 {
				t.Errorf("write requests for a request in effect: %d, want 0", got)
			}
			// The same request id: the first result, nothing run.
			reads := p.acct.TotalRequests()
			if res := p.send(t, p.ref, req); res.Result != clarity.ResultSucceeded || res.RequestID != req.RequestID {
				t.Errorf("request id again: got %+v, want the first result", res)
			}
			if got := p.acct.TotalRequests() - reads; got != 0 {
				t.Errorf("a repeated request id made %d Zoom requests, want 0", got)
			}
			if n := resultEvents(p.c, req.RequestID); n != 1 {
				t.Errorf("%d result events of %s, want 1", n, req.RequestID)
			}
		})
	}
	// The audit holds every request, with who asked and each Zoom call.
	entries, err := cli.ProvisionLog(context.Background(), p.Config().DatabaseURL, cli.AuditFilter{Tenant: p.ref.Tenant, Connector: p.ref.ID, User: u0})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 4 {
		t.Fatalf("audit of %s: %d entries, want at least 4: %+v", u0, len(entries), entries)
	}
	first := entries[0]
	if first.RequestID != "act-0" || first.Result != clarity.ResultSucceeded || first.RequestedBy[cli.RequestedByHeader] != "e2e@clarity.test" ||
		len(first.Calls) != 3 || first.Calls[1].Call != "POST /groups/{groupId}/members" || first.Calls[1].Status != 201 {
		t.Errorf("audit entry of act-0: %+v", first)
	}
	if dup := p.c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup)
	}
}
