package main

import (
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/service"
)

func TestReadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // a part of the error; empty for none
		check   func(config) bool
	}{
		{"defaults", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret"}, "", func(c config) bool {
			return c.HTTPAddr == ":8080" && c.Tenant == "default" && c.ConnectorID == "zoom" &&
				c.NATSURL == "nats://127.0.0.1:4222" && c.Secret == "s3cret"
		}},
		{"set", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret", "WEBHOOK_ADDR": ":9999", "CLARITY_TENANT": "acme", "CONNECTOR_ID": "z2"}, "", func(c config) bool {
			return c.HTTPAddr == ":9999" && c.Tenant == "acme" && c.ConnectorID == "z2"
		}},
		{"no secret", map[string]string{}, "ZOOM_WEBHOOK_SECRET_TOKEN is required", nil},
		{"blank secret", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "  "}, "ZOOM_WEBHOOK_SECRET_TOKEN is required", nil},
		{"tenant not a token", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret", "CLARITY_TENANT": "a.b"}, "CLARITY_TENANT", nil},
		{"connector not a token", map[string]string{"ZOOM_WEBHOOK_SECRET_TOKEN": "s3cret", "CONNECTOR_ID": "z*"}, "CONNECTOR_ID", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := readConfig(service.EnvFrom(tt.env))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got error %v, want one with %q", err, tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q spans lines, want one line", err)
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("config got %+v", c)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}
