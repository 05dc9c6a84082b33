package clients_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/clients"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/runner"
)

// TestRegisteredConnectorsServed: a Server-to-Server connector and an OAuth
// connector of the registry, on two accounts, are both served: the fetch
// of each completes and lists its own account's users, all of them, and
// none of the other's.
func TestRegisteredConnectorsServed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addS2S(t)
	w.addOAuth(t)
	w.authorize(t)
	rep := w.replica(t, "replica-1", w.reg, w.keys)
	waitUntil(t, 5*time.Second, "both connectors in the watched copy", func() bool {
		e, ok := w.reg.Lookup(oauthRef)
		_, ok2 := w.reg.Lookup(s2sRef)
		return ok && ok2 && e.State == connector.StateActive
	})

	for _, ref := range []pipeline.ConnectorRef{s2sRef, oauthRef} {
		if err := rep.r.HandleTrigger(ctx, w.trigger(t, ref, "first-"+ref.Tenant)); err != nil {
			t.Fatalf("%s: handle the trigger: %v", ref, err)
		}
	}
	raw := rawOf(t, w.js)
	for ref, acct := range map[pipeline.ConnectorRef]*zoomtest.Account{s2sRef: w.acctB, oauthRef: w.acctA} {
		p := raw[ref]
		if p == nil || len(p.fetched) != 1 || len(p.failed) != 0 {
			t.Fatalf("%s: runs %+v, want one fetched and none failed", ref, p)
		}
		if got := p.fetched[0].RequestIds; len(got) != 1 || got[0] != "first-"+ref.Tenant {
			t.Errorf("%s: run for %v, want its own trigger", ref, got)
		}
		want := emailsOf(acct)
		for email := range p.emails {
			if !want[email] {
				t.Errorf("%s: listed %s, not of its account", ref, email)
			}
		}
		for email := range want {
			if !p.emails[email] {
				t.Errorf("%s: did not list %s of its account", ref, email)
			}
		}
	}
	if n := rep.set.Cached(); n != 2 {
		t.Errorf("%d clients cached, want 2", n)
	}
	// A hint of each connector reads its own account.
	for ref, acct := range map[pipeline.ConnectorRef]*zoomtest.Account{s2sRef: w.acctB, oauthRef: w.acctA} {
		if err := rep.r.HandleHint(ctx, hint(t, ref, acct.Org().Users[1].ID)); err != nil {
			t.Errorf("%s: hint: %v", ref, err)
		}
	}
	raw = rawOf(t, w.js)
	if !raw[s2sRef].emails[w.acctB.Org().Users[1].Email] || !raw[oauthRef].emails[w.acctA.Org().Users[1].Email] {
		t.Error("a hint did not read its connector's user")
	}
}

// TestSettingsChangeInForce: a connector disabled in the registry is
// refused within 5 seconds, without restart, and served again once
// active; a changed secret builds a new client, an unchanged record keeps
// it.
func TestSettingsChangeInForce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addS2S(t)
	// A second replica's registry copy: the change is made through the
	// first, as the admin API of another service would.
	other := openRegistry(t, w.js)
	rep := w.replica(t, "replica-2", other, w.keys)
	waitUntil(t, 5*time.Second, "the connector in the watched copy", func() bool { _, ok := other.Lookup(s2sRef); return ok })
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, s2sRef, "before")); err != nil {
		t.Fatal(err)
	}
	first, err := rep.set.Client(ctx, s2sRef)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error {
		r.State, r.Reason = connector.StateDisabled, "disabled by an operator"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, 5*time.Second, "the disabled connector refused", func() bool {
		_, err := rep.set.Client(ctx, s2sRef)
		return errors.Is(err, connector.ErrNotActive)
	})
	t.Logf("disabled connector refused %s after the change", took)
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, s2sRef, "after")); err != nil {
		t.Fatal(err)
	}
	got := refusals(t, w.js, s2sRef)
	if len(got) != 1 || !contains(got[0], "connector globex/zoom is disabled", "disabled by an operator") {
		t.Fatalf("refusals %q, want one saying the connector is disabled", got)
	}
	if p := rawOf(t, w.js)[s2sRef]; len(p.started) != 1 {
		t.Errorf("%d runs started, want only the one before the change", len(p.started))
	}

	// Active again: served again, by a client built anew.
	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error {
		r.State, r.Reason = connector.StateActive, ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the connector served again", func() bool { _, err := rep.set.Client(ctx, s2sRef); return err == nil })
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, s2sRef, "again")); err != nil {
		t.Fatal(err)
	}
	if p := rawOf(t, w.js)[s2sRef]; len(p.fetched) != 2 || len(p.failed) != 0 {
		t.Errorf("runs fetched %d, failed %d; want 2 and 0", len(p.fetched), len(p.failed))
	}
	again, _ := rep.set.Client(ctx, s2sRef)
	if again == first {
		t.Error("the client of the disabled connector was kept")
	}

	// A change that is not of the client's settings keeps the client; a
	// new secret (here a wrong one) builds another.
	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error { r.Schedule = "2h"; return nil }); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the schedule change seen", func() bool { e, _ := other.Lookup(s2sRef); return e.Schedule == "2h" })
	if c, _ := rep.set.Client(ctx, s2sRef); c != again {
		t.Error("a schedule change built a new client")
	}
	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error {
		r.ClientSecret = w.seal(t, s2sRef, connector.FieldClientSecret, "not-the-secret")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a client with the new secret", func() bool { c, _ := rep.set.Client(ctx, s2sRef); return c != again })
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, s2sRef, "wrong-secret")); err != nil {
		t.Fatal(err)
	}
	p := rawOf(t, w.js)[s2sRef]
	if len(p.failed) != 1 || !strings.Contains(p.failed[0].Error, "invalid_client") || strings.Contains(p.failed[0].Error, "not-the-secret") {
		t.Errorf("run with the new secret: failures %v, want one saying zoom refused the client, never the secret", p.failed)
	}
}

