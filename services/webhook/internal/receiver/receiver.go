// Package receiver is the HTTP endpoint for Zoom webhook notifications. It
// verifies each notification, answers Zoom's endpoint validation, and stores
// every other verified notification in JetStream before answering 200;
// everything that follows happens asynchronously in the normalizer.
//
// Limit bounds the requests served at once on the public address: one over
// MaxConcurrent is answered 503 (overloaded) with Retry-After at once, before
// any of its body is read, so that the memory held by callers, who are not
// authenticated until their body is read, stays in the order of
// MaxConcurrent times MaxBody. Zoom retries a 503, so a notification shed is
// delivered later.
//
// A request to a webhook route is then checked in this order, and the first
// check that fails decides the answer:
//
//  1. method: anything but POST is 405 (bad_method);
//  2. connector: a tenant or connector that is not a valid name (1 to 63 of
//     a-z, 0-9, '_' and '-', as pipeline.CheckName has it) or is not known
//     is 404 (unknown_connector), before any of the body is read;
//  3. size: a body over MaxBody is 413 (too_large); it is never read whole;
//  4. signature: x-zm-signature must sign x-zm-request-timestamp and the raw
//     body with the connector's secret, else 401 (bad_signature);
//  5. timestamp: x-zm-request-timestamp must lie within MaxSkew of now, else
//     401 (stale_timestamp); it is checked after the signature, so that the
//     count of stale requests counts replays of genuine notifications only;
//  6. JSON: the body must be a JSON object with a non-empty "event", else
//     400 (bad_json); nothing is parsed before the signature verified, so an
//     unauthenticated caller learns nothing about parsing;
//  7. endpoint.url_validation is answered 200 with the encrypted token and
//     not stored (url_validation);
//  8. any other event is stored with a synchronous JetStream publish and
//     answered 200 once acknowledged (accepted, or duplicate when JetStream
//     already had that body); a publish that fails or outlasts
//     PublishTimeout is 503 (unavailable), so that Zoom retries.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Zoom's request headers.
const (
	HeaderSignature = "x-zm-signature"
	HeaderTimestamp = "x-zm-request-timestamp"
)

// EventURLValidation is the event Zoom sends to validate the endpoint.
const EventURLValidation = "endpoint.url_validation"

// EventAppDeauthorized is the Marketplace event Zoom sends when the app is
// removed from the account: the connector is disabled and its tokens wiped
// (Config.Deauthorized), and nothing is stored for the normalizer.
const EventAppDeauthorized = "app_deauthorized"

// Defaults of Config.
const (
	// MaxBody is the largest body accepted by default. Zoom's
	// notifications are a few kilobytes; the bound is what an
	// unauthenticated caller can make the receiver hold per request.
	MaxBody = 64 << 10
	// MaxStorableBody is the largest body a receiver may be configured to
	// accept: it leaves room for the envelope and headers of the stored
	// message within JetStream's default largest message (1 MiB), since a
	// body accepted must be storable, or every retry of it would get a 503.
	MaxStorableBody = 1<<20 - 64<<10
	// MaxSkew is how far x-zm-request-timestamp may lie from now. Zoom
	// documents no window; 5 minutes is the common practice.
	MaxSkew = 5 * time.Minute
	// PublishTimeout bounds the time from the request's arrival to the
	// answer's decision: Zoom counts a delivery as failed after 3 seconds,
	// and a 503 sent in time at least tells it to retry.
	PublishTimeout = 2500 * time.Millisecond
	// MaxConcurrent is how many requests Limit lets be served at once by
	// default: with MaxBody, bodies of 16 MiB in all (twice that while
	// they are read), and far more notifications at once than Zoom sends,
	// since each is answered within PublishTimeout.
	MaxConcurrent = 256
	// RetryAfter is the wait a shed request's answer suggests: a held
	// request ends within PublishTimeout, so a slot is free by then unless
	// the flood goes on.
	RetryAfter = 5 * time.Second
)

