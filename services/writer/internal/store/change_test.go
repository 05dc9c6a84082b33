package store_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// del is a webhook batch deleting one record at Zoom time base+offset.
func del(offset int64, kind pb.Kind, key string) *pb.RecordBatch {
	return &pb.RecordBatch{VersionMs: base + offset, Deletes: []*pb.RecordRef{{Kind: kind, Key: key}}}
}

func TestApplyChangeVersions(t *testing.T) {
	t.Parallel()
	userKind := pb.Kind_KIND_SERVICE_USER
	a := user(t, "u1", "alice@example.com", "A")
	b := user(t, "u1", "alice@example.com", "B")
	c := user(t, "u1", "alice@example.com", "C")
	type step struct {
		batch *pb.RecordBatch
		want  []string
	}
	created, updated, deleted := ev(clarity.OpCreated, uk("u1")), ev(clarity.OpUpdated, uk("u1")), ev(clarity.OpDeleted, uk("u1"))
	tests := []struct {
		name  string
		steps []step
		want  *pb.Record // alice's final data; nil when she is deleted
	}{
		{"newer updates", []step{{change(100, a), []string{created}}, {change(200, b), []string{updated}}, {change(300, c), []string{updated}}}, c},
		{"older update after newer", []step{{change(100, a), []string{created}}, {change(300, c), []string{updated}}, {change(200, b), nil}}, c},
		{"same event twice", []step{{change(100, a), []string{created}}, {change(100, a), nil}}, a},
		{"same time, other data", []step{{change(100, a), []string{created}}, {change(100, b), []string{updated}}}, b},
		{"tombstone blocks older create", []step{{del(200, userKind, "u1"), nil}, {change(100, a), nil}}, nil},
		{"delete then older update", []step{{change(100, a), []string{created}}, {del(300, userKind, "u1"), []string{deleted}}, {change(200, b), nil}}, nil},
		{"newer create revives", []step{{change(100, a), []string{created}}, {del(200, userKind, "u1"), []string{deleted}}, {change(300, c), []string{created}}}, c},
		{"newer create revives a tombstone never seen", []step{{del(200, userKind, "u1"), nil}, {change(300, c), []string{created}}}, c},
		{"older delete", []step{{change(300, a), []string{created}}, {del(200, userKind, "u1"), nil}}, a},
		{"older delete after a newer confirmation", []step{{change(100, a), []string{created}}, {change(300, a), nil}, {del(200, userKind, "u1"), nil}}, a},
		{"delete twice", []step{{change(100, a), []string{created}}, {del(200, userKind, "u1"), []string{deleted}}, {del(300, userKind, "u1"), nil}}, nil},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			for i, st := range tt.steps {
				applyChange(t, s, st.batch)
				evs := take(t, pool)
				t.Logf("step %d", i)
				wantTypes(t, evs, st.want...)
				for _, e := range evs {
					if e.Op == clarity.OpDeleted && e.Data == "{}" {
						t.Errorf("event %s: got empty data, want the last data", e)
					}
				}
			}
			got, ok := live(t, pool)[uk("u1")]
			switch {
			case tt.want == nil && ok:
				t.Errorf("got alice %s, want her deleted", got)
			case tt.want != nil && got != string(tt.want.Data):
				t.Errorf("got alice %q, want %s", got, tt.want.Data)
			}
		})
	}
}

