package provision

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("a", MaxKey+1)
	for _, c := range []struct {
		body, err string
		check     func(r request) bool
	}{
		{body: `{"request_id":"r1","action":"add_grant","user":"abc_D-1","entitlement":"group:g1"}`,
			check: func(r request) bool {
				return r.grant == grant{kind: "group", id: "g1"} && r.zoomUser == "abc_D-1" && !r.pending
			}},
		{body: `{"request_id":"r1","action":"remove_grant","user":"pending:Ann@Example.com","entitlement":"license:unassigned"}`,
			check: func(r request) bool {
				return r.grant.typ == zoom.UserTypeUnassigned && r.zoomUser == "Ann@Example.com" && r.pending
			}},
		{body: `{"request_id":"r1","action":"remove_user","user":"u1","transfer_to":"u2"}`,
			check: func(r request) bool { return r.Mode == clarity.RemoveDisassociate && r.transferZoom == "u2" }},
		{body: `{"request_id":"r1","action":"invite_user","email":"new@example.com","license":"licensed"}`,
			check: func(r request) bool {
				return r.inviteType == zoom.UserTypeLicensed && r.User == "pending:new@example.com" && r.pending
			}},
		{body: `{"request_id":"r1","action":"invite_user","email":"new@example.com"}`,
			check: func(r request) bool { return r.inviteType == zoom.UserTypeBasic }},
		{body: `[1,2]`, err: "not a JSON object"},
		{body: `{"request_id":"r1"} {"request_id":"r2"}`, err: "more than one JSON value"},
		{body: `{"action":"deactivate_user","user":"u1"}`, err: "request_id is required"},
		{body: `{"request_id":"r\n1","action":"deactivate_user","user":"u1"}`, err: "control characters"},
		{body: `{"request_id":"r1","action":"nuke","user":"u1"}`, err: "unknown action"},
		{body: `{"request_id":"r1","action":"\u0000","user":"u1"}`, err: "action holds control characters"},
		{body: `{"request_id":"r1","action":"deactivate_user\u0000","user":"u1"}`, err: "action holds control characters"},
		{body: `{"request_id":"r1","action":"deactivate_user"}`, err: "needs user"},
		{body: `{"request_id":"r1","action":"deactivate_user","user":"` + long + `"}`, err: "over the"},
		{body: `{"request_id":"r1","action":"deactivate_user","user":"../admin"}`, err: "not a user key"},
		{body: `{"request_id":"r1","action":"add_grant","user":"u1","entitlement":"role"}`, err: "not a group:"},
		{body: `{"request_id":"r1","action":"add_grant","user":"u1","entitlement":"user:u1"}`, err: "cannot be granted"},
		{body: `{"request_id":"r1","action":"add_grant","user":"u1","entitlement":"group:a/b"}`, err: "names no Zoom id"},
		{body: `{"request_id":"r1","action":"add_grant","user":"u1","entitlement":"license:type:3"}`, err: "license:basic"},
		{body: `{"request_id":"r1","action":"remove_user","user":"u1","mode":"wipe"}`, err: "mode"},
		{body: `{"request_id":"r1","action":"remove_user","user":"u1","transfer_to":"u1"}`, err: "the user being removed"},
		{body: `{"request_id":"r1","action":"remove_user","user":"u1","transfer_to":"pending:a@b.c"}`, err: "pending user"},
		{body: `{"request_id":"r1","action":"invite_user","email":"Ann <ann@example.com>"}`, err: "plain address"},
		{body: `{"request_id":"r1","action":"invite_user","email":"ann@example.com","user":"bob"}`, err: "pending:<email>"},
		{body: `{"request_id":"r1","action":"invite_user","email":"ann@example.com","license":"gold"}`, err: "license"},
		{body: strings.Repeat(" ", MaxRequestBytes) + "{}", err: "over the"},
	} {
		r, err := parseRequest([]byte(c.body))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%.80s: %v", c.body, err)
		case c.err == "" && !c.check(r):
			t.Errorf("%.80s: parsed as %+v", c.body, r)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%.80s: error %v, want one saying %q", c.body, err, c.err)
		case c.err != "" && checkText("action", r.Action, 40) != nil:
			t.Errorf("%.80s: the result would repeat action %q", c.body, r.Action)
		case c.err != "" && len(r.RequestID) > MaxRequestID:
			t.Errorf("%.80s: the result would repeat a request id of %d bytes", c.body, len(r.RequestID))
		}
	}
}

func TestReplyTo(t *testing.T) {
	for subject, ok := range map[string]bool{
		"":                            true,
		"_INBOX.abc.def":              true,
		"clarity.replies.r-1":         true,
		"a b":                         false,
		"clarity.>":                   false,
		"clarity.*.x":                 false,
		"zoom.sync.default.other":     false,
		"zoom.provision.default.zoom": false,
		"clarity.entitlements.default.zoom.provisioning": false,
		"$JS.API.STREAM.DELETE.ZOOM_PROVISION":           false,
		"_INBOX.a\x00b":                                  false,
		"x..y":                                           false,
		strings.Repeat("a", 300):                         false,
	} {
		h := nats.Header{}
		if subject != "" {
			h.Set(clarity.ReplyToHeader, subject)
		}
		got, err := replyTo(h)
		if (err == nil) != ok || (ok && got != subject) {
			t.Errorf("reply to %.40q: %q, %v", subject, got, err)
		}
	}
}

func TestRequestedBy(t *testing.T) {
	h := nats.Header{}
	h.Set("Clarity-Requested-By", strings.Repeat("x", 1000))
	h.Set(clarity.ReplyToHeader, "_INBOX.1")
	h.Set("Authorization", "Bearer secret")
	h.Set("Nats-Msg-Id", "m1")
	h.Set("Clarity-Tenant-User", "bob\x00\x01\x7f\xff")
	got := requestedBy(h)
	if len(got) != 3 || len(got["Clarity-Requested-By"]) > maxHeaderValue+len("…") || got["Nats-Msg-Id"] != "m1" ||
		got["Clarity-Tenant-User"] != "bob?" {
		t.Fatalf("requestedBy: %q", got)
	}
}

// TestUserQueues runs one key's jobs in order, one at a time, while
// another key's jobs go on.
func TestUserQueues(t *testing.T) {
	q := newUserQueues(4)
	var mu sync.Mutex
	order := map[string][]int{}
	running := map[string]int{}
	blockA := make(chan struct{})
	for i := range 50 {
		for _, k := range []string{"a", "b"} {
			q.submit(k, func() {
				mu.Lock()
				running[k]++
				if running[k] > 1 {
					t.Errorf("two jobs of %s at once", k)
				}
				mu.Unlock()
				if k == "a" && i == 0 {
					<-blockA
				}
				mu.Lock()
				order[k] = append(order[k], i)
				running[k]--
				mu.Unlock()
			})
		}
	}
	// b's jobs all run while a's first one is held.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(order["b"])
		mu.Unlock()
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b ran %d of 50 jobs while a was held", n)
		}
		time.Sleep(time.Millisecond)
	}
	close(blockA)
	q.wait()
	for _, k := range []string{"a", "b"} {
		for i, v := range order[k] {
			if i != v {
				t.Fatalf("%s ran %v, want in order", k, order[k])
			}
		}
	}
}
