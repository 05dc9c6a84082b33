package follow

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// With the records file lost and its journal left, Load starts empty and
// empties the journal, and the next Reset's epoch is not the lost one's:
// the old journal's lines, were they back (a crash between the Reset's
// rename and the journal's truncation), are not replayed onto it.
func TestFileStoreRecordsLost(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "copy")
	s := NewFileStore(path)
	loadAll(t, s)
	if err := s.Reset(ctx, Position{Sequence: 5, Next: 6}, slices.Values([]Record(nil))); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, Position{Sequence: 6, Next: 7}, []Change{user("old", "X")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stale, err := os.ReadFile(path + ".journal")
	if err != nil || len(stale) == 0 {
		t.Fatalf("journal: %d bytes, %v", len(stale), err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	s = NewFileStore(path)
	if pos, recs := loadAll(t, s); pos != (Position{}) || len(recs) != 0 {
		t.Fatalf("records lost: got %+v and %v, want nothing", pos, recs)
	}
	if st, err := os.Stat(path + ".journal"); err != nil || st.Size() != 0 {
		t.Fatalf("the journal of the lost records is kept: %v, %v", st.Size(), err)
	}
	rec := Record{Kind: "entitlement", Key: "license:basic", Data: json.RawMessage(`{"id":"license:basic"}`)}
	if err := s.Reset(ctx, Position{Sequence: 50, Next: 60}, slices.Values([]Record{rec})); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(path+".journal", stale, 0o600); err != nil {
		t.Fatal(err)
	}
	pos, recs := loadAll(t, NewFileStore(path))
	if pos != (Position{Sequence: 50, Next: 60}) || len(recs) != 1 {
		t.Fatalf("got %+v and %v, want the new reset's position and its one record", pos, recs)
	}
}
