package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/postgres"
	"github.com/claritysecurity/zoom-connector/pkg/postgres/pgtest"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/outbox"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// ref is the connector of every test but those that need two.
var ref = pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}

// base is a fixed Zoom time; runs and events are placed relative to it.
var base = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC).UnixMilli()

// migrate prepares the template database of pgtest.
func migrate(ctx context.Context, url string) error {
	pool, err := postgres.Open(ctx, url, 2, zerolog.Nop())
	if err != nil {
		return err
	}
	defer pool.Close()
	return store.Migrate(ctx, pool)
}

// newStore returns a store on a fresh, migrated database and a pool on it,
// with the options given (none: the zero Options).
func newStore(t testing.TB, opts ...store.Options) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.New(t, migrate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, url, 8, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return store.New(pool, zerolog.Nop(), o), pool
}

// reset empties every table, so that the cases of a table-driven test can
// share one database: creating a database costs far more than emptying one.
func reset(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(),
		`TRUNCATE records, group_admins, runs, run_pages, outbox, sequences, connectors RESTART IDENTITY`); err != nil {
		t.Fatal(err)
	}
}

// event is one change held by the outbox.
type event struct {
	Seq     int64
	Kind    string
	Op      string
	Subject string
	Data    string
	Removal string
}

func (e event) String() string { return fmt.Sprintf("%d %s.%s %s", e.Seq, e.Kind, e.Op, e.Subject) }

// typ is the short form "kind.op subject" used to compare event lists.
func (e event) typ() string { return e.Kind + "." + e.Op + " " + e.Subject }

