package relay

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestAckError(t *testing.T) {
	t.Parallel()
	status := func(code, desc string) nats.Header {
		h := nats.Header{}
		h.Set("Status", code)
		if desc != "" {
			h.Set("Description", desc)
		}
		return h
	}
	tests := []struct {
		name    string
		header  nats.Header
		data    string
		wantErr string // "" for none
	}{
		{"stored", nil, `{"stream":"CLARITY_ENTITLEMENTS","seq":42}`, ""},
		{"duplicate", nil, `{"stream":"CLARITY_ENTITLEMENTS","seq":42,"duplicate":true}`, ""},
		{"with domain", nil, `{"stream":"CLARITY_ENTITLEMENTS","domain":"hub","seq":7}`, ""},
		{"spaced JSON", nil, `{ "seq": 3, "stream": "CLARITY_ENTITLEMENTS" }`, ""},
		{"stream error", nil, `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"CLARITY_ENTITLEMENTS","seq":0}`, "maximum messages exceeded (code 503, error code 10077)"},
		{"no responders", status("503", ""), ``, "no responders"},
		{"other status", status("408", "Request Timeout"), ``, "status 408 Request Timeout"},
		{"not JSON", nil, `+OK`, "unexpected acknowledgement"},
		{"JSON of something else", nil, `{"seq":1}`, "unexpected acknowledgement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ackError(&nats.Msg{Header: tt.header, Data: []byte(tt.data)})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
