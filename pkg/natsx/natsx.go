// Package natsx is the connector's thin JetStream glue: connecting with
// endless reconnects, creating streams idempotently, and the one consume loop
// that decides ack, nak-with-delay or dead letter for every service.
package natsx

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
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
			ev := log.Warn().Err(err)
			if s != nil {
				ev = ev.Str("subject", s.Subject)
			}
			ev.Msg("nats error")
		}),
	}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats: %w", err)
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
		time.Sleep(50 * time.Millisecond)
	}
	if !nc.IsConnected() {
		nc.Close()
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
// existing ones as they are: for tools, which must not reconfigure what the
// services own (their replica count, say).
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

// RedactURL returns the NATS server URLs in s (comma-separated) without the
// user names, passwords or tokens they may carry, for logs and errors.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := neturl.Parse(p)
		switch {
		case err != nil:
			parts[i] = "(unparsable URL)"
		case u.User != nil:
			u.User = neturl.User("redacted")
			parts[i] = u.String()
		default:
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}
