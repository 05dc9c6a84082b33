package normalize

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

// escapedLen is the size of s once written as a JSON string, quotes left
// out, with every escape a change event may use (HTML escaping included):
// the reference the bounds are measured with.
func escapedLen(s string) int { return len(clarity.AppendJSONString(nil, s, true)) - 2 }

// kindNames spell record kinds as change events do.
var kindNames = map[pb.Kind]string{
	pb.Kind_KIND_SERVICE_USER:             clarity.KindServiceUser,
	pb.Kind_KIND_ENTITLEMENT:              clarity.KindEntitlement,
	pb.Kind_KIND_SERVICE_USER_ENTITLEMENT: clarity.KindServiceUserEntitlement,
	pb.Kind_KIND_SERVICE_USER_ATTRIBUTE:   clarity.KindServiceUserAttribute,
}

// eventSize is the size, headers included, of the NATS message the writer's
// relay publishes for a change of r: built by the same code (clarity.NewEvent
// and Event.AppendJSON, the headers the relay sets), with the longest tenant
// and connector names, sequence and time there can be.
func eventSize(tb testing.TB, r *pb.Record) int {
	tb.Helper()
	kind, ok := kindNames[r.GetKind()]
	if !ok {
		tb.Fatalf("record %.80q of unknown kind %v", r.GetKey(), r.GetKind())
	}
	tenant, connector := strings.Repeat("t", 63), strings.Repeat("c", 63)
	at := time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	ev := clarity.NewEvent(tenant, connector, math.MaxInt64, kind, clarity.OpDeleted, r.GetKey(), at, r.GetData())
	msg := nats.NewMsg(clarity.EventSubject(tenant, connector, kind))
	msg.Data = ev.AppendJSON(nil)
	msg.Header.Set("Content-Type", clarity.ContentType)
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	// The server's max_payload counts the headers and the data.
	return msg.Size() - len(msg.Subject) - len(msg.Reply)
}

// idFields are the data fields that hold a Zoom id or email, bounded by
// MaxIDBytes (an entitlement's id is its key); user_id and entitlement_id
// are keys, bounded by MaxKeyBytes.
var idFields = map[string]bool{"zoom_id": true, "role_id": true, "email": true}

// checkBounded checks that every value of every record of b is within its
// bound and valid UTF-8, and that the change event of every record fits in
// a NATS message. It keeps the size of the largest such event per kind in
// largest.
func checkBounded(tb testing.TB, b *pb.RecordBatch, largest map[pb.Kind]int) {
	tb.Helper()
	checkRecords(tb, b)
	for _, r := range b.GetRecords() {
		short := r.GetKey()
		if rs := []rune(short); len(rs) > 40 {
			short = string(rs[:40]) + "…"
		}
		for what, k := range map[string]string{"key": r.GetKey(), "user key": r.GetUserKey(), "entitlement key": r.GetEntitlementKey(), "email": r.GetEmail()} {
			if len(k) > MaxKeyBytes || !utf8.ValidString(k) {
				tb.Errorf("%v %q: %s of %d bytes (valid UTF-8: %v), want at most %d", r.GetKind(), short, what, len(k), utf8.ValidString(k), MaxKeyBytes)
			}
		}
		var data map[string]string
		if err := json.Unmarshal(r.GetData(), &data); err != nil {
			tb.Fatalf("%v %q: data: %v", r.GetKind(), short, err)
		}
		for f, v := range data {
			if !utf8.ValidString(v) {
				tb.Errorf("%v %q: %s is not valid UTF-8", r.GetKind(), short, f)
			}
			if n := escapedLen(v); n > MaxValueBytes {
				tb.Errorf("%v %q: %s of %d bytes escaped, want at most %d", r.GetKind(), short, f, n, MaxValueBytes)
			}
			if (idFields[f] || f == "id" && r.GetKind() == pb.Kind_KIND_SERVICE_USER) && len(v) > MaxIDBytes {
				tb.Errorf("%v %q: %s of %d bytes, want at most %d", r.GetKind(), short, f, len(v), MaxIDBytes)
			}
			if (f == "user_id" || f == "entitlement_id" || f == "id") && len(v) > MaxKeyBytes {
				tb.Errorf("%v %q: %s of %d bytes, want at most %d", r.GetKind(), short, f, len(v), MaxKeyBytes)
			}
		}
		n := eventSize(tb, r)
		if n > natstest.MaxPayload {
			tb.Errorf("%v %q: change event of %d bytes, want at most %d", r.GetKind(), short, n, natstest.MaxPayload)
		}
		largest[r.GetKind()] = max(largest[r.GetKind()], n)
	}
	for _, ga := range append([]*pb.GroupAdmins{b.GetGroupAdmins()}, append(b.GetAdminsAdded(), b.GetAdminsRemoved()...)...) {
		if ga == nil {
			continue
		}
		if len(ga.GetGroupId()) > MaxIDBytes {
			tb.Errorf("group admins of a group id of %d bytes, want at most %d", len(ga.GetGroupId()), MaxIDBytes)
		}
		for _, e := range ga.GetEmails() {
			if len(e) > MaxKeyBytes || !utf8.ValidString(e) {
				tb.Errorf("admin email of %d bytes, want at most %d", len(e), MaxKeyBytes)
			}
		}
	}
	for _, d := range b.GetDeletes() {
		if len(d.GetKey()) > MaxKeyBytes {
			tb.Errorf("delete of a key of %d bytes, want at most %d", len(d.GetKey()), MaxKeyBytes)
		}
	}
}

