// Package natsx is the connector's thin JetStream glue: connecting with
// endless reconnects, creating streams idempotently, and the one consume loop
// that decides ack, nak-with-delay or dead letter for every service.
package natsx

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Connect dials NATS and keeps reconnecting for as long as the process
// lives: a restart of the NATS server must not stop a service. opts come
// after the defaults and may override them.
func Connect(ctx context.Context, url, name string, log zerolog.Logger, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	return ConnectAuth(ctx, url, name, Auth{}, log, opts...)
}

// ConnectAuth is Connect with credentials and a CA (auth). Credentials the
// server refuses stop it at once with one error that says so, rather than
// a loop of reconnections; a permission violation later is logged with its
// subject.
func ConnectAuth(ctx context.Context, url, name string, auth Auth, log zerolog.Logger, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	authOpts, err := auth.Options()
	if err != nil {
		return nil, nil, err
	}
	opts = append(authOpts, opts...)
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info().Str("url", c.ConnectedUrlRedacted()).Msg("nats reconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			if subject, ok := PermissionSubject(err); ok {
				log.Error().Str("subject", subject).Msg("nats refused: permission violation")
				return
			}
			ev := log.Warn().Err(err)
			if s != nil {
				ev = ev.Str("subject", s.Subject)
			}
			ev.Msg("nats error")
		}),
	}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(url), redactError(err, url))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	// RetryOnFailedConnect returns at once; wait a little for the first
	// connection so that stream creation does not fail needlessly.
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() && time.Now().Before(deadline) && ctx.Err() == nil {
		if err := nc.LastError(); authError(err) {
			nc.Close()
			what := "without credentials (NATS_CREDS is not set)"
			if auth.CredsFile != "" {
				what = "with the credentials of NATS_CREDS"
			}
			return nil, nil, fmt.Errorf("connect to nats at %s: the server refused the connection %s: %w", RedactURL(url), what, err)
		}
		if err := nc.LastError(); certError(err) {
			nc.Close()
			return nil, nil, fmt.Errorf("connect to nats at %s: the server's certificate is not trusted (NATS_CA_FILE names the CA that signed it): %w", RedactURL(url), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !nc.IsConnected() {
		nc.Close()
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(url), err)
		}
		if err := nc.LastError(); err != nil {
			return nil, nil, fmt.Errorf("connect to nats at %s: no connection within 10s: %w", RedactURL(url), redactError(err, url))
		}
		return nil, nil, fmt.Errorf("connect to nats at %s: no connection within 10s", RedactURL(url))
	}
	return nc, js, nil
}

// EnsureStreams creates the streams, or updates them to the given
// configuration, so that every service can start in any order.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// CreateMissingStreams creates the streams that do not exist and leaves
// existing ones as they are: for tools and for the services that do not
// own them, which must not reconfigure them (their replica count, say).
func CreateMissingStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.Stream(ctx, cfg.Name); err == nil {
			continue
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Ready reports whether the connection is up, for /readyz.
func Ready(nc *nats.Conn) error {
	if nc == nil || !nc.IsConnected() {
		return fmt.Errorf("nats: not connected")
	}
	return nil
}

// drainTimeout bounds Drain: nats.go's own drain timeout is 30 s.
const drainTimeout = 10 * time.Second

// Drain drains nc and returns once it is closed, so that the last
// acknowledgements and publications reach the server before the process
// exits (nats.Conn.Drain only starts draining). After drainTimeout it
// closes nc and says so.
func Drain(nc *nats.Conn) error {
	if err := nc.Drain(); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		return err
	}
	deadline := time.Now().Add(drainTimeout)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			nc.Close()
			return fmt.Errorf("NATS connection not drained within %s; closed", drainTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// TooLarge reports whether err is a refusal of a message for its size: the
// server's maximum payload (checked by the client before sending) or a
// stream's maximum message size. Publishing such a message again can only
// fail again.
func TooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// RedactURL returns the NATS server URLs in s (comma-separated) without the
// user names, passwords or tokens they may carry, for logs and errors. It
// does not need the URLs to be valid: whatever stands before the last "@"
// of one is replaced, so that a malformed URL, which is just what an error
// message shows, keeps its secret too.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		scheme, rest := "", p
		if j := strings.Index(p, "://"); j >= 0 {
			scheme, rest = p[:j+3], p[j+3:]
		}
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			parts[i] = scheme + "redacted" + rest[at:]
			continue
		}
		// Without an "@" there is no user information, unless a comma in a
		// password split one URL in two: then the first half does not
		// parse (its "host" would be the user name and its "port" part of
		// the password) and is not shown.
		q := p
		if scheme == "" {
			q = "nats://" + p // as the client reads it
		}
		if u, err := neturl.Parse(q); err != nil || u.Host == "" {
			parts[i] = "(unparsable URL)"
			continue
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// CheckURL reports whether s is a list of NATS server URLs that the client
// can use (comma-separated; a URL without a scheme is a nats:// one). Its
// error names the URL redacted, never a password or token it carries.
func CheckURL(s string) error {
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		u, err := neturl.Parse(p)
		if err != nil {
			// What is wrong, without the URL: the message names it redacted.
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("%s is not a valid URL: %w", RedactURL(p), redactError(err, p))
		}
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("%s has no host", RedactURL(p))
		}
	}
	return nil
}

// redactError returns err with every secret of the URLs in urls taken out
// of its text. A *url.Error, which is what parsing a malformed URL returns,
// quotes the whole URL, password included; it is rebuilt around the
// redacted URL, and an escape error in it, which may quote part of a
// password, is reduced to its kind. Any other error that shows a secret is
// replaced by its redacted text and no longer unwraps, so that nothing
// that prints the chain can show it.
func redactError(err error, urls string) error {
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, RedactURL(ue.URL), redactError(ue.Err, urls))
	}
	var esc neturl.EscapeError
	if errors.As(err, &esc) {
		return errors.New("invalid URL escape")
	}
	text := err.Error()
	redacted := text
	for _, s := range urlSecrets(urls) {
		redacted = strings.ReplaceAll(redacted, s, "redacted")
	}
	if redacted == text {
		return err
	}
	return errors.New(redacted)
}

// urlSecrets returns the user information of each URL in urls (what stands
// between its scheme and its last "@"), and the password in it, longest
// first.
func urlSecrets(urls string) []string {
	var out []string
	for _, p := range strings.Split(urls, ",") {
		p = strings.TrimSpace(p)
		if j := strings.Index(p, "://"); j >= 0 {
			p = p[j+3:]
		}
		at := strings.LastIndexByte(p, '@')
		if at <= 0 {
			continue
		}
		out = append(out, p[:at])
		if _, pw, ok := strings.Cut(p[:at], ":"); ok && pw != "" {
			out = append(out, pw)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}
