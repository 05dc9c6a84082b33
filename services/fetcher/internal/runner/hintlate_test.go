package runner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// gatedClient is a Zoom client whose listings call after with each page
// before the caller gets it: a test holds a listing there.
type gatedClient struct {
	*zoom.Client
	after func(zoom.RawPage)
}

func (g *gatedClient) Pages(ctx context.Context, l zoom.Listing, fn func(zoom.RawPage) error) error {
	return g.Client.Pages(ctx, l, func(p zoom.RawPage) error {
		g.after(p)
		return fn(p)
	})
}

// TestLateJoinerServedByLaterPagesOrNextRound: replica A's round lists an
// account of 3,000 users for a batch of 40 hints; while it lists (held
// after its fourth page of active users), replica B's batch joins the
// round: users on pages the listing had already asked for (passed), users
// on pages still to come (ahead), and users of A's batch that page 1-3 had
// already published and that changed again. The ahead users are served by
// the round's later pages; the passed ones and the changed-again ones go
// to the next round, which lists only the first pages (as far as the
// listing was when B joined). Every user is published with its newest
// change, never from a page asked for before its hint, with its hint's
// version, and reads as a one-by-one re-read reads it; no user is re-read
// and nobody is deleted.
func TestLateJoinerServedByLaterPagesOrNextRound(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, kv, runs := roundStreams(ctx, t)
	org, sim := newSimulator(t, 29, zoomtest.Size{Users: 3000, Groups: 4, Roles: 4})
	newClient := func() *zoom.Client { return simClient(t, sim) }
	// Where each active user is listed.
	pageOf := map[string]int{}
	activePages := 0
	if err := newClient().Pages(ctx, zoom.UsersListing("active"), func(p zoom.RawPage) error {
		var page struct {
			Users []struct {
				ID string `json:"id"`
			} `json:"users"`
		}
		if err := json.Unmarshal(p.Body, &page); err != nil {
			return err
		}
		for _, u := range page.Users {
			pageOf[u.ID] = p.Number
		}
		activePages = p.Number
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if activePages < 7 {
		t.Fatalf("%d pages of active users, want at least 7", activePages)
	}
	const holdAt = 4 // A's listing is held after its fourth page of active users
	var earlyFront, earlyBack, passed, ahead, again []string
	for _, u := range org.Users {
		n, ok := pageOf[u.ID]
		switch {
		case !ok:
		case len(earlyFront) < 20 && n <= 3:
			earlyFront = append(earlyFront, u.ID)
		case len(earlyBack) < 20 && n >= 6:
			earlyBack = append(earlyBack, u.ID)
		case len(passed) < 25 && n >= 2 && n <= holdAt:
			passed = append(passed, u.ID)
		case len(ahead) < 25 && n > holdAt+1:
			ahead = append(ahead, u.ID)
		}
	}
	early := append(append([]string{}, earlyFront...), earlyBack...)
	again = earlyFront[:5]
	if len(early) < 40 || len(passed) < 25 || len(ahead) < 25 || len(again) < 5 {
		t.Fatalf("users picked: %d early, %d passed, %d ahead, %d again", len(early), len(passed), len(ahead), len(again))
	}

	// A's listing of active users waits at page holdAt until B's batch
	// has joined the round.
	release := make(chan struct{})
	held := make(chan struct{})
	var once sync.Once
	gate := func(p zoom.RawPage) {
		if p.Listing.String() == zoom.UsersListing("active").String() && p.Number == holdAt {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}
	counts := &batchCount{choices: map[runner.HintChoice]int{}}
	replica := func(client runner.Client) *runner.Runner {
		return runner.New(runner.Config{
			Runs:         runs,
			Syncer:       syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
			Clients:      runner.Fixed{conn: client},
			Log:          zerolog.New(zerolog.NewTestWriter(t)),
			HintQuiet:    time.Second, // each replica's hints are one batch, however slow the machine
			HintObserver: counts,
			HintRounds:   kv, HintRoundGather: 500 * time.Millisecond,
		})
	}
	a := replica(&gatedClient{Client: newClient(), after: gate})
	b := replica(&gatedClient{Client: newClient(), after: gate})

	change := func(ids []string, tag string) {
		for _, id := range ids {
			if _, err := sim.UpdateUser(ctx, id, zoomtest.Profile{LastName: zoomtest.Ptr(tag + " " + id)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	type hint struct {
		id      string
		version int64
		sent    time.Time
		last    string
	}
	var (
		mu    sync.Mutex
		hints []hint
		wg    sync.WaitGroup
	)
	errs := make(chan error, 200)
	send := func(r *runner.Runner, ids []string, tag string, version int64) {
		change(ids, tag)
		sent := time.Now()
		for _, id := range ids {
			mu.Lock()
			hints = append(hints, hint{id: id, version: version, sent: sent, last: tag + " " + id})
			mu.Unlock()
			m := hintMsg(t, id, version)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- r.HandleHint(ctx, msgOf{m: m})
			}()
		}
	}
	sim.ResetRequests()
	send(a, early, "Early", 1000)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the round never listed")
	}
	listedBefore := sim.Requests()["GET /users"]
	wanted := roundWanted(ctx, t, kv)
	late := append(append(append([]string{}, passed...), ahead...), again...)
	send(b, late, "Late", 2000)
	for roundWanted(ctx, t, kv) < wanted+len(late) {
		if ctx.Err() != nil {
			t.Fatal("B's batch never joined the listing round")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	waitHints(t, &wg, errs)

	got := sim.Requests()
	// What each user's publications were, in order.
	published := map[string][]*pb.RawPage{}
	for _, p := range rawReads(t, js) {
		published[p.GetUserId()] = append(published[p.GetUserId()], p)
	}
	newest := map[string]hint{}
	for _, h := range hints {
		if h.version > newest[h.id].version {
			newest[h.id] = h
		}
	}
	oneByOne := newClient()
	for id, h := range newest {
		ps := published[id]
		if len(ps) == 0 {
			t.Errorf("user %s: nothing published", id)
			continue
		}
		last := ps[len(ps)-1]
		var got struct {
			LastName string `json:"last_name"`
		}
		if err := json.Unmarshal(last.Body, &got); err != nil || last.NotFound {
			t.Errorf("user %s: body %.80s (not found %t)", id, last.Body, last.NotFound)
			continue
		}
		if got.LastName != h.last || last.VersionMs != h.version || last.FetchedAtMs < h.sent.UnixMilli() {
			t.Errorf("user %s (page %d): published %q version %d read at %d, want %q version %d read after its hint (%d)",
				id, pageOf[id], got.LastName, last.VersionMs, last.FetchedAtMs, h.last, h.version, h.sent.UnixMilli())
		}
		// A one-by-one re-read of the user now reads the same.
		body, err := oneByOne.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := sameFields(last.Body, body); diff != "" {
			t.Errorf("user %s: the listed read differs from a re-read: %s", id, diff)
		}
	}
	for _, id := range append(append([]string{}, passed...), ahead...) {
		if n := len(published[id]); n != 1 {
			t.Errorf("user %s (page %d): published %d times, want once", id, pageOf[id], n)
		}
	}
	for _, id := range again {
		if n := len(published[id]); n != 2 {
			t.Errorf("user %s (page %d, changed again): published %d times, want twice (each change once)", id, pageOf[id], n)
		}
	}
	// Round one lists active and inactive users whole; round two lists
	// active users only as far as the first listing was when B joined
	// (holdAt pages, and a little slack), and stops once it showed them.
	roundOne := 0
	for _, st := range []string{"active", "inactive"} {
		if err := newClient().Pages(ctx, zoom.UsersListing(st), func(zoom.RawPage) error { roundOne++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n := got["GET /users"]; n < roundOne+1 || n > roundOne+holdAt+2 || got["GET /users/{userId}"] != 0 {
		t.Errorf("%d listing pages (%d before B joined) and %d re-reads, want one whole listing (%d pages), at most %d more for the users passed, and no re-read",
			n, listedBefore, got["GET /users/{userId}"], roundOne, holdAt+2)
	}
	if counts.choices[runner.HintReread] != 0 || counts.choices[runner.HintListed] != 2 {
		t.Errorf("batches by choice %v, want both listed", counts.choices)
	}
}

// roundWanted is the users that joined the connector's current round.
func roundWanted(ctx context.Context, t *testing.T, kv jetstream.KeyValue) int {
	t.Helper()
	r, err := readRound(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	return r.Wanted
}

// sameFields compares the fields two reads of a user both have, and says
// how they differ ("" when not).
func sameFields(a, b []byte) string {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return "not JSON objects"
	}
	common := 0
	for k, va := range ma {
		vb, ok := mb[k]
		if !ok {
			continue
		}
		common++
		if !bytes.Equal(compact(va), compact(vb)) {
			return fmt.Sprintf("%s: %s against %s", k, va, vb)
		}
	}
	if common < 5 {
		return fmt.Sprintf("only %d fields in common", common)
	}
	return ""
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// TestRoundWaitsForABulkChangeToEnd: a bulk change sends 400 webhooks
// without a pause over 8 s or more, so that each batch closes on its
// longest wait (2 s) rather than on a quiet time, and the round, which
// checks for batches every second, sees some checks with no batch joined.
// The round still waits for the change to end and lists the account once,
// serving every user (the last batch, however small, joins it); listing as
// soon as one check saw no new batch would list the pages passed again for
// the hints after.
func TestRoundWaitsForABulkChangeToEnd(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, kv, runs := roundStreams(ctx, t)
	org, sim := newSimulator(t, 31, zoomtest.Size{Users: 2000, Groups: 4, Roles: 4})
	client := simClient(t, sim)
	r := runner.New(runner.Config{
		Runs:      runs,
		Syncer:    syncer.New(syncer.Config{JetStream: js, Log: zerolog.Nop()}),
		Clients:   runner.Fixed{conn: client},
		Log:       zerolog.New(zerolog.NewTestWriter(t)),
		HintQuiet: 200 * time.Millisecond, HintMaxWait: 2 * time.Second,
		HintRounds: kv, HintRoundGather: 2 * time.Second,
	})
	var ids []string
	for _, u := range org.Users {
		if u.Status == "active" {
			ids = append(ids, u.ID)
		}
	}
	sim.ResetRequests()
	var wg sync.WaitGroup
	const hinted = 400
	errs := make(chan error, hinted)
	for i := range hinted {
		id := ids[(i*37)%len(ids)]
		if _, err := sim.UpdateUser(ctx, id, zoomtest.Profile{LastName: zoomtest.Ptr(fmt.Sprintf("Stream %d", i))}); err != nil {
			t.Fatal(err)
		}
		m := hintMsg(t, id, int64(1000+i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.HandleHint(ctx, msgOf{m: m})
		}()
		time.Sleep(20 * time.Millisecond)
	}
	waitHints(t, &wg, errs)
	got := sim.Requests()
	pages := 0
	for _, st := range []string{"active", "inactive"} {
		if err := client.Pages(ctx, zoom.UsersListing(st), func(zoom.RawPage) error { pages++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	served := servedVersions(t, js)
	for i := range hinted {
		if id := ids[(i*37)%len(ids)]; served[id] < int64(1000+i) {
			t.Errorf("user %s: newest version published %d, want %d", id, served[id], 1000+i)
		}
	}
	if got["GET /users"] != pages || got["GET /users/{userId}"] != 0 {
		t.Errorf("%d listing pages and %d re-reads, want one listing of the account (%d pages) and no re-read",
			got["GET /users"], got["GET /users/{userId}"], pages)
	}
}