// hugeFills are the characters of the huge values: each costs a different
// number of bytes in a change event (a control character six, "<" six with
// HTML escaping, a quote two, "€" three as it is, U+2028 six).
var hugeFills = []struct{ name, unit string }{
	{"ascii", "a"},
	{"control characters", "\x01"},
	{"html", "<"},
	{"quotes", `"`},
	{"three-byte", "€"},
	{"mixed", "a\x01é😀\u2028\\"},
}

// values returns distinct values of at least size bytes made of unit; the
// numbers that tell them apart come last, so that values cut to their bound
// may become equal, as those of different users may.
func values(unit string, size int) func() string {
	if unit == "" {
		unit = "x"
	}
	fill := strings.Repeat(unit, max(1, size/len(unit)))
	n := 0
	return func() string {
		n++
		return fill + strconv.Itoa(n)
	}
}

// hugeUser is a Zoom user whose every text field is a value of next.
func hugeUser(next func() string, pending bool) map[string]any {
	u := map[string]any{
		"id": next(), "email": next(), "first_name": next(), "last_name": next(), "display_name": next(),
		"type": 1, "role_id": next(), "group_ids": []string{next(), next(), next()},
		"dept": next(), "timezone": next(), "language": next(), "employee_unique_id": next(),
		"last_client_version": next(), "verified": 1, "status": "active",
		"user_created_at": "2019-06-01T07:58:03Z", "last_login_time": "2022-03-25T05:40:55Z",
		"custom_attributes": []map[string]string{
			{"key": next(), "name": next(), "value": next()},
			{"key": next(), "name": next(), "value": next()},
		},
	}
	if pending {
		delete(u, "id")
	}
	return u
}

func jsonBody(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hugePages are pages of every listing, raw as the fetcher hands them over,
// whose every value is a value of at least size bytes of unit.
func hugePages(tb testing.TB, unit string, size int) []*pb.RawPage {
	tb.Helper()
	next := values(unit, size)
	pages := []*pb.RawPage{
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_ACTIVE}, Body: jsonBody(tb, map[string]any{"users": []any{hugeUser(next, false)}})},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USERS_PENDING}, Body: jsonBody(tb, map[string]any{"users": []any{hugeUser(next, true)}})},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: next(), Body: jsonBody(tb, hugeUser(next, false))},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_USER}, UserId: next(), NotFound: true},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_GROUPS}, Body: jsonBody(tb, map[string]any{
			"groups": []map[string]string{{"id": next(), "name": next()}}})},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_ROLES}, Body: jsonBody(tb, map[string]any{
			"roles": []map[string]string{{"id": next(), "name": next(), "description": next()}}})},
		{Ref: &pb.PageRef{Listing: pb.Listing_LISTING_GROUP_ADMINS, ListingKey: next()}, Body: jsonBody(tb, map[string]any{
			"admins": []map[string]string{{"email": next()}, {"email": next()}}})},
	}
	for _, p := range pages {
		p.FetchedAtMs = fetchedAt
	}
	return pages
}

