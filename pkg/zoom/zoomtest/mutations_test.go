package zoomtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testSecret = "whsec-test"

func randFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// tinyOrg is a hand-built organisation whose every user and group the tests
// can name.
func tinyOrg() *Org {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return &Org{
		AccountID: "acct-tiny",
		Roles: []Role{
			{ID: "0", Name: "Owner", Description: "Account owner", Type: "common"},
			{ID: "1", Name: "Admin", Description: "Admins", Type: "common"},
			{ID: "2", Name: "Member", Description: "Members", Type: "common"},
			{ID: "cr1", Name: "Auditor", Description: "Reads logs", Type: "common"},
		},
		Groups: []Group{
			{ID: "g1", Name: "Engineering", Admins: []GroupAdmin{{Email: "ADA@example.com"}, {Email: "ghost@elsewhere.example", Name: "Ghost"}}},
			{ID: "g2", Name: "Sales"},
		},
		Users: []User{
			{ID: "owner0000000000000000a", Email: "owner@example.com", FirstName: "Olga", LastName: "Owner", DisplayName: "Olga Owner",
				Type: 2, Status: StatusActive, RoleID: "0", Verified: 1, CreatedAt: t0, UserCreatedAt: t0},
			{ID: "ada00000000000000000ab", Email: "Ada@Example.com", FirstName: "Ada", LastName: "Lovelace", DisplayName: "Ada Lovelace",
				Type: 2, Status: StatusActive, RoleID: "2", GroupIDs: []string{"g1"}, Dept: "R&D", Timezone: "Europe/London", Language: "en-GB",
				Verified: 1, EmployeeUniqueID: "E-1", LastClientVersion: "6.0.2.4680(win)", LastLoginTime: t0.Add(48 * time.Hour),
				CreatedAt: t0.Add(time.Hour), UserCreatedAt: t0, LoginTypes: []int{101},
				CustomAttributes: []CustomAttribute{{Key: "cbf_badge", Name: "Badge", Value: "A1"}, {Key: "cbf_empty", Name: "Empty", Value: ""}}},
			{ID: "adm00000000000000000ac", Email: "admin@example.com", FirstName: "Alan", LastName: "Admin", DisplayName: "Alan Admin",
				Type: 1, Status: StatusActive, RoleID: "1", GroupIDs: []string{"g1", "g2"}, Verified: 0, CreatedAt: t0},
			{ID: "ina00000000000000000ad", Email: "gone@example.com", FirstName: "Ina", LastName: "Active", DisplayName: "Ina Active",
				Type: 99, Status: StatusInactive, RoleID: "cr1", Verified: 1, UserCreatedAt: t0},
			{ID: "pen00000000000000000ae", Email: "New.Hire@Example.com", FirstName: "Nina", LastName: "New", DisplayName: "Nina New",
				Type: 4, Status: StatusPending, RoleID: "2", GroupIDs: []string{"g2"}, Verified: 0, CreatedAt: t0},
		},
	}
}

type received struct {
	raw     []byte
	header  http.Header
	body    map[string]any
	signed  bool // the signature checks out
	payload map[string]any
}

