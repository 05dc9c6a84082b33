package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

func TestConnectorRef(t *testing.T) {
	for _, tc := range []struct {
		tenant, id string
		ok         bool
	}{
		{"acme", "zoom", true},
		{"a", "z", true},
		{"acme-1", "zoom_2", true},
		{"0acme", "9", true},
		{"Acme", "zoom", false},
		{"acme", "", false},
		{"", "zoom", false},
		{"-acme", "zoom", false},
		{"acme", "zo.om", false},
		{"acme", "zo*om", false},
		{"acme", "zoom>", false},
		{"acme", strings.Repeat("z", 63), true},
		{"acme", strings.Repeat("z", 64), false},
		{"acme", "zöom", false},
	} {
		ref, err := NewConnectorRef(tc.tenant, tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("NewConnectorRef(%q, %q) = %v, want ok %v", tc.tenant, tc.id, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("NewConnectorRef(%q, %q) error %v is not ErrBadName", tc.tenant, tc.id, err)
			}
			if len(err.Error()) > 300 {
				t.Errorf("error of %d bytes quotes too much of the name", len(err.Error()))
			}
			continue
		}
		back, err := ParseKey(ref.Key())
		if err != nil || back != ref {
			t.Errorf("ParseKey(%q) = %v, %v; want %v", ref.Key(), back, err, ref)
		}
		if got, err := FromSubject(RawSubject(ref)); err != nil || got != ref {
			t.Errorf("FromSubject(%q) = %v, %v", RawSubject(ref), got, err)
		}
	}
	if _, err := FromSubject("zoom.raw"); err == nil {
		t.Error("FromSubject of a subject without connector = nil error")
	}
}

func TestIDs(t *testing.T) {
	ref := ConnectorRef{Tenant: "acme", ID: "zoom"}
	for _, tc := range []struct{ got, want string }{
		{RunStartedID("r1"), "r1/started"},
		{RunEndID("r1", 2), "r1/end/2"},
		{PageID("r1", 1, "users/active", 0, 3), "r1/1/users/active/0/3"},
		{BundleID("r1/1/groups/g1/admins/0/1", 64), "r1/1/groups/g1/admins/0/1+64"},
		{RefusalID("acme", "zoom", "refused-7"), "acme/zoom/refused-7"},
		{DerivedID("ZOOM_WEBHOOK/7", "records", -1), "ZOOM_WEBHOOK/7/records"},
		{DerivedID("ZOOM_WEBHOOK/7", "hint", 0), "ZOOM_WEBHOOK/7/hint/0"},
		{DerivedID("", "hint", 0), ""},
		{DerivedID("ZOOM_RAW/7", "", -1), "ZOOM_RAW/7"},
		{DerivedID("ZOOM_RAW/7", "", 2), "ZOOM_RAW/7/2"},
		{DerivedID("", "", -1), ""},
		{ScheduleID(ref, 42), "schedule/acme.zoom/42"},
		{DeadLetterID("ZOOM_RAW", 9), "dlq/ZOOM_RAW/9"},
		{ReplayID("ZOOM_RAW", 9, 3), "zoom-dlq-replay/ZOOM_RAW/9/3"},
		{WebhookID(ref, []byte("{}"))[:len("wh/acme/zoom/")], "wh/acme/zoom/"},
	} {
		if tc.got != tc.want {
			t.Errorf("got id %q, want %q", tc.got, tc.want)
		}
	}
	if WebhookID(ref, []byte("a")) == WebhookID(ConnectorRef{Tenant: "acme", ID: "other"}, []byte("a")) {
		t.Error("two connectors' notifications share an id")
	}
}

