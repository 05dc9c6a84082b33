package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

const (
	usersActive = pb.Listing_LISTING_USERS_ACTIVE
	groups      = pb.Listing_LISTING_GROUPS
)

func TestApplyPageCreatesRecordsAndOutboxInOrder(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0, "req-1")
	recs := []*pb.Record{
		user(t, "u1", "alice@example.com", "Alice"),
		user(t, "u2", "bob@example.com", "Bob"),
		group(t, "g1", "Sales"),
		grant(t, "u1", "group:g1"),
		attr(t, "u1", "department", "Sales"),
	}
	applyPage(t, s, page(run, usersActive, 1, recs...))

	evs := take(t, pool)
	wantTypes(t, evs,
		"sync.started r1",
		ev(clarity.OpCreated, uk("u1")),
		ev(clarity.OpCreated, uk("u2")),
		ev(clarity.OpCreated, ek("group:g1")),
		ev(clarity.OpCreated, gk("u1", "group:g1")),
		ev(clarity.OpCreated, ak("u1", "department")),
	)
	wantSeqs(t, evs, 1)
	for i, r := range recs {
		if i+1 >= len(evs) {
			break
		}
		if got, want := evs[i+1].Data, string(r.Data); got != want {
			t.Errorf("event %s: got data %s, want %s", evs[i+1], got, want)
		}
	}
	if len(evs) > 0 {
		d := syncData(t, evs[0])
		if d.RunID != "r1" || d.RequestID != "req-1" || !slices.Equal(d.RequestIDs, []string{"req-1"}) || d.Mode != "full" {
			t.Errorf("got sync.started data %+v, want run r1, request req-1, mode full", d)
		}
		if want := time.UnixMilli(run.StartedAtMs).UTC().Format(time.RFC3339Nano); d.StartedAt != want {
			t.Errorf("got started_at %q, want %q", d.StartedAt, want)
		}
		if d.FinishedAt != "" {
			t.Errorf("got finished_at %q on sync.started, want none", d.FinishedAt)
		}
	}
	got := live(t, pool)
	for _, r := range recs {
		k := pipeline.KindName(r.Kind) + " " + r.Key
		if got[k] != string(r.Data) {
			t.Errorf("record %s: got data %q, want %s", k, got[k], r.Data)
		}
	}
	if len(got) != len(recs) {
		t.Errorf("got %d live records, want %d", len(got), len(recs))
	}
}

