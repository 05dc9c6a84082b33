package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// provStack is a stack for provisioning tests, with or without Zoom's
// webhooks: with them, the simulator notifies each change at once, so that
// the notification races the result of the request that made the change.
type provStack struct {
	*devstack.Stack
	c    *collector
	acct *zoomtest.Account
	ref  pipeline.ConnectorRef
}

// startProvStack starts a provisioning stack without Zoom's webhooks.
func startProvStack(t *testing.T, org *zoomtest.Org, env map[string]string) *provStack {
	t.Helper()
	return startProv(t, org, false, env)
}

func startProv(t *testing.T, org *zoomtest.Org, webhooks bool, env map[string]string) *provStack {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"CONNECTOR_SECRETS_KEY": "k1:" + base64.StdEncoding.EncodeToString(raw), "OAUTH_REDIRECT_URL": redirectTemplate}
	for k, v := range env {
		all[k] = v
	}
	n := 0
	if webhooks {
		n = 1
	}
	s := startStackEnv(t, org, zoomtest.Options{}, map[string]int{"webhook": n}, all)
	if webhooks {
		s.Sim.SetWebhookURL(s.WebhookURL)
	}
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

// waitRecords waits for c's records to equal want, and reports how they
// differ when they do not.
func waitRecords(t *testing.T, c *collector, want map[string]json.RawMessage) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := diffRecords(c.snapshot(), want)
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records differ from Zoom's after 30s: %v", d[:min(5, len(d))])
		}
		time.Sleep(20 * time.Millisecond)
	}
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
// the real services, with Zoom's webhooks on: each time the effect in Zoom,
// the reply, the result event, the record change events that follow it
// (the webhook of the change waits for the result) and, for the same request
// again under a new id, already_in_effect with no write request; under the
// same id, the first result again.
func TestProvisioningActions(t *testing.T) {
	org := zoomtest.Generate(301, zoomtest.Size{Users: 60, Groups: 4, Roles: 5})
	p := startProv(t, org, true, nil)
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
			waitRecords(t, p.c, expected(p.Stack))
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
			switch {
			case strings.HasPrefix(st.name, "remove pending"):
				// The invitee is gone: the pending listing does not show
				// them (no Zoom answer names them).
				requireResult(t, res, again, clarity.ResultFailed, 0, 0)
			case strings.HasPrefix(st.name, "delete"):
				// The user is gone: there is no user to remove.
				requireResult(t, res, again, clarity.ResultFailed, 404, 1001)
			default:
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
	// zoomctl provision and provision log, as a person runs them.
	var out, errw strings.Builder
	code := cli.Main(context.Background(), []string{"provision", "--action", "deactivate_user", "--user", u0,
		"--request-id", "by-hand", "--requested-by", "alice", "--json", "--nats-url", p.NATSURL}, &out, &errw)
	var byHand clarity.ProvisionResult
	if err := json.Unmarshal([]byte(out.String()), &byHand); code != cli.ExitOK || err != nil ||
		byHand != (clarity.ProvisionResult{RequestID: "by-hand", Action: clarity.ActionDeactivateUser, Result: clarity.ResultSucceeded}) {
		t.Errorf("zoomctl provision: exit %d, %q %q", code, out.String(), errw.String())
	}
	out.Reset()
	code = cli.Main(context.Background(), []string{"provision", "--action", "deactivate_user", "--user", "NoSuchUser",
		"--nats-url", p.NATSURL}, &out, &errw)
	if code != cli.ExitFailed || !strings.Contains(out.String(), "failed") || !strings.Contains(out.String(), "zoom: 404 code 1001") {
		t.Errorf("zoomctl provision of an unknown user: exit %d, %q", code, out.String())
	}
	out.Reset()
	code = cli.Main(context.Background(), []string{"provision", "log", "--user", u0, "--since", "1h",
		"--database-url", p.Config().DatabaseURL}, &out, &errw)
	if code != cli.ExitOK || !strings.Contains(out.String(), "by-hand deactivate_user "+u0+": succeeded by alice") {
		t.Errorf("zoomctl provision log: exit %d, %q %q", code, out.String(), errw.String())
	}
	// The fetcher counts what it served.
	for _, proc := range p.Procs() {
		if proc.Name != "fetcher" {
			continue
		}
		m := scrapeMetrics(t, proc)
		if got := m.sum("zoom_provisioning_requests_total", `action="add_grant"`, `result="succeeded"`); got != 4 {
			t.Errorf("add_grant succeeded: %v, want 4", got)
		}
		if got := m.sum("zoom_provisioning_requests_total", `result="already_in_effect"`); got != 11 {
			t.Errorf("already_in_effect: %v, want 11", got)
		}
		if got := m.sum("zoom_provisioning_seconds_count"); got != float64(2*len(steps)+2) {
			t.Errorf("provisioning times: %v, want %d", got, 2*len(steps)+2)
		}
	}
}

// orgJSON is the account's organisation, to compare before and after.
func orgJSON(t *testing.T, a *zoomtest.Account) string {
	t.Helper()
	b, err := json.Marshal(a.Org())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestProvisioningFailures checks each failure the worker reports: the
// exact result, nothing changed in Zoom nor in the records; and a second
// connector on a second account, which a request for one never touches.
func TestProvisioningFailures(t *testing.T) {
	org := zoomtest.Generate(302, zoomtest.Size{Users: 40, Groups: 3, Roles: 4})
	owner, _ := org.Owner()
	users := pickUsers(t, org, 4)
	role := customRole(t, org)
	// The fourth user is an admin.
	adminUser := users[3]
	for i := range org.Users {
		if org.Users[i].ID == adminUser.ID {
			org.Users[i].RoleID = zoomtest.RoleAdmin
		}
	}
	p := startProvStack(t, org, nil)
	group := ""
	for _, g := range org.Groups {
		if !slices.Contains(users[0].GroupIDs, g.ID) {
			group = g.ID
		}
	}
	n := 0
	// fails sends req and checks the failure: result, Zoom's answer, an
	// error that says contains, the failed event, and that nothing changed.
	fails := func(t *testing.T, ref pipeline.ConnectorRef, req clarity.ProvisionRequest, status, code int, contains string) {
		t.Helper()
		n++
		req.RequestID = fmt.Sprintf("fail-%d", n)
		before := orgJSON(t, p.acct)
		mark := p.c.mark()
		res := p.send(t, ref, req)
		requireResult(t, res, req, clarity.ResultFailed, status, code)
		if !strings.Contains(res.Error, contains) {
			t.Errorf("error %q does not say %q", res.Error, contains)
		}
		if after := orgJSON(t, p.acct); after != before {
			t.Errorf("the account changed")
		}
		if ref != p.ref {
			return
		}
		_, ev := resultEvent(t, p.c, req.RequestID)
		if ev.Type != "clarity.provisioning.failed" {
			t.Errorf("result event %s, want clarity.provisioning.failed", ev.Type)
		}
		for _, e := range p.c.since(mark) {
			if !strings.HasPrefix(e.Type, "clarity.provisioning.") {
				t.Errorf("a failed request changed a record: %s %s", e.Type, e.Subject)
			}
		}
	}
	// webhook starts the webhook service once: the admin API that
	// registers connectors and the OAuth redirect are its.
	webhookUp := false
	webhook := func(t *testing.T) {
		t.Helper()
		if webhookUp {
			return
		}
		if _, err := p.Run("webhook"); err != nil {
			t.Fatal(err)
		}
		webhookUp = true
	}
	u := users[0].ID
	t.Run("owner's role", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: owner.ID, Entitlement: "role:" + role}, 400, 300, "Owner")
	})
	t.Run("owner cannot be deactivated", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: owner.ID}, 400, 200, "cannot be activated or deactivated")
	})
	t.Run("admin cannot be disassociated", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionRemoveUser, User: adminUser.ID}, 400, 1117, "Admin")
	})
	t.Run("unknown user", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: "NoSuchUser000", Entitlement: "group:" + group}, 404, 1001, "no such user")
	})
	t.Run("unknown group", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "group:NoSuchGroup"}, 404, 4130, "group")
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionRemoveGrant, User: u, Entitlement: "group:NoSuchGroup"}, 404, 4130, "group")
	})
	t.Run("unknown role", func(t *testing.T) {
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "role:999"}, 400, 1034, "role")
	})
	t.Run("no licence left", func(t *testing.T) {
		licensed := 0
		for _, x := range p.acct.Org().Users {
			if x.Type == zoomtest.TypeLicensed {
				licensed++
			}
		}
		p.acct.SetSeatLimit(&zoomtest.SeatLimit{Licensed: licensed})
		defer p.acct.SetSeatLimit(nil)
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "license:licensed"}, 400, zoomtest.CodeNoLicense, "licenses")
		// Zoom answering success to a change it does not make.
		p.acct.SetSeatLimit(&zoomtest.SeatLimit{Licensed: licensed, Silent: true})
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "license:licensed"}, 204, 0, "does not show")
	})
	t.Run("missing write scope", func(t *testing.T) {
		var scopes []string
		for _, s := range zoomtest.DefaultScopes {
			if s != "group:write:admin" {
				scopes = append(scopes, s)
			}
		}
		p.acct.SetScopes(scopes)
		p.acct.ExpireTokens()
		defer func() { p.acct.SetScopes(zoomtest.DefaultScopes); p.acct.ExpireTokens() }()
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "group:" + group}, 400, 4711, "group:write:admin")
	})
	t.Run("revoked credentials", func(t *testing.T) {
		p.acct.Faults().RevokeCredentials()
		p.acct.ExpireTokens()
		defer p.acct.Faults().RestoreCredentials()
		fails(t, p.ref, clarity.ProvisionRequest{Action: clarity.ActionAddGrant, User: u, Entitlement: "group:" + group}, 401, 4702, "invalid_client")
	})
	t.Run("unknown connector", func(t *testing.T) {
		other := pipeline.ConnectorRef{Tenant: p.ref.Tenant, ID: "nosuch"}
		co := collectRef(t, p.Stack, other)
		fails(t, other, clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: u}, 0, 0, "default/nosuch")
		// Its event all the same, with no sequence of a connector that
		// does not exist.
		_, ev := resultEvent(t, co, fmt.Sprintf("fail-%d", n))
		if ev.Type != "clarity.provisioning.failed" || ev.Sequence != "0" {
			t.Errorf("result event of an unknown connector: %s, sequence %s", ev.Type, ev.Sequence)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		ctx := context.Background()
		inbox := p.NC.NewRespInbox()
		sub, err := p.NC.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe() //nolint:errcheck
		before := orgJSON(t, p.acct)
		writes := p.acct.WriteRequests()
		long := strings.Repeat("x", 2000)
		for _, c := range []struct{ body, id, says string }{
			{`{not json`, "", "not a JSON object"},
			{`{"request_id":"b1","action":"promote_user","user":"` + u + `"}`, "b1", "unknown action"},
			{`{"request_id":"b2","action":"add_grant","user":"` + u + `","entitlement":"service_user:` + u + `"}`, "b2", "cannot be granted"},
			{`{"request_id":"b3","action":"add_grant","user":"` + u + `","entitlement":"group"}`, "b3", "not a group:"},
			{`{"request_id":"b4","action":"add_grant","user":"` + long + `","entitlement":"group:` + group + `"}`, "b4", "over the"},
			{`{"request_id":"` + long + `","action":"deactivate_user","user":"` + u + `"}`, "", "request_id is"},
			{`{"action":"deactivate_user","user":"` + u + `"}`, "", "request_id is required"},
			{`{"request_id":"b5","action":"invite_user","email":"not an email"}`, "b5", "plain address"},
			{`{"request_id":"b6","action":"remove_user","user":"` + u + `","mode":"shred"}`, "b6", "mode"},
			{`{"request_id":"b7","action":"deactivate_user","user":"a/b"}`, "b7", "not a user key"},
			{`{"request_id":"b8","action":"add_grant","user":"` + u + `","entitlement":"license:premium"}`, "b8", "license:basic"},
			{`{"request_id":"b9","action":"remove_grant","user":"` + u + `","entitlement":"license:basic"}`, "b9", "license:licensed"},
			{strings.Repeat(" ", 20000) + `{}`, "", "over the"},
		} {
			if err := cli.PublishProvision(ctx, p.JS, p.ref, []byte(c.body), inbox, nil); err != nil {
				t.Fatal(err)
			}
			m, err := sub.NextMsg(30 * time.Second)
			if err != nil {
				t.Fatalf("no reply to %.60q: %v", c.body, err)
			}
			var res clarity.ProvisionResult
			if err := json.Unmarshal(m.Data, &res); err != nil {
				t.Fatalf("reply to %.60q: %s", c.body, m.Data)
			}
			if res.Result != clarity.ResultFailed || res.ZoomStatus != 0 || res.ZoomCode != 0 || res.RequestID != c.id || !strings.Contains(res.Error, c.says) {
				t.Errorf("reply to %.60q: %+v, want failed with zoom_status 0 saying %q", c.body, res, c.says)
			}
		}
		if got := p.acct.WriteRequests() - writes; got != 0 {
			t.Errorf("bad requests made %d write requests", got)
		}
		if orgJSON(t, p.acct) != before {
			t.Errorf("the account changed")
		}
		// The worker goes on.
		res := p.send(t, p.ref, clarity.ProvisionRequest{RequestID: "after-bad", Action: clarity.ActionAddGrant, User: u, Entitlement: "group:" + group})
		if res.Result != clarity.ResultSucceeded {
			t.Fatalf("a good request after bad ones: %+v", res)
		}
		waitFor(t, 30*time.Second, func() bool { return len(diffRecords(p.c.snapshot(), expected(p.Stack))) == 0 })
	})
	t.Run("429 storm, expired token", func(t *testing.T) {
		u1 := users[1].ID
		p.acct.Faults().Add(zoomtest.Fault{Route: "POST /groups/{groupId}/members", Status: 429, Code: 429, Times: 3,
			Message: "You have reached the maximum per-second rate limit for this API. Try again later."})
		p.acct.ExpireTokens()
		res := p.send(t, p.ref, clarity.ProvisionRequest{RequestID: "storm", Action: clarity.ActionAddGrant, User: u1, Entitlement: "group:" + group})
		if res.Result != clarity.ResultSucceeded {
			t.Fatalf("through a 429 storm and an expired token: %+v", res)
		}
		if got, _ := user(p.acct, u1); !slices.Contains(got.GroupIDs, group) {
			t.Fatalf("succeeded, but Zoom does not show it")
		}
		// The faults answer before the account is known: the server counts them.
		if got := p.Sim.RequestsByStatus()["POST /groups/{groupId}/members 429"]; got != 3 {
			t.Errorf("429 answers: %d, want 3", got)
		}
		waitFor(t, 30*time.Second, func() bool { return len(diffRecords(p.c.snapshot(), expected(p.Stack))) == 0 })
	})
	t.Run("two connectors", func(t *testing.T) {
		other := pipeline.ConnectorRef{Tenant: "globex", ID: "zoom-eu"}
		acct, err := p.Sim.AddAccount("acc-globex", zoomtest.Generate(303, zoomtest.Size{Users: 30, Groups: 2, Roles: 3}), zoomtest.AccountOptions{})
		if err != nil {
			t.Fatal(err)
		}
		co := collectRef(t, p.Stack, other)
		webhook(t)
		var out, errw strings.Builder
		code := cli.Main(context.Background(), []string{"connector", "add", "--tenant", other.Tenant, "--connector", other.ID, "--auth", "s2s",
			"--client-id", acct.ClientID(), "--client-secret-file", secretFile(t, acct.ClientSecret()), "--account-id", acct.ID(),
			"--nats-url", p.NATSURL}, &out, &errw)
		if code != cli.ExitOK {
			t.Fatalf("connector add: %d %s", code, errw.String())
		}
		if op, d := co.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("first sync of %s: %s (%s)", other, op, d.Error)
		}
		mine := p.acct
		beforeMine, writesMine := orgJSON(t, mine), mine.TotalRequests()
		markMine := p.c.mark()
		// A user of the first account, asked of the second: not there.
		fails(t, other, clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: u}, 404, 1001, "no such user")
		// A user of the second account: changed there only.
		theirs := pickUsers(t, acct.Org(), 1)[0]
		res := p.send(t, other, clarity.ProvisionRequest{RequestID: "globex-1", Action: clarity.ActionDeactivateUser, User: theirs.ID})
		if res.Result != clarity.ResultSucceeded {
			t.Fatalf("request of %s: %+v", other, res)
		}
		if got, _ := user(acct, theirs.ID); got.Status != zoomtest.StatusInactive {
			t.Fatalf("the second account does not show the change")
		}
		resultEvent(t, co, "globex-1")
		waitFor(t, 30*time.Second, func() bool { return len(diffRecords(co.snapshot(), expectedOf(acct.Org()))) == 0 })
		if orgJSON(t, mine) != beforeMine || mine.TotalRequests() != writesMine {
			t.Errorf("requests of %s touched the first account (%d requests)", other, mine.TotalRequests()-writesMine)
		}
		if evs := p.c.since(markMine); len(evs) != 0 {
			t.Errorf("requests of %s made events of %s: %v", other, p.ref, evs[0].Type)
		}
	})
	t.Run("oauth connector: expired token, revoked grant, needs authorization", func(t *testing.T) {
		webhook(t)
		cs := &connectorStack{Stack: p.Stack}
		ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
		acct, app := cs.account(t, "acc-acme", ref, 305, 20)
		co := collectRef(t, p.Stack, ref)
		// Registered, not yet authorized: refused at once.
		v := cs.addOAuth(t, ref, app, app.ClientSecret())
		who := pickUsers(t, acct.Org(), 2)
		fails(t, ref, clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: who[0].ID}, 0, 0, "pending_authorization")
		if _, status, page := cs.browser(t, v.AuthorizeURL); status != 200 {
			t.Fatalf("authorization: %d %s", status, page)
		}
		if op, d := co.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("first sync of %s: %s (%s)", ref, op, d.Error)
		}
		// An expired access token is refreshed (and the refresh token
		// rotated) on the way.
		acct.ExpireTokens()
		if res := p.send(t, ref, clarity.ProvisionRequest{RequestID: "acme-1", Action: clarity.ActionDeactivateUser, User: who[0].ID}); res.Result != clarity.ResultSucceeded {
			t.Fatalf("with an expired token: %+v", res)
		}
		// Zoom revokes the grant: the request fails saying to authorize
		// again, and the connector needs it.
		app.RevokeGrants()
		before := orgJSON(t, acct)
		res := p.send(t, ref, clarity.ProvisionRequest{RequestID: "acme-2", Action: clarity.ActionDeactivateUser, User: who[1].ID})
		if res.Result != clarity.ResultFailed || !strings.Contains(res.Error, "authorize") {
			t.Fatalf("with a revoked grant: %+v, want failed saying to authorize again", res)
		}
		cs.waitState(t, ref, connector.StateNeedsReauthorization)
		fails(t, ref, clarity.ProvisionRequest{Action: clarity.ActionDeactivateUser, User: who[1].ID}, 0, 0, "needs_reauthorization")
		if orgJSON(t, acct) != before {
			t.Errorf("the account changed")
		}
	})
}