// take returns the outbox rows in sequence order and deletes them, as the
// relay would, so that each step of a test sees only its own changes.
func take(t testing.TB, pool *pgxpool.Pool) []event {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT first_seq, last_seq, changes, encoding FROM outbox ORDER BY first_seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var first, last int64
		var body []byte
		var encoding string
		if err := rows.Scan(&first, &last, &body, &encoding); err != nil {
			t.Fatal(err)
		}
		batch, err := outbox.DecodeChanges(body, encoding)
		if err != nil {
			t.Fatalf("outbox row %d: %v", first, err)
		}
		if got, want := int64(len(batch.Changes)), last-first+1; got != want {
			t.Fatalf("outbox row %d: got %d changes, want %d", first, got, want)
		}
		for i, c := range batch.Changes {
			out = append(out, event{Seq: first + int64(i), Kind: c.Kind, Op: c.Op, Subject: c.Subject, Data: string(c.Data), Removal: c.Removal})
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM outbox`); err != nil {
		t.Fatal(err)
	}
	return out
}

// types returns "kind.op subject" of each event.
func types(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.typ()
	}
	return out
}

// wantTypes compares the events with want, in order.
func wantTypes(t testing.TB, evs []event, want ...string) {
	t.Helper()
	got := types(evs)
	if want == nil {
		want = []string{}
	}
	if len(got) == 0 {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got events\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// wantSet compares the events with want, in any order.
func wantSet(t testing.TB, evs []event, want ...string) {
	t.Helper()
	got := types(evs)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got events\n\t%s\nwant (any order)\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// wantSeqs checks that the events carry the sequences from, from+1, … in order.
func wantSeqs(t testing.TB, evs []event, from int64) {
	t.Helper()
	for i, e := range evs {
		if want := from + int64(i); e.Seq != want {
			t.Errorf("event %d (%s): got sequence %d, want %d", i, e.typ(), e.Seq, want)
		}
	}
}

// syncData decodes the data of a sync event.
func syncData(t testing.TB, e event) clarity.SyncData {
	t.Helper()
	if e.Kind != clarity.KindSync {
		t.Fatalf("got %s, want a sync event", e)
	}
	var d clarity.SyncData
	if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
		t.Fatalf("decode sync data %s: %v", e.Data, err)
	}
	return d
}

// live returns the data of every live record, by "kind key".
func live(t testing.TB, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT kind, key, data::text FROM records WHERE NOT deleted`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var kind int16
		var key, data string
		if err := rows.Scan(&kind, &key, &data); err != nil {
			t.Fatal(err)
		}
		out[pipeline.KindName(pb.Kind(kind))+" "+key] = data
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// liveKeys returns the sorted "kind key" of every live record.
func liveKeys(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	var out []string
	for k := range live(t, pool) {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantLive(t testing.TB, pool *pgxpool.Pool, want ...string) {
	t.Helper()
	got := liveKeys(t, pool)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got live records\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// Short names of record identities as live() and the events print them.
func uk(key string) string { return clarity.KindServiceUser + " " + key }
func ek(key string) string { return clarity.KindEntitlement + " " + key }
func gk(user, ent string) string {
	return clarity.KindServiceUserEntitlement + " " + clarity.GrantKey(user, ent)
}
func ak(user, name string) string {
	return clarity.KindServiceUserAttribute + " " + clarity.AttributeKey(user, name)
}

// Event types in the same short form.
func ev(op, id string) string {
	kind, key, _ := strings.Cut(id, " ")
	return kind + "." + op + " " + key
}

func record(t testing.TB, kind pb.Kind, key string, v any) *pb.Record {
	t.Helper()
	data, err := clarity.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Record{Kind: kind, Key: key, Data: data, Hash: clarity.Hash(data)}
}

// user is a service user record; name changes its data.
func user(t testing.TB, id, email, name string) *pb.Record {
	t.Helper()
	r := record(t, pb.Kind_KIND_SERVICE_USER, id, clarity.ServiceUser{
		ID: id, Email: email, FirstName: name, DisplayName: name, Status: clarity.StatusActive, License: "basic",
	})
	r.UserKey = id
	r.Email = strings.ToLower(email)
	return r
}

func group(t testing.TB, id, name string) *pb.Record {
	t.Helper()
	key := clarity.GroupKey(id)
	return record(t, pb.Kind_KIND_ENTITLEMENT, key, clarity.Entitlement{ID: key, Type: clarity.EntitlementGroup, ZoomID: id, Name: name})
}

func groupAdmin(t testing.TB, id, name string) *pb.Record {
	t.Helper()
	key := clarity.GroupAdminKey(id)
	return record(t, pb.Kind_KIND_ENTITLEMENT, key, clarity.Entitlement{ID: key, Type: clarity.EntitlementGroupAdmin, ZoomID: id, Name: name + " (admin)"})
}

func role(t testing.TB, id, name string) *pb.Record {
	t.Helper()
	key := clarity.RoleKey(id)
	return record(t, pb.Kind_KIND_ENTITLEMENT, key, clarity.Entitlement{ID: key, Type: clarity.EntitlementRole, ZoomID: id, Name: name})
}

func grant(t testing.TB, userKey, entKey string) *pb.Record {
	t.Helper()
	r := record(t, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey(userKey, entKey), clarity.Grant{UserID: userKey, EntitlementID: entKey})
	r.UserKey, r.EntitlementKey = userKey, entKey
	return r
}

func attr(t testing.TB, userKey, name, value string) *pb.Record {
	t.Helper()
	r := record(t, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, clarity.AttributeKey(userKey, name), clarity.Attribute{UserID: userKey, Name: name, Value: value})
	r.UserKey = userKey
	return r
}

// newRun is a run started at base+offset ms.
func newRun(id string, offset int64, requests ...string) *pb.Run {
	return &pb.Run{RunId: id, StartedAtMs: base + offset, Mode: "full", RequestIds: requests}
}

// page is page n of listing l (pass 0) of run, fetched 100 ms after the run began.
func page(run *pb.Run, l pb.Listing, n int32, recs ...*pb.Record) *pb.RecordBatch {
	return &pb.RecordBatch{
		Run:       run,
		Ref:       &pb.PageRef{Listing: l, Page: n},
		VersionMs: run.StartedAtMs + 100,
		Records:   recs,
	}
}

// adminsPage is the one page of the admins of group id.
func adminsPage(run *pb.Run, id string, emails ...string) *pb.RecordBatch {
	b := page(run, pb.Listing_LISTING_GROUP_ADMINS, 1)
	b.Ref.ListingKey = id
	b.GroupAdmins = &pb.GroupAdmins{GroupId: id, Emails: emails}
	return b
}

// listing is one line of a RunFetched manifest.
type listing struct {
	l     pb.Listing
	key   string
	pages int32
	pass  int32
}

func fetched(run *pb.Run, api int64, ls ...listing) *pb.RunFetched {
	f := &pb.RunFetched{Run: run, ApiRequests: api}
	for _, l := range ls {
		f.Listings = append(f.Listings, &pb.ListingCount{Listing: l.l, ListingKey: l.key, Pages: l.pages, Pass: l.pass})
	}
	return f
}

// change is a webhook batch at Zoom time base+offset.
func change(offset int64, recs ...*pb.Record) *pb.RecordBatch {
	return &pb.RecordBatch{VersionMs: base + offset, Records: recs, Source: "test"}
}

// Thin wrappers that fail the test on an error.

func applyPage(t testing.TB, s *store.Store, b *pb.RecordBatch) {
	t.Helper()
	if err := s.ApplyPage(context.Background(), ref, b); err != nil {
		t.Fatalf("apply page %v: %v", b.Ref, err)
	}
}

func applyChange(t testing.TB, s *store.Store, b *pb.RecordBatch) {
	t.Helper()
	if err := s.ApplyChange(context.Background(), ref, b); err != nil {
		t.Fatalf("apply change at %d: %v", b.VersionMs, err)
	}
}

func markFetched(t testing.TB, s *store.Store, f *pb.RunFetched) {
	t.Helper()
	if err := s.Fetched(context.Background(), ref, f); err != nil {
		t.Fatalf("fetched %s: %v", f.Run.RunId, err)
	}
}

func finalize(t testing.TB, s *store.Store, runID string) bool {
	t.Helper()
	done, err := s.Finalize(context.Background(), ref, runID)
	if err != nil {
		t.Fatalf("finalize %s: %v", runID, err)
	}
	return done
}

// runStatus returns the stored status of a run.
func runStatus(t testing.TB, pool *pgxpool.Pool, runID string) string {
	t.Helper()
	var status string
	if err := pool.QueryRow(context.Background(), `SELECT status FROM runs WHERE run_id = $1`, runID).Scan(&status); err != nil {
		t.Fatalf("run %s: %v", runID, err)
	}
	return status
}

// syncRun applies a whole one-page users run of recs (and the given group
// admin pages) and finalizes it, and returns the events it emitted.
func syncRun(t testing.TB, s *store.Store, pool *pgxpool.Pool, run *pb.Run, admins map[string][]string, recs ...*pb.Record) []event {
	t.Helper()
	applyPage(t, s, page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, recs...))
	ls := []listing{{l: pb.Listing_LISTING_USERS_ACTIVE, pages: 1}}
	for id, emails := range admins {
		applyPage(t, s, adminsPage(run, id, emails...))
		ls = append(ls, listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: id, pages: 1})
	}
	markFetched(t, s, fetched(run, 3, ls...))
	if !finalize(t, s, run.RunId) {
		t.Fatalf("finalize %s: got not completed, want completed", run.RunId)
	}
	if got := runStatus(t, pool, run.RunId); got != store.RunCompleted {
		t.Fatalf("run %s: got status %q, want %q", run.RunId, got, store.RunCompleted)
	}
	return take(t, pool)
}
