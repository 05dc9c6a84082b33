package normalize

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// zoomExamples are the example notifications of Zoom's Users events OpenAPI
// (users-groups-events.json), by the event they document, compacted with
// jq. The group.member_deleted example names itself group.members_deleted.
var zoomExamples = map[string]string{
	"user.created":             `{"event":"user.created","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","creation_type":"create","object":{"id":"abcD3ojfdbjfg","first_name":"Jill","last_name":"Chill","display_name":"Jill Chill","email":"jchill@example.com","type":3}}}`,
	"user.invitation_accepted": `{"event":"user.invitation_accepted","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","object":{"id":"abcD3ojfdbjfg","first_name":"Jill","last_name":"Chill","email":"jchill@example.com","type":3}}}`,
	"user.updated":             `{"event":"user.updated","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"eUblMKLnTMKX0pVvNAlA0Q","time_stamp":1626230691572,"old_object":{"email":"xxxxxx.old@zoom.us","id":"abcD3ojfdbjfg"},"object":{"email":"xxxxxx@zoom.us","id":"eUblMKLnTMKX0pVvNAlA0Q"}}}`,
	"user.deactivated":         `{"event":"user.deactivated","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","first_name":"Jill","last_name":"Chill","email":"jchill@example.com","type":3}}}`,
	"user.activated":           `{"event":"user.activated","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","first_name":"Dana","last_name":"Lee","email":"jchill@example.com","type":3}}}`,
	"user.disassociated":       `{"event":"user.disassociated","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","first_name":"Jill","last_name":"Chill","email":"jchill@example.com","type":3}}}`,
	"user.deleted":             `{"event":"user.deleted","event_ts":1626230691572,"payload":{"account_id":"AAAAAABBBB","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","first_name":"Jill","last_name":"Chill","email":"jchill@example.com","type":1}}}`,
	"group.created":            `{"event":"group.created","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","name":"example-group"},"time_stamp":1626230691572}}`,
	"group.updated":            `{"event":"group.updated","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","name":"example-group-new"},"old_object":{"id":"abcD3ojfdbjfg","name":"example-group-old"},"time_stamp":1626230691572}}`,
	"group.deleted":            `{"event":"group.deleted","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","name":"example-group"},"time_stamp":1626230691572}}`,
	"group.member_added":       `{"event":"group.member_added","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","members":[{"id":"qB1V0HKFQrGODVhJmqUEQw","email":"jchill@example.com"}]},"time_stamp":1626230691572}}`,
	"group.member_deleted":     `{"event":"group.members_deleted","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","members":[{"id":"qB1V0HKFQrGODVhJmqUEQw","email":"jchill@example.com"}]},"time_stamp":1626230691572}}`,
	"group.admin_added":        `{"event":"group.admin_added","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","admins":[{"id":"qB1V0HKFQrGODVhJmqUEQw","email":"jchill@example.com"}]},"time_stamp":1626230691572}}`,
	"group.admin_deleted":      `{"event":"group.admin_deleted","event_ts":1626230691572,"payload":{"account_id":"x1yCzABCDEfg23HiJKl4mN","operator":"admin@example.com","operator_id":"z8yCxjabcdEFGHfp8uQ","object":{"id":"abcD3ojfdbjfg","admins":[{"id":"qB1V0HKFQrGODVhJmqUEQw","email":"jchill@example.com"}]},"time_stamp":1626230691572}}`,
}

// exampleTS is the event_ts (and time_stamp) of every Zoom example.
const exampleTS = 1626230691572

// received is the receipt time the tests give events, apart from exampleTS.
const received = 1_764_331_200_000

// event is what the webhook receiver stores for body: the body's event name
// and event_ts (0 when it has none) and the time of receipt.
func event(tb testing.TB, body string) *pb.WebhookEvent {
	tb.Helper()
	var n notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		tb.Fatalf("test body %s: %v", body, err)
	}
	return &pb.WebhookEvent{Event: n.Event, EventTsMs: int64(n.EventTS), Body: []byte(body), ReceivedAtMs: received}
}

func deletes(kind pb.Kind, keys ...string) []*pb.RecordRef {
	out := make([]*pb.RecordRef, len(keys))
	for i, k := range keys {
		out[i] = &pb.RecordRef{Kind: kind, Key: k}
	}
	return out
}

