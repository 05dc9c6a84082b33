package ratebudget

import (
	"context"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestBucketForgetsWhatNobodyWrites: the budget's bucket keeps an entry
// for KeyLifetime, longer than a daily hold and a listing round, and no
// longer, also when it existed before without a lifetime (an upgrade).
func TestBucketForgetsWhatNobodyWrites(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	if KeyLifetime <= 25*time.Hour {
		t.Fatalf("KeyLifetime %v: a daily hold lasts up to 24 h", KeyLifetime)
	}
	if _, err := Bucket(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	// A bucket of an earlier version had no lifetime: opening it again
	// gives it one.
	s, err := js.Stream(ctx, "KV_"+pipeline.BudgetBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxAge = 0
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	kv, err := Bucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != KeyLifetime {
		t.Errorf("bucket lifetime %v, want %v", st.TTL(), KeyLifetime)
	}
}