// TestProvisioningBurst sends 1,000 requests for 200 users at once to two
// fetcher replicas and kills the one serving them (SIGKILL) while they are
// served, the other taking over: every request is
// answered, its result event published once, no write is made twice, and
// Zoom's final state and the records are what the requests imply, in the
// order they were published.
func TestProvisioningBurst(t *testing.T) {
	org := zoomtest.Generate(304, zoomtest.Size{Users: 240, Groups: 4, Roles: 3})
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	// Pacing off: the simulator answers at once, and the test is about
	// order and crashes, not rates.
	s := startStackEnv(t, org, zoomtest.Options{}, map[string]int{"webhook": 0, "fetcher": 0},
		map[string]string{"ZOOM_PACING": "false", "CONNECTOR_SECRETS_KEY": "k1:" + base64.StdEncoding.EncodeToString(raw)})
	f, err := s.Run("fetcher")
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, s)
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	// A second replica: one serves provisioning at a time, the holder of
	// the lease; the other takes over when it dies.
	f2, err := s.Run("fetcher")
	if err != nil {
		t.Fatal(err)
	}
	acct := s.Sim.DefaultAccount()
	ref := s.Config().Connector
	var users []zoomtest.User
	for _, u := range org.Users {
		if u.ID != "" && u.Status != zoomtest.StatusPending && len(users) < 200 {
			users = append(users, u)
		}
	}
	if len(users) < 200 {
		t.Fatalf("%d users with an id, want 200", len(users))
	}
	groups := []string{org.Groups[0].ID, org.Groups[1].ID}
	// What the requests imply: each user's membership of the two groups,
	// from the start, applied in publish order.
	member := map[string]bool{}
	for _, u := range users {
		for _, g := range groups {
			member[u.ID+"|"+g] = slices.Contains(u.GroupIDs, g)
		}
	}
	type sent struct {
		req    clarity.ProvisionRequest
		effect bool // the request changes Zoom
	}
	var reqs []sent
	for i := range 1000 {
		u := users[(i*7+i/200)%200]
		g := groups[(i/3)%2]
		add := (i*31+i/7)%3 != 0
		action := clarity.ActionRemoveGrant
		if add {
			action = clarity.ActionAddGrant
		}
		k := u.ID + "|" + g
		reqs = append(reqs, sent{
			req:    clarity.ProvisionRequest{RequestID: fmt.Sprintf("burst-%04d", i), Action: action, User: u.ID, Entitlement: "group:" + g},
			effect: member[k] != add,
		})
		member[k] = add
	}
	wantWrites := 0
	for _, r := range reqs {
		if r.effect {
			wantWrites++
		}
	}
	inbox := s.NC.NewRespInbox()
	replies := make(chan clarity.ProvisionResult, 4096)
	sub, err := s.NC.Subscribe(inbox, func(m *nats.Msg) {
		var r clarity.ProvisionResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Errorf("reply not JSON: %s", m.Data)
			return
		}
		replies <- r
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	// Writes take a moment, so that many are under way when the fetcher
	// is killed.
	for _, route := range []string{"POST /groups/{groupId}/members", "DELETE /groups/{groupId}/members/{memberId}"} {
		acct.Faults().Add(zoomtest.Fault{Route: route, Latency: 20 * time.Millisecond})
	}
	writes := acct.WriteRequests()
	ctx := context.Background()
	for _, r := range reqs {
		body, _ := json.Marshal(r.req)
		if err := cli.PublishProvision(ctx, s.JS, ref, body, inbox, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]clarity.ProvisionResult{}
	killed := false
	deadline := time.After(3 * time.Minute)
	for len(got) < len(reqs) {
		select {
		case r := <-replies:
			got[r.RequestID] = append(got[r.RequestID], r)
		case <-deadline:
			t.Fatalf("%d of %d requests answered within 3 minutes", len(got), len(reqs))
		}
		if !killed && len(got) >= 300 {
			killed = true
			holder := f
			if b, _ := os.ReadFile(f.LogPath()); !strings.Contains(string(b), "provisioning lease taken") {
				holder = f2
			}
			holder.Kill()
			t.Logf("the serving fetcher killed after %d answers", len(got))
			if _, err = s.Run("fetcher"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !killed {
		t.Fatal("the fetcher was not killed")
	}
	// Late repeats of a reply (a reply sent just before the kill, whose
	// sending was not yet recorded) come within a moment.
	time.Sleep(500 * time.Millisecond)
	for len(replies) > 0 {
		r := <-replies
		got[r.RequestID] = append(got[r.RequestID], r)
	}
	repeats := 0
	succeeded := 0
	for _, r := range reqs {
		rs := got[r.req.RequestID]
		for _, x := range rs[1:] {
			repeats++
			if x != rs[0] {
				t.Errorf("request %s answered %+v, then %+v", r.req.RequestID, rs[0], x)
			}
		}
		want := clarity.ResultAlreadyInEffect
		if r.effect {
			want = clarity.ResultSucceeded
			succeeded++
		}
		if rs[0].Result != want {
			t.Errorf("request %s (%s %s): %+v, want %s", r.req.RequestID, r.req.Action, r.req.Entitlement, rs[0], want)
		}
	}
	resumed := 0
	logs, _ := filepath.Glob(filepath.Join(s.Config().Dir, "logs", "fetcher*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		resumed += strings.Count(string(b), "taken up again")
	}
	t.Logf("%d requests, %d succeeded, %d replies repeated after the kill, %d taken up again after their write's mark",
		len(reqs), succeeded, repeats, resumed)
	// No request ran twice: one write per request that changed Zoom.
	if n := acct.WriteRequests() - writes; n != wantWrites {
		t.Errorf("write requests: %d, want %d (one per request with an effect)", n, wantWrites)
	}
	// Zoom's state is what the requests imply, in publish order.
	for _, u := range users {
		zu, _ := user(acct, u.ID)
		for _, g := range groups {
			if slices.Contains(zu.GroupIDs, g) != member[u.ID+"|"+g] {
				t.Errorf("user %s in group %s: %t, want %t", u.ID, g, !member[u.ID+"|"+g], member[u.ID+"|"+g])
			}
		}
	}
	// One result event per request, and records equal to Zoom's.
	waitFor(t, time.Minute, func() bool {
		for _, r := range reqs {
			if resultEvents(c, r.req.RequestID) == 0 {
				return false
			}
		}
		return true
	})
	for _, r := range reqs {
		if n := resultEvents(c, r.req.RequestID); n != 1 {
			t.Errorf("request %s: %d result events, want 1", r.req.RequestID, n)
		}
	}
	waitFor(t, time.Minute, func() bool { return len(diffRecords(c.snapshot(), expected(s))) == 0 })
	requireSame(t, "snapshot after the burst", snapshot(t, s), expected(s))
	if dup := c.duplicates(); len(dup) > 0 {
		t.Errorf("event ids delivered more than once: %v", dup[:min(10, len(dup))])
	}
}
