package pipe

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// changes lists what b changes, one string per change, in the order
// changeCount counts them.
func changes(b *pb.RecordBatch) []string {
	var out []string
	for _, d := range b.GetDeletes() {
		out = append(out, "delete "+d.GetKey())
	}
	for _, r := range b.GetRecords() {
		out = append(out, "record "+r.GetKey())
	}
	for _, ga := range b.GetAdminsRemoved() {
		for _, e := range ga.GetEmails() {
			out = append(out, "admin removed "+ga.GetGroupId()+" "+e)
		}
	}
	for _, ga := range b.GetAdminsAdded() {
		for _, e := range ga.GetEmails() {
			out = append(out, "admin added "+ga.GetGroupId()+" "+e)
		}
	}
	return out
}

// decodeMsg returns the record batch msg carries.
func decodeMsg(tb testing.TB, msg *nats.Msg) *pb.RecordBatch {
	tb.Helper()
	var env pb.Envelope
	if err := pipeline.Unmarshal(msg.Header, msg.Data, &env); err != nil {
		tb.Fatal(err)
	}
	if env.Tenant != ref.Tenant || env.Connector != ref.ID || env.GetRecords() == nil {
		tb.Fatalf("got %v, want a record batch of %s", &env, ref)
	}
	return env.GetRecords()
}

// incompressible is a string of n bytes that S2 cannot shrink much, distinct
// for each seed.
func incompressible(seed, n int) string {
	var sb strings.Builder
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for sb.Len() < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		sb.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[x%64])
	}
	return sb.String()
}

// TestChangeMsgs: a batch of changes is carried whole in one message when it
// fits, and otherwise in several, each within the limit, that together carry
// every change once, in order, at the batch's version; the same batch is
// always split the same way. A batch that cannot be split, or a single
// change too large for a message, is refused for good.
func TestChangeMsgs(t *testing.T) {
	t.Parallel()
	const limit = 16 << 10
	mixed := &pb.RecordBatch{VersionMs: 42, Source: "webhook"}
	for i := range 40 {
		mixed.Deletes = append(mixed.Deletes, &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: incompressible(i, 300)})
		mixed.Records = append(mixed.Records, &pb.Record{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT,
			Key: "r" + strconv.Itoa(i), Data: []byte(`"` + incompressible(1000+i, 300) + `"`)})
	}
	for g := range 3 {
		var emails []string
		for i := range 20 {
			emails = append(emails, incompressible(2000+20*g+i, 100))
		}
		mixed.AdminsRemoved = append(mixed.AdminsRemoved, &pb.GroupAdmins{GroupId: "g" + strconv.Itoa(g), Emails: emails})
		mixed.AdminsAdded = append(mixed.AdminsAdded, &pb.GroupAdmins{GroupId: "h" + strconv.Itoa(g), Emails: emails})
	}
	small := &pb.RecordBatch{VersionMs: 42, Source: "webhook", Deletes: mixed.Deletes[:2]}
	compressible := &pb.RecordBatch{VersionMs: 42, Source: "webhook"}
	for i := range 500 {
		compressible.Records = append(compressible.Records, &pb.Record{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT,
			Key: "user" + strconv.Itoa(i) + "|group:g", UserKey: "user" + strconv.Itoa(i), EntitlementKey: "group:g"})
	}
	oneHuge := &pb.RecordBatch{VersionMs: 42, Source: "webhook", Records: []*pb.Record{{Key: incompressible(1, 2*limit)}}}
	page := proto.Clone(mixed).(*pb.RecordBatch)
	page.Run = &pb.Run{RunId: "r"}
	user := proto.Clone(mixed).(*pb.RecordBatch)
	user.ReplaceUser = "u"

	tests := []struct {
		name      string
		b         *pb.RecordBatch
		minParts  int
		maxParts  int
		permanent bool
	}{
		{name: "small", b: small, minParts: 1, maxParts: 1},
		{name: "compressible", b: compressible, minParts: 1, maxParts: 1},
		{name: "mixed", b: mixed, minParts: 3, maxParts: 16},
		{name: "one change too large", b: oneHuge, permanent: true},
		{name: "a page", b: page, permanent: true},
		{name: "a re-read user", b: user, permanent: true},
	}
	// Only compressed does it fit.
	if n := proto.Size(compressible); n <= limit {
		t.Fatalf("compressible batch of %d bytes, want more than %d", n, limit)
	}
	p := New(Config{MaxPayload: limit})
	const stem = "ZOOM_WEBHOOK/18446744073709551615"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs, err := p.changeMsgs(ref, tt.b, stem)
			if tt.permanent {
				if !errors.Is(err, natsx.ErrPermanent) {
					t.Errorf("error got %v, want a permanent one", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) < tt.minParts || len(msgs) > tt.maxParts {
				t.Errorf("got %d messages, want %d to %d", len(msgs), tt.minParts, tt.maxParts)
			}
			var got []string
			for i, m := range msgs {
				if want := pipeline.RecordsSubject(ref); m.Subject != want {
					t.Errorf("message %d: subject got %q, want %q", i, m.Subject, want)
				}
				// The id the part gets, the longest there is.
				m.Header.Set("Nats-Msg-Id", stem+"/records/"+strconv.Itoa(i+1000))
				if size := m.Size() - len(m.Subject); size > limit {
					t.Errorf("message %d: %d bytes with its id, want at most %d", i, size, limit)
				}
				b := decodeMsg(t, m)
				if b.GetVersionMs() != 42 || b.GetSource() != "webhook" {
					t.Errorf("message %d: version %d source %q, want 42 and webhook", i, b.GetVersionMs(), b.GetSource())
				}
				got = append(got, changes(b)...)
			}
			if want := changes(tt.b); !slices.Equal(got, want) {
				t.Errorf("messages carry %d changes, want the batch's %d in order", len(got), len(want))
			}
			again, err := p.changeMsgs(ref, tt.b, stem)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(msgs) {
				t.Fatalf("split again: %d messages, want %d", len(again), len(msgs))
			}
			for i := range again {
				if string(again[i].Data) != string(msgs[i].Data) {
					t.Errorf("split again: message %d differs", i)
				}
			}
		})
	}
}