// Publisher stores a message in JetStream; jetstream.JetStream is one.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Config configures a Receiver.
type Config struct {
	// Connectors knows the connectors and their secrets.
	Connectors Connectors
	// Default is the connector of the route without tenant and connector,
	// POST /webhooks/zoom.
	Default pipeline.ConnectorRef
	// Publisher stores accepted notifications.
	Publisher Publisher
	Log       zerolog.Logger
	// Metrics may be nil, for a receiver whose metrics nobody reads.
	Metrics *Metrics
	// Now is the clock timestamps are checked against; nil is time.Now.
	Now func() time.Time
	// PublishTimeout, MaxSkew and MaxBody default to the package's
	// constants when zero. MaxBody should not exceed MaxStorableBody.
	PublishTimeout time.Duration
	MaxSkew        time.Duration
	MaxBody        int64
	// MaxConcurrent bounds the requests Limit lets be served at once;
	// zero is the package's MaxConcurrent.
	MaxConcurrent int
	// Deauthorized handles a verified app_deauthorized notification of a
	// connector; nil answers it 404, as for a connector that cannot be
	// deauthorized (the environment's).
	Deauthorized func(ctx context.Context, ref pipeline.ConnectorRef, clientID string, at time.Time) error
}

// Receiver is the http.Handler of the webhook routes.
type Receiver struct {
	cfg Config
	// slots holds one element for each request being served through
	// Limit.
	slots chan struct{}
}

// New returns a Receiver configured by cfg.
func New(cfg Config) *Receiver {
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = PublishTimeout
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = MaxSkew
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = MaxBody
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = MaxConcurrent
	}
	return &Receiver{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent)}
}

// Limit returns next behind the receiver's bound on concurrent requests,
// for the public address: every request counts, whatever its route. A
// request beyond MaxConcurrent is answered 503 with Retry-After at once,
// without waiting for a slot and without reading its body; its connection
// is closed after the answer, so that the server does not read that body
// either to find the next request.
func (rc *Receiver) Limit(next http.Handler) http.Handler {
	retryAfter := strconv.Itoa(int(RetryAfter / time.Second))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case rc.slots <- struct{}{}:
		default:
			rc.cfg.Metrics.request(ResultOverloaded)
			// Debug only: a flood is what sheds, and the count tells of it.
			rc.cfg.Log.Debug().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("request shed")
			w.Header().Set("Retry-After", retryAfter)
			w.Header().Set("Connection", "close")
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
			return
		}
		rc.cfg.Metrics.inFlight.Inc()
		defer func() {
			rc.cfg.Metrics.inFlight.Dec()
			<-rc.slots
		}()
		next.ServeHTTP(w, r)
	})
}

// Register adds the webhook routes to mux: /webhooks/zoom/{tenant}/{connector}
// and /webhooks/zoom for the default connector. The patterns take every
// method, so that the receiver itself answers (and counts) a wrong one.
func (rc *Receiver) Register(mux *http.ServeMux) {
	mux.Handle("/webhooks/zoom", rc)
	mux.Handle("/webhooks/zoom/{tenant}/{connector}", rc)
}

// notification is the part of a Zoom notification body the receiver reads.
type notification struct {
	Event   string          `json:"event"`
	EventTS json.RawMessage `json:"event_ts"`
	Payload json.RawMessage `json:"payload"`
}

