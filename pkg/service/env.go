// Package service holds what every binary of the connector does the same
// way: configuration from the environment, the logger, the health, readiness
// and metrics endpoints, and the run-until-signalled main.
package service

import (
	"errors"
	"fmt"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
)

// Env reads configuration from environment variables and collects every
// problem, so that a service can report all of them in one line at start.
type Env struct {
	lookup func(string) (string, bool)
	errs   []error
}

// NewEnv reads the process environment.
func NewEnv() *Env { return &Env{lookup: os.LookupEnv} }

// EnvFrom reads from a map, for tests.
func EnvFrom(m map[string]string) *Env {
	return &Env{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

func (e *Env) get(name string) (string, bool) {
	v, ok := e.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// String returns the variable, or def when unset or empty.
func (e *Env) String(name, def string) string {
	if v, ok := e.get(name); ok {
		return v
	}
	return def
}

// Required returns the variable and records an error when it is missing.
func (e *Env) Required(name string) string {
	v, ok := e.get(name)
	if !ok {
		e.errs = append(e.errs, fmt.Errorf("%s is required", name))
	}
	return v
}

// Int returns the variable as an integer, or def.
func (e *Env) Int(name string, def int) int {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s must be an integer, got %q", name, v))
		return def
	}
	return n
}

// Float returns the variable as a number, or def.
func (e *Env) Float(name string, def float64) float64 {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s must be a number, got %q", name, v))
		return def
	}
	return f
}

// Bool returns the variable as a boolean, or def.
func (e *Env) Bool(name string, def bool) bool {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s must be true or false, got %q", name, v))
		return def
	}
	return b
}

// Duration returns the variable as a Go duration ("30s", "24h"), or def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v, ok := e.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s must be a duration such as 30s or 24h, got %q", name, v))
		return def
	}
	return d
}

// URL returns the variable, or def, as an http or https URL with a host,
// and records an error when it is not one. The error names the variable and
// shows the URL without its user information, query or fragment: a URL may
// carry a password or token, and the parser's own error would quote it
// whole.
func (e *Env) URL(name, def string) string {
	v := e.String(name, def)
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.errs = append(e.errs, fmt.Errorf("%s must be an http(s) URL with a host, got %s", name, RedactURL(v)))
	}
	return v
}

// NATSURL returns the variable, or def, as a list of NATS server URLs, and
// records an error, without the URLs' secrets, when the client cannot use
// it.
func (e *Env) NATSURL(name, def string) string {
	v := e.String(name, def)
	if err := natsx.CheckURL(v); err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", name, err))
	}
	return v
}

// RedactURL returns rawURL for an error or a log line: without what stands
// before its last "@" (user name, password or token), its query and its
// fragment. It works on malformed URLs too, which are what errors show.
func RedactURL(rawURL string) string {
	scheme, rest := "", rawURL
	if j := strings.Index(rawURL, "://"); j >= 0 {
		scheme, rest = rawURL[:j+3], rawURL[j+3:]
	}
	// The user information goes first: a password may hold a "?" or "#".
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = "redacted" + rest[at:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	return scheme + rest
}

// Check records err, if any, among the configuration problems.
func (e *Env) Check(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Err returns every problem found, joined, or nil.
func (e *Env) Err() error {
	if len(e.errs) == 0 {
		return nil
	}
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	return errors.New("configuration: " + strings.Join(msgs, "; "))
}

// Common is the configuration every service shares.
type Common struct {
	NATSURL string
	// NATS is the connection's credentials and CA (NATS_CREDS,
	// NATS_CA_FILE): paths only.
	NATS        natsx.Auth
	LogLevel    string
	LogFormat   string
	HTTPAddr    string
	Tenant      string
	ConnectorID string
	// StreamReplicas is the replica count of every stream and bucket.
	StreamReplicas int
	// EventsMaxAge and EventsMaxBytes bound what CLARITY_ENTITLEMENTS
	// keeps (EVENTS_MAX_AGE, EVENTS_MAX_BYTES; 0 bytes is no bound).
	EventsMaxAge   time.Duration
	EventsMaxBytes int64
}

// ReadCommon reads the shared variables; addrVar names the variable of the
// service's own health and metrics address, with its default.
func ReadCommon(e *Env, addrVar, addrDef string) Common {
	c := Common{
		NATSURL:        e.NATSURL("NATS_URL", "nats://127.0.0.1:4222"),
		NATS:           natsx.Auth{CredsFile: e.String("NATS_CREDS", ""), CAFile: e.String("NATS_CA_FILE", "")},
		LogLevel:       e.String("LOG_LEVEL", "info"),
		LogFormat:      e.String("LOG_FORMAT", "json"),
		HTTPAddr:       e.String(addrVar, addrDef),
		Tenant:         e.String("CLARITY_TENANT", "default"),
		ConnectorID:    e.String("CONNECTOR_ID", "zoom"),
		StreamReplicas: e.Int("NATS_STREAM_REPLICAS", 1),
		EventsMaxAge:   e.Duration("EVENTS_MAX_AGE", pipeline.DefaultEventsMaxAge),
		EventsMaxBytes: int64(e.Int("EVENTS_MAX_BYTES", 0)),
	}
	if c.EventsMaxAge < time.Minute {
		e.Check(fmt.Errorf("EVENTS_MAX_AGE must be at least 1m, got %s", c.EventsMaxAge))
	}
	if c.EventsMaxBytes < 0 {
		e.Check(fmt.Errorf("EVENTS_MAX_BYTES must not be negative, got %d", c.EventsMaxBytes))
	}
	switch c.LogFormat {
	case "json", "console", "text":
	default:
		e.Check(fmt.Errorf("LOG_FORMAT must be json or console, got %q", c.LogFormat))
	}
	return c
}