// receiver is a webhook endpoint that checks Zoom's signature itself, with
// its own HMAC code, rather than trusting the simulator's Sign.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{status: http.StatusOK}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("x-zm-request-timestamp")
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte("v0:" + ts + ":" + string(raw)))
		want := "v0=" + hex.EncodeToString(mac.Sum(nil))
		rec := received{raw: raw, header: r.Header.Clone(), signed: hmac.Equal([]byte(want), []byte(r.Header.Get("x-zm-signature")))}
		_ = json.Unmarshal(raw, &rec.body)
		rec.payload, _ = rec.body["payload"].(map[string]any)
		rc.mu.Lock()
		rc.got = append(rc.got, rec)
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) all() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// wait returns the n-th notification (from 0), waiting for asynchronous
// deliveries.
func (rc *receiver) wait(t *testing.T, n int) received {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := rc.all(); len(got) > n {
			return got[n]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("got %d notifications, want at least %d", len(rc.all()), n+1)
	return received{}
}

func obj(p map[string]any, field string) map[string]any {
	m, _ := p[field].(map[string]any)
	return m
}

func TestMutationsSendSignedWebhooks(t *testing.T) {
	type check func(t *testing.T, s *Server, p map[string]any)
	tests := []struct {
		name      string
		opts      Options
		mutate    func(ctx context.Context, s *Server) (Delivery, error)
		wantEvent string // "" when no notification is due
		check     check
	}{
		{"add user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			_, d, err := s.AddUser(ctx, User{Email: "grace@example.com", FirstName: "Grace", LastName: "Hopper", Type: 2})
			return d, err
		}, "user.created", func(t *testing.T, s *Server, p map[string]any) {
			if p["creation_type"] != "ssoCreate" || obj(p, "object")["email"] != "grace@example.com" || obj(p, "object")["display_name"] != "Grace Hopper" {
				t.Errorf("got payload %v", p)
			}
			wantUser(t, s, "grace@example.com", StatusActive)
		}},
		{"invite user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			_, d, err := s.InviteUser(ctx, User{Email: "invitee@example.com", Type: 1})
			return d, err
		}, "user.created", func(t *testing.T, s *Server, p map[string]any) {
			if p["creation_type"] != "create" || obj(p, "object")["id"] == "" {
				t.Errorf("got payload %v, want creation_type create and an id", p)
			}
			wantUser(t, s, "invitee@example.com", StatusPending)
		}},
		{"accept invitation", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.AcceptInvitation(ctx, "new.hire@example.com")
		}, "user.invitation_accepted", func(t *testing.T, s *Server, p map[string]any) {
			if _, ok := p["operator"]; ok {
				t.Errorf("got operator in %v, want none for invitation_accepted", p)
			}
			if obj(p, "object")["id"] != "pen00000000000000000ae" {
				t.Errorf("got object %v, want the invited user's id", obj(p, "object"))
			}
			wantUser(t, s, "new.hire@example.com", StatusActive)
		}},
		{"delete user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RemoveUser(ctx, "gone@example.com", "delete")
		}, "user.deleted", func(t *testing.T, s *Server, p map[string]any) {
			wantNoUser(t, s, "gone@example.com")
		}},
		{"disassociate user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RemoveUser(ctx, "ada00000000000000000ab", "")
		}, "user.disassociated", func(t *testing.T, s *Server, p map[string]any) {
			wantNoUser(t, s, "ada@example.com")
			for _, a := range s.Org().Groups[0].Admins {
				if a.Email == "ADA@example.com" {
					t.Error("got Ada still admin of g1 after her removal")
				}
			}
		}},
		{"deactivate user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.DeactivateUser(ctx, "Ada@example.com")
		}, "user.deactivated", func(t *testing.T, s *Server, p map[string]any) {
			if o := obj(p, "object"); o["type"] != 1.0 || o["email"] != "Ada@Example.com" {
				t.Errorf("got object %v, want type 1 (licence removed)", o)
			}
			wantUser(t, s, "ada@example.com", StatusInactive)
		}},
		{"activate user", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.ActivateUser(ctx, "gone@example.com")
		}, "user.activated", func(t *testing.T, s *Server, p map[string]any) {
			wantUser(t, s, "gone@example.com", StatusActive)
		}},
		{"update profile", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.UpdateUser(ctx, "ada@example.com", Profile{Dept: Ptr("Research"), JobTitle: Ptr("Countess")})
		}, "user.updated", func(t *testing.T, s *Server, p map[string]any) {
			o, old := obj(p, "object"), obj(p, "old_object")
			if len(o) != 2 || o["dept"] != "Research" || old["dept"] != "R&D" || o["id"] != "ada00000000000000000ab" {
				t.Errorf("got object %v old_object %v, want id and dept only", o, old)
			}
			if _, ok := p["time_stamp"]; !ok {
				t.Error("got no time_stamp in user.updated")
			}
		}},
		{"set type", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.SetUserType(ctx, "admin@example.com", 2)
		}, "user.updated", func(t *testing.T, s *Server, p map[string]any) {
			if o := obj(p, "object"); o["type"] != 2.0 || obj(p, "old_object")["type"] != 1.0 {
				t.Errorf("got %v, want type 1 → 2", p)
			}
		}},
		{"set role, no event", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.SetUserRole(ctx, "ada@example.com", "cr1")
		}, "", func(t *testing.T, s *Server, p map[string]any) {
			if got := s.Org().Users[1].RoleID; got != "cr1" {
				t.Errorf("got role %q, want cr1", got)
			}
		}},
		{"set role, with event", Options{RoleChangeWebhook: true}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.SetUserRole(ctx, "ada@example.com", "cr1")
		}, "user.updated", func(t *testing.T, s *Server, p map[string]any) {
			if obj(p, "object")["role"] != "Auditor" || obj(p, "old_object")["role"] != "Member" {
				t.Errorf("got %v, want role Member → Auditor", p)
			}
		}},
		{"add group member", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.AddGroupMember(ctx, "g2", "ada@example.com")
		}, "group.member_added", func(t *testing.T, s *Server, p map[string]any) {
			o := obj(p, "object")
			members, _ := o["members"].([]any)
			if o["id"] != "g2" || len(members) != 1 || members[0].(map[string]any)["id"] != "ada00000000000000000ab" {
				t.Errorf("got object %v", o)
			}
		}},
		{"remove group member", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RemoveGroupMember(ctx, "g1", "admin@example.com")
		}, "group.member_deleted", func(t *testing.T, s *Server, p map[string]any) {
			if got := s.Org().Users[2].GroupIDs; len(got) != 1 || got[0] != "g2" {
				t.Errorf("got group_ids %v, want [g2]", got)
			}
		}},
		{"add group", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			_, d, err := s.AddGroup(ctx, "Legal")
			return d, err
		}, "group.created", func(t *testing.T, s *Server, p map[string]any) {
			if obj(p, "object")["name"] != "Legal" || len(s.Org().Groups) != 3 {
				t.Errorf("got %v", p)
			}
		}},
		{"rename group", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RenameGroup(ctx, "g2", "Ventes")
		}, "group.updated", func(t *testing.T, s *Server, p map[string]any) {
			if obj(p, "object")["name"] != "Ventes" || obj(p, "old_object")["name"] != "Sales" {
				t.Errorf("got %v", p)
			}
		}},
		{"delete group", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.DeleteGroup(ctx, "g1")
		}, "group.deleted", func(t *testing.T, s *Server, p map[string]any) {
			for _, u := range s.Org().Users {
				if containsString(u.GroupIDs, "g1") {
					t.Errorf("user %s: still in deleted group g1", u.Email)
				}
			}
		}},
		{"add group admin", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.AddGroupAdmin(ctx, "g2", "admin@example.com")
		}, "group.admin_added", func(t *testing.T, s *Server, p map[string]any) {
			admins, _ := obj(p, "object")["admins"].([]any)
			if len(admins) != 1 || admins[0].(map[string]any)["id"] != "adm00000000000000000ac" {
				t.Errorf("got %v", p)
			}
		}},
		{"remove group admin by another case", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RemoveGroupAdmin(ctx, "g1", "ada@EXAMPLE.com")
		}, "group.admin_deleted", func(t *testing.T, s *Server, p map[string]any) {
			if got := s.Org().Groups[0].Admins; len(got) != 1 {
				t.Errorf("got admins %v, want only the ghost left", got)
			}
		}},
		{"set custom attribute", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.SetCustomAttribute(ctx, "admin@example.com", CustomAttribute{Key: "cbf_badge", Name: "Badge", Value: "Z9"})
		}, "user.updated", func(t *testing.T, s *Server, p map[string]any) {
			attrs, _ := obj(p, "object")["custom_attributes"].([]any)
			old, _ := obj(p, "old_object")["custom_attributes"].([]any)
			if len(attrs) != 1 || len(old) != 0 {
				t.Errorf("got %v", p)
			}
		}},
		{"remove custom attribute", Options{}, func(ctx context.Context, s *Server) (Delivery, error) {
			return s.RemoveCustomAttribute(ctx, "ada@example.com", "cbf_badge")
		}, "user.updated", func(t *testing.T, s *Server, p map[string]any) {
			attrs, _ := obj(p, "object")["custom_attributes"].([]any)
			if len(attrs) != 1 {
				t.Errorf("got %v, want one attribute left", p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t)
			opts := tt.opts
			opts.WebhookURL, opts.WebhookSecret = rc.URL, testSecret
			s := NewServer(t, tinyOrg(), opts)
			before := time.Now()
			d, err := tt.mutate(t.Context(), s)
			if err != nil {
				t.Fatalf("mutation: %v", err)
			}
			if tt.wantEvent == "" {
				if d.Event != "" || len(rc.all()) != 0 {
					t.Errorf("got event %q and %d notifications, want none", d.Event, len(rc.all()))
				}
				tt.check(t, s, nil)
				return
			}
			if d.Event != tt.wantEvent || d.Status != 200 || d.Err != nil || !d.Sent() {
				t.Fatalf("got delivery %s status %d err %v, want %s delivered", d.Event, d.Status, d.Err, tt.wantEvent)
			}
			got := rc.all()
			if len(got) != 1 {
				t.Fatalf("got %d notifications, want 1", len(got))
			}
			rec := got[0]
			if !rec.signed {
				t.Errorf("got a bad signature %q for timestamp %q", rec.header.Get("x-zm-signature"), rec.header.Get("x-zm-request-timestamp"))
			}
			if ct := rec.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("got content-type %q", ct)
			}
			ts, _ := strconv.ParseInt(rec.header.Get("x-zm-request-timestamp"), 10, 64)
			if ts < before.Unix()-1 || ts > time.Now().Unix()+1 {
				t.Errorf("got timestamp %d, want seconds around %d", ts, before.Unix())
			}
			if rec.body["event"] != tt.wantEvent {
				t.Errorf("got event %v, want %s", rec.body["event"], tt.wantEvent)
			}
			if ets, _ := rec.body["event_ts"].(float64); int64(ets) < before.UnixMilli()-1000 {
				t.Errorf("got event_ts %v, want milliseconds around %d", rec.body["event_ts"], before.UnixMilli())
			}
			if rec.payload["account_id"] != "acct-tiny" {
				t.Errorf("got account_id %v, want acct-tiny", rec.payload["account_id"])
			}
			if _, ok := rec.payload["operator"]; ok && (rec.payload["operator"] != "owner@example.com" || rec.payload["operator_id"] != "owner0000000000000000a") {
				t.Errorf("got operator %v %v, want the owner", rec.payload["operator"], rec.payload["operator_id"])
			}
			if string(d.Body) != string(rec.raw) {
				t.Errorf("Delivery.Body differs from what was sent")
			}
			if evs := s.Events(); len(evs) != 1 || evs[0].Event != tt.wantEvent {
				t.Errorf("got event log %v, want one %s", evs, tt.wantEvent)
			}
			tt.check(t, s, rec.payload)
		})
	}
}