// TestNotServedRefused: a trigger for a connector pending its
// authorization is refused with its state and what to do, one for an
// unknown connector as before, each on its own subject; nothing reaches
// the writer or the run state. A hint for the pending one is dropped, one
// for the unknown one is a permanent failure.
func TestNotServedRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addOAuth(t)
	w.addS2S(t)
	rep := w.replica(t, "replica-1", w.reg, w.keys)
	waitUntil(t, 5*time.Second, "the connectors in the watched copy", func() bool {
		_, ok := w.reg.Lookup(oauthRef)
		_, ok2 := w.reg.Lookup(s2sRef)
		return ok && ok2
	})
	unknown := pipeline.ConnectorRef{Tenant: "initech", ID: "zoom"}
	for _, ref := range []pipeline.ConnectorRef{oauthRef, unknown} {
		if err := rep.r.HandleTrigger(ctx, w.trigger(t, ref, "r-"+ref.Tenant)); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	got := refusals(t, w.js, oauthRef)
	if len(got) != 1 || !contains(got[0], "connector acme/zoom is pending_authorization", "authorize",
		"zoomctl connector authorize --tenant acme --connector zoom") {
		t.Errorf("refusal of the pending connector %q, want its state and what to do", got)
	}
	got = refusals(t, w.js, unknown)
	if len(got) != 1 || got[0] != "unknown connector initech/zoom: no such connector is configured" {
		t.Errorf("refusal of the unknown connector %q", got)
	}
	for _, ref := range []pipeline.ConnectorRef{oauthRef, unknown} {
		for _, reason := range refusals(t, w.js, ref) {
			if strings.Contains(reason, "globex") {
				t.Errorf("refusal %q names another connector", reason)
			}
		}
	}
	if raw := rawOf(t, w.js); len(raw) != 0 {
		t.Errorf("messages towards the writer for %d connectors, want none", len(raw))
	}
	if err := rep.r.HandleHint(ctx, hint(t, oauthRef, "u1")); err != nil {
		t.Errorf("hint for the pending connector: %v, want it dropped", err)
	}
	if err := rep.r.HandleHint(ctx, hint(t, unknown, "u1")); !errors.Is(err, natsx.ErrPermanent) {
		t.Errorf("hint for the unknown connector: %v, want a permanent failure", err)
	}
}

// TestRefusalCutsTheReasonBetweenCharacters: the refusal of a disabled
// connector quotes its reason cut before a character, never inside one,
// then "…".
func TestRefusalCutsTheReasonBetweenCharacters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addS2S(t)
	kept := strings.Repeat("a", 255)
	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error {
		r.State, r.Reason = connector.StateDisabled, kept+"日本"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep := w.replica(t, "replica-1", w.reg, w.keys)
	waitUntil(t, 5*time.Second, "the disabled connector in the watched copy", func() bool {
		e, ok := w.reg.Lookup(s2sRef)
		return ok && e.State == connector.StateDisabled
	})
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, s2sRef, "r-disabled")); err != nil {
		t.Fatal(err)
	}
	got := refusals(t, w.js, s2sRef)
	if len(got) != 1 {
		t.Fatalf("%d refusals, want 1: %q", len(got), got)
	}
	if !utf8.ValidString(got[0]) || strings.ContainsRune(got[0], utf8.RuneError) || !strings.Contains(got[0], "("+kept+"…)") {
		t.Errorf("refusal %q, want the reason's %d bytes before 日, then …", got[0], len(kept))
	}
}