func TestApplyChangeDeleteCascades(t *testing.T) {
	t.Parallel()
	alice := user(t, "u1", "alice@example.com", "Alice")
	setup := []*pb.Record{
		alice, user(t, "u2", "bob@example.com", "Bob"),
		group(t, "g1", "Sales"), group(t, "g2", "Eng"),
		grant(t, "u1", "group:g1"), grant(t, "u1", "group:g2"), grant(t, "u2", "group:g1"),
		attr(t, "u1", "department", "Sales"), attr(t, "u2", "department", "Eng"),
	}
	everything := []string{
		uk("u1"), uk("u2"), ek("group:g1"), ek("group:g2"),
		gk("u1", "group:g1"), gk("u1", "group:g2"), gk("u2", "group:g1"),
		ak("u1", "department"), ak("u2", "department"),
	}
	without := func(gone ...string) []string {
		var out []string
	next:
		for _, k := range everything {
			for _, g := range gone {
				if k == g {
					continue next
				}
			}
			out = append(out, k)
		}
		return out
	}
	tests := []struct {
		name  string
		batch *pb.RecordBatch
		want  []string // deleted, in event order
	}{
		{"user", del(200, pb.Kind_KIND_SERVICE_USER, "u1"),
			[]string{ak("u1", "department"), gk("u1", "group:g1"), gk("u1", "group:g2"), uk("u1")}},
		{"entitlement", del(200, pb.Kind_KIND_ENTITLEMENT, "group:g1"),
			[]string{gk("u1", "group:g1"), gk("u2", "group:g1"), ek("group:g1")}},
		{"grant", del(200, pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, clarity.GrantKey("u1", "group:g1")),
			[]string{gk("u1", "group:g1")}},
		{"attribute", del(200, pb.Kind_KIND_SERVICE_USER_ATTRIBUTE, clarity.AttributeKey("u2", "department")),
			[]string{ak("u2", "department")}},
		{"unknown user", del(200, pb.Kind_KIND_SERVICE_USER, "u9"), nil},
		{"older than the records", del(50, pb.Kind_KIND_SERVICE_USER, "u1"), nil},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			applyChange(t, s, change(100, setup...))
			before := live(t, pool)
			take(t, pool)

			applyChange(t, s, tt.batch)
			evs := take(t, pool)
			var want []string
			for _, k := range tt.want {
				want = append(want, ev(clarity.OpDeleted, k))
			}
			wantTypes(t, evs, want...)
			for _, e := range evs {
				if k := e.Kind + " " + e.Subject; e.Data != before[k] {
					t.Errorf("event %s: got data %s, want the last data %s", e, e.Data, before[k])
				}
			}
			wantLive(t, pool, without(tt.want...)...)
		})
	}
}

