package clarity

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name    string
		subject string
		at      time.Time
		data    string
	}{
		{"plain", "KdYKjnimT4KPd8FFgQt9FQ", at, `{"id":"KdYKjnimT4KPd8FFgQt9FQ","email":"a@example.com"}`},
		{"whole second", "pending:a@example.com", at.Truncate(time.Second), `{"id":""}`},
		{"escapes", "u|custom.\"q\"\\<b>&\n\t\r\b\f\x01\x1f", at, `{"v":"x"}`},
		{"unicode", "ünïcødé|ключ|\u2028\u2029|😀", at, `{"name":"Zoë"}`},
		{"invalid utf-8", "bad\xff\xfe|x\xc3", at, `{}`},
		{"other zone", "k", at.In(time.FixedZone("x", 3600)), `[1,2]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := NewEvent("default", "zoom", 42, KindServiceUserAttribute, OpCreated, tt.subject, tt.at, json.RawMessage(tt.data))
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			gone := NewEvent("default", "zoom", 43, KindServiceUser, OpDeleted, tt.subject, tt.at, json.RawMessage(tt.data))
			gone.Removal = RemovalDisassociated
			if want, _ = json.Marshal(gone); !bytes.Contains(want, []byte(`"removal":"disassociated"`)) {
				t.Fatalf("a deleted user's event %s has no removal", want)
			}
			if got := gone.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Errorf("with removal: got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestAppendJSONWithoutData(t *testing.T) {
	ev := NewEvent("default", "zoom", 1, KindSync, OpStarted, "run-1", time.UnixMilli(0), nil)
	var back map[string]any
	if err := json.Unmarshal(ev.AppendJSON(nil), &back); err != nil {
		t.Fatalf("got invalid JSON: %v", err)
	}
	if d, ok := back["data"]; !ok || d != nil {
		t.Errorf("got data %v (present %v), want null", d, ok)
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("tenant", "zoom", "KdYKjnimT4KPd8FFgQt9FQ|group:x", int64(42), int64(1795000000123))
	f.Add("t<&>", "c\u2028", "\x00\xff\"\\", int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, tenant, connector, subject string, seq, ms int64) {
		ev := NewEvent(tenant, connector, seq, KindEntitlement, OpUpdated, subject, time.UnixMilli(ms%(1<<45)), json.RawMessage(`{"a":"b"}`))
		want, err := json.Marshal(ev)
		if err != nil {
			return // a time json.Marshal refuses (year outside 0–9999)
		}
		if got := ev.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}
