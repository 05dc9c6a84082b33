package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// userReads is the route of GET /users/{userId} in the simulator's counts.
const userReads = "GET /users/{userId}"

// enrichedOf is expectedOf with the enrichment attributes of the
// organisation's users.
func enrichedOf(org *zoomtest.Org) map[string]json.RawMessage {
	out := expectedOf(org)
	for _, r := range zoomtest.ExpectedEnrichment(org) {
		b, _ := json.Marshal(r.Data)
		out[r.Kind+"|"+r.Key] = b
	}
	return out
}

// readable counts the users of org that have an id to read them by: every
// user but the invitees.
func readable(org *zoomtest.Org) int {
	n := 0
	for _, u := range org.Users {
		if u.ID != "" && u.Status != zoomtest.StatusPending {
			n++
		}
	}
	return n
}

// enrichIdle waits until the fetcher's enrichment consumer has handled
// every event in the stream.
func enrichIdle(t *testing.T, s *connectorStack) {
	t.Helper()
	waitFor(t, 2*time.Minute, func() bool {
		cons, err := s.JS.Consumer(context.Background(), clarity.StreamEntitlements, pipeline.ConsumerFetcherEnrich)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// waitEnriched waits until the collected records are org's, enriched, and
// fails with the difference when they do not become so.
func waitEnriched(t *testing.T, c *collector, org *zoomtest.Org, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(diffRecords(c.snapshot(), enrichedOf(org))) > 0 {
		if time.Now().After(deadline) {
			requireSame(t, what, c.snapshot(), enrichedOf(org))
			t.FailNow()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// enrichLog logs what the fetchers said of enrichment.
func enrichLog(t *testing.T, s *connectorStack) {
	files, _ := filepath.Glob(filepath.Join(s.Config().Dir, "logs", "fetcher*.log"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "enrich") || strings.Contains(l, "error") {
				t.Log(filepath.Base(f), l)
			}
		}
	}
}

// hasEnrichment lists the enrichment attributes among records.
func hasEnrichment(records map[string]json.RawMessage) []string {
	var out []string
	for k := range records {
		if !strings.HasPrefix(k, clarity.KindServiceUserAttribute+"|") {
			continue
		}
		_, name, _ := strings.Cut(strings.TrimPrefix(k, clarity.KindServiceUserAttribute+"|"), "|")
		if clarity.IsEnrichmentAttribute(name) {
			out = append(out, k)
		}
	}
	return out
}

// TestEnrichment: a connector's enrichment, off by default, reads no user's
// details and makes no enrichment attribute. Turned on, the next full sync
// is followed by one GET /users/{id} per user, and the attributes are the
// simulator's; a full sync of an unchanged account reads none again, nor
// one after users only signed in (the fetcher remembers each profile); a user
// whose listed data changed is read once more (and the full sync that
// compares it keeps its enrichment attributes); a user deleted takes its
// enrichment attributes along. A connector added with enrichment on reads
// each user once as its first sync creates it.
func TestEnrichment(t *testing.T) {
	ctx := context.Background()
	s := startConnectorStack(t, 91, nil, nil)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom-enrich"}
	acct, _ := s.account(t, "acc-enrich", ref, 92, 200)
	acct.SetWebhookURL("") // no webhooks: every read of a user by id is enrichment's
	col := collectRef(t, s.Stack, ref)
	reads := func() int { return acct.Requests()[userReads] }
	sync := func(what string) {
		t.Helper()
		id := cli.NewRequestID()
		if err := cli.Trigger(ctx, s.JS, ref, id); err != nil {
			t.Fatal(err)
		}
		if op, d := col.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
			t.Fatalf("%s: %s (%s)", what, op, d.Error)
		}
	}

	code, out, errw := s.zoomctl(t, "connector", "add", "--tenant", ref.Tenant, "--connector", ref.ID, "--auth", "s2s",
		"--client-id", acct.ClientID(), "--client-secret-file", secretFile(t, acct.ClientSecret()),
		"--account-id", acct.ID(), "--schedule", "manual", "--json")
	if code != cli.ExitOK {
		t.Fatalf("connector add: %d %s", code, errw)
	}
	var v connector.View
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Enrich {
		t.Fatalf("connector add --json: %v %s; want enrichment off", err, out)
	}
	if op, d := col.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("first sync: %s (%s)", op, d.Error)
	}
	enrichIdle(t, s)
	if n := reads(); n != 0 {
		t.Errorf("enrichment off: %d reads of a user by id, want none", n)
	}
	if got := hasEnrichment(col.snapshot()); len(got) > 0 {
		t.Errorf("enrichment off: enrichment attributes %v", got)
	}
	requireSame(t, "records without enrichment", col.snapshot(), expectedOf(acct.Org()))

	// On: the next full sync (of an unchanged account) is followed by one
	// read of each user.
	if code, out, errw := s.zoomctl(t, "connector", "update", "--tenant", ref.Tenant, "--connector", ref.ID, "--enrich", "--json"); code != cli.ExitOK ||
		!strings.Contains(out, `"enrich":true`) {
		t.Fatalf("connector update --enrich: %d %s %s", code, out, errw)
	}
	waitFor(t, 10*time.Second, func() bool { return s.show(t, ref).Enrich })
	sync("the sync after enrichment was turned on")
	users := readable(acct.Org())
	waitEnriched(t, col, acct.Org(), "records once enriched")
	enrichIdle(t, s)
	requireSame(t, "records once enriched", col.snapshot(), enrichedOf(acct.Org()))
	if n := reads(); n != users {
		t.Errorf("first enrichment: %d reads of a user by id, want one per user, %d (%v)", n, users, acct.RequestsByStatus())
		enrichLog(t, s)
	}
	if len(hasEnrichment(col.snapshot())) == 0 {
		t.Fatal("no enrichment attribute after the first enrichment")
	}

	// A full sync of the unchanged account reads nobody again.
	before := reads()
	sync("a no-op sync")
	enrichIdle(t, s)
	if n := reads() - before; n != 0 {
		t.Errorf("a no-op full sync: %d reads of a user by id, want none", n)
	}
	requireSame(t, "records after a no-op sync", col.snapshot(), enrichedOf(acct.Org()))

	// Users who signed in (last_login_at changed, their profile did not)
	// are read by nobody.
	signedIn := 0
	for _, u := range acct.Org().Users {
		if u.Status == zoomtest.StatusActive && signedIn < 20 {
			if err := acct.SignIn(u.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			signedIn++
		}
	}
	before = reads()
	mark := col.mark()
	sync("the sync after sign-ins")
	waitEnriched(t, col, acct.Org(), "records after sign-ins")
	enrichIdle(t, s)
	updated := 0
	for _, ev := range col.since(mark) {
		if ev.Type == "clarity."+clarity.KindServiceUser+"."+clarity.OpUpdated {
			updated++
		}
	}
	if updated != signedIn {
		t.Errorf("sign-ins of %d users: %d service_user updated events", signedIn, updated)
	}
	if n := reads() - before; n != 0 {
		t.Errorf("sign-ins only: %d reads of a user by id, want none", n)
	}

	// A user whose listed data changed is read once more; the full sync
	// that compares it keeps its enrichment attributes.
	changed := acct.Org().Users[0]
	for _, u := range acct.Org().Users {
		if u.Status == zoomtest.StatusActive && u.RoleID != zoomtest.RoleOwner {
			changed = u
			break
		}
	}
	if _, err := acct.UpdateUser(ctx, changed.ID, zoomtest.Profile{Dept: zoomtest.Ptr("Enrichment Tests"), JobTitle: zoomtest.Ptr("Chief Tester")}); err != nil {
		t.Fatal(err)
	}
	before = reads()
	mark = col.mark()
	sync("the sync after a change")
	waitEnriched(t, col, acct.Org(), "records after a change")
	enrichIdle(t, s)
	if n := reads() - before; n != 1 {
		t.Errorf("a changed user: %d reads of a user by id, want 1", n)
	}
	if d := col.deletions(mark); len(d) > 0 {
		t.Errorf("the sync after a change deleted %v", d)
	}
	requireSame(t, "records after a change", col.snapshot(), enrichedOf(acct.Org()))
	if got := col.snapshot()[clarity.KindServiceUserAttribute+"|"+changed.ID+"|job_title"]; !strings.Contains(string(got), "Chief Tester") {
		t.Errorf("the changed user's job title: %s", got)
	}

	// A user deleted takes its enrichment attributes along.
	mark = col.mark()
	if _, err := acct.RemoveUser(ctx, changed.ID, "delete"); err != nil {
		t.Fatal(err)
	}
	sync("the sync after a deletion")
	waitEnriched(t, col, acct.Org(), "records after a deletion")
	gone := map[string]bool{}
	for _, d := range col.deletions(mark) {
		gone[d] = true
	}
	for _, name := range []string{clarity.AttrJobTitle, clarity.AttrLoginTypes} {
		if k := "clarity." + clarity.KindServiceUserAttribute + ".deleted " + changed.ID + "|" + name; !gone[k] {
			t.Errorf("the deleted user's %s: no deleted event (got %v)", name, col.deletions(mark))
		}
	}
	requireSame(t, "records after a deletion", col.snapshot(), enrichedOf(acct.Org()))

	// A connector added with enrichment on reads each user as its first
	// sync creates it.
	ref2 := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom-enrich-2"}
	acct2, _ := s.account(t, "acc-enrich-2", ref2, 93, 60)
	acct2.SetWebhookURL("")
	col2 := collectRef(t, s.Stack, ref2)
	if code, _, errw := s.zoomctl(t, "connector", "add", "--tenant", ref2.Tenant, "--connector", ref2.ID, "--auth", "s2s",
		"--client-id", acct2.ClientID(), "--client-secret-file", secretFile(t, acct2.ClientSecret()),
		"--account-id", acct2.ID(), "--schedule", "manual", "--enrich"); code != cli.ExitOK {
		t.Fatalf("connector add --enrich: %d %s", code, errw)
	}
	if op, d := col2.waitSyncEnd(t, 1, 2*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("first sync with enrichment: %s (%s)", op, d.Error)
	}
	waitEnriched(t, col2, acct2.Org(), "records of the connector enriched from the start")
	enrichIdle(t, s)
	if n, want := acct2.Requests()[userReads], readable(acct2.Org()); n != want {
		t.Errorf("enrichment on from the start: %d reads of a user by id, want one per user, %d", n, want)
	}
	requireSame(t, "records of the connector enriched from the start", col2.snapshot(), enrichedOf(acct2.Org()))
}
