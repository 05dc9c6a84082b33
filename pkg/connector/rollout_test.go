package connector

import (
	"context"
	"testing"
	"time"
)

// Rolling out a new key: replica A restarted with "k2,k1", replica B still
// has "k1". A refreshes (tokens sealed under k2); B cannot open them, and
// must leave them for a replica that can rather than ask for a new
// authorization.
func TestKeyRolloutKeepsTheTokens(t *testing.T) {
	f := newFlow(t, 4*time.Second)
	oldRing := f.keys
	newRing, err := ParseKeyring(newKey(t, "k2") + "," + "k1:" + b64(oldRing.keys[0].raw))
	if err != nil {
		t.Fatal(err)
	}
	f.authorize(t)
	ctx := context.Background()
	time.Sleep(3200 * time.Millisecond) // into the last quarter of the token's life
	a := f.reg.TokenSource(newRing, f.auth, f.ref, "replica-A")
	if _, _, err := a.Access(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := f.reg.Get(ctx, f.ref)
	t.Logf("after A's refresh: access sealed under %s", e.Tokens.Access.KeyID())
	b := f.reg.TokenSource(oldRing, f.auth, f.ref, "replica-B")
	_, _, err = b.Access(ctx)
	e, _ = f.reg.Get(ctx, f.ref)
	t.Logf("B: err=%v; state=%s reason=%q", err, e.State, e.Reason)
	if e.State != StateActive {
		t.Errorf("a key rollout left the connector %s", e.State)
	}
}