func wantUser(t *testing.T, s *Server, email, status string) {
	t.Helper()
	for _, u := range s.Org().Users {
		if u.Email == email || equalFold(u.Email, email) {
			if u.Status != status {
				t.Errorf("user %s: got status %s, want %s", email, u.Status, status)
			}
			return
		}
	}
	t.Errorf("user %s: not found", email)
}

func wantNoUser(t *testing.T, s *Server, email string) {
	t.Helper()
	for _, u := range s.Org().Users {
		if equalFold(u.Email, email) {
			t.Errorf("user %s: got still in the account", email)
		}
	}
	tok := requestToken(t, s)
	if r := api(t, s, tok, "GET", "/users/"+email, nil); r.status != 404 || r.code() != 1001 {
		t.Errorf("GET /users/%s: got %d %s, want 404 code 1001", email, r.status, r.raw)
	}
}

func equalFold(a, b string) bool {
	return len(a) == len(b) && (a == b || lower(a) == lower(b))
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func TestMutationErrors(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(ctx context.Context, s *Server) error
		want     error
		wantCode int
	}{
		{"deactivate the owner", func(ctx context.Context, s *Server) error {
			_, err := s.DeactivateUser(ctx, "owner@example.com")
			return err
		}, ErrNotAllowed, 200},
		{"disassociate an admin", func(ctx context.Context, s *Server) error {
			_, err := s.RemoveUser(ctx, "admin@example.com", "disassociate")
			return err
		}, ErrNotAllowed, 1117},
		{"unknown user", func(ctx context.Context, s *Server) error {
			_, err := s.DeactivateUser(ctx, "nobody@example.com")
			return err
		}, ErrUserNotFound, 1001},
		{"duplicate email in another case", func(ctx context.Context, s *Server) error {
			_, _, err := s.AddUser(ctx, User{Email: "ADA@example.COM"})
			return err
		}, ErrConflict, 1005},
		{"unknown group", func(ctx context.Context, s *Server) error {
			_, err := s.AddGroupMember(ctx, "nope", "ada@example.com")
			return err
		}, ErrGroupNotFound, 4130},
		{"not a member", func(ctx context.Context, s *Server) error {
			_, err := s.RemoveGroupMember(ctx, "g2", "ada@example.com")
			return err
		}, ErrNotMember, 4131},
		{"duplicate group name", func(ctx context.Context, s *Server) error {
			_, _, err := s.AddGroup(ctx, "engineering")
			return err
		}, ErrConflict, 4132},
		{"unknown role", func(ctx context.Context, s *Server) error {
			_, err := s.SetUserRole(ctx, "ada@example.com", "nope")
			return err
		}, ErrRoleNotFound, 1034},
		{"make someone owner", func(ctx context.Context, s *Server) error {
			_, err := s.SetUserRole(ctx, "ada@example.com", "0")
			return err
		}, ErrInvalid, 300},
		{"accept an active user", func(ctx context.Context, s *Server) error {
			_, err := s.AcceptInvitation(ctx, "ada@example.com")
			return err
		}, ErrInvalid, 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, tinyOrg(), Options{})
			err := tt.mutate(t.Context(), s)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != tt.wantCode {
				t.Errorf("got %v, want Zoom code %d", err, tt.wantCode)
			}
		})
	}
}

