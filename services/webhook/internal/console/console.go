// Package console serves the admin console: server-rendered pages on an
// internal address (ADMIN_ADDR) to sign in with the admin token, see every
// connector with its syncs and dead letters, connect Zoom (the redirect URL
// and scopes to copy, Validate, Save and the authorization), and act on a
// connector (sync now, re-authorize, disable, remove). Forms are plain
// POSTs answered with redirects; JavaScript only refreshes a running
// sync's progress and copies values.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxForm bounds a posted form's body.
const maxForm = 16 << 10

// Config wires the console.
type Config struct {
	// Token is the admin token a person signs in with (ADMIN_TOKEN or
	// ADMIN_TOKEN_FILE); required.
	Token string
	// Registry is the live connector registry.
	Registry *connector.Registry
	// Keys seals the secrets a Connect form keeps between Validate and
	// Save.
	Keys *connector.Keyring
	// NC calls the admin API, which does every change to a connector, and
	// asks the writer for record counts; JS publishes sync triggers and
	// reads the events and dead letters.
	NC *nats.Conn
	JS jetstream.JetStream
	// Activity follows the change events; nil shows none.
	Activity *Activity
	// RedirectTemplate is OAUTH_REDIRECT_URL.
	RedirectTemplate string
	// OAuthURL and APIURL are Zoom's, for Validate.
	OAuthURL, APIURL string
	HTTPClient       *http.Client
	// SecureCookies marks the session cookie Secure even on plain HTTP:
	// the console is behind a proxy that ends TLS (ADMIN_URL is https).
	SecureCookies bool
	Log           zerolog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Console serves the pages.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    *template.Template
	dead     *deadLetters
	counts   *counts
	mux      *http.ServeMux
}

// New returns the console.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Activity == nil {
		cfg.Activity = NewActivity()
	}
	// Trimmed as the token posted to sign in is.
	cfg.Token = strings.TrimSpace(cfg.Token)
	c := &Console{cfg: cfg, sessions: newSessions(cfg.Now), dead: &deadLetters{js: cfg.JS, now: cfg.Now}, counts: newCounts(cfg.NC, cfg.Now)}
	c.pages = template.Must(template.New("pages").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	c.routes()
	return c
}

// Serve answers on ln until ctx ends.
func (c *Console) Serve(ctx context.Context, ln net.Listener) error {
	return service.ServeListenerWith(ctx, ln, c, service.ServerOptions{MaxHeaderBytes: 16 << 10})
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /signin", c.signInPage)
	m.HandleFunc("POST /signin", c.signIn)
	m.HandleFunc("POST /signout", c.authed(c.signOut))
	m.HandleFunc("GET /{$}", c.authed(c.connectorsPage))
	m.HandleFunc("GET /connect", c.authed(c.connectPage))
	m.HandleFunc("POST /connect", c.authed(c.connectPost))
	m.HandleFunc("GET /connectors/{tenant}/{connector}", c.authed(c.connectorPage))
	m.HandleFunc("GET /connectors/{tenant}/{connector}/live", c.authed(c.livePart))
	m.HandleFunc("POST /connectors/{tenant}/{connector}/{action}", c.authed(c.connectorAction))
	c.mux = m
}

// ServeHTTP sets the headers every answer carries and routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: Save redirects the browser on to Zoom.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	c.mux.ServeHTTP(w, r)
}

// secure reports whether the session cookie must be Secure.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.cfg.SecureCookies }

// authed wraps a handler of signed-in sessions: others are sent to sign
// in; a POST must carry its session's CSRF token, or is refused (403).
func (c *Console) authed(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.sessions.get(r)
		if s == nil || !s.authed {
			if r.Method == http.MethodPost {
				c.forbidden(w, "Your session has ended. Sign in again.")
				return
			}
			// The page asked for is shown once signed in.
			if s == nil {
				s = c.sessions.create(false)
				http.SetCookie(w, cookie(s, c.secure(r)))
			}
			if next := r.URL.RequestURI(); localPath(next) {
				c.sessions.with(s, func(s *session) { s.next = next })
			}
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.badRequest(w, s, "The form could not be read: it is too large or malformed.")
				return
			}
			if !validCSRF(s, r.PostForm.Get(CSRFField)) {
				c.forbidden(w, "This form is missing its security token or it is out of date. Reload the page and try again.")
				return
			}
		}
		next(w, r, s)
	}
}

func (c *Console) forbidden(w http.ResponseWriter, msg string) {
	c.render(w, http.StatusForbidden, "error", page{Title: "Refused", Error: msg})
}

func (c *Console) badRequest(w http.ResponseWriter, s *session, msg string) {
	c.render(w, http.StatusBadRequest, "error", page{Title: "Bad request", Error: msg, CSRF: csrfOf(s), Authed: s != nil && s.authed})
}

func csrfOf(s *session) string {
	if s == nil {
		return ""
	}
	return s.csrf
}

// page is what every template gets.
type page struct {
	Title  string
	CSRF   string
	Authed bool
	Flash  string
	Bad    bool
	Error  string
	Data   any
}

// withSession fills the page's session fields and takes its flash.
func (c *Console) withSession(s *session, p page) page {
	p.CSRF, p.Authed = s.csrf, s.authed
	p.Flash, p.Bad = c.sessions.takeFlash(s)
	return p
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	var b strings.Builder
	if err := c.pages.ExecuteTemplate(&b, name, p); err != nil {
		c.cfg.Log.Error().Err(err).Str("page", name).Msg("console: render")
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// signInPage shows the sign-in form, with a session of its own that
// carries the form's CSRF token.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	s := c.sessions.get(r)
	if s != nil && s.authed {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if s == nil {
		s = c.sessions.create(false)
		http.SetCookie(w, cookie(s, c.secure(r)))
	}
	c.render(w, http.StatusOK, "signin", c.withSession(s, page{Title: "Sign in"}))
}

// signIn checks the admin token; a right one starts a new signed-in
// session (a new id, so that one planted before cannot be used).
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	s := c.sessions.get(r)
	if err := r.ParseForm(); err != nil {
		c.badRequest(w, s, "The form could not be read.")
		return
	}
	if !validCSRF(s, r.PostForm.Get(CSRFField)) {
		c.forbidden(w, "This form is missing its security token or it is out of date. Reload the sign-in page and try again.")
		return
	}
	token := r.PostForm.Get("token")
	if len(token) > 1024 || !equalSecret(strings.TrimSpace(token), c.cfg.Token) {
		c.cfg.Log.Warn().Str("remote", r.RemoteAddr).Msg("console: a sign-in with a wrong token")
		// A moment's pause makes guessing slow.
		select {
		case <-time.After(500 * time.Millisecond):
		case <-r.Context().Done():
		}
		c.render(w, http.StatusUnauthorized, "signin", c.withSession(s, page{Title: "Sign in",
			Error: "That is not the admin token. It is ADMIN_TOKEN (or the file ADMIN_TOKEN_FILE names) of the webhook service."}))
		return
	}
	next := "/"
	c.sessions.with(s, func(s *session) {
		if localPath(s.next) {
			next = s.next
		}
	})
	c.sessions.end(s)
	n := c.sessions.create(true)
	http.SetCookie(w, cookie(n, c.secure(r)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// localPath reports whether p is a path of this console to send a browser
// to: it starts with one slash, is bounded, and cannot be read as another
// host (//host, /\host).
func localPath(p string) bool {
	return len(p) > 0 && len(p) <= 512 && p[0] == '/' && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\") &&
		!strings.ContainsAny(p, "\r\n")
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.end(s)
	http.SetCookie(w, clearCookie(c.secure(r)))
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