// removals are the deletions of service users for the reason removal.
func removals(removal string, keys ...string) []*pb.RecordRef {
	out := deletes(pb.Kind_KIND_SERVICE_USER, keys...)
	for _, d := range out {
		d.Removal = removal
	}
	return out
}

func batch(version int64, fill func(*pb.RecordBatch)) *pb.RecordBatch {
	b := &pb.RecordBatch{VersionMs: version, Source: "webhook"}
	fill(b)
	return b
}

func hint(id string, version int64) []*pb.FetchUser {
	return []*pb.FetchUser{{UserId: id, VersionMs: version}}
}

// groupRecords are the two entitlements of a group, spelled out as JSON
// rather than built with the code under test.
func groupRecords(tb testing.TB, id, name string) []*pb.Record {
	tb.Helper()
	var out []*pb.Record
	for _, data := range []string{
		`{"id":"group:` + id + `","type":"group","zoom_id":"` + id + `","name":"` + name + `","description":""}`,
		`{"id":"group_admin:` + id + `","type":"group_admin","zoom_id":"` + id + `","name":"` + name + ` (admin)","description":""}`,
	} {
		var e clarity.Entitlement
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			tb.Fatal(err)
		}
		r := EntitlementRecord(&e)
		if string(r.Data) != data {
			tb.Fatalf("entitlement data got %s, want %s", r.Data, data)
		}
		out = append(out, r)
	}
	return out
}

func grants(entitlement string, users ...string) []*pb.Record {
	out := make([]*pb.Record, len(users))
	for i, u := range users {
		out[i] = GrantRecord(u, entitlement)
	}
	return out
}

func TestWebhookZoomExamples(t *testing.T) {
	t.Parallel()
	const (
		user   = "abcD3ojfdbjfg"
		group  = "abcD3ojfdbjfg"
		member = "qB1V0HKFQrGODVhJmqUEQw"
	)
	tests := []struct {
		example string
		want    Result
	}{
		{"user.created", Result{Hints: hint(user, exampleTS)}},
		// Zoom's example object id differs from old_object's; the object
		// is the user as it now is, and its id is the one re-read.
		{"user.updated", Result{Hints: hint("eUblMKLnTMKX0pVvNAlA0Q", exampleTS)}},
		{"user.activated", Result{Hints: hint(user, exampleTS)}},
		{"user.deactivated", Result{Hints: hint(user, exampleTS)}},
		{"user.invitation_accepted", Result{
			Hints: hint(user, exampleTS),
			Batch: batch(exampleTS, func(b *pb.RecordBatch) {
				b.Deletes = deletes(pb.Kind_KIND_SERVICE_USER, "pending:jchill@example.com")
			}),
		}},
		{"user.deleted", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Deletes = removals(clarity.RemovalDeleted, user, "pending:jchill@example.com")
		})}},
		{"user.disassociated", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Deletes = removals(clarity.RemovalDisassociated, user, "pending:jchill@example.com")
		})}},
		{"group.created", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Records = groupRecords(t, group, "example-group")
		})}},
		{"group.updated", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Records = groupRecords(t, group, "example-group-new")
		})}},
		{"group.deleted", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Deletes = deletes(pb.Kind_KIND_ENTITLEMENT, "group:"+group, "group_admin:"+group)
		})}},
		{"group.member_added", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Records = grants("group:"+group, member, "pending:jchill@example.com")
		})}},
		{"group.member_deleted", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.Deletes = deletes(pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, member+"|group:"+group, "pending:jchill@example.com|group:"+group)
		})}},
		{"group.admin_added", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.AdminsAdded = []*pb.GroupAdmins{{GroupId: group, Emails: []string{"jchill@example.com"}}}
		})}},
		{"group.admin_deleted", Result{Batch: batch(exampleTS, func(b *pb.RecordBatch) {
			b.AdminsRemoved = []*pb.GroupAdmins{{GroupId: group, Emails: []string{"jchill@example.com"}}}
		})}},
	}
	if len(tests) != len(zoomExamples) {
		t.Errorf("tests cover %d examples, want all %d", len(tests), len(zoomExamples))
	}
	for _, tt := range tests {
		t.Run(tt.example, func(t *testing.T) {
			body, ok := zoomExamples[tt.example]
			if !ok {
				t.Fatalf("no example for %s", tt.example)
			}
			got, err := Webhook(event(t, body), 0)
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			checkResult(t, got, tt.want)
		})
	}
}