// hugeEvents are webhook notifications whose every id, email and name is a
// value of at least size bytes of unit.
func hugeEvents(tb testing.TB, unit string, size int) []*pb.WebhookEvent {
	tb.Helper()
	next := values(unit, size)
	object := func(event string, o map[string]any) *pb.WebhookEvent {
		return &pb.WebhookEvent{Event: event, EventTsMs: received, ReceivedAtMs: received,
			Body: jsonBody(tb, map[string]any{"event": event, "payload": map[string]any{"object": o}})}
	}
	members := func() []map[string]string {
		return []map[string]string{{"id": next(), "email": next()}, {"id": next(), "email": next()}}
	}
	return []*pb.WebhookEvent{
		object("user.deleted", map[string]any{"id": next(), "email": next()}),
		object("user.invitation_accepted", map[string]any{"id": next(), "email": next()}),
		object("group.created", map[string]any{"id": next(), "name": next()}),
		object("group.updated", map[string]any{"id": next(), "name": next()}),
		object("group.deleted", map[string]any{"id": next()}),
		object("group.member_added", map[string]any{"id": next(), "members": members()}),
		object("group.members_deleted", map[string]any{"id": next(), "members": members()}),
		object("group.admin_added", map[string]any{"id": next(), "admins": members()}),
		object("group.admin_deleted", map[string]any{"id": next(), "admins": members()}),
	}
}

// checkHuge normalizes the huge pages and events of unit and size and checks
// everything they yield with checkBounded, and that no batch holds a record
// twice (cut values may become equal).
func checkHuge(t *testing.T, unit string, size int, largest map[pb.Kind]int) {
	t.Helper()
	var batches []*pb.RecordBatch
	for _, p := range hugePages(t, unit, size) {
		b, err := Page(p)
		if err != nil {
			t.Fatalf("%v: %v", p.GetRef().GetListing(), err)
		}
		batches = append(batches, b)
	}
	for _, ev := range hugeEvents(t, unit, size) {
		res, err := Webhook(ev, 0)
		if err != nil {
			t.Fatalf("%s: %v", ev.GetEvent(), err)
		}
		if res.Batch != nil {
			batches = append(batches, res.Batch)
		}
	}
	for _, b := range batches {
		checkBounded(t, b, largest)
		keys := map[string]bool{}
		for _, r := range b.GetRecords() {
			if keys[r.GetKey()] {
				t.Errorf("%v %.40q… twice in one batch", r.GetKind(), r.GetKey())
			}
			keys[r.GetKey()] = true
		}
	}
}

// TestHugeValuesAreBounded: pages and webhook events whose every value
// takes about 1 MiB in the page, of every kind of character, yield records
// whose values are all within their bounds, and the change event of each,
// built by the writer's code, fits in a NATS message.
func TestHugeValuesAreBounded(t *testing.T) {
	t.Parallel()
	largest := map[pb.Kind]int{}
	for _, fill := range hugeFills {
		t.Run(fill.name, func(t *testing.T) {
			// A value of 1 MiB of characters JSON escapes would make pages
			// of hundreds of megabytes; a sixth of it is still six times
			// more than the bound lets through.
			size := (1 << 20) * len(fill.unit) / escapedLen(fill.unit)
			checkHuge(t, fill.unit, size, largest)
		})
	}
	for k, n := range largest {
		t.Logf("largest %s event: %d bytes", kindNames[k], n)
	}
	// The worst case the bounds document is about 210 KB.
	if n := largest[pb.Kind_KIND_SERVICE_USER]; n > 220_000 {
		t.Errorf("largest service_user event got %d bytes, want about 210 KB at most", n)
	}
}