// TestWithoutSecretsKey: without CONNECTOR_SECRETS_KEY, the environment's
// connector is served as before, and a trigger for a registered one is
// refused with an error saying the key is not set.
func TestWithoutSecretsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addS2S(t)
	env := pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}
	envClient, err := zoom.New(zoom.Config{APIURL: w.sim.APIBase(), OAuthURL: w.sim.URL(),
		AccountID: w.sim.AccountID(), ClientID: w.sim.ClientID(), ClientSecret: w.sim.ClientSecret(), DisablePacing: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := w.replicaWith(t, clients.Config{Env: env, EnvClient: envClient, Registry: w.reg})
	waitUntil(t, 5*time.Second, "the connector in the watched copy", func() bool { _, ok := w.reg.Lookup(s2sRef); return ok })
	for _, ref := range []pipeline.ConnectorRef{env, s2sRef} {
		if err := rep.r.HandleTrigger(ctx, w.trigger(t, ref, "r-"+ref.Tenant)); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	raw := rawOf(t, w.js)
	if p := raw[env]; p == nil || len(p.fetched) != 1 || len(p.failed) != 0 {
		t.Errorf("environment's connector: %+v, want its run fetched", p)
	}
	if p := raw[s2sRef]; p != nil {
		t.Errorf("registered connector: %+v sent towards the writer, want nothing", p)
	}
	got := refusals(t, w.js, s2sRef)
	if len(got) != 1 || !contains(got[0], "connector globex/zoom cannot be synced", "CONNECTOR_SECRETS_KEY is not set") {
		t.Errorf("refusals %q, want one saying CONNECTOR_SECRETS_KEY is not set", got)
	}
	if _, err := rep.set.Client(ctx, s2sRef); !errors.Is(err, connector.ErrNoKey) {
		t.Errorf("registered connector without the key: %v, want ErrNoKey", err)
	}
}

// TestTokenRefreshAcrossReplicas: an OAuth connector whose access tokens
// live 2 seconds is synced again and again, and its users read, by two
// replicas at once for 8 seconds: every run completes, every read
// succeeds, and no refresh token is ever presented twice.
func TestTokenRefreshAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, 2*time.Second)
	w.addOAuth(t)
	w.authorize(t)
	var reps []*replica
	for _, name := range []string{"replica-1", "replica-2"} {
		reg := openRegistry(t, w.js)
		waitUntil(t, 5*time.Second, "the connector active", func() bool {
			e, ok := reg.Lookup(oauthRef)
			return ok && e.State == connector.StateActive
		})
		reps = append(reps, w.replica(t, name, reg, w.keys))
	}
	users := w.acctA.Org().Users
	deadline := time.Now().Add(8 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	var mu sync.Mutex // one trigger published and fetched at a time
	for i, rep := range reps {
		wg.Go(func() { // syncs
			for n := 0; time.Now().Before(deadline); n++ {
				mu.Lock()
				msg := w.trigger(t, oauthRef, fmt.Sprintf("r%d-%d", i, n))
				mu.Unlock()
				if err := rep.r.HandleTrigger(ctx, msg); err != nil {
					errs <- fmt.Errorf("replica %d: sync: %w", i+1, err)
					return
				}
				if err := msg.Ack(); err != nil {
					errs <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
		wg.Go(func() { // user reads
			for n := 0; time.Now().Before(deadline); n++ {
				u := users[n%len(users)]
				if u.Status == zoomtest.StatusPending {
					continue
				}
				if err := rep.r.HandleHint(ctx, hint(t, oauthRef, u.ID)); err != nil {
					errs <- fmt.Errorf("replica %d: read user: %w", i+1, err)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p := rawOf(t, w.js)[oauthRef]
	if len(p.failed) != 0 {
		for _, f := range p.failed {
			t.Errorf("run %s failed: %s", f.Run.RunId, f.Error)
		}
	}
	if len(p.started) < 4 || len(p.fetched) != len(p.started) {
		t.Errorf("%d runs started, %d fetched; want several, all fetched", len(p.started), len(p.fetched))
	}
	st := w.acctA.TokenStats()
	if st.Reuses != 0 || st.MaxRefreshUses > 1 || st.RefreshRejected != 0 {
		t.Errorf("token stats %+v: a refresh token was presented more than once", st)
	}
	if st.Rotations < 3 {
		t.Errorf("%d rotations in 8 s of 2-second tokens, want the tokens refreshed", st.Rotations)
	}
	t.Logf("%d runs, %d user pages, token stats %+v", len(p.fetched), p.userPages, st)
}

// TestInvalidGrant: Zoom revokes the OAuth connector's grant. The next run
// fails saying to authorize again, deleting nothing (a failed run); the
// registry says needs_reauthorization; Zoom was asked once; later
// triggers are refused at once, and hints dropped.
func TestInvalidGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addOAuth(t)
	w.authorize(t)
	rep := w.replica(t, "replica-1", w.reg, w.keys)
	waitUntil(t, 5*time.Second, "the connector active", func() bool {
		e, ok := w.reg.Lookup(oauthRef)
		return ok && e.State == connector.StateActive
	})
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, oauthRef, "before")); err != nil {
		t.Fatal(err)
	}
	w.app.RevokeGrants()
	w.acctA.ExpireTokens()
	before := w.acctA.TokenStats()

	if err := rep.r.HandleTrigger(ctx, w.trigger(t, oauthRef, "revoked")); err != nil {
		t.Fatal(err)
	}
	p := rawOf(t, w.js)[oauthRef]
	if len(p.fetched) != 1 || len(p.failed) != 1 {
		t.Fatalf("runs fetched %d, failed %d; want the first fetched, the second failed", len(p.fetched), len(p.failed))
	}
	if f := p.failed[0]; !contains(f.Error, "authorize") || !contains(f.Error, "again") {
		t.Errorf("failure %q, want it to say to authorize again", f.Error)
	}
	t.Logf("the run failed with: %s", p.failed[0].Error)
	e, err := w.reg.Get(ctx, oauthRef)
	if err != nil {
		t.Fatal(err)
	}
	if e.State != connector.StateNeedsReauthorization || e.Tokens.Refresh != "" {
		t.Errorf("connector state %s (refresh token kept: %t), want needs_reauthorization without tokens", e.State, e.Tokens.Refresh != "")
	}
	after := w.acctA.TokenStats()
	if n := after.RefreshRejected - before.RefreshRejected; n != 1 {
		t.Errorf("%d refreshes refused, want 1: the refusal is not retried", n)
	}

	waitUntil(t, 5*time.Second, "the state in the watched copy", func() bool {
		e, _ := w.reg.Lookup(oauthRef)
		return e.State == connector.StateNeedsReauthorization
	})
	for i := range 3 {
		start := time.Now()
		if err := rep.r.HandleTrigger(ctx, w.trigger(t, oauthRef, fmt.Sprintf("later-%d", i))); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("refusal took %s, want it at once", d)
		}
	}
	got := refusals(t, w.js, oauthRef)
	t.Logf("later triggers refused with: %q", got)
	if len(got) != 3 || !contains(got[0], "needs_reauthorization", "authorize it again") {
		t.Errorf("refusals %q, want three saying the connector needs to be authorized again", got)
	}
	if p := rawOf(t, w.js)[oauthRef]; len(p.started) != 2 {
		t.Errorf("%d runs started, want none after the revocation's", len(p.started))
	}
	if err := rep.r.HandleHint(ctx, hint(t, oauthRef, w.acctA.Org().Users[1].ID)); err != nil {
		t.Errorf("hint: %v, want it dropped", err)
	}
	if n := w.acctA.TokenStats().RefreshRejected - before.RefreshRejected; n != 1 {
		t.Errorf("%d refreshes refused in all, want 1", n)
	}

	// Authorized again, it syncs.
	w.authorize(t)
	waitUntil(t, 5*time.Second, "the connector active again", func() bool { _, err := rep.set.Client(ctx, oauthRef); return err == nil })
	if err := rep.r.HandleTrigger(ctx, w.trigger(t, oauthRef, "reauthorized")); err != nil {
		t.Fatal(err)
	}
	if p := rawOf(t, w.js)[oauthRef]; len(p.fetched) != 2 {
		t.Errorf("%d runs fetched, want the one after the new authorization too", len(p.fetched))
	}
}

// TestDisabledDuringARun: a connector disabled while its sync runs stops
// reading Zoom: the run fails, saying why, instead of going on with the
// credentials withdrawn.
func TestDisabledDuringARun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	w.addS2S(t)
	rep := w.replica(t, "replica-1", w.reg, w.keys)
	waitUntil(t, 5*time.Second, "the connector in the watched copy", func() bool { _, ok := w.reg.Lookup(s2sRef); return ok })
	// Slow enough that the run lasts several seconds.
	w.acctB.Faults().Add(zoomtest.Fault{Latency: time.Second})
	msg := w.trigger(t, s2sRef, "slow")
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- rep.r.HandleTrigger(ctx, msg) }()
	time.Sleep(time.Second)
	if _, err := w.reg.Modify(ctx, s2sRef, func(r *connector.Record) error {
		r.State, r.Reason = connector.StateDisabled, "removed from the Zoom account"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("run ended %s after it started", time.Since(start))
	p := rawOf(t, w.js)[s2sRef]
	if len(p.failed) == 1 {
		t.Logf("the run failed with: %s", p.failed[0].Error)
	}
	if len(p.failed) != 1 || len(p.fetched) != 0 || !contains(p.failed[0].Error, "the sync was stopped", "is disabled") {
		t.Fatalf("runs fetched %d, failures %v; want the run failed, saying it was stopped", len(p.fetched), p.failed)
	}
}

// TestIdleConnectorsCostLittle: a thousand registered connectors that do
// not sync hold no client and no goroutine of the fetcher's. Not parallel:
// it counts the process's goroutines.
func TestIdleConnectorsCostLittle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	reg := openRegistry(t, w.js)
	rep := w.replica(t, "replica-1", reg, w.keys)
	before := runtime.NumGoroutine()
	for i := range 1000 {
		ref := pipeline.ConnectorRef{Tenant: fmt.Sprintf("t%04d", i), ID: "zoom"}
		if _, err := w.reg.Create(ctx, connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: connector.AuthS2S,
			ClientID: "cid", AccountID: "acc", ClientSecret: w.seal(t, ref, connector.FieldClientSecret, "s"),
			Schedule: "24h", State: connector.StateActive}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "a thousand connectors in the watched copy", func() bool { return len(reg.All()) == 1000 })
	if n := rep.set.Cached(); n != 0 {
		t.Errorf("%d clients built for connectors never used, want none", n)
	}
	// The watch and the NATS client's own goroutines aside, nothing per
	// connector.
	if after := runtime.NumGoroutine(); after-before > 20 {
		t.Errorf("%d goroutines more with a thousand idle connectors", after-before)
	}
	if _, err := rep.set.Client(ctx, pipeline.ConnectorRef{Tenant: "t0007", ID: "zoom"}); err != nil {
		t.Fatal(err)
	}
	if n := rep.set.Cached(); n != 1 {
		t.Errorf("%d clients after one was used, want 1", n)
	}
}

// TestRefusalConfirmedFromTheBucket: a replica whose copy of the registry
// does not yet show a change made a moment ago (a registration, an
// authorization, each followed at once by its first sync's trigger) reads
// the bucket before it refuses, and serves the connector. A registry it
// cannot read is no refusal: the trigger is tried again.
func TestRefusalConfirmedFromTheBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newWorld(t, time.Hour)
	// Not watched: its copy holds only what it read itself.
	lagging, err := connector.Open(ctx, w.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	rep := w.replica(t, "replica-1", lagging, w.keys)
	w.addS2S(t)
	if _, err := rep.set.Client(ctx, s2sRef); err != nil {
		t.Errorf("connector registered a moment ago: %v, want it served", err)
	}
	w.addOAuth(t)
	if _, err := rep.set.Client(ctx, oauthRef); !errors.Is(err, connector.ErrNotActive) {
		t.Fatalf("connector pending: %v, want ErrNotActive", err)
	}
	w.authorize(t)
	if e, _ := lagging.Lookup(oauthRef); e.State != connector.StatePendingAuthorization {
		t.Fatalf("the lagging copy says %s, want it still pending", e.State)
	}
	if _, err := rep.set.Client(ctx, oauthRef); err != nil {
		t.Errorf("connector authorized a moment ago: %v, want it served", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = rep.set.Client(cancelled, pipeline.ConnectorRef{Tenant: "initech", ID: "zoom"})
	if err == nil || errors.Is(err, runner.ErrNotServed) {
		t.Errorf("registry not read: %v, want an error that is no refusal", err)
	}
}
