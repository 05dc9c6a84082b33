// Package admin answers the admin API's connector operations (see
// connector.AdminSubject): add, update, authorize, show, remove, list,
// rotate-key and the transport key. The webhook service runs it because it
// holds the keyring and serves the OAuth redirect that finishes an
// authorization.
package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// DefaultSchedule is the schedule of a connector added without one.
const DefaultSchedule = "24h"

// maxRequest bounds a request's body.
const maxRequest = 16 << 10

// Config wires the admin API.
type Config struct {
	Registry   *connector.Registry
	Keys       *connector.Keyring
	Authorizer *connector.Authorizer
	NC         *nats.Conn
	JS         jetstream.JetStream
	// APIURL and OAuthURL are Zoom's, for checking Server-to-Server
	// credentials.
	APIURL, OAuthURL string
	HTTPClient       *http.Client
	Log              zerolog.Logger
}

// Server answers admin requests.
type Server struct{ cfg Config }

// New returns a Server.
func New(cfg Config) *Server { return &Server{cfg: cfg} }

// Serve answers until ctx ends; see Listen.
func (s *Server) Serve(ctx context.Context) error {
	serve, err := s.Listen()
	if err != nil {
		return err
	}
	return serve(ctx)
}

// Listen subscribes to the admin subjects (replicas share the requests: a
// queue group) and returns once the NATS server has the subscriptions, so
// that a service that says it is up after Listen answers its first
// request. serve answers until its ctx ends, then drains them.
func (s *Server) Listen() (serve func(ctx context.Context) error, err error) {
	// Requests in flight end with serving.
	ctx, stop := context.WithCancel(context.Background())
	var subs []*nats.Subscription
	sub := func(subject string, h func(ctx context.Context, m *nats.Msg) connector.Reply) error {
		x, err := s.cfg.NC.QueueSubscribe(subject, "admin", func(m *nats.Msg) {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			var r connector.Reply
			if len(m.Data) > maxRequest {
				r = connector.Reply{Error: fmt.Sprintf("request of %d bytes; at most %d", len(m.Data), maxRequest)}
			} else {
				r = h(rctx, m)
			}
			if r.Error != "" {
				s.cfg.Log.Warn().Str("subject", m.Subject).Str("error", r.Error).Msg("admin request refused")
			}
			b, err := json.Marshal(r)
			if err == nil {
				err = m.Respond(b)
			}
			if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
				s.cfg.Log.Warn().Err(err).Str("subject", m.Subject).Msg("admin reply")
			}
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		subs = append(subs, x)
		return nil
	}
	ops := map[string]func(context.Context, pipeline.ConnectorRef, []byte) connector.Reply{
		connector.OpAdd: s.add, connector.OpUpdate: s.update, connector.OpAuthorize: s.authorize,
		connector.OpShow: s.show, connector.OpRemove: s.remove,
	}
	for op, h := range ops {
		err = errors.Join(err, sub("zoom.admin.*.*."+op, func(ctx context.Context, m *nats.Msg) connector.Reply {
			ref, err := pipeline.FromSubject(m.Subject)
			if err != nil {
				return connector.Reply{Error: err.Error()}
			}
			return h(ctx, ref, m.Data)
		}))
	}
	err = errors.Join(err,
		sub(connector.SubjectList, func(ctx context.Context, m *nats.Msg) connector.Reply { return s.list(ctx, m.Data) }),
		sub(connector.SubjectRotateKey, func(ctx context.Context, m *nats.Msg) connector.Reply { return s.rotateKey(ctx) }),
		sub(connector.SubjectTransportKey, func(context.Context, *nats.Msg) connector.Reply { return s.transportKey() }))
	if err == nil {
		err = s.cfg.NC.Flush()
	}
	if err != nil {
		for _, x := range subs {
			_ = x.Unsubscribe()
		}
		stop()
		return nil, err
	}
	return func(sctx context.Context) error {
		<-sctx.Done()
		for _, x := range subs {
			_ = x.Drain()
		}
		stop()
		return nil
	}, nil
}

func refuse(format string, args ...any) connector.Reply {
	return connector.Reply{Error: fmt.Sprintf(format, args...)}
}

func failed(err error) connector.Reply { return connector.Reply{Error: err.Error()} }

// settings decodes a SettingsRequest and opens its sealed secrets.
func (s *Server) settings(ref pipeline.ConnectorRef, body []byte) (connector.SettingsRequest, string, string, error) {
	var req connector.SettingsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, "", "", errors.New("request is not JSON")
	}
	secret, err := s.cfg.Keys.OpenFromTransport(ref, connector.FieldClientSecret, req.ClientSecret)
	if err != nil {
		return req, "", "", errors.New("the client secret does not open: seal it with the transport key of this deployment")
	}
	webhook, err := s.cfg.Keys.OpenFromTransport(ref, connector.FieldWebhookSecret, req.WebhookSecret)
	if err != nil {
		return req, "", "", errors.New("the webhook secret token does not open: seal it with the transport key of this deployment")
	}
	if len(secret) > 1024 || len(webhook) > 1024 {
		return req, "", "", errors.New("a secret is over 1024 bytes")
	}
	return req, secret, webhook, nil
}

