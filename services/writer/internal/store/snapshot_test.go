package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// taken is a snapshot read while the writers ran.
type taken struct {
	seq     int64
	records map[string]string // "kind key" → data
	how     string
}

// readSnapshot reads a whole snapshot chunk by chunk, pausing between
// chunks so that writers commit meanwhile; with imports, every other chunk
// is read by a transaction that imported the snapshot, as another writer
// replica would.
func readSnapshot(ctx context.Context, s *store.Store, db store.TxBeginner, chunk int, imports bool) (taken, error) {
	sn, err := s.Snapshot(ctx, ref)
	if err != nil {
		return taken{}, err
	}
	defer sn.Close(ctx) //nolint:errcheck
	id := ""
	if imports {
		if id, err = sn.Export(ctx); err != nil {
			return taken{}, err
		}
	}
	out := taken{seq: sn.Sequence(), records: map[string]string{}, how: fmt.Sprintf("chunks of %d, imports %v", chunk, imports)}
	var pos store.Position
	for i := 0; ; i++ {
		from := sn
		if imports && i%2 == 1 {
			if from, err = store.ImportSnapshot(ctx, db, ref, id); err != nil {
				return taken{}, err
			}
			if from.Sequence() != out.seq {
				_ = from.Close(ctx)
				return taken{}, fmt.Errorf("imported snapshot: got sequence %d, want %d", from.Sequence(), out.seq)
			}
		}
		n, err := from.Records(ctx, pos, chunk, func(r store.SnapshotRecord) bool {
			out.records[pipeline.KindName(r.Kind)+" "+r.Key] = string(r.Data)
			pos = store.Position{Kind: r.Kind, Key: r.Key}
			return true
		})
		if from != sn {
			_ = from.Close(ctx)
		}
		if err != nil {
			return taken{}, err
		}
		if n < chunk {
			return out, nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// applyAfter applies, on top of records, the events whose sequence is
// greater than seq, in sequence order.
func applyAfter(records map[string]string, seq int64, evs []event) map[string]string {
	out := make(map[string]string, len(records))
	for k, v := range records {
		out[k] = v
	}
	evs = slices.Clone(evs)
	sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
	for _, e := range evs {
		if e.Seq <= seq || e.Kind == clarity.KindSync {
			continue
		}
		if e.Op == clarity.OpDeleted {
			delete(out, e.Kind+" "+e.Subject)
		} else {
			out[e.Kind+" "+e.Subject] = e.Data
		}
	}
	return out
}

// diffData reports how got differs from want, comparing data as JSON.
func diffData(got, want map[string]string) []string {
	var d []string
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			d = append(d, "missing "+k)
			continue
		}
		var x, y any
		if json.Unmarshal([]byte(g), &x) != nil || json.Unmarshal([]byte(w), &y) != nil || fmt.Sprint(x) != fmt.Sprint(y) {
			d = append(d, fmt.Sprintf("%s: got %s, want %s", k, g, w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "unexpected "+k)
		}
	}
	sort.Strings(d)
	return d
}

// userRecs is a user with a grant of group g and an attribute; name
// changes its data.
func userRecs(t testing.TB, id, name, g string) []*pb.Record {
	t.Helper()
	return []*pb.Record{
		user(t, id, id+"@example.com", name),
		grant(t, id, clarity.GroupKey(g)),
		attr(t, id, "department", name),
	}
}

// Snapshots taken while pages of a full sync, its completion and webhook
// changes commit, each read in chunks over many commits, plus exactly the
// events with a greater sequence, give the records the writers leave.
func TestSnapshotWhileWriting(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, store.Options{SpillAt: 40})
	// A writer or reader that hangs fails the test rather than time it out.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const users = 300
	groups := []*pb.Record{}
	for g := range 5 {
		id := fmt.Sprintf("g%d", g)
		groups = append(groups, group(t, id, strings.ToUpper(id)))
	}
	var first []*pb.Record
	first = append(first, groups...)
	for i := range users {
		first = append(first, userRecs(t, fmt.Sprintf("u%03d", i), "first", fmt.Sprintf("g%d", i%5))...)
	}
	evs := syncRun(t, s, pool, newRun("r1", 0), nil, first...)

	// The second run renames every third user, moves every fifth to
	// another group, no longer lists every seventh (deleted at its
	// completion) and adds new users, in pages applied side by side; the
	// last page to commit completes the run.
	run := newRun("r2", 1000)
	const pages = 12
	var batches [pages][]*pb.Record
	batches[0] = append(batches[0], groups...)
	for i := range users + 60 {
		if i%7 == 3 {
			continue
		}
		name, g := "first", fmt.Sprintf("g%d", i%5)
		if i%3 == 0 {
			name = "second"
		}
		if i%5 == 1 {
			g = fmt.Sprintf("g%d", (i+1)%5)
		}
		batches[i%pages] = append(batches[i%pages], userRecs(t, fmt.Sprintf("u%03d", i), name, g)...)
	}
	markFetched(t, s, fetched(run, pages, listing{l: pb.Listing_LISTING_USERS_ACTIVE, pages: pages}))

	var (
		mu    sync.Mutex
		snaps []taken
	)
	writing := make(chan struct{})
	var readers errgroup.Group
	for r, how := range []struct {
		chunk   int
		imports bool
	}{{25, false}, {40, true}, {1000, false}} {
		readers.Go(func() error {
			for i := 0; ; i++ {
				select {
				case <-writing:
					if i > 0 {
						return nil
					}
				default:
				}
				sn, err := readSnapshot(ctx, s, pool, how.chunk, how.imports)
				if err != nil {
					return fmt.Errorf("reader %d: %w", r, err)
				}
				mu.Lock()
				snaps = append(snaps, sn)
				mu.Unlock()
			}
		})
	}

	var writers errgroup.Group
	for w := range 3 {
		writers.Go(func() error {
			for p := w; p < pages; p += 3 {
				if err := s.ApplyPage(ctx, ref, page(run, pb.Listing_LISTING_USERS_ACTIVE, int32(p+1), batches[p]...)); err != nil {
					return fmt.Errorf("page %d: %w", p+1, err)
				}
			}
			return nil
		})
	}
	writers.Go(func() error {
		// Webhooks, newer than the run's pages: renames, deletions and
		// new users.
		for i := range 90 {
			id := fmt.Sprintf("u%03d", (i*37)%users)
			var b *pb.RecordBatch
			switch i % 3 {
			case 0:
				b = change(2000+int64(i), userRecs(t, id, fmt.Sprintf("hook %d", i), "g4")...)
			case 1:
				b = &pb.RecordBatch{VersionMs: base + 2000 + int64(i), Deletes: []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: id}}}
			default:
				b = change(2000+int64(i), userRecs(t, fmt.Sprintf("w%03d", i), "webhook", "g2")...)
			}
			if err := s.ApplyChange(ctx, ref, b); err != nil {
				return fmt.Errorf("change %d: %w", i, err)
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	werr := writers.Wait()
	close(writing)
	if err := readers.Wait(); err != nil {
		t.Fatal(err)
	}
	if werr != nil {
		t.Fatal(werr)
	}
	if got := runStatus(t, pool, "r2"); got != store.RunCompleted {
		t.Fatalf("run r2: got status %q, want %q", got, store.RunCompleted)
	}

	evs = append(evs, take(t, pool)...)
	final := live(t, pool)
	var seqs []int64
	for _, sn := range snaps {
		seqs = append(seqs, sn.seq)
		if d := diffData(applyAfter(sn.records, sn.seq, evs), final); len(d) > 0 {
			t.Errorf("snapshot at %d (%s) plus the later events: %d differences from the final records, first:\n%s",
				sn.seq, sn.how, len(d), strings.Join(d[:min(10, len(d))], "\n"))
		}
	}
	// The test means something only if snapshots fell between commits.
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	last := evs[len(evs)-1].Seq
	mid := 0
	for _, q := range seqs {
		if q > evs[0].Seq && q < last {
			mid++
		}
	}
	if mid < 3 {
		t.Errorf("got %d snapshots at distinct sequences while writing (%v, last %d), want 3 or more", mid, seqs, last)
	}
	t.Logf("%d snapshots at %d distinct sequences up to %d", len(snaps), len(seqs), last)
}

// A snapshot of a connector that never stored anything is empty at
// sequence 0; an export ends with the snapshot that made it.
func TestSnapshotEdges(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	other := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	syncRun(t, s, pool, newRun("r1", 0), nil, userRecs(t, "u1", "one", "g1")...)

	sn, err := s.Snapshot(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := sn.Each(ctx, func(store.SnapshotRecord) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if sn.Sequence() != 0 || n != 0 {
		t.Errorf("unknown connector: got sequence %d and %d records, want 0 and none", sn.Sequence(), n)
	}
	_ = sn.Close(ctx)

	sn, err = s.Snapshot(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sn.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !store.ValidSnapshotID(id) {
		t.Errorf("export: got id %q, which ValidSnapshotID refuses", id)
	}
	imp, err := store.ImportSnapshot(ctx, pool, ref, id)
	if err != nil {
		t.Fatal(err)
	}
	if imp.Sequence() != sn.Sequence() || sn.Sequence() == 0 {
		t.Errorf("import: got sequence %d, want %d (not 0)", imp.Sequence(), sn.Sequence())
	}
	_ = imp.Close(ctx)
	_ = sn.Close(ctx)
	for _, bad := range []string{id, "00000003-0000001B-1'; DROP TABLE records; --", ""} {
		if _, err := store.ImportSnapshot(ctx, pool, ref, bad); !errors.Is(err, store.ErrSnapshotGone) {
			t.Errorf("import %q: got %v, want ErrSnapshotGone", bad, err)
		}
	}
}
