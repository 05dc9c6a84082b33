package service_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

// TestNATSURLNeverShowsThePassword: a service reading NATS_URL and
// connecting with it, as every service starts, reports a mistyped or
// unreachable URL without its password, in its error and its log.
func TestNATSURLNeverShowsThePassword(t *testing.T) {
	for _, tc := range []struct {
		url       string
		badConfig bool // whether reading the configuration already fails
	}{
		{"nats://user:s3cret@127.0.0.1:1", false},
		{"nats://user:s3cret@host:port:bad", true},
		{"nats://user:s3cret@[::1", true},
		{"user:s3cret@127.0.0.1:1", false},
		{"nats://127.0.0.1:1,nats://user:s3cret@[::1", true},
		{"nats://user:s3c%zzret@127.0.0.1:1", true},
	} {
		e := service.EnvFrom(map[string]string{"NATS_URL": tc.url})
		c := service.ReadCommon(e, "TEST_ADDR", ":0")
		err := e.Err()
		if (err != nil) != tc.badConfig {
			t.Errorf("NATS_URL=%s: configuration error %v, want one: %t", tc.url, err, tc.badConfig)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "NATS_URL") || strings.Contains(err.Error(), "s3") {
				t.Errorf("NATS_URL=%s: configuration error %q, want it to name NATS_URL and not the password", tc.url, err)
			}
		}
		var logs bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		nc, _, err := service.JetStream(ctx, c, "test", zerolog.New(&logs))
		cancel()
		if err == nil {
			nc.Close()
			t.Errorf("NATS_URL=%s: connected, want an error", tc.url)
			continue
		}
		if strings.Contains(err.Error(), "s3") || strings.Contains(logs.String(), "s3cret") {
			t.Errorf("NATS_URL=%s: error %q, log %q; want neither to show the password", tc.url, err, logs.String())
		}
	}
}

func TestEnvURL(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true}, // the default
		{"https://api.zoom.us/v2", true},
		{"http://127.0.0.1:9000/v2", true},
		{"https://user:s3cret@host:port:bad/v2", false},
		{"https://user:s3cret@[::1/v2", false},
		{"ftp://user:s3cret@host/v2", false},
		{"https:///v2?token=s3cret", false},
		{"user:s3cret@host/v2", false},
	} {
		e := service.EnvFrom(map[string]string{"ZOOM_API_URL": tc.value})
		got := e.URL("ZOOM_API_URL", "https://api.zoom.us/v2")
		err := e.Err()
		if (err == nil) != tc.ok {
			t.Errorf("ZOOM_API_URL=%s: got error %v, want ok %t", tc.value, err, tc.ok)
		}
		if err != nil && (strings.Contains(err.Error(), "s3") || !strings.Contains(err.Error(), "ZOOM_API_URL")) {
			t.Errorf("ZOOM_API_URL=%s: error %q, want it to name the variable and not the password", tc.value, err)
		}
		if tc.value != "" && got != tc.value {
			t.Errorf("ZOOM_API_URL=%s: got %q, want the value", tc.value, got)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.zoom.us/v2":                       "https://api.zoom.us/v2",
		"https://user:s3cret@api.zoom.us/v2":           "https://redacted@api.zoom.us/v2",
		"postgres://u:s3cret@db:5432/x?sslmode=off":    "postgres://redacted@db:5432/x",
		"postgres://db/x?password=s3cret":              "postgres://db/x",
		"https://user:s3c?r#et@host:port:bad/v2":       "https://redacted@host:port:bad/v2",
		"user:s3cret@host":                             "redacted@host",
		"https://host/v2#s3cret":                       "https://host/v2",
		"postgres://u:s3cret@[::1/x?application_name=": "postgres://redacted@[::1/x",
	} {
		if got := service.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
