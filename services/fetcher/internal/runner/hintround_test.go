package runner_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

type batchCount struct {
	mu      sync.Mutex
	choices map[runner.HintChoice]int
}

func (b *batchCount) HintBatch(_ pipeline.ConnectorRef, choice runner.HintChoice, _ int, _ int) {
	b.mu.Lock()
	b.choices[choice]++
	b.mu.Unlock()
}

// TestReplicasShareOneListingRound: two replicas each hold a batch of 60
// hints about users spread over an account of 2,000 (7 listing pages of
// active and inactive users). Each batch alone would list the account for
// itself; together they take one round: one listing for both, each hinted
// user published once as a re-read with its hint's version, the users the
// listings did not show (pending, deleted) re-read one by one, nobody
// deleted who was not gone.
func TestReplicasShareOneListingRound(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js, kv, runs := roundStreams(ctx, t)
	org, sim := newSimulator(t, 11, zoomtest.Size{Users: 2000, Groups: 4, Roles: 4})
	var hinted []string
	var gone string
	// Pending users are listed without id: they are re-read.
	pending := map[string]bool{}
	for i, u := range org.Users {
		if i%19 == 3 && len(hinted) < 120 {
			hinted = append(hinted, u.ID)
			if u.Status == "pending" {
				pending[u.ID] = true
			}
		}
	}
	gone = hinted[len(hinted)-1]
	if _, err := sim.RemoveUser(ctx, gone, "delete"); err != nil {
		t.Fatal(err)
	}
	counts := &batchCount{choices: map[runner.HintChoice]int{}}
	var replicas []*runner.Runner
	for range 2 {
		client := simClient(t, sim)
		replicas = append(replicas, runner.New(runner.Config{
			Runs:         runs,
			Syncer:       syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
			Clients:      runner.Fixed{conn: client},
			Log:          zerolog.Nop(),
			HintQuiet:    300 * time.Millisecond,
			HintObserver: counts,
			HintRounds:   kv, HintRoundGather: time.Second,
		}))
	}
	sim.ResetRequests()
	var wg sync.WaitGroup
	errs := make(chan error, len(hinted))
	for i, id := range hinted {
		m := hintMsg(t, id, int64(1000+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- replicas[i%2].HandleHint(ctx, msgOf{m: m})
		}()
	}
	waitHints(t, &wg, errs)

	pages := map[string]*pb.RawPage{}
	for _, p := range rawReads(t, js) {
		if _, dup := pages[p.GetUserId()]; dup {
			t.Errorf("user %s published twice", p.GetUserId())
		}
		pages[p.GetUserId()] = p
	}
	for i, id := range hinted {
		p, ok := pages[id]
		switch {
		case !ok:
			t.Errorf("user %s: no re-read published", id)
			continue
		case p.GetRef().GetListing() != pb.Listing_LISTING_USER || p.VersionMs != int64(1000+i):
			t.Errorf("user %s: page %v version %d, want a re-read with version %d", id, p.GetRef(), p.VersionMs, 1000+i)
		case p.NotFound != (id == gone):
			t.Errorf("user %s: not found %t, want %t", id, p.NotFound, id == gone)
		case id != gone && !pending[id]:
			var u struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal(p.Body, &u); err != nil || u.ID != id || u.Status == "" {
				t.Errorf("user %s: body %.80s, want the user with its status", id, p.Body)
			}
		}
	}
	if len(pages) != len(hinted) {
		t.Errorf("%d users published, want the %d hinted", len(pages), len(hinted))
	}
	// The users a listing page served go as one message: at most one a
	// page, beside one a user re-read.
	listedMsgs := 0
	for _, env := range rawEnvelopes(t, js) {
		if len(env.GetRawPages().GetPages()) > 0 {
			listedMsgs++
		}
	}
	got := sim.Requests()
	if listings := got["GET /users"]; listedMsgs == 0 || listedMsgs > listings {
		t.Errorf("%d messages of listed users, want one or more, at most one a listing page (%d)", listedMsgs, listings)
	}
	// 2,000 users: active and inactive fill 7 pages of 300; one round
	// lists them once. The pending and the deleted user are re-read.
	if want := len(pending) + 1; got["GET /users"] > 7 || got["GET /users/{userId}"] != want {
		t.Errorf("%d listing pages and %d re-reads, want one listing (at most 7 pages) and %d re-reads (the pending users and the deleted one)",
			got["GET /users"], got["GET /users/{userId}"], want)
	}
	if counts.choices[runner.HintListed] != 2 {
		t.Errorf("batches by choice %v, want both listed", counts.choices)
	}
}