// snapshot is every stored row of records and the connector's sequence, to
// show that an operation changed nothing.
func snapshot(t testing.TB, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT format('%s|%s|%s|%s|%s|%s|%s', kind, key, data::text, encode(hash, 'hex'), seen_at, version, deleted)
		FROM records ORDER BY kind, key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT COALESCE(max(seq), 0) FROM sequences`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return append(out, fmt.Sprintf("seq=%d", seq))
}

func TestApplyPageAgain(t *testing.T) {
	t.Parallel()
	alice := func(t testing.TB) *pb.Record { return user(t, "u1", "alice@example.com", "Alice") }
	tests := []struct {
		name string
		// second returns the batch applied after page 1 of run r1 (alice, g1).
		second func(t testing.TB, run *pb.Run) *pb.RecordBatch
		want   []string
		// wantData is alice afterwards, when the second batch changed anything.
		wantData *pb.Record
	}{
		{
			name: "same page redelivered",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				return page(run, usersActive, 1, alice(t), group(t, "g1", "Sales"))
			},
		},
		{
			name: "same records on another page",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				return page(run, groups, 1, group(t, "g1", "Sales"))
			},
		},
		{
			name: "changed record",
			second: func(t testing.TB, run *pb.Run) *pb.RecordBatch {
				b := page(run, usersActive, 2, user(t, "u1", "alice@example.com", "Alicia"))
				b.VersionMs += 50
				return b
			},
			want:     []string{ev(clarity.OpUpdated, uk("u1"))},
			wantData: user(t, "u1", "alice@example.com", "Alicia"),
		},
		{
			name: "changed record in a later run",
			second: func(t testing.TB, _ *pb.Run) *pb.RecordBatch {
				return page(newRun("r2", 1000), usersActive, 1, user(t, "u1", "alice@example.com", "Alicia"))
			},
			want:     []string{"sync.started r2", ev(clarity.OpUpdated, uk("u1"))},
			wantData: user(t, "u1", "alice@example.com", "Alicia"),
		},
	}
	s, pool := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reset(t, pool)
			run := newRun("r1", 0)
			applyPage(t, s, page(run, usersActive, 1, alice(t), group(t, "g1", "Sales")))
			first := take(t, pool)
			before := snapshot(t, pool)

			applyPage(t, s, tt.second(t, run))
			evs := take(t, pool)
			wantTypes(t, evs, tt.want...)
			wantSeqs(t, evs, int64(len(first))+1)
			if tt.want == nil {
				if after := snapshot(t, pool); !slices.Equal(after, before) {
					t.Errorf("got stored state\n\t%v\nwant it unchanged\n\t%v", after, before)
				}
				return
			}
			got := live(t, pool)[uk("u1")]
			if got != string(tt.wantData.Data) {
				t.Errorf("got alice %s, want %s", got, tt.wantData.Data)
			}
			for _, e := range evs {
				if e.Op == clarity.OpUpdated && e.Data != string(tt.wantData.Data) {
					t.Errorf("event %s: got data %s, want the full new data %s", e, e.Data, tt.wantData.Data)
				}
			}
		})
	}
}

func TestPasses(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	pass := func(p int32, n int32, recs ...*pb.Record) *pb.RecordBatch {
		b := page(run, usersActive, n, recs...)
		b.Ref.Pass = p
		return b
	}
	alice := user(t, "u1", "alice@example.com", "Alice")
	bob := user(t, "u2", "bob@example.com", "Bob")
	// Pass 0 got through two pages before Zoom rejected its page token;
	// pass 1 lists everything again.
	applyPage(t, s, pass(0, 1, alice))
	applyPage(t, s, pass(0, 2, bob))
	applyPage(t, s, pass(1, 1, alice))
	markFetched(t, s, fetched(run, 5, listing{l: usersActive, pages: 2, pass: 1}))
	if finalize(t, s, "r1") {
		t.Fatal("finalize with page 2 of pass 1 missing: got completed (page 2 of pass 0 counted), want nothing")
	}
	if got := runStatus(t, pool, "r1"); got != store.RunRunning {
		t.Fatalf("got run status %q, want %q", got, store.RunRunning)
	}
	applyPage(t, s, pass(1, 2, bob))
	if got := runStatus(t, pool, "r1"); got != store.RunCompleted {
		t.Fatalf("after every page of pass 1: got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	wantTypes(t, evs, "sync.started r1", ev(clarity.OpCreated, uk("u1")), ev(clarity.OpCreated, uk("u2")), "sync.completed r1")
	wantLive(t, pool, uk("u1"), uk("u2"))
}

// TestBundledPages applies the group-admin pages of a run as one bundle: one
// transaction records every page, the same admin listed on two pages of a
// group counts once, and the bundle that completes the manifest completes
// the run.
func TestBundledPages(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	run := newRun("r1", 0)
	var ents []*pb.Record
	for _, g := range []string{"g1", "g2", "g3"} {
		ents = append(ents, group(t, g, "Group "+g), groupAdmin(t, g, "Group "+g))
	}
	applyPage(t, s, page(run, pb.Listing_LISTING_USERS_ACTIVE, 1, append([]*pb.Record{
		user(t, "u1", "alice@example.com", "Alice"), user(t, "u2", "bob@example.com", "Bob"),
		user(t, "u3", "carol@example.com", "Carol")}, ents...)...))
	markFetched(t, s, fetched(run, 5,
		listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g1", pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g2", pages: 1},
		listing{l: pb.Listing_LISTING_GROUP_ADMINS, key: "g3", pages: 2}))
	take(t, pool)

	other := adminsPage(newRun("r0", -1), "g1", "bob@example.com")
	if err := s.ApplyPages(ctx, ref, []*pb.RecordBatch{adminsPage(run, "g1", "bob@example.com"), other}); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("bundle of two runs: got %v, want ErrBadBatch", err)
	}
	if err := s.ApplyPages(ctx, ref, nil); !errors.Is(err, store.ErrBadBatch) {
		t.Fatalf("empty bundle: got %v, want ErrBadBatch", err)
	}
	if got := runStatus(t, pool, "r1"); got != store.RunRunning {
		t.Fatalf("after refused bundles: got run status %q, want %q", got, store.RunRunning)
	}

	g3p2 := adminsPage(run, "g3", "CAROL@example.com")
	g3p2.Ref.Page = 2
	bundle := []*pb.RecordBatch{
		adminsPage(run, "g1", "alice@example.com"),
		adminsPage(run, "g2", "bob@example.com", "Alice@Example.com"),
		adminsPage(run, "g3", "carol@example.com"),
		g3p2,
	}
	if err := s.ApplyPages(ctx, ref, bundle); err != nil {
		t.Fatalf("apply bundle: %v", err)
	}
	if got := runStatus(t, pool, "r1"); got != store.RunCompleted {
		t.Fatalf("after the bundle: got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	var grants []event
	for _, e := range evs {
		if e.Kind == clarity.KindServiceUserEntitlement {
			grants = append(grants, e)
		}
	}
	wantSet(t, grants,
		ev(clarity.OpCreated, gk("u1", clarity.GroupAdminKey("g1"))),
		ev(clarity.OpCreated, gk("u2", clarity.GroupAdminKey("g2"))),
		ev(clarity.OpCreated, gk("u1", clarity.GroupAdminKey("g2"))),
		ev(clarity.OpCreated, gk("u3", clarity.GroupAdminKey("g3"))))
	if last := evs[len(evs)-1]; last.typ() != "sync.completed r1" {
		t.Fatalf("last event: got %s, want sync.completed r1", last)
	}
}

func TestConcurrentPagesGetGaplessSequences(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	const workers, pages, perPage = 2, 15, 4
	batches := make([][]*pb.RecordBatch, workers)
	for w := range workers {
		for p := range pages {
			var recs []*pb.Record
			for i := range perPage {
				id := fmt.Sprintf("u-%d-%d-%d", w, p, i)
				recs = append(recs, user(t, id, id+"@example.com", id))
			}
			batches[w] = append(batches[w], page(run, pb.Listing(w+1), int32(p+1), recs...))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*pages)
	start := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, b := range batches[w] {
				if err := s.ApplyPage(context.Background(), ref, b); err != nil {
					errs <- err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := take(t, pool)
	if got, want := len(evs), 1+workers*pages*perPage; got != want {
		t.Errorf("got %d events, want %d", got, want)
	}
	wantSeqs(t, evs, 1)
	subjects := map[string]bool{}
	for _, e := range evs {
		if subjects[e.typ()] {
			t.Errorf("got event %s twice", e)
		}
		subjects[e.typ()] = true
	}
	var seq int64
	if err := pool.QueryRow(context.Background(), `SELECT seq FROM sequences`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(evs)); seq != want {
		t.Errorf("got connector sequence %d, want %d", seq, want)
	}
}

// Pages of one run apply side by side. When they overlap (a user listed on
// several pages, a page delivered twice), the newest page wins whatever the
// order, every record is created once, and the page that is the last one
// missing completes the run, exactly once.
func TestConcurrentOverlappingPagesCompleteTheRun(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	run := newRun("r1", 0)
	const workers, pages, users = 4, 24, 200
	markFetched(t, s, fetched(run, 1, listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: pages}))
	batches := make(chan *pb.RecordBatch, 2*pages)
	for p := range int32(pages) {
		var recs []*pb.Record
		for i := range users {
			id := fmt.Sprintf("u%d", i)
			recs = append(recs, user(t, id, id+"@example.com", fmt.Sprintf("%s on page %d", id, p+1)),
				grant(t, id, "group:g1"), attr(t, id, "department", fmt.Sprintf("d%d", p+1)))
		}
		b := page(run, pb.Listing_LISTING_USERS_ACTIVE, p+1, recs...)
		b.VersionMs += int64(p) // later pages are newer
		batches <- b
		batches <- b // and each is delivered twice
	}
	close(batches)
	var wg sync.WaitGroup
	errs := make(chan error, 2*pages)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := s.ApplyPage(context.Background(), ref, b); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("apply page: %v", err)
	}
	if got := runStatus(t, pool, run.RunId); got != store.RunCompleted {
		t.Fatalf("got run status %q, want %q", got, store.RunCompleted)
	}
	evs := take(t, pool)
	wantSeqs(t, evs, 1)
	if got := evs[len(evs)-1].typ(); got != "sync.completed r1" {
		t.Errorf("got last event %s, want sync.completed r1", got)
	}
	created := map[string]int{}
	lastData := map[string]string{}
	ends := 0
	for _, e := range evs {
		if e.Kind == clarity.KindSync {
			if e.Op != clarity.OpStarted {
				ends++
			}
			continue
		}
		k := e.Kind + " " + e.Subject
		if e.Op == clarity.OpCreated {
			created[k]++
		}
		lastData[k] = e.Data
	}
	if ends != 1 {
		t.Errorf("got %d run ends, want 1", ends)
	}
	stored := live(t, pool)
	if len(stored) != users*3 { // users, grants, attributes
		t.Errorf("got %d live records, want %d", len(stored), users*3)
	}
	for k, data := range stored {
		if created[k] != 1 {
			t.Errorf("%s: got %d created events, want 1", k, created[k])
		}
		if lastData[k] != data {
			t.Errorf("%s: got last event data %s, want the stored %s", k, lastData[k], data)
		}
	}
	if got, want := stored[uk("u0")], fmt.Sprintf("u0 on page %d", pages); !strings.Contains(got, want) {
		t.Errorf("got u0 %s, want the newest page's (%q)", got, want)
	}
	if got, want := stored[ak("u0", "department")], fmt.Sprintf(`"d%d"`, pages); !strings.Contains(got, want) {
		t.Errorf("got u0's department %s, want the newest page's (%s)", got, want)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	run := newRun("r1", 0)
	tests := []struct {
		name  string
		apply func() error
	}{
		{"page without reference", func() error {
			return s.ApplyPage(ctx, ref, &pb.RecordBatch{Run: run})
		}},
		{"page without run id", func() error {
			return s.ApplyPage(ctx, ref, page(&pb.Run{StartedAtMs: base}, usersActive, 1))
		}},
		{"page without start", func() error {
			return s.ApplyPage(ctx, ref, page(&pb.Run{RunId: "r9"}, usersActive, 1))
		}},
		{"record without key", func() error {
			return s.ApplyPage(ctx, ref, page(run, usersActive, 1, &pb.Record{Kind: pb.Kind_KIND_SERVICE_USER, Data: []byte(`{}`)}))
		}},
		{"record of no kind", func() error {
			return s.ApplyChange(ctx, ref, change(1, &pb.Record{Key: "k", Data: []byte(`{}`)}))
		}},
		{"change without time", func() error {
			return s.ApplyChange(ctx, ref, &pb.RecordBatch{Records: []*pb.Record{user(t, "u1", "a@b.c", "A")}})
		}},
		{"delete of no kind", func() error {
			return s.ApplyChange(ctx, ref, &pb.RecordBatch{VersionMs: base, Deletes: []*pb.RecordRef{{Key: "u1"}}})
		}},
	}
	for _, tt := range tests {
		if err := tt.apply(); !errors.Is(err, store.ErrBadBatch) {
			t.Errorf("%s: got error %v, want ErrBadBatch", tt.name, err)
		}
	}
}

// A connector row without its sequence row (made by hand, say) gets one
// at its first change, and its events are numbered from 1.
func TestConnectorWithoutSequenceRow(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	if _, err := pool.Exec(context.Background(), `INSERT INTO connectors (tenant, connector) VALUES ($1, $2)`, ref.Tenant, ref.ID); err != nil {
		t.Fatal(err)
	}
	applyChange(t, s, change(0, user(t, "u1", "alice@example.com", "Alice")))
	evs := take(t, pool)
	wantTypes(t, evs, ev(clarity.OpCreated, uk("u1")))
	wantSeqs(t, evs, 1)
}
