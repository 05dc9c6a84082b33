package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
)

// TestZoomErrorLoggedCutBetweenCharacters: a redirect with Zoom's error
// logs that error cut before a character, never inside one, then "…".
func TestZoomErrorLoggedCutBetweenCharacters(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t)
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	keys, err := connector.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := connector.NewAuthorizer(ctx, js, keys, connector.AuthorizerConfig{OAuthURL: "http://127.0.0.1:1",
		RedirectTemplate: "https://{tenant}.clarity.test/application/oauthProcessCode/{connector}"})
	if err != nil {
		t.Fatal(err)
	}
	authorize, err := auth.AuthorizeURL(ctx, connector.Record{Tenant: "acme", Connector: "zoom", Auth: connector.AuthOAuth, ClientID: "cid"})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authorize)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	mux := http.NewServeMux()
	mux.Handle(Route, Handler(Config{Authorizer: auth, Log: zerolog.New(&logs)}))
	kept := strings.Repeat("a", 63)
	q := url.Values{"state": {u.Query().Get("state")}, "error": {kept + "日本"}}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/application/oauthProcessCode/zoom?"+q.Encode(), nil))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Zoom was not connected") {
		t.Fatalf("callback answered %d %s, want 400 saying Zoom was not connected", rec.Code, rec.Body)
	}
	var logged []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["message"] == "oauth callback: not authorized" {
			s, _ := entry["zoom_error"].(string)
			logged = append(logged, s)
		}
	}
	if len(logged) != 1 {
		t.Fatalf("logged Zoom's error %d times, want once: %s", len(logged), logs.String())
	}
	if got := logged[0]; !utf8.ValidString(got) || got != kept+"…" {
		t.Errorf("logged zoom_error of %d bytes ending %q, want the %d bytes before 日, then …",
			len(got), got[max(0, len(got)-8):], len(kept))
	}
}
