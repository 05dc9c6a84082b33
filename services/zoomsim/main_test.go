package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c Config) string // "" when the config is right
		wantErr string
	}{
		{"defaults", nil, func(c Config) string {
			if c.Addr != ":9090" || c.Users != 5000 || c.Groups != 100 || c.Roles != 10 || c.Seed != 1 ||
				c.AccountID != "sim-account" || c.ClientID != "sim-client" || c.ClientSecret != "sim-secret" ||
				c.RateLimits != (zoomtest.RateLimits{}) || len(c.Scopes) != 6 || c.LogFormat != "json" {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}, ""},
		{"groups follow users", map[string]string{"ZOOMSIM_USERS": "1000"}, func(c Config) string {
			if c.Groups != 20 {
				return fmt.Sprintf("groups %d, want 20", c.Groups)
			}
			return ""
		}, ""},
		{"everything set", map[string]string{
			"ZOOMSIM_ADDR": "127.0.0.1:0", "ZOOMSIM_SEED": "9", "ZOOMSIM_USERS": "10", "ZOOMSIM_GROUPS": "3",
			"ZOOMSIM_ROLES": "4", "ZOOM_ACCOUNT_ID": "a", "ZOOM_CLIENT_ID": "c", "ZOOM_CLIENT_SECRET": "s",
			"ZOOMSIM_WEBHOOK_URL": "http://hook", "ZOOM_WEBHOOK_SECRET_TOKEN": "w",
			"ZOOMSIM_RATE_LIMITS": "light=30, medium=20,heavy=10", "ZOOMSIM_SCOPES": "user:read:admin group:read:admin",
			"ZOOMSIM_OMIT_RATE_LIMIT_HEADERS": "true",
		}, func(c Config) string {
			want := Config{Addr: "127.0.0.1:0", Seed: 9, Users: 10, Groups: 3, Roles: 4, AccountID: "a", ClientID: "c",
				ClientSecret: "s", WebhookURL: "http://hook", WebhookSecret: "w",
				RateLimits: zoomtest.RateLimits{Light: 30, Medium: 20, Heavy: 10}, OmitRateLimitHeaders: true,
				Scopes: []string{"user:read:admin", "group:read:admin"}, LogLevel: "info", LogFormat: "json"}
			if fmt.Sprint(c) != fmt.Sprint(want) {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}, ""},
		{"bad users", map[string]string{"ZOOMSIM_USERS": "lots"}, nil, "ZOOMSIM_USERS"},
		{"no users", map[string]string{"ZOOMSIM_USERS": "0"}, nil, "ZOOMSIM_USERS"},
		{"bad seed", map[string]string{"ZOOMSIM_SEED": "x"}, nil, "ZOOMSIM_SEED"},
		{"bad rate label", map[string]string{"ZOOMSIM_RATE_LIMITS": "fast=3"}, nil, "ZOOMSIM_RATE_LIMITS"},
		{"bad rate value", map[string]string{"ZOOMSIM_RATE_LIMITS": "light=-1"}, nil, "ZOOMSIM_RATE_LIMITS"},
		{"bad rate syntax", map[string]string{"ZOOMSIM_RATE_LIMITS": "light"}, nil, "ZOOMSIM_RATE_LIMITS"},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, nil, "LOG_FORMAT"},
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

func TestServe(t *testing.T) {
	cfg, err := loadConfig(func(k string) (string, bool) {
		v, ok := map[string]string{"ZOOMSIM_ADDR": "127.0.0.1:0", "ZOOMSIM_USERS": "200", "ZOOM_CLIENT_SECRET": "top-secret"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, log, func(addr string) { addrc <- addr }) }()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}

	req, _ := http.NewRequest("POST", base+"/oauth/token?grant_type=account_credentials&account_id=sim-account", nil)
	req.SetBasicAuth("sim-client", "top-secret")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	mustJSON(t, req, 200, &tok)

	req, _ = http.NewRequest("GET", base+"/v2/users?page_size=300", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	var users struct {
		TotalRecords int `json:"total_records"`
	}
	mustJSON(t, req, 200, &users)
	if users.TotalRecords == 0 {
		t.Error("got no active users")
	}

	req, _ = http.NewRequest("GET", base+"/_sim/requests", nil)
	var counts struct {
		Total  int            `json:"total"`
		Routes map[string]int `json:"routes"`
	}
	mustJSON(t, req, 200, &counts)
	if counts.Total != 2 || counts.Routes["GET /users"] != 1 || counts.Routes["POST /oauth/token"] != 1 {
		t.Errorf("got counts %+v, want one token request and one GET /users", counts)
	}

	req, _ = http.NewRequest("POST", base+"/_sim/mutate?n=5", nil)
	var mutated struct {
		Deliveries []map[string]any `json:"deliveries"`
	}
	mustJSON(t, req, 200, &mutated)
	if len(mutated.Deliveries) == 0 {
		t.Error("got no deliveries from 5 random mutations")
	}

	req, _ = http.NewRequest("POST", base+"/_sim/faults", strings.NewReader(`{"add":[{"route":"GET /groups","status":503,"times":1}]}`))
	var faults struct {
		Faults []zoomtest.Fault `json:"faults"`
	}
	mustJSON(t, req, 200, &faults)
	if len(faults.Faults) != 1 || faults.Faults[0].Status != 503 {
		t.Errorf("got faults %+v", faults.Faults)
	}
	req, _ = http.NewRequest("GET", base+"/v2/groups", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	mustJSON(t, req, 503, nil)

	resp, err := http.Get(base + "/_sim/expected")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec zoomtest.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("expected: got a bad line %q: %v", sc.Text(), err)
		}
		kinds[rec.Kind]++
	}
	resp.Body.Close()
	for _, k := range []string{"service_user", "entitlement", "service_user_entitlement", "service_user_attribute"} {
		if kinds[k] == 0 {
			t.Errorf("expected: got no %s records", k)
		}
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
	if strings.Contains(logs.String(), "top-secret") {
		t.Error("got the client secret in the logs")
	}
	if !strings.Contains(logs.String(), "zoomsim listening") {
		t.Errorf("got logs %s, want the listening line", logs.String())
	}
}

func mustJSON(t *testing.T, req *http.Request, wantStatus int, v any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: got status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, wantStatus, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: decode: %v: %s", req.Method, req.URL.Path, err, body)
		}
	}
}
