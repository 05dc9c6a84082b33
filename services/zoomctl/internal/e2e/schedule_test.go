package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

// TestScheduledSyncsRunOnce runs two fetchers with a two-second schedule:
// every slot's sync runs exactly once.
func TestScheduledSyncsRunOnce(t *testing.T) {
	org := zoomtest.Generate(3, zoomtest.Size{Users: 100, Groups: 4, Roles: 4})
	s := startStackEnv(t, org, zoomtest.Options{}, map[string]int{"webhook": 0, "fetcher": 2},
		map[string]string{"SYNC_INTERVAL": "2s"})
	c := collect(t, s)
	time.Sleep(9 * time.Second)

	slots := map[string]int{}
	for _, ev := range c.since(0) {
		if ev.Type != "clarity.sync.completed" {
			continue
		}
		var d clarity.SyncData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, id := range d.RequestIDs {
			if strings.HasPrefix(id, "schedule-") {
				slots[id]++
			}
		}
	}
	if len(slots) < 3 {
		t.Fatalf("scheduled syncs in 9s at a 2s interval: got %d (%v), want at least 3", len(slots), slots)
	}
	for id, n := range slots {
		if n != 1 {
			t.Errorf("scheduled trigger %s served by %d completed runs, want 1", id, n)
		}
	}
	requireSame(t, "records after scheduled syncs", c.snapshot(), expected(s))
}