func TestWebhookDeliveryFailures(t *testing.T) {
	rc := newReceiver(t)
	rc.status = http.StatusInternalServerError
	s := NewServer(t, tinyOrg(), Options{WebhookURL: rc.URL, WebhookSecret: testSecret, WebhookTimeout: time.Second})
	d, err := s.DeactivateUser(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != 500 || d.Sent() {
		t.Errorf("got status %d sent %v, want 500 not sent", d.Status, d.Sent())
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	s.SetWebhookURL(deadURL)
	d, err = s.ActivateUser(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.Err == nil || d.Sent() {
		t.Errorf("got err %v, want a connection error", d.Err)
	}
	s.SetWebhookURL("")
	d, err = s.DeactivateUser(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if d.URL != "" || d.Event != "user.deactivated" || d.Status != 0 || len(d.Body) == 0 {
		t.Errorf("got %+v, want an unsent but built notification", d)
	}
	if got := len(s.Events()); got != 3 {
		t.Errorf("got %d logged events, want 3", got)
	}
	if d.Signature != Sign(testSecret, d.Timestamp, d.Body) {
		t.Error("got a signature Sign does not reproduce")
	}
}

func TestRESTWrites(t *testing.T) {
	type step struct {
		method, path string
		body         any
		wantStatus   int
		wantCode     int
		wantEvent    string
	}
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, s *Server)
	}{
		{"deactivate and reactivate", []step{
			{"PUT", "/users/ada@example.com/status", map[string]string{"action": "deactivate"}, 200, 0, "user.deactivated"},
			{"PUT", "/users/ada00000000000000000ab/status", map[string]string{"action": "activate"}, 200, 0, "user.activated"},
			{"PUT", "/users/owner@example.com/status", map[string]string{"action": "deactivate"}, 400, 200, ""},
			{"PUT", "/users/ada@example.com/status", map[string]string{"action": "explode"}, 400, 300, ""},
			{"PUT", "/users/nobody@example.com/status", map[string]string{"action": "deactivate"}, 404, 1001, ""},
		}, func(t *testing.T, s *Server) { wantUser(t, s, "ada@example.com", StatusActive) }},
		{"delete and disassociate", []step{
			{"DELETE", "/users/gone@example.com?action=delete", nil, 204, 0, "user.deleted"},
			{"DELETE", "/users/new.hire@example.com", nil, 204, 0, "user.disassociated"},
			{"DELETE", "/users/admin@example.com", nil, 400, 1117, ""},
			{"DELETE", "/users/gone@example.com", nil, 404, 1001, ""},
		}, func(t *testing.T, s *Server) {
			if got := len(s.Org().Users); got != 3 {
				t.Errorf("got %d users, want 3", got)
			}
		}},
		{"patch user", []step{
			{"PATCH", "/users/ada@example.com", map[string]any{"type": 1, "dept": "Maths", "custom_attributes": []map[string]string{{"key": "cbf_new", "name": "New", "value": "v"}}}, 204, 0, "user.updated"},
			{"PATCH", "/users/ada@example.com", map[string]any{"type": 7}, 400, 300, ""},
		}, func(t *testing.T, s *Server) {
			u := s.Org().Users[1]
			if u.Type != 1 || u.Dept != "Maths" || len(u.CustomAttributes) != 3 {
				t.Errorf("got %+v", u)
			}
		}},
		{"group members", []step{
			{"POST", "/groups/g2/members", map[string]any{"members": []map[string]string{{"email": "ada@example.com"}, {"id": "owner0000000000000000a"}}}, 201, 0, "group.member_added"},
			{"DELETE", "/groups/g2/members/ada@example.com", nil, 204, 0, "group.member_deleted"},
			{"DELETE", "/groups/g2/members/ada@example.com", nil, 404, 4131, ""},
			{"POST", "/groups/nope/members", map[string]any{"members": []map[string]string{{"email": "ada@example.com"}}}, 404, 4130, ""},
		}, func(t *testing.T, s *Server) {
			if got := s.Org().Users[0].GroupIDs; len(got) != 1 || got[0] != "g2" {
				t.Errorf("owner: got group_ids %v, want [g2]", got)
			}
		}},
		{"group admins and groups", []step{
			{"POST", "/groups/g2/admins", map[string]any{"admins": []map[string]string{{"email": "ada@example.com"}}}, 201, 0, "group.admin_added"},
			{"DELETE", "/groups/g2/admins/ada00000000000000000ab", nil, 204, 0, "group.admin_deleted"},
			{"DELETE", "/groups/g2/admins/ada@example.com", nil, 400, 4138, ""},
			{"POST", "/groups", map[string]any{"name": "Legal"}, 201, 0, "group.created"},
			{"POST", "/groups", map[string]any{"name": "LEGAL"}, 409, 4132, ""},
			{"PATCH", "/groups/g2", map[string]any{"name": "Ventes"}, 204, 0, "group.updated"},
			{"DELETE", "/groups/g1", nil, 204, 0, "group.deleted"},
		}, func(t *testing.T, s *Server) {
			if got := len(s.Org().Groups); got != 2 {
				t.Errorf("got %d groups, want 2", got)
			}
		}},
		{"role members", []step{
			{"POST", "/roles/cr1/members", map[string]any{"members": []map[string]string{{"email": "ada@example.com"}}}, 201, 0, ""},
			{"POST", "/roles/2/members", map[string]any{"members": []map[string]string{{"email": "ada@example.com"}}}, 400, 300, ""},
			{"POST", "/roles/nope/members", map[string]any{"members": []map[string]string{{"email": "ada@example.com"}}}, 400, 1034, ""},
			{"DELETE", "/roles/cr1/members/gone@example.com", nil, 204, 0, ""},
		}, func(t *testing.T, s *Server) {
			org := s.Org()
			if org.Users[1].RoleID != "cr1" || org.Users[3].RoleID != "2" {
				t.Errorf("got roles %q and %q, want cr1 and 2", org.Users[1].RoleID, org.Users[3].RoleID)
			}
		}},
		{"create users", []step{
			{"POST", "/users", map[string]any{"action": "create", "user_info": map[string]any{"email": "inv@example.com", "type": 1}}, 201, 0, "user.created"},
			{"POST", "/users", map[string]any{"action": "ssoCreate", "user_info": map[string]any{"email": "sso@example.com", "type": 2}}, 201, 0, "user.created"},
			{"POST", "/users", map[string]any{"action": "create", "user_info": map[string]any{"email": "ada@example.com", "type": 1}}, 409, 1005, ""},
		}, func(t *testing.T, s *Server) {
			wantUser(t, s, "inv@example.com", StatusPending)
			wantUser(t, s, "sso@example.com", StatusActive)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t)
			s := NewServer(t, tinyOrg(), Options{WebhookURL: rc.URL, WebhookSecret: testSecret})
			tok := requestToken(t, s)
			events := 0
			for _, st := range tt.steps {
				r := api(t, s, tok, st.method, st.path, st.body)
				if r.status != st.wantStatus {
					t.Fatalf("%s %s: got status %d, want %d: %s", st.method, st.path, r.status, st.wantStatus, r.raw)
				}
				if st.wantCode != 0 && r.code() != st.wantCode {
					t.Errorf("%s %s: got code %d, want %d", st.method, st.path, r.code(), st.wantCode)
				}
				if st.wantEvent != "" {
					rec := rc.wait(t, events)
					events++
					if rec.body["event"] != st.wantEvent || !rec.signed {
						t.Errorf("%s %s: got event %v signed %v, want %s signed", st.method, st.path, rec.body["event"], rec.signed, st.wantEvent)
					}
				}
			}
			time.Sleep(20 * time.Millisecond) // let a stray notification arrive
			if got := len(rc.all()); got != events {
				t.Errorf("got %d notifications, want %d", got, events)
			}
			tt.check(t, s)
		})
	}
}

func TestRandomMutations(t *testing.T) {
	rc := newReceiver(t)
	s := NewServer(t, small(t), Options{WebhookURL: rc.URL, WebhookSecret: testSecret})
	ds, err := s.RandomMutations(t.Context(), randFor(1), 60)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) < 30 {
		t.Errorf("got %d deliveries for 60 mutations, want most of them", len(ds))
	}
	kinds := map[string]bool{}
	for _, d := range ds {
		kinds[d.Event] = true
		if !d.Sent() {
			t.Errorf("%s: got status %d err %v", d.Event, d.Status, d.Err)
		}
	}
	if len(kinds) < 8 {
		t.Errorf("got event kinds %v, want a variety", kinds)
	}
	for _, rec := range rc.all() {
		if !rec.signed {
			t.Fatalf("got an unsigned notification %s", rec.raw)
		}
	}
	owners := 0
	for _, u := range s.Org().Users {
		if u.RoleID == RoleOwner {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("got %d owners after random mutations, want 1", owners)
	}
}