// TestReadBundleSplits: a bundle of users read back whose changes do not
// fit in one message goes as several, each within the limit with its id,
// each user's change whole, every user once; a user whose change alone is
// too large is left out and the others go on.
func TestReadBundleSplits(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	js, cons := setup(t, pipeline.StreamRaw)
	handleRaw := New(Config{Publisher: js, Log: zerolog.Nop(), MaxPayload: limit}).Raw()
	read := func(id, name string) *pb.RawPage {
		body, _ := json.Marshal(map[string]any{"id": id, "email": id + "@example.com", "status": "active", "type": 1, "last_name": name})
		return &pb.RawPage{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true},
			UserId: id, VersionMs: 1764331300000, FetchedAtMs: 1764331200000, Body: body}
	}
	var pages []*pb.RawPage
	var want []string
	for i := range 24 {
		id := "u" + strconv.Itoa(i)
		name := incompressible(i, 400)
		if i == 7 {
			name = incompressible(i, 2*limit) // too large alone
		} else {
			want = append(want, id)
		}
		pages = append(pages, read(id, name))
	}
	if n := proto.Size(&pb.RawPages{Pages: pages}); n <= limit {
		t.Fatalf("bundle of %d bytes, want more than the limit %d", n, limit)
	}
	// The raw stream's server takes larger messages than the pipe's limit.
	if err := handleBundle(t, js, cons, handleRaw, pages...); err != nil {
		t.Fatalf("bundle of reads: %v", err)
	}
	var got []string
	ids := map[string]bool{}
	for _, m := range natstest.StreamMsgs(t, js, pipeline.StreamRecords) {
		if size := len(m.Data) + len(m.Header.Get(jetstream.MsgIDHeader)) + idRoom; size > limit {
			t.Errorf("message of %d bytes with its id, want at most %d", size, limit)
		}
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
		var env pb.Envelope
		if err := pipeline.Unmarshal(m.Header, m.Data, &env); err != nil {
			t.Fatal(err)
		}
		for _, b := range env.GetRecordBatches().GetBatches() {
			if b.GetReplaceUser() == "" || len(b.GetRecords()) == 0 {
				t.Errorf("change %v: want a user's whole change", b)
			}
			got = append(got, b.GetReplaceUser())
		}
	}
	if len(ids) < 2 {
		t.Errorf("%d messages under distinct ids, want the bundle split in several", len(ids))
	}
	if !slices.Equal(got, want) {
		t.Errorf("users published %v, want %v (all but the one too large, in order)", got, want)
	}
}
