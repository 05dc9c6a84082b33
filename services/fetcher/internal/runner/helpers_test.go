package runner_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/ratebudget"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runstate"
)

// openRuns opens the run state on js.
func openRuns(ctx context.Context, t *testing.T, js jetstream.JetStream) *runstate.Store {
	t.Helper()
	runs, err := runstate.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// roundStreams starts a JetStream with the pipeline's streams, and opens
// on it the bucket the listing rounds are kept in and the run state.
func roundStreams(ctx context.Context, t *testing.T) (jetstream.JetStream, jetstream.KeyValue, *runstate.Store) {
	t.Helper()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	kv, err := ratebudget.Bucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return js, kv, openRuns(ctx, t, js)
}

// newSimulator serves an account generated from seed, of size, on the
// Zoom simulator.
func newSimulator(t *testing.T, seed int64, size zoomtest.Size) (*zoomtest.Org, *zoomtest.Server) {
	t.Helper()
	org := zoomtest.Generate(seed, size)
	return org, zoomtest.NewServer(t, org, zoomtest.Options{})
}

// simClient is a new Zoom client of sim's account, without pacing.
func simClient(t *testing.T, sim *zoomtest.Server) *zoom.Client {
	t.Helper()
	c, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hintMsg is the hint about user id at version, as published.
func hintMsg(t *testing.T, id string, version int64) *nats.Msg {
	t.Helper()
	m, err := pipeline.NewMsg(pipeline.HintSubject(conn), &pb.FetchUser{Tenant: conn.Tenant, Connector: conn.ID, UserId: id, VersionMs: version}, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitHints waits for the hint handlers of wg, whose outcomes go to errs,
// and fails on the first that failed.
func waitHints(t *testing.T, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("hint: %v", err)
		}
	}
}

// servedVersions is the newest version published on the raw stream for
// each user.
func servedVersions(t *testing.T, js jetstream.JetStream) map[string]int64 {
	t.Helper()
	served := map[string]int64{}
	for _, p := range rawReads(t, js) {
		served[p.GetUserId()] = max(served[p.GetUserId()], p.VersionMs)
	}
	return served
}

// hintsServed checks that the hints about ids, version 1000 + index, were
// handled (errs, in the same order; a failure means the batch waited for
// waitedFor) and that each user's newest version published is its hint's.
func hintsServed(t *testing.T, js jetstream.JetStream, ids []string, errs []error, waitedFor string) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("hint about %s: %v (the batch waited for %s)", ids[i], err, waitedFor)
		}
	}
	served := servedVersions(t, js)
	for i, id := range ids {
		if served[id] != int64(1000+i) {
			t.Errorf("user %s: version %d published, want %d", id, served[id], 1000+i)
		}
	}
}

// storedRound is the connector's current listing round as stored.
type storedRound struct {
	N      int64  `json:"n"`
	State  string `json:"state"`
	Wanted int    `json:"wanted"`
}

// readRound reads the connector's current listing round from kv.
func readRound(ctx context.Context, kv jetstream.KeyValue) (storedRound, error) {
	var r storedRound
	e, err := kv.Get(ctx, "round."+conn.Key())
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(e.Value(), &r)
	return r, err
}
