package follow

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// An event is read only when it is one of the connector's, of a known kind
// and operation, with a decimal sequence, within the size bound; the
// sync.failed of a refused trigger (sequence 0) is read.
func TestDecode(t *testing.T) {
	ref := pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	const subject = "clarity.entitlements.default.zoom.service_user"
	ev := func(typ, seq, extra string) []byte {
		return []byte(`{"specversion":"1.0","id":"default/zoom/` + seq + `","type":"` + typ + `","subject":"u1","time":"2026-12-05T20:00:00Z",` +
			`"tenant":"default","connector":"zoom","sequence":"` + seq + `","data":{"id":"u1"}` + extra + `}`)
	}
	c, err := decode(subject, ev("clarity.service_user.deleted", "42", `,"removal":"absent"`), ref)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != "service_user" || c.Op != "deleted" || c.Key != "u1" || c.Sequence != 42 || c.ID != "default/zoom/42" || c.Removal != "absent" || string(c.Data) != `{"id":"u1"}` {
		t.Errorf("decoded as %+v", c)
	}
	if c, err := decode(subject, ev("clarity.sync.failed", "0", ""), ref); err != nil || c.Sequence != 0 {
		t.Errorf("the sync.failed of a refused trigger: %+v, %v", c, err)
	}
	if c, err := decode(subject, ev("clarity.provisioning.already_in_effect", "43", ""), ref); err != nil || c.IsRecord() || c.Op != "already_in_effect" {
		t.Errorf("a provisioning result: %+v, %v", c, err)
	}
	other := strings.Replace(string(ev("clarity.service_user.created", "1", "")), `"tenant":"default"`, `"tenant":"acme"`, 1)
	for name, data := range map[string][]byte{
		"too large":        append(ev("clarity.service_user.created", "1", ""), make([]byte, maxEvent)...),
		"not JSON":         []byte(`{"id":`),
		"another tenant":   []byte(other),
		"unknown kind":     ev("clarity.meeting.created", "1", ""),
		"unknown op":       ev("clarity.service_user.started", "1", ""),
		"sync op":          ev("clarity.sync.created", "1", ""),
		"provisioning op":  ev("clarity.provisioning.created", "1", ""),
		"type shape":       ev("clarity.service_user", "1", ""),
		"sequence":         ev("clarity.service_user.created", "-1", ""),
		"sequence decimal": ev("clarity.service_user.created", "x1", ""),
	} {
		if _, err := decode(subject, data, ref); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// A change is applied only with a key within bounds and object data, and
// the copy holds at most the records it may.
func TestApplyBounds(t *testing.T) {
	records, counts := map[recKey]json.RawMessage{}, map[string]int{}
	ok := Change{Kind: "service_user", Op: "created", Key: "u1", Data: json.RawMessage(`{"id":"u1"}`)}
	if _, err := apply(records, counts, ok, 1); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Change{
		"empty key":    {Kind: "service_user", Op: "created", Data: json.RawMessage(`{}`)},
		"long key":     {Kind: "service_user", Op: "created", Key: strings.Repeat("k", maxKey+1), Data: json.RawMessage(`{}`)},
		"array data":   {Kind: "service_user", Op: "updated", Key: "u1", Data: json.RawMessage(`[]`)},
		"no data":      {Kind: "service_user", Op: "created", Key: "u1"},
		"past the max": {Kind: "service_user", Op: "created", Key: "u2", Data: json.RawMessage(`{}`)},
		"unknown kind": {Kind: "meeting", Op: "created", Key: "m", Data: json.RawMessage(`{}`)},
	} {
		if _, err := apply(records, counts, c, 1); err == nil {
			t.Errorf("%s: applied", name)
		}
	}
	if len(records) != 1 || counts["service_user"] != 1 {
		t.Errorf("records %v, counts %v after refused changes", records, counts)
	}
	if _, err := apply(records, counts, Change{Kind: "service_user", Op: "deleted", Key: "u1"}, 1); err != nil || len(records) != 0 || counts["service_user"] != 0 {
		t.Errorf("delete: %v, records %v, counts %v", err, records, counts)
	}
}