func TestReplaceUser(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	admin := clarity.GroupAdminKey("g1")
	applyChange(t, s, change(100,
		user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"),
		group(t, "g1", "Sales"), group(t, "g2", "Eng"), groupAdmin(t, "g1", "Sales"), role(t, "r1", "Admin"),
		grant(t, "u1", "group:g1"), grant(t, "u1", "group:g2"), grant(t, "u1", "role:r1"), grant(t, "u2", "group:g2"),
		attr(t, "u1", "department", "Sales"), attr(t, "u1", "timezone", "UTC"), attr(t, "u2", "timezone", "UTC"),
	))
	applyChange(t, s, &pb.RecordBatch{VersionMs: base + 150, AdminsAdded: []*pb.GroupAdmins{{GroupId: "g1", Emails: []string{"alice@example.com"}}}})
	take(t, pool)

	// Alice as Zoom now has her: in g1 only, no role, another department.
	dept := attr(t, "u1", "department", "Eng")
	b := change(200, user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", "group:g1"), dept)
	b.ReplaceUser = "u1"
	applyChange(t, s, b)
	evs := take(t, pool)
	wantTypes(t, evs,
		ev(clarity.OpUpdated, ak("u1", "department")),
		ev(clarity.OpDeleted, ak("u1", "timezone")),
		ev(clarity.OpDeleted, gk("u1", "group:g2")),
		ev(clarity.OpDeleted, gk("u1", "role:r1")),
	)
	wantLive(t, pool,
		uk("u1"), uk("u2"), ek("group:g1"), ek("group:g2"), ek(admin), ek("role:r1"),
		gk("u1", "group:g1"), gk("u1", admin), gk("u2", "group:g2"),
		ak("u1", "department"), ak("u2", "timezone"))
	if got := live(t, pool)[ak("u1", "department")]; got != string(dept.Data) {
		t.Errorf("got department %s, want %s", got, dept.Data)
	}

	// An older replacement keeps what is newer than it.
	b = change(180, user(t, "u1", "alice@example.com", "Alice"))
	b.ReplaceUser = "u1"
	applyChange(t, s, b)
	wantTypes(t, take(t, pool))
}

func TestAdminsAddedRemoved(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	admin := clarity.GroupAdminKey("g1")
	applyChange(t, s, change(100, user(t, "u1", "alice@example.com", "Alice"), group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales")))
	take(t, pool)
	added := func(offset int64, emails ...string) *pb.RecordBatch {
		return &pb.RecordBatch{VersionMs: base + offset, AdminsAdded: []*pb.GroupAdmins{{GroupId: "g1", Emails: emails}}}
	}
	removed := func(offset int64, emails ...string) *pb.RecordBatch {
		return &pb.RecordBatch{VersionMs: base + offset, AdminsRemoved: []*pb.GroupAdmins{{GroupId: "g1", Emails: emails}}}
	}
	steps := []struct {
		name  string
		batch *pb.RecordBatch
		want  []string
	}{
		{"added", added(200, "alice@example.com"), []string{ev(clarity.OpCreated, gk("u1", admin))}},
		{"added again", added(200, "alice@example.com"), nil},
		{"removed", removed(300, "alice@example.com"), []string{ev(clarity.OpDeleted, gk("u1", admin))}},
		{"older add after the removal", added(250, "alice@example.com"), nil},
		{"added later, upper case", added(400, "ALICE@example.com"), []string{ev(clarity.OpCreated, gk("u1", admin))}},
		{"older removal", removed(350, "alice@example.com"), nil},
		{"removed, mixed case", removed(450, "Alice@Example.com"), []string{ev(clarity.OpDeleted, gk("u1", admin))}},
		{"admin with no user yet", added(500, "bob@example.com"), nil},
		{"that user arrives", change(600, user(t, "u2", "Bob@example.com", "Bob")), []string{ev(clarity.OpCreated, uk("u2")), ev(clarity.OpCreated, gk("u2", admin))}},
		{"unknown email removed", removed(700, "carol@example.com"), nil},
	}
	for _, st := range steps {
		applyChange(t, s, st.batch)
		t.Logf("step %q", st.name)
		wantTypes(t, take(t, pool), st.want...)
	}
	wantLive(t, pool, uk("u1"), uk("u2"), ek("group:g1"), ek(admin), gk("u2", admin))
}

// TestDependentsOfAUserWhoseKeyExtendsAnother: a user's grants and
// attributes are a range of keys "<user key>|…", which also holds those of
// a user keyed "<user key>|…" itself. Deleting, replacing or expiring one
// user touches its own dependents only.
func TestDependentsOfAUserWhoseKeyExtendsAnother(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	const short, long = "pending:a@example.com", "pending:a@example.com|b"
	records := func(keys ...string) []*pb.Record {
		recs := []*pb.Record{group(t, "g1", "Sales")}
		for _, k := range keys {
			u := user(t, k, k+".mail", k)
			u.Key, u.UserKey = k, k
			recs = append(recs, u, grant(t, k, "group:g1"), attr(t, k, "department", "Sales"))
		}
		return recs
	}
	dependentsOf := func(k string) []string {
		return []string{gk(k, "group:g1"), ak(k, "department")}
	}

	// A run without the long-keyed user expires it and its dependents only.
	syncRun(t, s, pool, newRun("r1", 0), nil, records(short, long)...)
	evs := syncRun(t, s, pool, newRun("r2", 1000), nil, records(short)...)
	wantTypes(t, evs, "sync.started r2", ev(clarity.OpDeleted, ak(long, "department")), ev(clarity.OpDeleted, gk(long, "group:g1")),
		ev(clarity.OpDeleted, uk(long)), "sync.completed r2")
	wantLive(t, pool, append([]string{uk(short), ek("group:g1")}, dependentsOf(short)...)...)

	// Replacing the short-keyed user's records keeps the long-keyed one's.
	syncRun(t, s, pool, newRun("r3", 2000), nil, records(short, long)...)
	u := user(t, short, short+".mail", short)
	u.Key, u.UserKey = short, short
	applyChange(t, s, &pb.RecordBatch{VersionMs: base + 3000, Records: []*pb.Record{u}, ReplaceUser: short, Source: "test"})
	wantSet(t, take(t, pool), ev(clarity.OpDeleted, gk(short, "group:g1")), ev(clarity.OpDeleted, ak(short, "department")))
	wantLive(t, pool, append([]string{uk(short), uk(long), ek("group:g1")}, dependentsOf(long)...)...)

	// Deleting the short-keyed user deletes its records only.
	syncRun(t, s, pool, newRun("r4", 4000), nil, records(short, long)...)
	applyChange(t, s, del(5000, pb.Kind_KIND_SERVICE_USER, short))
	wantSet(t, take(t, pool), ev(clarity.OpDeleted, gk(short, "group:g1")), ev(clarity.OpDeleted, ak(short, "department")), ev(clarity.OpDeleted, uk(short)))
	wantLive(t, pool, append([]string{uk(long), ek("group:g1")}, dependentsOf(long)...)...)
}

// TestGroupAdminEventsOutOfOrder: group-admin grants derive from the admin
// rows, which follow the same rule as records: an older event never undoes
// a newer one, whatever order they arrive in.
func TestGroupAdminEventsOutOfOrder(t *testing.T) {
	t.Parallel()
	admin := clarity.GroupAdminKey("g1")
	added := func(offset int64, emails ...string) *pb.RecordBatch {
		return &pb.RecordBatch{VersionMs: base + offset, AdminsAdded: []*pb.GroupAdmins{{GroupId: "g1", Emails: emails}}}
	}
	removed := func(offset int64, emails ...string) *pb.RecordBatch {
		return &pb.RecordBatch{VersionMs: base + offset, AdminsRemoved: []*pb.GroupAdmins{{GroupId: "g1", Emails: emails}}}
	}
	setup := func(t *testing.T) (*store.Store, *pgxpool.Pool) {
		s, pool := newStore(t)
		applyChange(t, s, change(100, user(t, "u1", "alice@example.com", "Alice"), group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales")))
		take(t, pool)
		return s, pool
	}

	t.Run("a removal before its add", func(t *testing.T) {
		s, pool := setup(t)
		applyChange(t, s, removed(300, "alice@example.com"))
		applyChange(t, s, added(200, "alice@example.com")) // delayed by Zoom's retries
		wantTypes(t, take(t, pool))
		wantLive(t, pool, uk("u1"), ek("group:g1"), ek(admin))
	})

	t.Run("a re-read of the user between a removal and its event", func(t *testing.T) {
		s, pool := setup(t)
		applyChange(t, s, added(200, "alice@example.com"))
		wantTypes(t, take(t, pool), ev(clarity.OpCreated, gk("u1", admin)))
		// Alice stops being an admin at 300; her profile changes at 400,
		// and that event comes first.
		applyChange(t, s, change(400, user(t, "u1", "alice@example.com", "Alice B")))
		applyChange(t, s, removed(300, "alice@example.com"))
		wantSet(t, take(t, pool), ev(clarity.OpUpdated, uk("u1")), ev(clarity.OpDeleted, gk("u1", admin)))
		// Made an admin again at 350, after the removal: the grant comes
		// back.
		applyChange(t, s, added(350, "alice@example.com"))
		wantTypes(t, take(t, pool), ev(clarity.OpCreated, gk("u1", admin)))
	})

	t.Run("an add after its group's deletion", func(t *testing.T) {
		s, pool := setup(t)
		applyChange(t, s, del(300, pb.Kind_KIND_ENTITLEMENT, admin))
		applyChange(t, s, del(300, pb.Kind_KIND_ENTITLEMENT, "group:g1"))
		take(t, pool)
		applyChange(t, s, added(200, "alice@example.com")) // delayed
		applyChange(t, s, change(400, user(t, "u1", "alice@example.com", "Alice B")))
		wantTypes(t, take(t, pool), ev(clarity.OpUpdated, uk("u1")))
		wantLive(t, pool, uk("u1"))
	})
}

// TestGroupAdminExpiredByARun: an admin a full sync no longer listed stays
// gone when an older add arrives after the run.
func TestGroupAdminExpiredByARun(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	admin := clarity.GroupAdminKey("g1")
	syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": {"alice@example.com"}},
		user(t, "u1", "alice@example.com", "Alice"), group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales"))
	wantLive(t, pool, uk("u1"), ek("group:g1"), ek(admin), gk("u1", admin))
	evs := syncRun(t, s, pool, newRun("r2", 1000), map[string][]string{"g1": {}},
		user(t, "u1", "alice@example.com", "Alice"), group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales"))
	wantSet(t, evs, ev(clarity.OpStarted, "sync r2"), ev(clarity.OpDeleted, gk("u1", admin)), ev(clarity.OpCompleted, "sync r2"))
	// Alice was made an admin at 500, before r2 began, and removed again
	// before r2 read the admins; the add arrives only now.
	applyChange(t, s, &pb.RecordBatch{VersionMs: base + 500, AdminsAdded: []*pb.GroupAdmins{{GroupId: "g1", Emails: []string{"alice@example.com"}}}})
	applyChange(t, s, change(2000, user(t, "u1", "alice@example.com", "Alice B")))
	wantTypes(t, take(t, pool), ev(clarity.OpUpdated, uk("u1")))
	wantLive(t, pool, uk("u1"), ek("group:g1"), ek(admin))
	var deleted bool
	if err := pool.QueryRow(context.Background(), `SELECT deleted FROM group_admins WHERE group_id = 'g1' AND email = 'alice@example.com'`).Scan(&deleted); err != nil {
		t.Fatal(err)
	}
	if !deleted {
		t.Error("the late add brought back the admin the run expired")
	}
}

// TestLateDeletionOfAConfirmedUser: a deletion older than a full sync that
// found the user unchanged (its records confirmed as a whole, by digest)
// changes nothing: neither the user nor what it holds.
func TestLateDeletionOfAConfirmedUser(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	g1 := clarity.GroupKey("g1")
	recs := func() []*pb.Record {
		return []*pb.Record{user(t, "u1", "alice@example.com", "Alice"), grant(t, "u1", g1), attr(t, "u1", "department", "Sales"), group(t, "g1", "Sales")}
	}
	syncRun(t, s, pool, newRun("r1", 0), nil, recs()...)
	syncRun(t, s, pool, newRun("r2", 2000), nil, recs()...)
	applyChange(t, s, del(1500, pb.Kind_KIND_SERVICE_USER, "u1")) // delayed
	applyChange(t, s, del(1500, pb.Kind_KIND_ENTITLEMENT, g1))    // delayed
	wantTypes(t, take(t, pool))
	wantLive(t, pool, uk("u1"), gk("u1", g1), ak("u1", "department"), ek(g1))
}

// TestReadBackInTheMillisecondOfADeletion: a user read back by id is Zoom's
// state at or after the time it was asked for. Asked for in the very
// millisecond a user.deleted event carries, the answer may predate the
// deletion, and the user stays deleted; an event of that millisecond is
// later than the deletion it follows, and brings its record back.
func TestReadBackInTheMillisecondOfADeletion(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	applyChange(t, s, change(100, user(t, "u1", "alice@example.com", "Alice"), group(t, "g1", "Sales")))
	applyChange(t, s, del(200, pb.Kind_KIND_SERVICE_USER, "u1"))
	b := change(200, user(t, "u1", "alice@example.com", "Alice"))
	b.ReplaceUser = "u1"
	applyChange(t, s, b)
	wantLive(t, pool, ek("group:g1"))

	applyChange(t, s, del(300, pb.Kind_KIND_ENTITLEMENT, "group:g1"))
	applyChange(t, s, change(300, group(t, "g1", "Sales again")))
	wantLive(t, pool, ek("group:g1"))
}

// TestApplyChangesAsOneByOne: a bundle of changes (users a listing read
// back) leaves the records and events that applying them one by one
// leaves; a bundle with a bad change applies none of it.
func TestApplyChangesAsOneByOne(t *testing.T) {
	t.Parallel()
	// A full sync: its users page stores each user's digest.
	setup := func(s *store.Store, pool *pgxpool.Pool) {
		syncRun(t, s, pool, newRun("r0", 0), nil,
			user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"),
			group(t, "g1", "Sales"), group(t, "g2", "Eng"), role(t, "r1", "Admin"),
			grant(t, "u1", "group:g1"), grant(t, "u1", "role:r1"), grant(t, "u2", "group:g2"),
			attr(t, "u1", "department", "Sales"), attr(t, "u2", "timezone", "UTC"),
		)
	}
	digests := func(pool *pgxpool.Pool) []string {
		rows, err := pool.Query(t.Context(), `SELECT key FROM records WHERE digest IS NOT NULL ORDER BY key`)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	reads := func() []*pb.RecordBatch {
		a := change(200, user(t, "u1", "alice@example.com", "Alice B"), grant(t, "u1", "group:g2"))
		a.ReplaceUser = "u1"
		b := change(210, user(t, "u2", "bob@example.com", "Bob"), grant(t, "u2", "group:g1"), attr(t, "u2", "timezone", "CET"))
		b.ReplaceUser = "u2"
		c := change(220, user(t, "u3", "carol@example.com", "Carol"), grant(t, "u3", "role:r1"))
		c.ReplaceUser = "u3"
		// Older than what u1 now holds: it changes nothing.
		d := change(150, user(t, "u1", "alice@example.com", "Alice"))
		d.ReplaceUser = "u1"
		bs := []*pb.RecordBatch{a, b, c, d}
		for _, b := range bs {
			// As the normalizer makes a read's batch.
			b.Ref = &pb.PageRef{Listing: pb.Listing_LISTING_USER, Page: 1, Last: true}
		}
		return bs
	}
	one, onePool := newStore(t)
	setup(one, onePool)
	take(t, onePool)
	for _, b := range reads() {
		applyChange(t, one, b)
	}
	bundle, bundlePool := newStore(t)
	setup(bundle, bundlePool)
	take(t, bundlePool)
	if got := digests(bundlePool); len(got) != 2 {
		t.Fatalf("users with a digest after the full sync: %v, want u1 and u2", got)
	}
	if err := bundle.ApplyChanges(t.Context(), ref, reads()); err != nil {
		t.Fatal(err)
	}
	// Every user the bundle changed has lost its digest: the next users
	// page compares its records one by one.
	if got := digests(bundlePool); len(got) != 0 {
		t.Errorf("users with a digest after the bundle changed them: %v, want none", got)
	}
	if got, want := types(take(t, bundlePool)), types(take(t, onePool)); !slices.Equal(got, want) {
		t.Errorf("events: got %v, want (one by one) %v", got, want)
	}
	if got, want := live(t, bundlePool), live(t, onePool); !maps.Equal(got, want) {
		t.Errorf("records: got %v, want (one by one) %v", got, want)
	}

	before := live(t, bundlePool)
	bad := reads()
	bad[2].VersionMs = 0
	if err := bundle.ApplyChanges(t.Context(), ref, bad); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("a change without a Zoom time in the bundle: got %v, want ErrBadBatch", err)
	}
	pageAmong := reads()
	pageAmong[1].Run = newRun("r1", 300)
	if err := bundle.ApplyChanges(t.Context(), ref, pageAmong); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("a page of a run in the bundle: got %v, want ErrBadBatch", err)
	}
	if got := live(t, bundlePool); !maps.Equal(got, before) {
		t.Errorf("a refused bundle changed records: got %v, want %v", got, before)
	}
	wantTypes(t, take(t, bundlePool))
}
