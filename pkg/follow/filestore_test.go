package follow

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func loadAll(t *testing.T, s *FileStore) (Position, map[recKey]json.RawMessage) {
	t.Helper()
	records, counts := map[recKey]json.RawMessage{}, map[string]int{}
	pos, err := s.Load(context.Background(), func(c Change) error {
		_, err := apply(records, counts, c, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pos, records
}

func user(key, name string) Change {
	return Change{Kind: "service_user", Op: "updated", Key: key, Data: json.RawMessage(`{"id":"` + key + `","last_name":"` + name + `"}`)}
}

// A commit the process died while writing is dropped, with what follows
// it, and the journal goes on after the last whole commit.
func TestFileStoreTornCommit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "copy")
	s := NewFileStore(path)
	if pos, recs := loadAll(t, s); pos != (Position{}) || len(recs) != 0 {
		t.Fatalf("empty store: got %+v and %d records", pos, len(recs))
	}
	base := []Record{{Kind: "service_user", Key: "u1", Data: json.RawMessage(`{"id":"u1"}`)}, {Kind: "service_user", Key: "u2", Data: json.RawMessage(`{"id":"u2"}`)}}
	if err := s.Reset(ctx, Position{Sequence: 10, Next: 100}, slices.Values(base)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, Position{Sequence: 11, Next: 105}, []Change{user("u1", "A")}); err != nil {
		t.Fatal(err)
	}
	del := Change{Kind: "service_user", Op: "deleted", Key: "u2"}
	if err := s.Commit(ctx, Position{Sequence: 12, Next: 106}, []Change{del}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Half of a third commit, as a kill mid-write leaves it.
	line, _ := json.Marshal(commitLine{Epoch: 1, Sequence: 13, Next: 107, Changes: []Change{user("u3", "C")}})
	f, err := os.OpenFile(path+".journal", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(line[:len(line)/2])
	f.Close()

	s = NewFileStore(path)
	pos, recs := loadAll(t, s)
	if pos != (Position{Sequence: 12, Next: 106}) {
		t.Fatalf("position after a torn commit: got %+v, want sequence 12, next 106", pos)
	}
	if len(recs) != 1 || string(recs[recKey{"service_user", "u1"}]) != `{"id":"u1","last_name":"A"}` {
		t.Fatalf("records after a torn commit: %v", recs)
	}
	if err := s.Commit(ctx, Position{Sequence: 13, Next: 108}, []Change{user("u4", "D")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	pos, recs = loadAll(t, NewFileStore(path))
	if pos.Sequence != 13 || len(recs) != 2 {
		t.Fatalf("a commit after the torn one: got %+v and %d records, want sequence 13 and 2", pos, len(recs))
	}
}

// Journal lines of an earlier Reset (a crash after the rename, before the
// journal was emptied) are not replayed over the new records.
func TestFileStoreSkipsEarlierEpoch(t *testing.T) {
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
	stale, err := os.ReadFile(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx, Position{Sequence: 50, Next: 60}, slices.Values([]Record{{Kind: "entitlement", Key: "license:basic", Data: json.RawMessage(`{"id":"license:basic"}`)}})); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(path+".journal", stale, 0o600); err != nil {
		t.Fatal(err)
	}
	pos, recs := loadAll(t, NewFileStore(path))
	if pos != (Position{Sequence: 50, Next: 60}) || len(recs) != 1 {
		t.Fatalf("got %+v and %v, want the second reset's position and its one record", pos, recs)
	}
}

// What Commit and Reset write by hand reads back as it was: keys that need
// escaping, data spanning lines, every field of a change.
func TestFileStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "copy")
	s := NewFileStore(path)
	loadAll(t, s)
	key := "pending:\"o'brien\"\\é<&>\u2028@example.com"
	if err := s.Reset(ctx, Position{Sequence: 1, Next: 2}, slices.Values([]Record{{Kind: "service_user", Key: key, Data: json.RawMessage("{\"id\":\n\"\"}")}})); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 20, 0, 0, 123000000, time.UTC)
	ch := Change{ID: "t/c/2", Sequence: 2, Kind: "service_user", Op: "deleted", Key: key, Time: at, Data: json.RawMessage(`{"id":""}`), Removal: "absent"}
	if err := s.Commit(ctx, Position{Sequence: 2, Next: 3}, []Change{ch}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var got []Change
	pos, err := NewFileStore(path).Load(ctx, func(c Change) error {
		got = append(got, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pos != (Position{Sequence: 2, Next: 3}) || len(got) != 2 {
		t.Fatalf("got %+v and %d changes", pos, len(got))
	}
	if got[0].Key != key || string(got[0].Data) != `{"id":""}` {
		t.Errorf("record read back as %q %s", got[0].Key, got[0].Data)
	}
	if c := got[1]; c.ID != ch.ID || c.Sequence != 2 || c.Kind != ch.Kind || c.Op != ch.Op || c.Key != key || !c.Time.Equal(at) || string(c.Data) != string(ch.Data) || c.Removal != "absent" {
		t.Errorf("change read back as %+v, want %+v", c, ch)
	}
}
