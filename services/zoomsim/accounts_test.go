package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

func TestLoadConfigAccountsAndOAuth(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c Config) string // "" when the config is right
		wantErr string
	}{
		{"none by default", nil, func(c Config) string {
			if c.Accounts != nil || len(c.OAuth.RedirectURIs) != 0 || c.TokenTTL != 0 || c.RefreshTokenTTL != 0 || c.CodeTTL != 0 {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}, ""},
		{"accounts and an app", map[string]string{
			"ZOOMSIM_USERS": "300", "ZOOMSIM_ACCOUNTS": "acme:20, globex",
			"ZOOMSIM_OAUTH_REDIRECT_URIS": "https://a.example.com/cb https://b.example.com/cb", "ZOOMSIM_OAUTH_CONSENT": "true",
			"ZOOMSIM_TOKEN_TTL": "30s", "ZOOMSIM_REFRESH_TOKEN_TTL": "1h", "ZOOMSIM_CODE_TTL": "10m",
		}, func(c Config) string {
			want := OAuthConfig{ClientID: "sim-oauth-client", ClientSecret: "sim-oauth-secret",
				RedirectURIs: []string{"https://a.example.com/cb", "https://b.example.com/cb"}, Consent: true}
			if !slices.Equal(c.Accounts, []AccountSpec{{"acme", 20}, {"globex", 300}}) || fmt.Sprint(c.OAuth) != fmt.Sprint(want) ||
				c.TokenTTL != 30*time.Second || c.RefreshTokenTTL != time.Hour || c.CodeTTL != 10*time.Minute {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}, ""},
		{"bad account id", map[string]string{"ZOOMSIM_ACCOUNTS": "a/b"}, nil, "ZOOMSIM_ACCOUNTS"},
		{"account twice", map[string]string{"ZOOMSIM_ACCOUNTS": "a,a"}, nil, "ZOOMSIM_ACCOUNTS"},
		{"bad account users", map[string]string{"ZOOMSIM_ACCOUNTS": "a:0"}, nil, "ZOOMSIM_ACCOUNTS"},
		{"relative redirect uri", map[string]string{"ZOOMSIM_OAUTH_REDIRECT_URIS": "/cb"}, nil, "ZOOMSIM_OAUTH_REDIRECT_URIS"},
		{"bad consent", map[string]string{"ZOOMSIM_OAUTH_REDIRECT_URIS": "https://a.example.com/cb", "ZOOMSIM_OAUTH_CONSENT": "maybe"}, nil, "ZOOMSIM_OAUTH_CONSENT"},
		{"bad token ttl", map[string]string{"ZOOMSIM_TOKEN_TTL": "-1s"}, nil, "ZOOMSIM_TOKEN_TTL"},
		{"bad code ttl", map[string]string{"ZOOMSIM_CODE_TTL": "soon"}, nil, "ZOOMSIM_CODE_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr+":") {
					t.Fatalf("got error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v", err)
			}
			if msg := tt.want(c); msg != "" {
				t.Errorf("got %s", msg)
			}
		})
	}
}

// TestServeAccountsAndOAuth runs zoomsim with a second account and the OAuth
// app, and authorizes the second account's app as the connector will.
func TestServeAccountsAndOAuth(t *testing.T) {
	const redirect = "https://acme.example.com/application/oauthProcessCode/zoom"
	cfg, err := loadConfig(func(k string) (string, bool) {
		v, ok := map[string]string{
			"ZOOMSIM_ADDR": "127.0.0.1:0", "ZOOMSIM_USERS": "100", "ZOOMSIM_ACCOUNTS": "acme:30",
			"ZOOMSIM_OAUTH_REDIRECT_URIS": redirect, "ZOOMSIM_OAUTH_CLIENT_SECRET": "oauth-top-secret",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zerolog.New(&logs), func(addr string) { addrc <- addr }) }()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}

	oc := oauth2.Config{
		ClientID: "sim-oauth-client-acme", ClientSecret: "oauth-top-secret-acme", RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: base + "/oauth/authorize", TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	verifier := oauth2.GenerateVerifier()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(oc.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: got %d Location %s, want 302 with a code", resp.StatusCode, loc)
	}
	tok, err := oc.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	req, _ := http.NewRequest("GET", base+"/v2/users?page_size=300", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	var users struct {
		Users []struct {
			Email string `json:"email"`
		} `json:"users"`
		TotalRecords int `json:"total_records"`
	}
	mustJSON(t, req, 200, &users)
	if users.TotalRecords == 0 || users.TotalRecords > 30 {
		t.Errorf("acme's token lists %d active users, want at most acme's 30", users.TotalRecords)
	}

	req, _ = http.NewRequest("GET", base+"/_sim/accounts", nil)
	var accounts struct {
		Accounts []struct {
			ID   string   `json:"id"`
			Apps []string `json:"apps"`
		} `json:"accounts"`
	}
	mustJSON(t, req, 200, &accounts)
	if len(accounts.Accounts) != 2 || accounts.Accounts[1].ID != "acme" ||
		!slices.Equal(accounts.Accounts[0].Apps, []string{"sim-oauth-client"}) ||
		!slices.Equal(accounts.Accounts[1].Apps, []string{"sim-oauth-client-acme"}) {
		t.Errorf("got accounts %+v, want the default and acme, each with its app", accounts.Accounts)
	}

	// An account and an app added at run time, as a dev stack does.
	req, _ = http.NewRequest("POST", base+"/_sim/accounts", strings.NewReader(`{"id":"globex","users":10}`))
	mustJSON(t, req, 201, nil)
	req, _ = http.NewRequest("POST", base+"/_sim/accounts/globex/apps", strings.NewReader(`{"client_id":"gx","redirect_uris":["`+redirect+`"]}`))
	var app struct {
		ClientSecret string `json:"client_secret"`
	}
	mustJSON(t, req, 201, &app)
	if app.ClientSecret == "" {
		t.Error("the new app has no client secret")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: got %v, want nil after cancellation", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(logs.String(), "oauth-top-secret") {
		t.Error("got the OAuth client secret in the logs")
	}
	if !strings.Contains(logs.String(), "acme/sim-oauth-client-acme") {
		t.Errorf("got logs %s, want the apps listed", logs.String())
	}
}
