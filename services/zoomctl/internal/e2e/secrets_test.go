package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/zoomctl/internal/cli"
)

// TestSecretsStayOutOfLogs runs every path that handles a credential with
// the services logging at debug level: a full sync during which the access
// token expires and is refreshed, webhooks (signed with the secret token,
// one with a wrong signature, a URL validation), re-reads of users with an
// expired token, a sync refused for revoked credentials and a sync after
// they are restored. Then no log line of any service may show the client
// secret (nor the Basic credentials made of it), any access token the
// simulator issued, or the webhook secret token.
func TestSecretsStayOutOfLogs(t *testing.T) {
	// Distinctive values, so that a match can only be a leak.
	const (
		clientSecret  = "cs-Q7vLx2-leak-canary-9f3k"
		webhookSecret = "wh-Z8mNp4-leak-canary-2r6d"
	)
	org := zoomtest.Generate(53, zoomtest.Size{Users: 300, Groups: 8, Roles: 5})
	s := startStackEnv(t, org, zoomtest.Options{ClientSecret: clientSecret, WebhookSecret: webhookSecret, Seed: 53}, nil,
		map[string]string{"LOG_LEVEL": "debug"})
	c := collect(t, s)
	ctx := context.Background()
	cfg := s.Config()
	admins := "GET /groups/{groupId}/admins"

	// A full sync during which every access token expires.
	s.Sim.Faults().Add(zoomtest.Fault{Route: admins, Latency: 100 * time.Millisecond})
	id := cli.NewRequestID()
	if err := cli.Trigger(ctx, s.JS, cfg.Connector, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, func() bool { return s.Sim.Requests()[admins] >= 2 })
	s.Sim.Faults().ExpireTokens()
	if op, d := c.waitEnd(t, id, 2*time.Minute); op != clarity.OpCompleted {
		t.Fatalf("sync with a token expiring mid-run: got %s (%s), want completed", op, d.Error)
	}
	s.Sim.Faults().Clear()
	if got := s.Sim.RequestsByStatus(); got["POST /oauth/token 200"] < 2 {
		t.Errorf("token requests answered 200: got %d, want at least 2 (the token expired mid-run)", got["POST /oauth/token 200"])
	}

	// Webhooks, some of which make the fetcher re-read a user with a token
	// that expired in the meantime.
	s.Sim.SetWebhookURL(s.WebhookURL)
	s.Sim.Faults().ExpireTokens()
	var active []zoomtest.User
	for _, u := range s.Sim.Org().Users {
		if u.Status == "active" && u.RoleID != "0" && u.RoleID != "1" {
			active = append(active, u)
		}
	}
	g := s.Sim.Org().Groups
	steps := []func() (zoomtest.Delivery, error){
		func() (zoomtest.Delivery, error) {
			return s.Sim.UpdateUser(ctx, active[0].ID, zoomtest.Profile{Dept: zoomtest.Ptr("Security")})
		},
		func() (zoomtest.Delivery, error) { return s.Sim.SetUserType(ctx, active[1].ID, 2) },
		func() (zoomtest.Delivery, error) { return s.Sim.DeactivateUser(ctx, active[2].ID) },
		func() (zoomtest.Delivery, error) {
			return s.Sim.RenameGroup(ctx, g[0].ID, "Renamed with a secret-free name")
		},
		func() (zoomtest.Delivery, error) { return s.Sim.AddGroupAdmin(ctx, g[1].ID, active[3].Email) },
		func() (zoomtest.Delivery, error) {
			_, d, err := s.Sim.AddUser(ctx, zoomtest.User{Email: "Leak.Check@example.com", FirstName: "Leak", LastName: "Check", Type: 1})
			return d, err
		},
		func() (zoomtest.Delivery, error) {
			_, d, err := s.Sim.InviteUser(ctx, zoomtest.User{Email: "Invited.Leak@example.com", Type: 1})
			return d, err
		},
	}
	for i, do := range steps {
		d, err := do()
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if d.Status != http.StatusOK {
			t.Fatalf("change %d (%s): webhook answered %d (%v), want 200", i, d.Event, d.Status, d.Err)
		}
	}
	// Zoom reads an invitee back as its id and a created_at only: it has
	// no record until a listing or its acceptance.
	convergeExcept(t, s, c, "webhooks", "pending:invited.leak@example.com")

	// A delivery signed with another secret is refused, and a URL
	// validation is answered; both handle the secret token.
	body := []byte(`{"event":"user.updated","event_ts":` + strconv.FormatInt(time.Now().UnixMilli(), 10) +
		`,"payload":{"account_id":"a","object":{"id":"` + active[4].ID + `","dept":"Forged"}}}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if code := post(t, s.WebhookURL, body, ts, zoomtest.Sign("not-the-secret", ts, body)); code != http.StatusUnauthorized {
		t.Errorf("delivery with a wrong signature: got %d, want 401", code)
	}
	crc := []byte(`{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":` + strconv.FormatInt(time.Now().UnixMilli(), 10) +
		`,"event":"endpoint.url_validation"}`)
	if code := post(t, s.WebhookURL, crc, ts, zoomtest.Sign(webhookSecret, ts, crc)); code != http.StatusOK {
		t.Errorf("URL validation: got %d, want 200", code)
	}

	// Revoked credentials: the token endpoint's refusal is reported.
	s.Sim.Faults().RevokeCredentials()
	s.Sim.Faults().ExpireTokens()
	op, d := sync1(t, s, c)
	if op != clarity.OpFailed {
		t.Errorf("sync with revoked credentials: got %s, want failed", op)
	}
	s.Sim.Faults().Clear()
	if op, d := sync1(t, s, c); op != clarity.OpCompleted {
		t.Fatalf("sync after the credentials were restored: got %s (%s), want completed", op, d.Error)
	}
	requireSame(t, "records at the end", c.snapshot(), expected(s))

	// Stop the services so that everything they log is written.
	for _, p := range s.Procs() {
		if err := p.Stop(); err != nil {
			t.Errorf("%s did not stop cleanly: %v", p.Name, err)
		}
	}

	tokens := s.Sim.IssuedTokens()
	if len(tokens) < 2 {
		t.Fatalf("the simulator issued %d access tokens, want at least 2: no refresh was tested", len(tokens))
	}
	secrets := map[string]string{
		"client secret":        clientSecret,
		"Basic credentials":    base64.StdEncoding.EncodeToString([]byte(s.Sim.ClientID() + ":" + clientSecret)),
		"webhook secret token": webhookSecret,
	}
	for i, tok := range tokens {
		secrets["access token "+strconv.Itoa(i)] = tok
		// Zoom's tokens are JWTs whose first part is a common header; the
		// other parts are the token's own, and a truncated token in a log
		// is still a leak.
		for j, part := range strings.Split(tok, ".")[1:] {
			if len(part) >= 16 {
				secrets["part "+strconv.Itoa(j+1)+" of access token "+strconv.Itoa(i)] = part
			}
		}
	}

	files, err := filepath.Glob(filepath.Join(cfg.Dir, "logs", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]int{} // by service
	levels := map[string]int{}
	messages := map[string]int{} // "<service>: <message>" → lines
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		service := strings.SplitN(filepath.Base(f), "-", 2)[0]
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			lines[service]++
			var entry struct {
				Level   string `json:"level"`
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil {
				levels[entry.Level]++
				messages[service+": "+entry.Message]++
			}
			for what, secret := range secrets {
				if strings.Contains(line, secret) {
					t.Errorf("%s line %d shows the %s: %s", filepath.Base(f), n, what, line)
				}
			}
		}
	}
	t.Logf("log lines by service %v, by level %v; %d access tokens issued; searched for %d secrets", lines, levels, len(tokens), len(secrets))
	for _, svc := range []string{"fetcher", "normalizer", "writer", "webhook"} {
		if lines[svc] == 0 {
			t.Errorf("%s logged nothing: the search proves nothing", svc)
		}
	}
	if levels["debug"] == 0 {
		t.Errorf("no debug line logged: LOG_LEVEL=debug did not take effect")
	}
	t.Logf("messages: %v", messages)
	// The lines written where tokens are handled were there to be searched.
	for msg, least := range map[string]int{
		"fetcher: zoom: access token fetched":                          2,
		"fetcher: zoom: access token refused, retrying with a new one": 1,
	} {
		if messages[msg] < least {
			t.Errorf("%d lines %q, want at least %d", messages[msg], msg, least)
		}
	}

	// The change events are read by every downstream service: the failed
	// sync's error must not carry a secret either.
	if d.Error == "" {
		t.Errorf("the failed sync carries no error")
	}
	c.mu.Lock()
	events := append([]clarity.Event(nil), c.events...)
	c.mu.Unlock()
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		for what, secret := range secrets {
			if strings.Contains(string(b), secret) {
				t.Errorf("event %s %s shows the %s", ev.Type, ev.ID, what)
			}
		}
	}
}
