package natsx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

// badURLs are NATS_URL values an operator may mistype, each with the
// password s3cret.
var badURLs = []string{
	"nats://user:s3cret@127.0.0.1:1",
	"nats://user:s3cret@host:port:bad",
	"nats://user:s3cret@[::1",
	"nats://user:s3cret@[::1]:bad",
	"user:s3cret@127.0.0.1:1",
	"nats://user:s3cret@127.0.0.1:1,nats://other:s3cret@[::1",
	"nats://user:s3c%zzret@127.0.0.1:1",
	"nats://s3cret@host:port:bad",
	"tls://user:s3cret@ho st:4222",
}

// TestConnectNeverShowsThePassword: whatever is wrong with the URL, neither
// the error of Connect nor its log names the password.
func TestConnectNeverShowsThePassword(t *testing.T) {
	for _, u := range badURLs {
		var logs bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		nc, _, err := natsx.Connect(ctx, u, "test", zerolog.New(&logs))
		cancel()
		if err == nil {
			nc.Close()
			t.Errorf("Connect(%q) succeeded, want an error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3") || strings.Contains(logs.String(), "s3cret") {
			t.Errorf("Connect(%q): error %q, log %q; want neither to show the password", u, err, logs.String())
		}
		if !strings.Contains(err.Error(), "redacted") {
			t.Errorf("Connect(%q): error %q, want it to name the URL redacted", u, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"nats://127.0.0.1:4222", "127.0.0.1:4222", "tls://a:4222, nats://alice:pw@b:4222", "nats://t0ken@nats"} {
		if err := natsx.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{
		"nats://user:s3cret@host:port:bad", "nats://user:s3cret@[::1", "nats://user:s3cret@", "nats://a:4222,nats://user:s3cret@[::1",
		"nats://user:s3c%zzret@host:4222",
	} {
		err := natsx.CheckURL(u)
		if err == nil {
			t.Errorf("CheckURL(%q) = nil, want an error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3") {
			t.Errorf("CheckURL(%q) = %q, shows the password", u, err)
		}
	}
}

func TestRedactURLMalformed(t *testing.T) {
	for in, want := range map[string]string{
		"nats://user:s3cret@host:port:bad":  "nats://redacted@host:port:bad",
		"nats://user:s3cret@[::1":           "nats://redacted@[::1",
		"user:s3cret@127.0.0.1:1":           "redacted@127.0.0.1:1",
		"nats://us@er:s3cret@host:4222":     "nats://redacted@host:4222",
		"127.0.0.1:4222":                    "127.0.0.1:4222",
		"nats://user:s3,cret@host:4222":     "(unparsable URL),redacted@host:4222",
		"nats://[::1]:4222,nats://a:b@c:42": "nats://[::1]:4222,nats://redacted@c:42",
	} {
		if got := natsx.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTooLarge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrMaxPayload, true},
		{fmt.Errorf("publish: %w", nats.ErrMaxPayload), true},
		{fmt.Errorf("ack: %w", jetstream.ErrStreamMessageExceedsMaximum), true},
		{fmt.Errorf("ack: %w", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum}), true},
		{nats.ErrTimeout, false},
		{jetstream.ErrNoStreamResponse, false},
		{errors.New("maximum payload"), false},
		{nil, false},
	} {
		if got := natsx.TooLarge(tc.err); got != tc.want {
			t.Errorf("TooLarge(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}