func (s *Server) add(ctx context.Context, ref pipeline.ConnectorRef, body []byte) connector.Reply {
	req, secret, webhook, err := s.settings(ref, body)
	if err != nil {
		return failed(err)
	}
	if secret == "" {
		return refuse("a client secret is required")
	}
	rec := connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: req.Auth, ClientID: req.ClientID,
		AccountID: req.AccountID, Schedule: req.Schedule, State: connector.StatePendingAuthorization}
	if req.Enrich != nil {
		// A new connector has no user yet: each comes as created, and is
		// read then.
		rec.Enrich, rec.EnrichBaseline = *req.Enrich, *req.Enrich
		if rec.Enrich {
			rec.EnrichSince = time.Now().UTC()
		}
	}
	if rec.Schedule == "" {
		rec.Schedule = DefaultSchedule
	}
	if rec.Auth == connector.AuthS2S {
		rec.State = connector.StateActive
	}
	if err := rec.Validate(); err != nil {
		return failed(err)
	}
	if _, err := s.cfg.Registry.Get(ctx, ref); err == nil {
		return refuse("connector %s is registered already: update or remove it", ref)
	}
	if rec.Auth == connector.AuthS2S {
		if err := s.checkS2S(ctx, rec, secret); err != nil {
			return failed(err)
		}
	}
	if err := s.seal(&rec, secret, webhook); err != nil {
		return failed(err)
	}
	e, err := s.cfg.Registry.Create(ctx, rec)
	if err != nil {
		return failed(err)
	}
	return s.afterSettings(ctx, e)
}

// afterSettings is the end of an add or an update: an OAuth connector
// pending authorization gets its authorize URL; an active Server-to-Server
// one its first full sync.
func (s *Server) afterSettings(ctx context.Context, e connector.Entry) connector.Reply {
	v := s.view(e.Record)
	r := connector.Reply{Connector: &v}
	switch {
	case e.Auth == connector.AuthOAuth && e.State != connector.StateActive:
		u, err := s.cfg.Authorizer.AuthorizeURL(ctx, e.Record)
		if err != nil {
			return failed(err)
		}
		v.AuthorizeURL = u
	case e.Auth == connector.AuthS2S && e.State == connector.StateActive:
		id, err := Trigger(ctx, s.cfg.JS, e.Ref(), "added")
		if err != nil {
			return failed(fmt.Errorf("connector %s registered, but its first sync could not be triggered: %w", e.Ref(), err))
		}
		r.RequestID = id
	}
	return r
}

