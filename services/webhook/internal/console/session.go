package console

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
)

// CookieName is the session cookie's name.
const CookieName = "zoom_console"

// Session lifetimes: a signed-in session ends after SessionIdle without a
// request; one that has not signed in (it holds only the sign-in form's
// CSRF token) after AnonymousIdle.
const (
	SessionIdle   = 8 * time.Hour
	AnonymousIdle = 15 * time.Minute
)

// maxSessions bounds the sessions held: each is one browser. When full,
// expired ones go first, then the oldest that has not signed in.
const maxSessions = 4096

// session is one browser's state. Its fields are guarded by sessions.mu.
type session struct {
	id     string
	csrf   string
	authed bool
	seen   time.Time
	// flash is a one-time message shown on the next page.
	flash    string
	flashBad bool
	// next is the page asked for before signing in, shown after it.
	next      string
	draft     draft
	createdAt time.Time
}

// draft is what the Connect Zoom form keeps between Validate and Save, so
// that a secret need not be typed again and is never rendered back: the
// secrets are sealed under the deployment's key, bound to the session.
type draft struct {
	Tenant, Connector, Auth, AccountID, ClientID, Schedule string
	ClientSecret, WebhookSecret                            connector.Sealed
}

// sessions holds the sessions in memory: a restart signs everyone out.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, now: now}
}

// randomToken returns 32 random bytes, URL-safe base64.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *session) idle() time.Duration {
	if s.authed {
		return SessionIdle
	}
	return AnonymousIdle
}

// get returns the live session of the request's cookie, touched, or nil.
func (ss *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || len(c.Value) > 64 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Value]
	if s == nil {
		return nil
	}
	now := ss.now()
	if now.Sub(s.seen) > s.idle() {
		delete(ss.m, s.id)
		return nil
	}
	s.seen = now
	return s
}

// create makes a new session, signed in or not.
func (ss *sessions) create(authed bool) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.m) >= maxSessions {
		ss.evictLocked(now)
	}
	s := &session{id: randomToken(), csrf: randomToken(), authed: authed, seen: now, createdAt: now}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) evictLocked(now time.Time) {
	var oldest *session
	for id, s := range ss.m {
		if now.Sub(s.seen) > s.idle() {
			delete(ss.m, id)
			continue
		}
		if !s.authed && (oldest == nil || s.seen.Before(oldest.seen)) {
			oldest = s
		}
	}
	if len(ss.m) >= maxSessions && oldest != nil {
		delete(ss.m, oldest.id)
	}
	if len(ss.m) >= maxSessions { // all signed in: the least recently used goes
		for _, s := range ss.m {
			if oldest == nil || s.seen.Before(oldest.seen) {
				oldest = s
			}
		}
		delete(ss.m, oldest.id)
	}
}

// end removes a session.
func (ss *sessions) end(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, s.id)
}

// with runs fn on the session under the lock.
func (ss *sessions) with(s *session, fn func(*session)) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	fn(s)
}

// setFlash keeps a message for the next page.
func (ss *sessions) setFlash(s *session, msg string, bad bool) {
	ss.with(s, func(s *session) { s.flash, s.flashBad = msg, bad })
}

// takeFlash returns the message kept for this page, once.
func (ss *sessions) takeFlash(s *session) (msg string, bad bool) {
	ss.with(s, func(s *session) { msg, bad, s.flash, s.flashBad = s.flash, s.flashBad, "", false })
	return msg, bad
}

// cookie is the session's cookie: HttpOnly, SameSite=Strict, and Secure
// when the console is reached over TLS.
func cookie(s *session, secure bool) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: s.id, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode}
}

// clearCookie ends the session's cookie in the browser.
func clearCookie(secure bool) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode}
}
