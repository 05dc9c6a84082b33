package provision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestRequestIDRunsOnce sends one request id twice, naming other users, so
// that the two land in different queues and the second arrives while the
// first is writing: only the first runs, and both answer its result.
func TestRequestIDRunsOnce(t *testing.T) {
	h := newHarness(t, time.Minute)
	gid := h.org.Groups[0].ID
	u1 := h.activeUser(t, gid)
	u2 := h.activeUser(t, gid, u1.ID)
	// The first write takes a while: the second request comes meanwhile.
	h.sim.Faults().Add(zoomtest.Fault{Route: "POST /groups/{groupId}/members", Latency: 2 * time.Second, Times: 1})
	sub, err := h.nc.SubscribeSync("replies.dup")
	if err != nil {
		t.Fatal(err)
	}
	h.request(t, clarity.ProvisionRequest{RequestID: "r-dup", Action: clarity.ActionAddGrant, User: u1.ID, Entitlement: "group:" + gid}, "replies.dup")
	h.request(t, clarity.ProvisionRequest{RequestID: "r-dup", Action: clarity.ActionAddGrant, User: u2.ID, Entitlement: "group:" + gid}, "replies.dup")
	h.run(t)
	got := results(t, sub, 2)
	for _, r := range got {
		if r != got[0] || r.RequestID != "r-dup" || r.Result == "" {
			t.Fatalf("results %+v: want the first result twice", got)
		}
	}
	in1, in2 := h.inGroup(t, u1.ID, gid), h.inGroup(t, u2.ID, gid)
	if in1 == in2 {
		t.Fatalf("u1 in group %v, u2 in group %v: want exactly one of the two requests run (result %+v)", in1, in2, got[0])
	}
}

// TestMarkNamesRequest: the mark a write makes names its request, so that
// only that request's result lifts it (no writer runs here: the marks stay).
func TestMarkNamesRequest(t *testing.T) {
	h := newHarness(t, time.Minute)
	gid := h.org.Groups[0].ID
	u := h.activeUser(t, gid)
	sub, err := h.nc.SubscribeSync("replies.mark")
	if err != nil {
		t.Fatal(err)
	}
	h.request(t, clarity.ProvisionRequest{RequestID: "r-mark", Action: clarity.ActionAddGrant, User: u.ID, Entitlement: "group:" + gid}, "replies.mark")
	h.run(t)
	if r := results(t, sub, 1)[0]; r.Result != clarity.ResultSucceeded {
		t.Fatalf("result %+v", r)
	}
	for _, who := range []string{u.ID, strings.ToLower(u.Email)} {
		e, err := h.w.holds.kv.Get(context.Background(), pipeline.ProvisionHoldKey(testConnector, who))
		if err != nil || string(e.Value()) != "r-mark" {
			t.Fatalf("mark of %s: %v, %v; want one naming r-mark", who, e, err)
		}
	}
}
