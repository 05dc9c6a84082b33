package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// guardOrg is n users u0…u(n-1), each in group g0 with an attribute, and
// the groups g0…g(groups-1).
func guardOrg(t testing.TB, n, groups int) []*pb.Record {
	t.Helper()
	var recs []*pb.Record
	for i := range groups {
		recs = append(recs, group(t, fmt.Sprintf("g%d", i), fmt.Sprintf("Group %d", i)))
	}
	for i := range n {
		id := fmt.Sprintf("u%d", i)
		recs = append(recs, user(t, id, id+"@x.com", "User "+id),
			grant(t, id, clarity.GroupKey("g0")), attr(t, id, "department", "Sales"))
	}
	return recs
}

// without drops the records of the users and groups named (a user's grants
// and attributes go with it).
func without(recs []*pb.Record, keys ...string) []*pb.Record {
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	var out []*pb.Record
	for _, r := range recs {
		if drop[r.Key] || (r.UserKey != "" && drop[r.UserKey]) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// lastSync returns the data of the last sync event of evs.
func lastSync(t testing.TB, evs []event) clarity.SyncData {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == clarity.KindSync {
			return syncData(t, evs[i])
		}
	}
	t.Fatal("no sync event")
	return clarity.SyncData{}
}

func TestDeletionGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		threshold float64
		drop      []string // users and groups the second run no longer lists
		held      *clarity.HeldCounts
	}{
		{"30% of users gone: held", 0.2, []string{"u7", "u8", "u9"}, &clarity.HeldCounts{ServiceUser: 3}},
		{"20% of users gone: deleted", 0.2, []string{"u8", "u9"}, nil},
		{"half the groups gone: held", 0.2, []string{"group:g3", "group:g4"}, &clarity.HeldCounts{ServiceUser: 1, Entitlement: 2}},
		{"guard off", 0, []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t, store.Options{DeleteThreshold: tc.threshold})
			org := guardOrg(t, 10, 5)
			syncRun(t, s, pool, newRun("r1", 0), nil, org...)
			before := live(t, pool)
			drop := tc.drop
			if tc.held != nil && tc.held.Entitlement > 0 {
				drop = append(drop, "u9") // users and groups at once
			}
			evs := syncRun(t, s, pool, newRun("r2", 1000), nil, without(org, drop...)...)
			d := lastSync(t, evs)
			if tc.held == nil {
				if d.Deletions != "" || d.Held != nil {
					t.Errorf("sync.completed: got deletions %q held %+v, want none held", d.Deletions, d.Held)
				}
				if got := len(deletionsOf(evs)); got == 0 {
					t.Errorf("got no deleted events, want the absent records deleted")
				}
				return
			}
			if d.Deletions != store.DeletionsHeld || d.Held == nil || *d.Held != *tc.held {
				t.Fatalf("sync.completed: got deletions %q held %+v, want %q %+v", d.Deletions, d.Held, store.DeletionsHeld, *tc.held)
			}
			if got := types(deletionsOf(evs)); len(got) > 0 {
				t.Errorf("a run whose deletions were held deleted %v", got)
			}
			if after := live(t, pool); !maps.Equal(after, before) {
				t.Errorf("records after a held run: got %d, want the %d before it, unchanged", len(after), len(before))
			}

			// An operator confirms: the held records go, dependents first.
			c, err := s.ConfirmDeletions(context.Background(), ref, "r2")
			if err != nil {
				t.Fatal(err)
			}
			if c.HeldUsers != tc.held.ServiceUser || c.HeldEntitlements != tc.held.Entitlement {
				t.Errorf("confirmation: got held %d users %d entitlements, want %+v", c.HeldUsers, c.HeldEntitlements, *tc.held)
			}
			evs = take(t, pool)
			var want []string
			for _, k := range drop {
				if k[0] == 'u' {
					want = append(want, ev(clarity.OpDeleted, ak(k, "department")), ev(clarity.OpDeleted, gk(k, clarity.GroupKey("g0"))), ev(clarity.OpDeleted, uk(k)))
				} else {
					want = append(want, ev(clarity.OpDeleted, ek(k)))
				}
			}
			wantSet(t, evs, want...)
			if c.Deleted != int64(len(want)) {
				t.Errorf("confirmation: got %d deleted, want %d", c.Deleted, len(want))
			}
			for _, k := range drop {
				if _, ok := live(t, pool)[uk(k)]; ok {
					t.Errorf("user %s still there after the confirmation", k)
				}
			}
			if _, err := s.ConfirmDeletions(context.Background(), ref, "r2"); !errors.Is(err, store.ErrNoHeldDeletions) {
				t.Errorf("second confirmation: got %v, want ErrNoHeldDeletions", err)
			}
		})
	}
}

func TestDeletionGuardAfterLaterRuns(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, store.Options{DeleteThreshold: 0.2})
	org := guardOrg(t, 10, 1)
	syncRun(t, s, pool, newRun("r1", 0), nil, org...)
	// Run 2 misses three users: held.
	evs := syncRun(t, s, pool, newRun("r2", 1000), nil, without(org, "u7", "u8", "u9")...)
	if d := lastSync(t, evs); d.Deletions != store.DeletionsHeld {
		t.Fatalf("run 2: got deletions %q, want held", d.Deletions)
	}
	// Run 3 lists u9 again and still misses u7 and u8, 2 of 10: within
	// the threshold, it deletes them itself.
	evs = syncRun(t, s, pool, newRun("r3", 2000), nil, without(org, "u7", "u8")...)
	if d := lastSync(t, evs); d.Deletions != "" {
		t.Fatalf("run 3: got deletions %q, want none held", d.Deletions)
	}
	wantSet(t, deletionsOf(evs), ev(clarity.OpDeleted, uk("u7")), ev(clarity.OpDeleted, uk("u8")),
		ev(clarity.OpDeleted, ak("u7", "department")), ev(clarity.OpDeleted, ak("u8", "department")),
		ev(clarity.OpDeleted, gk("u7", clarity.GroupKey("g0"))), ev(clarity.OpDeleted, gk("u8", clarity.GroupKey("g0"))))
	// Confirming run 2 now deletes nothing: u9 was seen again since.
	c, err := s.ConfirmDeletions(context.Background(), ref, "r2")
	if err != nil {
		t.Fatal(err)
	}
	if c.Deleted != 0 {
		t.Errorf("confirming run 2 after run 3: got %d deleted, want 0", c.Deleted)
	}
	if _, ok := live(t, pool)[uk("u9")]; !ok {
		t.Error("user u9, listed again by run 3, was deleted by the confirmation of run 2")
	}
	wantTypes(t, take(t, pool))
}

func TestConfirmDeletionsRefuses(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, store.Options{DeleteThreshold: 0.2})
	org := guardOrg(t, 10, 1)
	syncRun(t, s, pool, newRun("r1", 0), nil, org...)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		connector pipeline.ConnectorRef
		run       string
		want      error
	}{
		{"a run that held nothing", ref, "r1", store.ErrNoHeldDeletions},
		{"no such run", ref, "r9", store.ErrUnknownRun},
		{"no such connector", pipeline.ConnectorRef{Tenant: "other", ID: "zoom"}, "r1", store.ErrUnknownRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.ConfirmDeletions(ctx, tc.connector, tc.run); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM connectors`).Scan(&n); err != nil || n != 1 {
		t.Errorf("connectors: got %d (%v), want 1: a refused confirmation created one", n, err)
	}
}

func deletionsOf(evs []event) []event {
	var out []event
	for _, e := range evs {
		if e.Op == clarity.OpDeleted {
			out = append(out, e)
		}
	}
	return out
}
