package store_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
)

func TestGroupAdminGrants(t *testing.T) {
	t.Parallel()
	admin := clarity.GroupAdminKey("g1")
	tests := []struct {
		name      string
		userEmail string
		admins    []string
		want      []string // grant owners
	}{
		{"same email", "alice@example.com", []string{"alice@example.com"}, []string{"u1"}},
		{"email in another case", "Alice@Example.COM", []string{"alice@example.com"}, []string{"u1"}},
		{"admin listed in upper case", "alice@example.com", []string{"ALICE@EXAMPLE.COM"}, []string{"u1"}},
		{"email of no user", "alice@example.com", []string{"carol@example.com"}, nil},
		{"one of two", "alice@example.com", []string{"carol@example.com", "bob@example.com"}, []string{"u2"}},
		{"no admins", "alice@example.com", nil, nil},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			evs := syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": tt.admins},
				user(t, "u1", tt.userEmail, "Alice"), user(t, "u2", "bob@example.com", "Bob"),
				group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales"))
			var want []string
			for _, u := range tt.want {
				want = append(want, ev(clarity.OpCreated, gk(u, admin)))
			}
			var got []event
			for _, e := range evs {
				if e.Kind == clarity.KindServiceUserEntitlement {
					got = append(got, e)
				}
			}
			wantSet(t, got, want...)
			for _, e := range got {
				var g clarity.Grant
				if err := json.Unmarshal([]byte(e.Data), &g); err != nil || g.EntitlementID != admin || clarity.GrantKey(g.UserID, g.EntitlementID) != e.Subject {
					t.Errorf("event %s: got data %s, want a grant of %s matching its subject", e, e.Data, admin)
				}
			}
		})
	}
}

func TestGroupAdminGrantsFollowListing(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	ents := []*pb.Record{group(t, "g1", "Sales"), groupAdmin(t, "g1", "Sales")}
	admin := clarity.GroupAdminKey("g1")
	all := append([]*pb.Record{alice, bob}, ents...)

	syncRun(t, s, pool, newRun("r1", 0), map[string][]string{"g1": {"alice@example.com"}}, all...)
	wantLive(t, pool, uk("u1"), uk("u2"), ek("group:g1"), ek(admin), gk("u1", admin))

	steps := []struct {
		name   string
		admins []string
		recs   []*pb.Record
		want   []string
	}{
		{"unchanged", []string{"alice@example.com"}, all, []string{"sync.started r2", "sync.completed r2"}},
		{"admin changes", []string{"bob@example.com"}, all, []string{"sync.started r3", ev(clarity.OpCreated, gk("u2", admin)), ev(clarity.OpDeleted, gk("u1", admin)), "sync.completed r3"}},
		// Bob is gone from Zoom, yet the admin listing still names him: his
		// grant goes with him, none dangles.
		{"admin user gone", []string{"bob@example.com"}, append([]*pb.Record{alice}, ents...), []string{"sync.started r4", ev(clarity.OpDeleted, gk("u2", admin)), ev(clarity.OpDeleted, uk("u2")), "sync.completed r4"}},
		{"no admin", nil, append([]*pb.Record{alice}, ents...), []string{"sync.started r5", "sync.completed r5"}},
	}
	for i, st := range steps {
		run := newRun(fmt.Sprintf("r%d", i+2), int64(i+1)*10_000)
		evs := syncRun(t, s, pool, run, map[string][]string{"g1": st.admins}, st.recs...)
		t.Logf("step %q", st.name)
		wantTypes(t, evs, st.want...)
		if i == 0 && len(evs) > 0 {
			// Users, entitlements and the derived grant, each once.
			want := clarity.SyncStats{Unchanged: 5, APIRequests: 3}
			if got := syncData(t, evs[len(evs)-1]).Stats; got != want {
				t.Errorf("got stats %+v, want %+v", got, want)
			}
		}
	}
	wantLive(t, pool, uk("u1"), ek("group:g1"), ek(admin))
}
