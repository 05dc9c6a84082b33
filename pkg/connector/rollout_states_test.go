package connector

import (
	"context"
	"errors"
	"testing"
	"time"
)

// After a new key is put first (rolling restart), states issued under the
// old current key, and secrets sealed to the old transport key, no longer open.
func TestKeyRolloutKeepsStatesAndTransport(t *testing.T) {
	f := newFlow(t, time.Hour)
	ctx := context.Background()
	e, _ := f.reg.Get(ctx, f.ref)
	u, _ := f.auth.AuthorizeURL(ctx, e.Record) // issued by a replica still on "k1"
	q := consent(t, u)
	newRing, _ := ParseKeyring(newKey(t, "k2") + ",k1:" + b64(f.keys.keys[0].raw))
	after := *f.auth
	after.keys = newRing // the callback lands on a replica restarted with "k2,k1"
	_, err := after.TakeState(ctx, q.Get("state"))
	t.Logf("state from before the rollout: %v", err)
	if errors.Is(err, ErrStateInvalid) {
		t.Error("an authorization under way is refused as forged after the key rollout")
	}
	pub, _ := f.keys.TransportPublicKey()
	sealed, _ := SealForTransport(pub, transportInfo(f.ref, FieldClientSecret), "s3cret")
	if _, err := newRing.OpenFromTransport(f.ref, FieldClientSecret, sealed); err != nil {
		t.Errorf("transport seal to the old replica's key, opened by a new replica: %v", err)
	}
}
