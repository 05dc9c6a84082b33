package connector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

func newRegistry(t testing.TB) *Registry {
	t.Helper()
	js := natstest.JetStream(t)
	r, err := Open(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func watch(t testing.TB, r *Registry) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	select {
	case <-r.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("registry watch not synced within 5s")
	}
}

func s2s(tenant, id string) Record {
	return Record{Tenant: tenant, Connector: id, Auth: AuthS2S, ClientID: "cid", AccountID: "acc",
		Schedule: "24h", State: StateActive}
}

// waitFor waits until cond holds for the watched copy, at most 5 s (the
// time within which a change must be in force everywhere).
func waitFor(t testing.TB, r *Registry, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-r.Changed():
		case <-deadline:
			t.Fatalf("%s: not seen within 5s", what)
		}
	}
}

func TestRegistryLive(t *testing.T) {
	ctx := context.Background()
	writer, reader := newRegistry(t), (*Registry)(nil)
	// A second registry on the same bucket stands for another replica.
	reader = &Registry{kv: writer.kv, now: time.Now, entries: map[pipeline.ConnectorRef]Entry{}, gone: map[pipeline.ConnectorRef]uint64{},
		synced: make(chan struct{}), changed: make(chan struct{})}
	watch(t, reader)

	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	e, err := writer.Create(ctx, s2s("acme", "zoom"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, reader, "create", func() bool { _, ok := reader.Lookup(ref); return ok })
	if _, err := writer.Create(ctx, s2s("acme", "zoom")); !errors.Is(err, ErrExists) {
		t.Errorf("second create: got %v, want ErrExists", err)
	}

	// Compare-and-set: an update from a stale read loses.
	e.Schedule = ScheduleManual
	if _, err := writer.Update(ctx, e); err != nil {
		t.Fatal(err)
	}
	e.Schedule = "1h"
	if _, err := writer.Update(ctx, e); !errors.Is(err, ErrConflict) {
		t.Errorf("update from a stale revision: got %v, want ErrConflict", err)
	}
	waitFor(t, reader, "update", func() bool { got, _ := reader.Lookup(ref); return got.Schedule == ScheduleManual })

	if _, err := writer.Modify(ctx, ref, func(r *Record) error { r.State = StateDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reader, "modify", func() bool { got, _ := reader.Lookup(ref); return got.State == StateDisabled })

	if err := writer.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	waitFor(t, reader, "delete", func() bool { _, ok := reader.Lookup(ref); return !ok })
	if _, err := writer.Get(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after delete: got %v, want ErrNotFound", err)
	}
}

// TestRegistryReadsItsOwnWrites: the copy of the registry that made a
// change holds it at once, before (here: without) the watch bringing it,
// and List reads what another replica changed a moment ago.
func TestRegistryReadsItsOwnWrites(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t) // no watch runs
	other := &Registry{kv: r.kv, now: time.Now, entries: map[pipeline.ConnectorRef]Entry{}, gone: map[pipeline.ConnectorRef]uint64{},
		synced: make(chan struct{}), changed: make(chan struct{})}
	acme, globex := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}, pipeline.ConnectorRef{Tenant: "globex", ID: "zoom"}
	keys := func(es []Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.Ref().Key())
		}
		return out
	}

	e, err := r.Create(ctx, s2s("acme", "zoom"))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.Lookup(acme); !ok || got.Revision != e.Revision {
		t.Errorf("lookup after create: %+v %v", got, ok)
	}
	e.Schedule = ScheduleManual
	if _, err := r.Update(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Lookup(acme); got.Schedule != ScheduleManual {
		t.Errorf("lookup after update: schedule %q", got.Schedule)
	}
	if _, err := other.Create(ctx, s2s("globex", "zoom")); err != nil {
		t.Fatal(err)
	}
	if got := keys(r.All()); len(got) != 1 {
		t.Errorf("the copy without a watch: %v, want acme only", got)
	}
	if got, err := r.List(ctx); err != nil || len(got) != 2 || got[0].Ref() != acme || got[1].Ref() != globex {
		t.Errorf("list: %v %v, want acme and globex", keys(got), err)
	}
	if err := r.Delete(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup(acme); ok {
		t.Error("lookup after delete: still there")
	}
	if got, err := r.List(ctx); err != nil || len(got) != 1 || got[0].Ref() != globex {
		t.Errorf("list after delete: %v %v, want globex", keys(got), err)
	}
	// The watch, started late, brings the older revisions first: none of
	// them puts acme back.
	watch(t, r)
	if _, ok := r.Lookup(acme); ok {
		t.Error("the watch put a deleted connector back")
	}
	if _, ok := r.Lookup(globex); !ok {
		t.Error("the watch did not bring globex")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.List(cancelled); err == nil {
		t.Error("a list cut short by its context answered")
	}
}

func TestRecordValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Record)
		ok   bool
	}{
		{"valid", func(*Record) {}, true},
		{"upper-case tenant", func(r *Record) { r.Tenant = "Acme" }, false},
		{"dotted connector", func(r *Record) { r.Connector = "a.b" }, false},
		{"long connector", func(r *Record) { r.Connector = string(make([]byte, 64)) }, false},
		{"unknown auth", func(r *Record) { r.Auth = "basic" }, false},
		{"s2s without account", func(r *Record) { r.AccountID = "" }, false},
		{"oauth without account", func(r *Record) { r.Auth, r.AccountID = AuthOAuth, "" }, true},
		{"schedule too short", func(r *Record) { r.Schedule = "10s" }, false},
		{"schedule manual", func(r *Record) { r.Schedule = ScheduleManual }, true},
		{"unknown state", func(r *Record) { r.State = "paused" }, false},
		{"client id with space", func(r *Record) { r.ClientID = "a b" }, false},
	} {
		rec := s2s("acme", "zoom")
		tc.mod(&rec)
		if err := rec.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: Validate = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