// ServeHTTP handles one request to a webhook route, in the order the package
// documentation gives.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := rc.cfg.Now()
	deadline := time.Now().Add(rc.cfg.PublishTimeout)
	log := rc.cfg.Log.With().Str("remote", r.RemoteAddr).Logger()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.refuse(w, log, http.StatusMethodNotAllowed, ResultBadMethod, nil)
		return
	}

	conn, log, err := rc.lookup(r, log)
	switch {
	case errors.Is(err, ErrUnknownConnector):
		rc.refuse(w, log, http.StatusNotFound, ResultUnknownConnector, nil)
		return
	case err != nil:
		rc.refuse(w, log, http.StatusServiceUnavailable, ResultUnavailable, fmt.Errorf("look up connector: %w", err))
		return
	}

	if r.ContentLength > rc.cfg.MaxBody {
		rc.refuse(w, log, http.StatusRequestEntityTooLarge, ResultTooLarge, nil)
		return
	}
	// A body trickling in must not hold the answer past Zoom's 3 seconds;
	// the deadline is the one the publish gets too. Recorders in tests do
	// not support deadlines, which is harmless.
	_ = http.NewResponseController(w).SetReadDeadline(deadline)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.cfg.MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			rc.refuse(w, log, http.StatusRequestEntityTooLarge, ResultTooLarge, nil)
			return
		}
		rc.refuse(w, log, http.StatusBadRequest, ResultBadRequest, fmt.Errorf("read body: %w", err))
		return
	}

	ts := r.Header.Get(HeaderTimestamp)
	if !Verify(conn.Secret, ts, body, r.Header.Get(HeaderSignature)) {
		rc.refuse(w, log, http.StatusUnauthorized, ResultBadSignature, nil)
		return
	}
	if !Fresh(ts, start, rc.cfg.MaxSkew) {
		rc.refuse(w, log, http.StatusUnauthorized, ResultStaleTimestamp, nil)
		return
	}

	var n notification
	if err := json.Unmarshal(body, &n); err != nil || n.Event == "" {
		rc.refuse(w, log, http.StatusBadRequest, ResultBadJSON, nil)
		return
	}
	log = log.With().Str("event", n.Event).Logger()

	if n.Event == EventURLValidation {
		rc.validate(w, log, conn.Secret, n)
		return
	}
	if n.Event == EventAppDeauthorized {
		rc.deauthorize(w, r, log, conn, body, deadline)
		return
	}

	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	ack, err := rc.publish(ctx, conn, n, body, start)
	if err != nil {
		rc.refuse(w, log, http.StatusServiceUnavailable, ResultUnavailable, err)
		return
	}
	result := ResultAccepted
	if ack.Duplicate {
		result = ResultDuplicate
	}
	rc.cfg.Metrics.request(result)
	rc.cfg.Metrics.event(n.Event)
	log.Debug().Str("result", result).Uint64("seq", ack.Sequence).Msg("notification stored")
	writeJSON(w, map[string]string{"status": result})
}

// lookup finds the connector of a request, from its route, and returns log
// with the tenant and connector the route names. Invalid names are unknown
// without asking Connectors: no connector can have them, and they could
// never be published under.
func (rc *Receiver) lookup(r *http.Request, log zerolog.Logger) (Connector, zerolog.Logger, error) {
	tenant, id := r.PathValue("tenant"), r.PathValue("connector")
	if tenant == "" && id == "" {
		tenant, id = rc.cfg.Default.Tenant, rc.cfg.Default.ID
	}
	// The names are logged as the route gave them, valid or not, so that a
	// refusal says what was asked for.
	log = log.With().Str("tenant", tenant).Str("connector", id).Logger()
	ref, err := pipeline.NewConnectorRef(tenant, id)
	if err != nil {
		return Connector{}, log, ErrUnknownConnector
	}
	c, err := rc.cfg.Connectors.Lookup(r.Context(), ref)
	if err != nil {
		return Connector{}, log, err
	}
	return c, log, nil
}

