package e2e

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/devstack"
)

// scrape reads a service's /metrics and sums each metric's samples whose
// labels contain every given label pair.
type scrape map[string][]sample

type sample struct {
	labels string
	value  float64
}

func scrapeMetrics(t *testing.T, p *devstack.Proc) scrape {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.Name, err)
	}
	defer resp.Body.Close()
	out := scrape{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		name, labels := line[:sp], ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, labels = line[:i], line[i:sp]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[name] = append(out[name], sample{labels, v})
	}
	return out
}

func (s scrape) sum(name string, labels ...string) float64 {
	var total float64
	for _, smp := range s[name] {
		ok := true
		for _, l := range labels {
			if !strings.Contains(smp.labels, l) {
				ok = false
			}
		}
		if ok {
			total += smp.value
		}
	}
	return total
}

// TestMetrics scrapes every service after a sync and a few webhooks and
// checks the counters against what the test saw happen.
func TestMetrics(t *testing.T) {
	org := zoomtest.Generate(5, zoomtest.Size{Users: 400, Groups: 8, Roles: 5})
	s := startStack(t, org, zoomtest.Options{}, nil)
	c := collect(t, s)
	op, d := sync1(t, s, c)
	if op != clarity.OpCompleted {
		t.Fatalf("sync: got %s (%s), want completed", op, d.Error)
	}
	created := 0
	for _, ev := range c.since(0) {
		if strings.HasSuffix(ev.Type, ".created") {
			created++
		}
	}
	if int64(created) != d.Stats.Created {
		t.Errorf("sync stats: got %d created, the events show %d", d.Stats.Created, created)
	}
	s.Sim.SetWebhookURL(s.WebhookURL)
	ctx := context.Background()
	g := s.Sim.Org().Groups[0]
	for i := range 3 {
		if _, err := s.Sim.RenameGroup(ctx, g.ID, "metrics "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		// Zoom's event times are milliseconds: two changes of one record in
		// the same millisecond cannot be ordered, by Zoom's data or ours.
		time.Sleep(3 * time.Millisecond)
	}
	converge(t, s, c, "renames")
	time.Sleep(300 * time.Millisecond) // let the relay's counters catch up

	procs := map[string]*devstack.Proc{}
	for _, p := range s.Procs() {
		procs[p.Name] = p
	}
	fetcher, normalizer, writer, webhook := scrapeMetrics(t, procs["fetcher"]), scrapeMetrics(t, procs["normalizer"]),
		scrapeMetrics(t, procs["writer"]), scrapeMetrics(t, procs["webhook"])
	events := float64(c.mark())
	checks := []struct {
		what      string
		got, want float64
		atLeast   bool
	}{
		{"fetcher zoom_api_requests_total = simulator's count", fetcher.sum("zoom_api_requests_total"), float64(s.Sim.TotalRequests()), false},
		{"fetcher token refreshes ok", fetcher.sum("zoom_token_refreshes_total", `result="ok"`), 1, true},
		{"fetcher pages published", fetcher.sum("zoom_pages_published_total"), float64(s.Sim.Requests()["GET /users"]), true},
		{"fetcher triggers handled", fetcher.sum("zoom_messages_handled_total", `stream="ZOOM_SYNC"`, `result="ok"`), 1, false},
		// Group-admin pages travel in bundles: fewer messages than pages.
		{"normalizer raw messages handled", normalizer.sum("zoom_messages_handled_total", `stream="ZOOM_RAW"`, `result="ok"`), 3, true},
		{"normalizer pages normalized = fetcher pages published", normalizer.sum("zoom_pages_normalized_total"), fetcher.sum("zoom_pages_published_total"), false},
		{"normalizer group-admin pages", normalizer.sum("zoom_pages_normalized_total", `listing="group_admins"`), float64(len(org.Groups)), false},
		{"normalizer webhook events handled", normalizer.sum("zoom_messages_handled_total", `stream="ZOOM_WEBHOOK"`, `result="ok"`), 3, false},
		{"normalizer service users normalized", normalizer.sum("zoom_records_normalized_total", `kind="service_user"`), float64(len(org.Users)), true},
		{"writer events published = events received", writer.sum("clarity_change_events_published_total"), events, false},
		{"writer runs completed", writer.sum("zoom_sync_runs_total", `result="completed"`), 1, false},
		{"writer sync duration observed", writer.sum("zoom_sync_duration_seconds_count"), 1, false},
		{"writer records created by the run", writer.sum("zoom_sync_records_total", `outcome="created"`), float64(d.Stats.Created), false},
		{"writer outbox lag observed", writer.sum("zoom_outbox_lag_seconds_count"), 1, true},
		{"webhook accepted", webhook.sum("zoom_webhook_requests_total", `result="accepted"`), 3, false},
		{"webhook events by name", webhook.sum("zoom_webhook_events_total", `event="group.updated"`), 3, false},
	}
	for _, ch := range checks {
		if ch.atLeast && ch.got < ch.want || !ch.atLeast && ch.got != ch.want {
			op := "="
			if ch.atLeast {
				op = "≥"
			}
			t.Errorf("%s: got %v, want %s %v", ch.what, ch.got, op, ch.want)
		}
	}
	for name, sc := range map[string]scrape{"fetcher": fetcher, "normalizer": normalizer, "writer": writer, "webhook": webhook} {
		if sc.sum("process_resident_memory_bytes") <= 0 {
			t.Errorf("%s: no process metrics", name)
		}
	}
}