func (s *Server) update(ctx context.Context, ref pipeline.ConnectorRef, body []byte) connector.Reply {
	req, secret, webhook, err := s.settings(ref, body)
	if err != nil {
		return failed(err)
	}
	// apply makes the update on a record and reports whether it changed
	// the credentials: the same function checks them first, on the record
	// as it is now, and then stores them.
	apply := func(r *connector.Record) (bool, error) {
		credentials := secret != ""
		if req.Auth != "" && req.Auth != r.Auth {
			r.Auth, credentials = req.Auth, true
		}
		if req.ClientID != "" && req.ClientID != r.ClientID {
			r.ClientID, credentials = req.ClientID, true
		}
		if req.AccountID != "" && req.AccountID != r.AccountID {
			r.AccountID, credentials = req.AccountID, true
		}
		if req.Schedule != "" {
			r.Schedule = req.Schedule
		}
		if req.Enrich != nil && *req.Enrich != r.Enrich {
			// Turned on, the users synced so far are read after the next
			// full sync; turned off, the next turn on reads them again
			// (changes meanwhile went unread).
			r.Enrich, r.EnrichBaseline = *req.Enrich, false
			if r.Enrich {
				r.EnrichSince = time.Now().UTC()
			}
		}
		if err := s.seal(r, secret, webhook); err != nil {
			return false, err
		}
		if credentials {
			// New credentials: an OAuth app needs a new authorization,
			// and its tokens belong to the old one; a Server-to-Server
			// app's were checked before this was stored.
			r.Tokens = connector.Tokens{}
			r.State, r.Reason = connector.StatePendingAuthorization, "credentials changed"
			if r.Auth == connector.AuthS2S {
				r.State, r.Reason = connector.StateActive, ""
			}
		}
		return credentials, r.Validate()
	}
	cur, err := s.cfg.Registry.Get(ctx, ref)
	if err != nil {
		return failed(err)
	}
	next := cur.Record
	changed, err := apply(&next)
	if err != nil {
		return failed(err)
	}
	if changed && next.Auth == connector.AuthS2S {
		plain, err := s.cfg.Keys.Open(next.ClientSecret, connector.SecretAD(ref, connector.FieldClientSecret))
		if err == nil {
			err = s.checkS2S(ctx, next, plain)
		}
		if err != nil {
			return failed(err) // nothing stored: the connector keeps its credentials
		}
	}
	e, err := s.cfg.Registry.Modify(ctx, ref, func(r *connector.Record) error {
		_, err := apply(r)
		return err
	})
	if err != nil {
		return failed(err)
	}
	return s.afterSettings(ctx, e)
}

func (s *Server) seal(r *connector.Record, secret, webhook string) error {
	ref := r.Ref()
	if secret != "" {
		v, err := s.cfg.Keys.Seal(secret, connector.SecretAD(ref, connector.FieldClientSecret))
		if err != nil {
			return err
		}
		r.ClientSecret = v
	}
	if webhook != "" {
		v, err := s.cfg.Keys.Seal(webhook, connector.SecretAD(ref, connector.FieldWebhookSecret))
		if err != nil {
			return err
		}
		r.WebhookSecret = v
	}
	return nil
}

// errStop ends a listing after its first page.
var errStop = errors.New("first page read")

// checkS2S checks Server-to-Server credentials as a sync would use them: a
// token, then the first page of active users.
func (s *Server) checkS2S(ctx context.Context, r connector.Record, secret string) error {
	c, err := zoom.New(zoom.Config{APIURL: s.cfg.APIURL, OAuthURL: s.cfg.OAuthURL, AccountID: r.AccountID,
		ClientID: r.ClientID, ClientSecret: secret, HTTPClient: s.cfg.HTTPClient, PageSize: 1, Logger: s.cfg.Log})
	if err != nil {
		return fmt.Errorf("check the credentials: %w", err)
	}
	err = c.Pages(ctx, zoom.UsersListing(zoom.UserStatusActive), func(zoom.RawPage) error { return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("zoom refused the Server-to-Server credentials: %w", err)
	}
	return nil
}

func (s *Server) authorize(ctx context.Context, ref pipeline.ConnectorRef, _ []byte) connector.Reply {
	e, err := s.cfg.Registry.Get(ctx, ref)
	if err != nil {
		return failed(err)
	}
	if e.Auth != connector.AuthOAuth {
		return refuse("connector %s is a Server-to-Server connector: it needs no authorization", ref)
	}
	u, err := s.cfg.Authorizer.AuthorizeURL(ctx, e.Record)
	if err != nil {
		return failed(err)
	}
	v := s.view(e.Record)
	v.AuthorizeURL = u
	return connector.Reply{Connector: &v}
}

func (s *Server) show(ctx context.Context, ref pipeline.ConnectorRef, _ []byte) connector.Reply {
	e, err := s.cfg.Registry.Get(ctx, ref)
	if err != nil {
		return failed(err)
	}
	v := s.view(e.Record)
	return connector.Reply{Connector: &v}
}

func (s *Server) remove(ctx context.Context, ref pipeline.ConnectorRef, body []byte) connector.Reply {
	var req connector.RemoveRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return refuse("request is not JSON")
		}
	}
	if _, err := s.cfg.Registry.Get(ctx, ref); err != nil {
		return failed(err)
	}
	// The record goes whole, secrets and tokens with it: the fetcher and
	// the webhook no longer serve the connector.
	if err := s.cfg.Registry.Purge(ctx, ref); err != nil {
		return failed(err)
	}
	r := connector.Reply{}
	if req.Purge {
		pr, err := connector.Client{NC: s.cfg.NC, Timeout: 5 * time.Minute}.Call(ctx, connector.AdminSubject(ref, connector.OpPurge), struct{}{})
		if err != nil {
			return failed(fmt.Errorf("connector %s removed, but its records could not be purged: %w", ref, err))
		}
		r.Count = pr.Count
	}
	return r
}

