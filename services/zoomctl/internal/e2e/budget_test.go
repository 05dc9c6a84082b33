package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// TestCoalescedRereadsGiveTheRecordsOfOneByOne changes 240 users of an
// account of 3,000 in Zoom at once (names, deactivations, deletions), each
// change a webhook, twice: on a stack whose fetcher re-reads each user (one
// hint at a time), and on one whose fetcher batches the hints and lists the
// active and inactive users instead. Both end with exactly the same records,
// which are the organisation's; the second spent a listing, not a request
// per user.
func TestCoalescedRereadsGiveTheRecordsOfOneByOne(t *testing.T) {
	modes := []struct {
		name string
		env  map[string]string
	}{
		// One hint handled at a time makes every batch a single user.
		{"one by one", map[string]string{"HINT_CONCURRENCY": "1"}},
		{"coalesced", map[string]string{"HINT_BATCH_QUIET": "2s", "HINT_BATCH_MAX_WAIT": "20s"}},
	}
	var results []map[string]json.RawMessage
	for _, m := range modes {
		org := zoomtest.Generate(23, zoomtest.Size{Users: 3000, Groups: 20, Roles: 6})
		s := startStackEnv(t, org, zoomtest.Options{}, nil, m.env)
		c := collect(t, s)
		id := "coalesce-" + strings.ReplaceAll(m.name, " ", "-")
		if _, err := s.JS.Publish(context.Background(), pipeline.SyncSubject(s.Config().Connector), []byte(`{"mode":"full","request_id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
		if op, d := c.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("%s: sync: got %s (%s), want completed", m.name, op, d.Error)
		}
		s.Sim.SetWebhookURL(s.WebhookURL)
		before := s.Sim.Requests()
		bulkChange(t, s, 240)
		_, got := settled(t, s)
		after := s.Sim.Requests()
		rereads := after["GET /users/{userId}"] - before["GET /users/{userId}"]
		listings := after["GET /users"] - before["GET /users"]
		batches := fetcherCounters(t, s, "fetcher_hint_batches_total")
		t.Logf("%s: %d records; %d re-reads and %d listing pages for 240 changes; hint batches %v",
			m.name, len(got), rereads, listings, batches)
		switch m.name {
		case "one by one":
			if batches["listed"] != 0 || rereads < 200 {
				t.Errorf("%s: %v batches listed, %d re-reads; want every user re-read", m.name, batches, rereads)
			}
		case "coalesced":
			if batches["listed"] == 0 || rereads+listings >= 200 {
				t.Errorf("%s: %v batches listed, %d re-reads and %d listing pages; want a listing and far fewer requests than users",
					m.name, batches, rereads, listings)
			}
		}
		results = append(results, got)
	}
	requireRecords(t, "the coalesced re-reads' records", results[1], results[0])
}

// bulkChange changes n users of the account as an administrator's bulk
// edit would, as fast as Zoom sends the webhooks: most get a new last name,
// one in eight is deactivated, one in sixteen deleted. The same n give the
// same changes on the same organisation.
func bulkChange(t *testing.T, s *devstack.Stack, n int) {
	t.Helper()
	ctx := context.Background()
	var active []zoomtest.User
	for _, u := range s.Sim.Org().Users {
		if u.Status == "active" && u.RoleID != "0" {
			active = append(active, u)
		}
	}
	for i := range n {
		u := active[(i*7)%len(active)]
		var err error
		switch {
		case i%16 == 5:
			_, err = s.Sim.RemoveUser(ctx, u.ID, "delete")
		case i%8 == 3:
			_, err = s.Sim.DeactivateUser(ctx, u.ID)
		default:
			_, err = s.Sim.UpdateUser(ctx, u.ID, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("Bulk %d", i))})
		}
		if err != nil {
			t.Fatalf("change %d (user %s): %v", i, u.ID, err)
		}
	}
}

// fetcherCounters sums a counter with one label over every running
// fetcher, by the label's value.
func fetcherCounters(t *testing.T, s *devstack.Stack, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, p := range s.Procs() {
		if p.Name != "fetcher" || p.Exited() {
			continue
		}
		resp, err := http.Get("http://" + p.Addr + "/metrics")
		if err != nil {
			t.Errorf("fetcher metrics: %v", err)
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			rest, ok := strings.CutPrefix(sc.Text(), name+"{")
			if !ok {
				continue
			}
			labels, val, ok := strings.Cut(rest, "} ")
			if !ok {
				continue
			}
			_, value, _ := strings.Cut(labels, `="`)
			value = strings.TrimSuffix(value, `"`)
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				out[value] += v
			}
		}
		resp.Body.Close()
	}
	return out
}