// checkResult compares two results, and checks what every batch must
// satisfy.
func checkResult(tb testing.TB, got, want Result) {
	tb.Helper()
	if got.Ignored != want.Ignored {
		tb.Errorf("Ignored got %v, want %v", got.Ignored, want.Ignored)
	}
	if !proto.Equal(got.Batch, want.Batch) {
		tb.Errorf("batch got %v, want %v", got.Batch, want.Batch)
	}
	if len(got.Hints) != len(want.Hints) {
		tb.Errorf("hints got %v, want %v", got.Hints, want.Hints)
	} else {
		for i := range got.Hints {
			if !proto.Equal(got.Hints[i], want.Hints[i]) {
				tb.Errorf("hint %d got %v, want %v", i, got.Hints[i], want.Hints[i])
			}
		}
	}
	if got.Batch != nil {
		checkRecords(tb, got.Batch)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   *pb.WebhookEvent
		want Result
	}{
		{
			"time_stamp when no event_ts",
			&pb.WebhookEvent{Event: "user.deleted", Body: []byte(`{"event":"user.deleted","payload":{"time_stamp":42,"object":{"id":"u1"}}}`), ReceivedAtMs: received},
			Result{Batch: batch(42, func(b *pb.RecordBatch) { b.Deletes = removals(clarity.RemovalDeleted, "u1") })},
		},
		{
			"received_at when no event time",
			&pb.WebhookEvent{Event: "user.updated", Body: []byte(`{"event":"user.updated","payload":{"object":{"id":"u1","dept":"x"}}}`), ReceivedAtMs: received},
			Result{Hints: hint("u1", received)},
		},
		{
			"body's event_ts when the event has none",
			&pb.WebhookEvent{Event: "user.updated", Body: []byte(`{"event":"user.updated","event_ts":7,"payload":{"time_stamp":8,"object":{"id":"u1"}}}`), ReceivedAtMs: received},
			Result{Hints: hint("u1", 7)},
		},
		{
			"event's event_ts first",
			&pb.WebhookEvent{Event: "user.updated", EventTsMs: 6, Body: []byte(`{"event":"user.updated","event_ts":7,"payload":{"object":{"id":"u1"}}}`), ReceivedAtMs: received},
			Result{Hints: hint("u1", 6)},
		},
		{
			"malformed event_ts falls back",
			event(t, `{"event":"user.activated","event_ts":"soon","payload":{"time_stamp":-1,"object":{"id":"u1"}}}`),
			Result{Hints: hint("u1", received)},
		},
		{
			"event name from the body",
			&pb.WebhookEvent{Body: []byte(`{"event":"group.deleted","event_ts":9,"payload":{"object":{"id":"g"}}}`)},
			Result{Batch: batch(9, func(b *pb.RecordBatch) {
				b.Deletes = deletes(pb.Kind_KIND_ENTITLEMENT, "group:g", "group_admin:g")
			})},
		},
		{
			"invitation accepted without email",
			event(t, `{"event":"user.invitation_accepted","event_ts":9,"payload":{"object":{"id":"u1"}}}`),
			Result{Hints: hint("u1", 9)},
		},
		{
			"invitation accepted, pending key spelled as the listing's",
			event(t, `{"event":"user.invitation_accepted","event_ts":9,"payload":{"object":{"id":"u1","email":"Jill.Chill@Example.COM"}}}`),
			Result{Hints: hint("u1", 9), Batch: batch(9, func(b *pb.RecordBatch) {
				b.Deletes = deletes(pb.Kind_KIND_SERVICE_USER, "pending:jill.chill@example.com")
			})},
		},
		{
			"group renamed",
			event(t, `{"event":"group.updated","event_ts":9,"payload":{"object":{"id":"g","name":"<Sales & Co>"},"old_object":{"id":"g","name":"Sales"}}}`),
			Result{Batch: batch(9, func(b *pb.RecordBatch) { b.Records = groupRecords(t, "g", "<Sales & Co>") })},
		},
		{
			"group updated without name",
			event(t, `{"event":"group.updated","event_ts":9,"payload":{"object":{"id":"g","total_members":3},"old_object":{"id":"g"}}}`),
			Result{Ignored: true},
		},
		{
			"group created without name",
			event(t, `{"event":"group.created","event_ts":9,"payload":{"object":{"id":"g"}}}`),
			Result{Batch: batch(9, func(b *pb.RecordBatch) { b.Records = groupRecords(t, "g", "") })},
		},
		{
			"members by id and as invitees by email, repeats once",
			event(t, `{"event":"group.member_added","event_ts":9,"payload":{"object":{"id":"g","members":[{"email":"A@x"},{"id":"u1"},{"id":"u2","email":"b@x"},{"id":"u1"},{"id":""},{"email":" "}]}}}`),
			Result{Batch: batch(9, func(b *pb.RecordBatch) { b.Records = grants("group:g", "pending:a@x", "u1", "u2", "pending:b@x") })},
		},
		{
			"member_deleted spelled as documented",
			event(t, `{"event":"group.member_deleted","event_ts":9,"payload":{"object":{"id":"g","members":[{"id":"u1"},{"id":"u2"},{"id":"u1"}]}}}`),
			Result{Batch: batch(9, func(b *pb.RecordBatch) {
				b.Deletes = deletes(pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, "u1|group:g", "u2|group:g")
			})},
		},
		{
			"members without ids nor emails",
			event(t, `{"event":"group.member_added","event_ts":9,"payload":{"object":{"id":"g","members":[{"email":""},{"id":""}]}}}`),
			Result{Ignored: true},
		},
		{
			"no members",
			event(t, `{"event":"group.members_deleted","event_ts":9,"payload":{"object":{"id":"g"}}}`),
			Result{Ignored: true},
		},
		{
			"admin emails normalized",
			event(t, `{"event":"group.admin_added","event_ts":9,"payload":{"object":{"id":"g","admins":[{"email":" B@X.com "},{"id":"u9"},{"email":"a@x.com"},{"email":"b@x.com"},{"email":""}]}}}`),
			Result{Batch: batch(9, func(b *pb.RecordBatch) {
				b.AdminsAdded = []*pb.GroupAdmins{{GroupId: "g", Emails: []string{"a@x.com", "b@x.com"}}}
			})},
		},
		{
			"admins without email",
			event(t, `{"event":"group.admin_deleted","event_ts":9,"payload":{"object":{"id":"g","admins":[{"id":"u9"}]}}}`),
			Result{Ignored: true},
		},
		{"signed in", event(t, `{"event":"user.signed_in","event_ts":9,"payload":{"object":{"id":"u1"}}}`), Result{Ignored: true}},
		{"user settings", event(t, `{"event":"user.settings_updated","event_ts":9,"payload":{"object":{"id":"u1"}}}`), Result{Ignored: true}},
		{"group settings", event(t, `{"event":"group.settings_updated","event_ts":9,"payload":{"object":{"id":"g"}}}`), Result{Ignored: true}},
		{"url validation", event(t, `{"event":"endpoint.url_validation","payload":{"plainToken":"x"}}`), Result{Ignored: true}},
		{"ignored event, odd payload", event(t, `{"event":"user.presence_status_updated","payload":"busy"}`), Result{Ignored: true}},
		{"no event at all", &pb.WebhookEvent{Body: []byte(`{}`)}, Result{Ignored: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Webhook(tt.ev, 0)
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			checkResult(t, got, tt.want)
		})
	}
}

func TestWebhookErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ts   int64 // received_at_ms
	}{
		{"not JSON", `{"event":`, received},
		{"not an object", `[1,2]`, received},
		{"event not a string", `{"event":5}`, received},
		{"no payload", `{"event":"user.deleted","event_ts":9}`, received},
		{"payload not an object", `{"event":"user.deleted","event_ts":9,"payload":[]}`, received},
		{"no object", `{"event":"user.deleted","event_ts":9,"payload":{}}`, received},
		{"null object", `{"event":"group.created","event_ts":9,"payload":{"object":null}}`, received},
		{"user without id", `{"event":"user.deleted","event_ts":9,"payload":{"object":{"email":"a@x"}}}`, received},
		{"hinted user without id", `{"event":"user.updated","event_ts":9,"payload":{"object":{"id":""}}}`, received},
		{"user id not a string", `{"event":"user.created","event_ts":9,"payload":{"object":{"id":7}}}`, received},
		{"group without id", `{"event":"group.deleted","event_ts":9,"payload":{"object":{"name":"g"}}}`, received},
		{"members not a list", `{"event":"group.member_added","event_ts":9,"payload":{"object":{"id":"g","members":{"id":"u"}}}}`, received},
		{"no time at all", `{"event":"group.deleted","payload":{"object":{"id":"g"}}}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Webhook(&pb.WebhookEvent{Body: []byte(tt.body), ReceivedAtMs: tt.ts}, 0)
			if !errors.Is(err, ErrBadPage) {
				t.Fatalf("error got %v, want one wrapping ErrBadPage", err)
			}
			if got.Batch != nil || got.Hints != nil || got.Ignored {
				t.Errorf("result got %+v with an error, want none", got)
			}
		})
	}
}

// TestWebhookFutureTimes: an event's time is taken at most MaxEventSkew
// after its receipt, and an event dated more than MaxEventAhead after it is
// refused; the time of receipt is the caller's when it gives one (the time
// JetStream stored the notification), else the one the webhook service
// wrote in the event.
func TestWebhookFutureTimes(t *testing.T) {
	t.Parallel()
	const (
		skew  = int64(MaxEventSkew / time.Millisecond)
		ahead = int64(MaxEventAhead / time.Millisecond)
	)
	tests := []struct {
		name     string
		ev       *pb.WebhookEvent
		received int64 // given by the caller
		want     int64 // version; 0 when refused
	}{
		{"a normal event", &pb.WebhookEvent{EventTsMs: received - 5000, ReceivedAtMs: received}, 0, received - 5000},
		{"at its receipt", &pb.WebhookEvent{EventTsMs: received, ReceivedAtMs: received}, 0, received},
		{"30s ahead", &pb.WebhookEvent{EventTsMs: received + 30_000, ReceivedAtMs: received}, 0, received + 30_000},
		{"the skew ahead", &pb.WebhookEvent{EventTsMs: received + skew, ReceivedAtMs: received}, 0, received + skew},
		{"just past the skew", &pb.WebhookEvent{EventTsMs: received + skew + 1, ReceivedAtMs: received}, 0, received + skew},
		{"a day ahead", &pb.WebhookEvent{EventTsMs: received + ahead, ReceivedAtMs: received}, 0, received + skew},
		{"just over a day ahead", &pb.WebhookEvent{EventTsMs: received + ahead + 1, ReceivedAtMs: received}, 0, 0},
		{"a year ahead", &pb.WebhookEvent{EventTsMs: received + 365*ahead, ReceivedAtMs: received}, 0, 0},
		{"the latest time there is", &pb.WebhookEvent{EventTsMs: math.MaxInt64, ReceivedAtMs: received}, 0, 0},
		{"the caller's receipt first", &pb.WebhookEvent{EventTsMs: received + 30_000, ReceivedAtMs: received + 365*ahead}, received, received + 30_000},
		{"the caller's receipt refuses", &pb.WebhookEvent{EventTsMs: received + 365*ahead, ReceivedAtMs: received + 365*ahead}, received, 0},
		{"the caller's receipt clamps", &pb.WebhookEvent{EventTsMs: received + 10*skew, ReceivedAtMs: received + 10*skew}, received, received + skew},
		{"the receipt as the time", &pb.WebhookEvent{ReceivedAtMs: received}, 0, received},
		{"the caller's receipt as the time", &pb.WebhookEvent{ReceivedAtMs: received + 365*ahead}, received, received},
		{"no receipt at all", &pb.WebhookEvent{EventTsMs: received + 365*ahead}, 0, received + 365*ahead},
	}
	for _, tt := range tests {
		for _, where := range []string{"event", "body event_ts", "payload time_stamp"} {
			t.Run(tt.name+", "+where, func(t *testing.T) {
				ev := proto.Clone(tt.ev).(*pb.WebhookEvent)
				ts := ev.EventTsMs
				switch {
				case where == "event" || ts == 0:
					ev.Body = []byte(`{"event":"group.deleted","payload":{"object":{"id":"g"}}}`)
				case where == "body event_ts":
					ev.EventTsMs = 0
					ev.Body = []byte(`{"event":"group.deleted","event_ts":` + strconv.FormatInt(ts, 10) + `,"payload":{"object":{"id":"g"}}}`)
				default:
					ev.EventTsMs = 0
					ev.Body = []byte(`{"event":"group.deleted","payload":{"time_stamp":` + strconv.FormatInt(ts, 10) + `,"object":{"id":"g"}}}`)
				}
				got, err := Webhook(ev, tt.received)
				if tt.want == 0 {
					if !errors.Is(err, ErrFutureEvent) || !errors.Is(err, ErrBadPage) {
						t.Errorf("error got %v, want ErrFutureEvent (a bad page)", err)
					}
					if got.Batch != nil || got.Hints != nil {
						t.Errorf("result got %+v with an error, want none", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("Webhook: %v", err)
				}
				if got.Batch.GetVersionMs() != tt.want {
					t.Errorf("version got %d, want %d", got.Batch.GetVersionMs(), tt.want)
				}
			})
		}
	}
}

// FuzzWebhook checks that no body panics Webhook, that an error is always
// ErrBadPage, and that what it returns is something the writer and the
// fetcher accept.
func FuzzWebhook(f *testing.F) {
	for _, body := range zoomExamples {
		f.Add("", int64(0), []byte(body))
	}
	f.Add("group.updated", int64(1), []byte(`{"payload":{"object":{"id":"g","name":null}}}`))
	f.Add("user.invitation_accepted", int64(0), []byte(`{"payload":{"time_stamp":1e300,"object":{"id":"u","email":" "}}}`))
	f.Add("group.admin_added", int64(-5), []byte(`{"payload":{"object":{"id":"g","admins":[{"email":"A"},{"email":"a"}]}}}`))
	f.Add("x", int64(0), []byte(`null`))
	f.Add("", int64(0), []byte{0xff})
	f.Add("group.deleted", int64(received+MaxEventAhead.Milliseconds()), []byte(`{"payload":{"object":{"id":"g"}}}`))
	f.Add("group.deleted", int64(received+MaxEventAhead.Milliseconds()+1), []byte(`{"payload":{"object":{"id":"g"}}}`))
	f.Add("user.updated", int64(math.MaxInt64), []byte(`{"payload":{"object":{"id":"u"}}}`))
	f.Fuzz(func(t *testing.T, name string, ts int64, body []byte) {
		got, err := Webhook(&pb.WebhookEvent{Event: name, EventTsMs: ts, Body: body, ReceivedAtMs: received}, 0)
		if err != nil {
			if !errors.Is(err, ErrBadPage) {
				t.Errorf("error %v does not wrap ErrBadPage", err)
			}
			return
		}
		if got.Ignored != (got.Batch == nil && got.Hints == nil) {
			t.Errorf("Ignored got %v with batch %v and hints %v", got.Ignored, got.Batch, got.Hints)
		}
		for _, h := range got.Hints {
			if h.UserId == "" || h.VersionMs <= 0 {
				t.Errorf("hint %v without user id or time", h)
			}
			if h.VersionMs > received+MaxEventSkew.Milliseconds() {
				t.Errorf("hint %v dated after its receipt and the skew", h)
			}
		}
		b := got.Batch
		if b == nil {
			return
		}
		checkRecords(t, b)
		if b.VersionMs > received+MaxEventSkew.Milliseconds() {
			t.Errorf("batch version %d after its receipt %d and the skew", b.VersionMs, received)
		}
		if b.VersionMs <= 0 || b.Source != WebhookSource {
			t.Errorf("batch version %d source %q, want a time and %q", b.VersionMs, b.Source, WebhookSource)
		}
		if len(b.Records)+len(b.Deletes)+len(b.AdminsAdded)+len(b.AdminsRemoved) == 0 {
			t.Errorf("empty batch %v, want Ignored instead", b)
		}
		keys := map[string]bool{}
		for _, r := range b.Records {
			if keys[r.Key] {
				t.Errorf("record %s twice in one batch", r.Key)
			}
			keys[r.Key] = true
		}
		for _, d := range b.Deletes {
			bare := d.Key == "" || d.Key == "pending:" || d.Key == "group:" || d.Key == "group_admin:" ||
				strings.HasPrefix(d.Key, "|") || strings.HasSuffix(d.Key, "|group:")
			if bare || d.Kind == pb.Kind_KIND_UNSPECIFIED {
				t.Errorf("delete %v names no record", d)
			}
		}
		for _, ga := range append(b.AdminsAdded, b.AdminsRemoved...) {
			if ga.GroupId == "" || len(ga.Emails) == 0 {
				t.Errorf("admins %v without group or emails", ga)
			}
		}
	})
}