// deauthorize handles app_deauthorized: the app was removed from the Zoom
// account, so the connector can no longer sync; it is disabled and its
// tokens wiped. Zoom's payload names the app's client id, which must be the
// connector's.
func (rc *Receiver) deauthorize(w http.ResponseWriter, r *http.Request, log zerolog.Logger, c Connector, body []byte, deadline time.Time) {
	if rc.cfg.Deauthorized == nil {
		rc.refuse(w, log, http.StatusNotFound, ResultUnknownConnector, nil)
		return
	}
	var ev struct {
		EventTS json.RawMessage `json:"event_ts"`
		Payload struct {
			ClientID string `json:"client_id"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.refuse(w, log, http.StatusBadRequest, ResultBadJSON, nil)
		return
	}
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	var at time.Time
	if ms := eventMillis(ev.EventTS); ms > 0 {
		at = time.UnixMilli(ms)
	}
	switch err := rc.cfg.Deauthorized(ctx, c.Ref, ev.Payload.ClientID, at); {
	case errors.Is(err, ErrUnknownConnector), errors.Is(err, connector.ErrNotFound):
		rc.refuse(w, log, http.StatusNotFound, ResultUnknownConnector, nil)
		return
	case errors.Is(err, ErrOtherApp):
		rc.refuse(w, log, http.StatusBadRequest, ResultBadRequest, err)
		return
	case err != nil:
		rc.refuse(w, log, http.StatusServiceUnavailable, ResultUnavailable, fmt.Errorf("disable the connector: %w", err))
		return
	}
	rc.cfg.Metrics.request(ResultDeauthorized)
	rc.cfg.Metrics.event(EventAppDeauthorized)
	log.Warn().Msg("the app was removed from the Zoom account: connector disabled, tokens wiped")
	writeJSON(w, map[string]string{"status": ResultDeauthorized})
}

// validate answers endpoint.url_validation.
func (rc *Receiver) validate(w http.ResponseWriter, log zerolog.Logger, secret Secret, n notification) {
	var p struct {
		PlainToken string `json:"plainToken"`
	}
	if err := json.Unmarshal(n.Payload, &p); err != nil || p.PlainToken == "" {
		rc.refuse(w, log, http.StatusBadRequest, ResultBadJSON, nil)
		return
	}
	rc.cfg.Metrics.request(ResultURLValidation)
	rc.cfg.Metrics.event(n.Event)
	log.Info().Msg("endpoint url validated")
	writeJSON(w, map[string]string{"plainToken": p.PlainToken, "encryptedToken": EncryptToken(secret, p.PlainToken)})
}

// publish stores the notification on the connector's webhook subject. The
// message id (pipeline.WebhookID) is the connector and the hash of the raw
// body, so that JetStream drops a second delivery of the same body (a Zoom
// retry or a replay) within the stream's duplicate window, while two
// connectors never drop each other's. The envelope goes through
// pipeline.NewMsg, compressed when that pays, as every internal message
// does; compression never makes it larger, so MaxStorableBody holds.
func (rc *Receiver) publish(ctx context.Context, c Connector, n notification, body []byte, received time.Time) (*jetstream.PubAck, error) {
	env := &pb.Envelope{
		Tenant:    c.Ref.Tenant,
		Connector: c.Ref.ID,
		Body: &pb.Envelope_Webhook{Webhook: &pb.WebhookEvent{
			Event:        n.Event,
			EventTsMs:    eventMillis(n.EventTS),
			Body:         body,
			ReceivedAtMs: received.UnixMilli(),
		}},
	}
	msg, err := pipeline.NewMsg(pipeline.WebhookSubject(c.Ref), env, pipeline.WebhookID(c.Ref, body))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ack, err := rc.cfg.Publisher.PublishMsg(ctx, msg, jetstream.WithExpectStream(pipeline.StreamWebhook))
	rc.cfg.Metrics.publish.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, fmt.Errorf("publish notification: %w", err)
	}
	return ack, nil
}

// eventMillis reads event_ts (epoch milliseconds). A missing or odd value
// (null, a string, a negative number) is 0, and the normalizer falls back to
// the payload's time_stamp or the time of receipt: a malformed time is no
// reason to lose a genuine event.
func eventMillis(raw json.RawMessage) int64 {
	s := string(raw)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
		return v
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < math.MaxInt64 {
		return int64(f)
	}
	return 0
}

// refuse answers a request that is not accepted, counts it, and logs it with
// err, the cause when there is one beyond the result itself. Refusals of the
// caller's making are logged at debug level only, since anyone on the
// internet can cause them; a 503 is ours, and a warning.
func (rc *Receiver) refuse(w http.ResponseWriter, log zerolog.Logger, code int, result string, err error) {
	rc.cfg.Metrics.request(result)
	ev := log.Debug()
	if code >= http.StatusInternalServerError {
		ev = log.Warn()
	}
	ev.Err(err).Int("status", code).Str("result", result).Msg("webhook refused")
	http.Error(w, http.StatusText(code), code)
}

func writeJSON(w http.ResponseWriter, v any) {
	// A map of strings always marshals (invalid UTF-8 is replaced).
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