func TestCodec(t *testing.T) {
	small := &pb.Envelope{Tenant: "acme", Connector: "zoom"}
	big := &pb.Envelope{Tenant: "acme", Connector: "zoom", Body: &pb.Envelope_RawPage{RawPage: &pb.RawPage{Body: []byte(strings.Repeat(`{"id":"x"},`, 2000))}}}
	for _, tc := range []struct {
		name string
		env  *pb.Envelope
		enc  string
	}{{"small stays plain", small, ""}, {"large is compressed", big, EncodingS2}} {
		m, err := NewMsg("zoom.raw.acme.zoom", tc.env, "id-1")
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(HeaderEncoding); got != tc.enc {
			t.Errorf("%s: encoding %q, want %q", tc.name, got, tc.enc)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != "id-1" {
			t.Errorf("%s: message id %q", tc.name, got)
		}
		var back pb.Envelope
		if err := Unmarshal(m.Header, m.Data, &back); err != nil || back.Tenant != "acme" ||
			len(back.GetRawPage().GetBody()) != len(tc.env.GetRawPage().GetBody()) {
			t.Errorf("%s: Unmarshal = %v, %v", tc.name, &back, err)
		}
	}
	if _, err := DecodeData("zstd", []byte("x")); err == nil {
		t.Error("an unknown encoding decoded")
	}
}

// TestHandle runs Handle in the real consume loop: outputs are published
// compressed under ids derived from the input's, once however often the
// input is delivered, and an envelope naming another connector than its
// subject is dead-lettered.
func TestHandle(t *testing.T) {
	js := natstest.JetStream(t, Streams(1)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ref := ConnectorRef{Tenant: "acme", ID: "zoom"}
	calls := 0
	h := func(ctx context.Context, in Envelope) ([]Out, error) {
		calls++
		if in.Connector != ref {
			t.Errorf("handler got connector %v", in.Connector)
		}
		out := &pb.Envelope{Tenant: ref.Tenant, Connector: ref.ID, Body: in.Body.Body}
		return []Out{{Subject: RecordsSubject(ref), Body: out, Kind: "records", Part: -1}}, nil
	}
	done := make(chan error, 1)
	go func() {
		done <- natsx.Consumer{Stream: StreamRaw, Durable: "test", DeadLetter: DeadLetterSubject(StreamRaw), MaxDeliver: 2}.
			Run(ctx, js, Handle(js, h))
	}()
	publish := func(subject string, env *pb.Envelope, id string) {
		t.Helper()
		m, err := NewMsg(subject, env, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	page := &pb.Envelope{Tenant: "acme", Connector: "zoom", Body: &pb.Envelope_RawPage{RawPage: &pb.RawPage{Body: []byte(strings.Repeat("x", 10000))}}}
	publish(RawSubject(ref), page, "in-1")
	// The envelope says globex, the subject acme: refused.
	publish(RawSubject(ref), &pb.Envelope{Tenant: "globex", Connector: "zoom"}, "in-2")

	out := waitMsgs(t, js, StreamRecords, 1)
	if got, want := out[0].Header.Get(jetstream.MsgIDHeader), StreamRaw+"/1/records"; got != want {
		t.Errorf("output id %q, want %q", got, want)
	}
	if out[0].Header.Get(HeaderEncoding) != EncodingS2 {
		t.Error("a large output went out uncompressed")
	}
	dl := waitMsgs(t, js, StreamDeadLetter, 1)
	if !strings.Contains(dl[0].Header.Get(natsx.HeaderDLQReason), "another connector") {
		t.Errorf("dead letter reason %q", dl[0].Header.Get(natsx.HeaderDLQReason))
	}
	cancel()
	<-done
	if calls != 1 {
		t.Errorf("handler called %d times, want 1 (the refused envelope never reaches it)", calls)
	}
}

// waitMsgs waits up to 10 s for stream to hold n messages and returns them.
func waitMsgs(t *testing.T, js jetstream.JetStream, stream string, n int) []*jetstream.RawStreamMsg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs := natstest.StreamMsgs(t, js, stream)
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s holds %d messages, want %d", stream, len(msgs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
