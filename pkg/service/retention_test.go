package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// TestEventRetentionOnUpgrade starts the stream's owner, the writer, against
// a CLARITY_ENTITLEMENTS made by a version that kept every event: its
// EVENTS_MAX_AGE and EVENTS_MAX_BYTES are applied to it.
func TestEventRetentionOnUpgrade(t *testing.T) {
	js := natstest.JetStream(t, jetstream.StreamConfig{
		Name: clarity.StreamEntitlements, Subjects: []string{"clarity.entitlements.>"}, Storage: jetstream.FileStorage,
		Retention: jetstream.LimitsPolicy, Duplicates: time.Hour,
	})
	url := js.Conn().ConnectedUrl()
	c, err := readCommonFrom(t, map[string]string{"NATS_URL": url, "EVENTS_MAX_AGE": "36h", "EVENTS_MAX_BYTES": "1073741824"})
	if err != nil {
		t.Fatal(err)
	}
	nc, js2, err := JetStream(context.Background(), c, pipeline.ServiceWriter, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := js2.Stream(context.Background(), clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 36*time.Hour || info.Config.MaxBytes != 1<<30 {
		t.Errorf("CLARITY_ENTITLEMENTS keeps %s and %d bytes, want 36h and 1 GiB", info.Config.MaxAge, info.Config.MaxBytes)
	}
}

func TestEventRetentionConfig(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		maxAge  time.Duration
		wantErr string
	}{
		{map[string]string{}, pipeline.DefaultEventsMaxAge, ""},
		{map[string]string{"EVENTS_MAX_AGE": "72h"}, 72 * time.Hour, ""},
		{map[string]string{"EVENTS_MAX_AGE": "1s"}, 0, "EVENTS_MAX_AGE must be at least 1m"},
		{map[string]string{"EVENTS_MAX_BYTES": "-5"}, 0, "EVENTS_MAX_BYTES must not be negative"},
	} {
		c, err := readCommonFrom(t, tc.env)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: got %v, want %q", tc.env, err, tc.wantErr)
			}
			continue
		}
		if err != nil || c.EventsMaxAge != tc.maxAge {
			t.Errorf("%v: got %s, %v; want %s", tc.env, c.EventsMaxAge, err, tc.maxAge)
		}
	}
}

func readCommonFrom(t *testing.T, env map[string]string) (Common, error) {
	t.Helper()
	e := EnvFrom(env)
	c := ReadCommon(e, "ADDR", ":0")
	return c, e.Err()
}