// FuzzHugeValues checks the bounds of every record kind for values of any
// character and of any size around the bounds.
func FuzzHugeValues(f *testing.F) {
	for _, fill := range hugeFills {
		f.Add(fill.unit, uint32(MaxIDBytes+1))
		f.Add(fill.unit, uint32(MaxValueBytes/6+1))
		f.Add(fill.unit, uint32(MaxValueBytes+7))
	}
	f.Add("\xff\xfe", uint32(MaxValueBytes))
	f.Fuzz(func(t *testing.T, unit string, size uint32) {
		checkHuge(t, unit, int(size%(2*MaxValueBytes)), map[pb.Kind]int{})
	})
}

// boundCases are values at the edges of the bounds.
var boundCases = []string{
	"",
	"plain",
	strings.Repeat("a", MaxValueBytes),
	strings.Repeat("a", MaxValueBytes+1),
	strings.Repeat("\x01", MaxValueBytes/6),
	strings.Repeat("\x01", MaxValueBytes/6+1),
	strings.Repeat("€", MaxValueBytes/3+1),
	"a" + strings.Repeat("€", MaxValueBytes/3),
	strings.Repeat("😀", MaxValueBytes/4) + "x",
	"x" + strings.Repeat("😀", MaxValueBytes/4),
	strings.Repeat("\u2028<>&\"\\\n", MaxValueBytes/10),
	strings.Repeat("é", MaxIDBytes/2) + "x",
	"x" + strings.Repeat("é", MaxIDBytes/2),
	"\xff" + strings.Repeat("\xe2\x82", MaxValueBytes/4),
}

func TestBounds(t *testing.T) {
	t.Parallel()
	for _, s := range boundCases {
		checkBound(t, s)
	}
}

// FuzzBounds checks BoundID and BoundValue on any string, repeated to reach
// the bounds.
func FuzzBounds(f *testing.F) {
	for _, s := range boundCases {
		f.Add(s, uint16(1))
	}
	f.Add("é", uint16(MaxIDBytes/2))
	f.Add("a\x01", uint16(MaxValueBytes/7))
	f.Fuzz(func(t *testing.T, s string, n uint16) {
		if s == "" {
			return
		}
		// Up to a few times the larger bound.
		checkBound(t, strings.Repeat(s, int(n)%(3*MaxValueBytes/len(s)+1)+1))
	})
}

// checkBound checks that BoundID and BoundValue cut s to a prefix within
// their bound, at a character boundary, and no shorter than needed.
func checkBound(tb testing.TB, s string) {
	tb.Helper()
	id := BoundID(s)
	if !strings.HasPrefix(s, id) || len(id) > MaxIDBytes {
		tb.Errorf("BoundID of %d bytes: got %d bytes, want a prefix of at most %d", len(s), len(id), MaxIDBytes)
	}
	if rest := s[len(id):]; rest != "" {
		if _, size := utf8.DecodeRuneInString(rest); len(id)+size <= MaxIDBytes {
			tb.Errorf("BoundID of %d bytes: got %d bytes, want the next character too", len(s), len(id))
		}
	}
	v := BoundValue(s)
	if !strings.HasPrefix(s, v) || escapedLen(v) > MaxValueBytes {
		tb.Errorf("BoundValue of %d bytes: got %d bytes, %d escaped; want a prefix of at most %d escaped", len(s), len(v), escapedLen(v), MaxValueBytes)
	}
	if rest := s[len(v):]; rest != "" {
		_, size := utf8.DecodeRuneInString(rest)
		if escapedLen(s[:len(v)+size]) <= MaxValueBytes {
			tb.Errorf("BoundValue of %d bytes: got %d bytes, want the next character too", len(s), len(v))
		}
	}
	if utf8.ValidString(s) && (!utf8.ValidString(id) || !utf8.ValidString(v)) {
		tb.Errorf("bounds of valid UTF-8 gave invalid UTF-8")
	}
}
