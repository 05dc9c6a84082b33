// Package oauth serves the redirect that finishes the authorization of an
// OAuth connector: Zoom sends the administrator's browser back with a code
// and the state the authorize URL carried.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/admin"
)

// Route is the redirect's route; {connector} is the service identifier.
const Route = "GET /application/oauthProcessCode/{connector}"

// Config wires the callback.
type Config struct {
	Registry   *connector.Registry
	Keys       *connector.Keyring
	Authorizer *connector.Authorizer
	JS         jetstream.JetStream
	// APIURL is Zoom's API, to learn the account the app was authorized
	// on.
	APIURL     string
	HTTPClient *http.Client
	// AdminURL, when set, is linked from every page: where to see the
	// connector.
	AdminURL string
	Log      zerolog.Logger
}

// Handler serves Route.
func Handler(cfg Config) http.Handler {
	return &callback{cfg: cfg}
}

type callback struct{ cfg Config }

// page is what the person in the browser reads.
type page struct {
	Title    string
	Message  string
	Next     string
	OK       bool
	AdminURL string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}.ok{color:#17622a}.err{color:#a11d1d}p.next{background:#f4f4f4;padding:.8em}</style></head>
<body><h1 class="{{if .OK}}ok{{else}}err{{end}}">{{.Title}}</h1><p>{{.Message}}</p>
{{if .Next}}<p class="next">{{.Next}}</p>{{end}}
{{if .AdminURL}}<p><a href="{{.AdminURL}}">Back to the connectors</a></p>{{end}}</body></html>
`))

func (c *callback) write(w http.ResponseWriter, status int, p page) {
	p.AdminURL = c.cfg.AdminURL
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, p)
}

func (c *callback) fail(w http.ResponseWriter, status int, title, msg, next string) {
	c.write(w, status, page{Title: title, Message: msg, Next: next})
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	id := r.PathValue("connector")
	if pipeline.CheckName("connector", id) != nil {
		c.fail(w, http.StatusNotFound, "Unknown connector", "This address names no connector.",
			"Check the redirect URL registered in the Zoom app.")
		return
	}
	state, code, zerr := q.Get("state"), q.Get("code"), q.Get("error")
	if state == "" {
		c.fail(w, http.StatusBadRequest, "Missing sign-in state", "Zoom sent no state with this redirect.",
			"Start the connection again from Clarity.")
		return
	}
	v, err := c.cfg.Authorizer.TakeState(ctx, state)
	switch {
	case errors.Is(err, connector.ErrStateInvalid), errors.Is(err, connector.ErrStateExpired), errors.Is(err, connector.ErrStateReplayed):
		c.fail(w, http.StatusBadRequest, "This sign-in link cannot be used", err.Error(), "")
		return
	case err != nil:
		c.cfg.Log.Warn().Err(err).Msg("oauth callback: read the authorization")
		c.fail(w, http.StatusServiceUnavailable, "Try again in a moment", "The connector could not read the authorization in progress.",
			"Reload this page; if it keeps failing, start the connection again from Clarity.")
		return
	}
	log := c.cfg.Log.With().Str("tenant", v.Ref.Tenant).Str("connector", v.Ref.ID).Logger()
	if v.Ref.ID != id {
		c.fail(w, http.StatusBadRequest, "This sign-in link is for another connector",
			"The redirect names a connector other than the one being authorized.", "Check the redirect URL registered in the Zoom app.")
		return
	}
	if zerr != "" {
		msg := "Zoom did not authorize the app."
		if zerr == "access_denied" {
			msg = "The authorization was declined in Zoom."
		}
		log.Info().Str("zoom_error", pipeline.Bound(zerr, 64)).Msg("oauth callback: not authorized")
		c.fail(w, http.StatusBadRequest, "Zoom was not connected", msg,
			"To connect Zoom, start again from Clarity and choose Authorize on Zoom's page.")
		return
	}
	if code == "" || len(code) > 2048 {
		c.fail(w, http.StatusBadRequest, "Missing authorization code", "Zoom sent no usable code with this redirect.",
			"Start the connection again from Clarity.")
		return
	}
	e, err := c.cfg.Registry.Get(ctx, v.Ref)
	if errors.Is(err, connector.ErrNotFound) || (err == nil && e.Auth != connector.AuthOAuth) {
		c.fail(w, http.StatusNotFound, "Unknown connector", "No OAuth connector "+v.Ref.String()+" is registered.",
			"Add the connector in Clarity, then connect it.")
		return
	}
	if err != nil {
		log.Warn().Err(err).Msg("oauth callback: read the connector")
		c.fail(w, http.StatusServiceUnavailable, "Try again", "The connector's settings could not be read.", "Start the connection again from Clarity.")
		return
	}
	secret, err := c.cfg.Keys.Open(e.ClientSecret, connector.SecretAD(v.Ref, connector.FieldClientSecret))
	if err != nil {
		log.Error().Err(err).Msg("oauth callback: open the client secret")
		c.fail(w, http.StatusInternalServerError, "The connector's secret cannot be read",
			"The client secret stored for this connector does not open with this deployment's key.", "Enter the Client Secret again in Clarity.")
		return
	}
	if e.ClientID != v.ClientID {
		c.fail(w, http.StatusConflict, "The connector changed", "The connector's Client ID changed since this sign-in started.",
			"Start the connection again from Clarity.")
		return
	}
	g, err := c.cfg.Authorizer.Exchange(ctx, v, secret, code)
	switch {
	case errors.Is(err, connector.ErrInvalidClient):
		c.fail(w, http.StatusBadRequest, "Zoom refused the app's credentials", "Zoom does not accept the Client ID and Client Secret entered for this connector.",
			"Copy the Client ID and Client Secret from the app's page in the Zoom Marketplace into Clarity, save, and connect again.")
		return
	case errors.Is(err, connector.ErrInvalidGrant):
		c.fail(w, http.StatusBadRequest, "Zoom refused the authorization code", "The code has expired or was used already.",
			"Start the connection again from Clarity.")
		return
	case errors.Is(err, connector.ErrTokenRefused):
		log.Warn().Err(err).Msg("oauth callback: zoom refused the code exchange")
		c.fail(w, http.StatusBadRequest, "Zoom refused the authorization", "Zoom refused to exchange the code ("+err.Error()+").",
			"Check that the redirect URL registered in the Zoom app is "+v.Redirect+", then start the connection again from Clarity.")
		return
	case err != nil:
		log.Warn().Err(err).Msg("oauth callback: exchange the code")
		c.fail(w, http.StatusBadGateway, "Zoom could not be reached", "The authorization code could not be exchanged for tokens.",
			"Start the connection again from Clarity in a few minutes.")
		return
	}
	// The code is spent: what follows must finish even if the browser
	// goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	account := c.account(ctx, g)
	tokens, err := c.cfg.Registry.Seal(c.cfg.Keys, v.Ref, g)
	if err != nil {
		c.fail(w, http.StatusInternalServerError, "The tokens could not be stored", "Sealing them failed.", "Start the connection again from Clarity.")
		return
	}
	if _, err := c.cfg.Registry.Modify(ctx, v.Ref, func(r *connector.Record) error {
		// The connector's app may have changed while Zoom answered:
		// tokens of another app must not be stored for it.
		if r.Auth != connector.AuthOAuth || r.ClientID != v.ClientID {
			return errChanged
		}
		r.Tokens, r.State, r.Reason = tokens, connector.StateActive, ""
		if account != "" {
			r.AccountID = account
		}
		return nil
	}); errors.Is(err, errChanged) {
		c.fail(w, http.StatusConflict, "The connector changed", "The connector's Client ID changed while Zoom answered.",
			"Start the connection again from Clarity.")
		return
	} else if err != nil {
		log.Warn().Err(err).Msg("oauth callback: store the tokens")
		c.fail(w, http.StatusServiceUnavailable, "The tokens could not be stored", "The connector's registry did not take them.",
			"Start the connection again from Clarity.")
		return
	}
	requestID, err := admin.Trigger(ctx, c.cfg.JS, v.Ref, "authorized")
	if err != nil {
		log.Warn().Err(err).Msg("oauth callback: trigger the first sync")
		c.write(w, http.StatusOK, page{OK: true, Title: "Zoom is connected",
			Message: "Connector " + v.Ref.String() + " is authorized, but its first sync could not be started.",
			Next:    "It will sync on its schedule, or start a sync from Clarity."})
		return
	}
	log.Info().Str("request_id", requestID).Str("account_id", account).Msg("oauth connector authorized; first full sync triggered")
	c.write(w, http.StatusOK, page{OK: true, Title: "Zoom is connected",
		Message: "Connector " + v.Ref.String() + " is authorized and its first full sync has started.",
		Next:    "You can close this page."})
}

// account learns the Zoom account the app was authorized on, from the
// authorizing user; "" when Zoom does not say.
func (c *callback) account(ctx context.Context, g connector.Grant) string {
	cl, err := zoom.New(zoom.Config{APIURL: c.cfg.APIURL, HTTPClient: c.cfg.HTTPClient, Logger: c.cfg.Log,
		TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: g.Access, TokenType: "Bearer", Expiry: g.Expiry})})
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := cl.GetUser(ctx, "me")
	if err != nil {
		c.cfg.Log.Info().Err(err).Msg("oauth callback: the account id is not known yet")
		return ""
	}
	var me struct {
		AccountID string `json:"account_id"`
	}
	if json.Unmarshal(b, &me) != nil || len(me.AccountID) > 256 {
		return ""
	}
	return me.AccountID
}

// errChanged reports a connector whose app changed during its authorization.
var errChanged = errors.New("the connector's app changed")