func (s *Server) list(ctx context.Context, body []byte) connector.Reply {
	var req connector.ListRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return refuse("request is not JSON")
		}
	}
	if req.Tenant != "" {
		if err := pipeline.CheckName("tenant", req.Tenant); err != nil {
			return failed(err)
		}
	}
	all, err := s.cfg.Registry.List(ctx)
	if err != nil {
		return failed(err)
	}
	out := []connector.View{}
	for _, e := range all {
		if req.Tenant == "" || e.Tenant == req.Tenant {
			out = append(out, s.view(e.Record))
		}
	}
	return connector.Reply{Connectors: out}
}

func (s *Server) rotateKey(ctx context.Context) connector.Reply {
	var n int64
	// From the bucket: a connector another replica added a moment ago
	// must not keep a secret sealed under the old key.
	all, err := s.cfg.Registry.List(ctx)
	if err != nil {
		return failed(err)
	}
	for _, e := range all {
		ref := e.Ref()
		// Counted per attempt: Modify tries again after a conflict.
		var resealed int64
		if _, err := s.cfg.Registry.Modify(ctx, ref, func(r *connector.Record) error {
			resealed = 0
			for _, f := range []struct {
				v     *connector.Sealed
				field string
			}{
				{&r.ClientSecret, connector.FieldClientSecret}, {&r.WebhookSecret, connector.FieldWebhookSecret},
				{&r.Tokens.Access, connector.FieldAccessToken}, {&r.Tokens.Refresh, connector.FieldRefreshToken},
			} {
				v, changed, err := s.cfg.Keys.Reseal(*f.v, connector.SecretAD(ref, f.field))
				if err != nil {
					return fmt.Errorf("%s %s: %w", ref, f.field, err)
				}
				if changed {
					*f.v = v
					resealed++
				}
			}
			return nil
		}); err != nil {
			return connector.Reply{Error: err.Error(), Count: n}
		}
		n += resealed
	}
	return connector.Reply{Count: n}
}

func (s *Server) transportKey() connector.Reply {
	k, err := s.cfg.Keys.TransportPublicKey()
	if err != nil {
		return failed(err)
	}
	return connector.Reply{Key: base64.StdEncoding.EncodeToString(k)}
}

func (s *Server) view(r connector.Record) connector.View {
	v := connector.View{Tenant: r.Tenant, Connector: r.Connector, Auth: r.Auth, State: r.State, Reason: r.Reason,
		Schedule: r.Schedule, Enrich: r.Enrich, ClientID: r.ClientID, AccountID: r.AccountID, WebhookSet: r.WebhookSecret != "",
		LastSync: r.LastSync, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Auth == connector.AuthOAuth {
		v.RedirectURL = s.cfg.Authorizer.RedirectURL(r.Ref())
	}
	return v
}

// Trigger publishes a full-sync trigger for the connector, with a request
// id that names why, and returns the id.
func Trigger(ctx context.Context, js jetstream.JetStream, ref pipeline.ConnectorRef, why string) (string, error) {
	id := why + "-" + strings.ToLower(rand.Text()[:16])
	if _, err := js.PublishMsg(ctx, pipeline.NewTrigger(ref, id, pipeline.TriggerID(ref, id))); err != nil {
		return "", fmt.Errorf("trigger a sync of %s: %w", ref, err)
	}
	return id, nil
}
