package provision

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
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

// TestLostLeaseCutsJobsShort: when another replica takes the lease while a
// write is under way, the write is cut short at once rather than after the
// stop's grace, and the request is left for the new holder.
func TestLostLeaseCutsJobsShort(t *testing.T) {
	h := newHarness(t, time.Hour)
	gid := h.org.Groups[0].ID
	u := h.activeUser(t, gid)
	// The write takes 10 s: cut short, the request is left unanswered;
	// left to run, it is answered once Zoom answers.
	h.sim.Faults().Add(zoomtest.Fault{Route: "POST /groups/{groupId}/members", Latency: 10 * time.Second})
	h.request(t, clarity.ProvisionRequest{RequestID: "r-lease", Action: clarity.ActionAddGrant, User: u.ID, Entitlement: "group:" + gid}, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	var once sync.Once
	go func() {
		_ = h.w.lease.hold(ctx, func(held context.Context) error {
			defer once.Do(func() { close(served) })
			return h.w.serve(held)
		})
	}()
	key := pipeline.ProvisionKey(testConnector, "r-lease")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if p, _, _, err := h.w.ledger.get(ctx, key); err == nil && p.State == stateWriting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request's write never began")
		}
	}
	// Another replica takes the lease.
	if _, err := h.w.lease.kv.Put(ctx, leaseKey, []byte("other")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(time.Minute):
		t.Fatal("the write went on a minute after the lease was lost (the stop's grace is an hour)")
	}
	if p, _, _, err := h.w.ledger.get(ctx, key); err != nil || p.State != stateWriting {
		t.Fatalf("ledger after the lease was lost: %+v, %v; want the request left writing for the next holder", p, err)
	}
	if msgs := natstest.StreamMsgs(t, h.js, pipeline.StreamProvision); len(msgs) != 1 {
		t.Fatalf("%d requests in the stream; want the request kept", len(msgs))
	}
}

// TestDeleteServedTwice: deleting a served request that is gone already
// (deleted by an earlier try, or never stored again) is not an error.
func TestDeleteServedTwice(t *testing.T) {
	h := newHarness(t, time.Minute)
	ctx := context.Background()
	h.request(t, clarity.ProvisionRequest{RequestID: "r-del", Action: clarity.ActionDeactivateUser, User: "u1"}, "")
	stream, err := h.js.Stream(ctx, pipeline.StreamProvision)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := h.w.delete(ctx, stream, 1); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	// Any other failure of a delete is one.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.w.delete(cctx, stream, 1); err == nil {
		t.Fatal("a delete that could not be sent: no error")
	}
}
