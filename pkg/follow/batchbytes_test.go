package follow

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// commits records each commit's changes, over a saved position.
type commits struct {
	mu    sync.Mutex
	start Position
	sizes [][]int // the event bytes of each commit's changes
	seen  int
	data  map[string]int
}

func (s *commits) Load(context.Context, func(Change) error) (Position, error) { return s.start, nil }
func (s *commits) Reset(context.Context, Position, iter.Seq[Record]) error {
	return fmt.Errorf("no snapshot expected")
}
func (s *commits) Commit(_ context.Context, _ Position, changes []Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sizes []int
	for _, c := range changes {
		sizes = append(sizes, s.data[c.ID])
	}
	s.sizes = append(s.sizes, sizes)
	s.seen += len(changes)
	return nil
}

// A batch closes once its events reach BatchBytes, whatever Batch allows:
// a commit holds less than BatchBytes plus one event.
func TestFollowBatchBytes(t *testing.T) {
	srv := natstest.Run(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := newJS(t, nc)
	ref := pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	store := &commits{start: Position{Sequence: 0, Next: 1}, data: map[string]int{}}
	const events, batchBytes = 40, 10 << 10
	for i := 1; i <= events; i++ {
		seq := fmt.Sprint(i)
		ev := []byte(`{"specversion":"1.0","id":"e` + seq + `","type":"clarity.service_user.updated","subject":"u` + seq +
			`","time":"2026-12-05T20:00:00Z","tenant":"default","connector":"zoom","sequence":"` + seq +
			`","data":{"id":"u` + seq + `","pad":"` + strings.Repeat("x", 3000) + `"}}`)
		store.data["e"+seq] = len(ev)
		if _, err := js.Publish(ctx, pipeline.EventSubject(ref, clarity.KindServiceUser), ev); err != nil {
			t.Fatal(err)
		}
	}
	f, err := New(Config{Conn: nc, Connector: ref, Store: store, Batch: 500, BatchBytes: batchBytes})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	for f.Position().Sequence < events && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	store.mu.Lock()
	defer store.mu.Unlock()
	if store.seen != events {
		t.Fatalf("%d changes committed, want %d", store.seen, events)
	}
	if len(store.sizes) < 2 {
		t.Errorf("all %d events in %d commit(s)", events, len(store.sizes))
	}
	for i, sizes := range store.sizes {
		total := 0
		for j, n := range sizes {
			if total >= batchBytes {
				t.Errorf("commit %d: event %d added after %d bytes (bound %d)", i, j, total, batchBytes)
			}
			total += n
		}
	}
}

func newJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range pipeline.Streams(1) {
		if _, err := js.CreateOrUpdateStream(context.Background(), cfg); err != nil {
			t.Fatalf("stream %s: %v", cfg.Name, err)
		}
	}
	return js
}
