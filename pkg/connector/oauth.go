package connector

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/oauth2"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The six scopes Clarity's Zoom app asks for.
var Scopes = []string{
	"user:read:admin", "user:write:admin",
	"group:read:admin", "group:write:admin",
	"role:read:admin", "role:write:admin",
}

// DefaultRedirectTemplate is OAUTH_REDIRECT_URL's default: Clarity's
// redirect URL for the tenant and the connector (its service identifier).
const DefaultRedirectTemplate = "https://{tenant}.claritysecurity.io/application/oauthProcessCode/{connector}"

// RedirectURL fills a redirect URL template with the connector's tenant
// and id.
func RedirectURL(template string, ref pipeline.ConnectorRef) string {
	return strings.NewReplacer("{tenant}", ref.Tenant, "{connector}", ref.ID).Replace(template)
}

// StateTTL is how long an authorize URL's state is accepted.
const StateTTL = 15 * time.Minute

// StatesBucket holds the authorizations under way, one key per state
// nonce, each removed when its callback takes it (a state is accepted once)
// or when it expires.
const StatesBucket = "zoom_oauth_states"

// The errors of a callback's state, each with what to do.
var (
	ErrStateInvalid  = errors.New("the sign-in link is not valid: start the connection again from Clarity")
	ErrStateExpired  = errors.New("the sign-in link has expired (it is valid for 15 minutes): start the connection again from Clarity")
	ErrStateReplayed = errors.New("the sign-in link was used already: start the connection again from Clarity")
)

// pending is an authorization under way, kept in StatesBucket under its
// nonce: what the callback needs to finish it.
type pending struct {
	Tenant    string    `json:"tenant"`
	Connector string    `json:"connector"`
	ClientID  string    `json:"client_id"`
	Redirect  string    `json:"redirect_uri"`
	Verifier  Sealed    `json:"verifier"`
	Expires   time.Time `json:"expires"`
}

// stateClaims is what a state says, signed.
type stateClaims struct {
	Tenant    string `json:"t"`
	Connector string `json:"c"`
	Nonce     string `json:"n"`
	Expires   int64  `json:"e"`
}

// Authorizer starts and finishes the authorization of OAuth connectors:
// the authorize URL with PKCE (S256) and a signed, single-use, 15-minute
// state; the code exchange at Zoom's token endpoint.
type Authorizer struct {
	keys     *Keyring
	states   jetstream.KeyValue
	oauthURL string
	redirect string
	client   *http.Client
	now      func() time.Time
}

// AuthorizerConfig configures an Authorizer.
type AuthorizerConfig struct {
	// OAuthURL is Zoom's OAuth base URL (ZOOM_OAUTH_URL).
	OAuthURL string
	// RedirectTemplate is OAUTH_REDIRECT_URL.
	RedirectTemplate string
	// Replicas of the states bucket.
	Replicas int
	// OwnStates applies the states bucket's configuration to an existing
	// bucket: for the bucket's owner, the webhook service, whose consent
	// flow makes and takes the states. Others open the bucket as it is
	// (creating it when it is missing).
	OwnStates bool
	// HTTPClient makes the token requests; nil is a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// NewAuthorizer opens the states bucket and returns an Authorizer.
func NewAuthorizer(ctx context.Context, js jetstream.JetStream, keys *Keyring, cfg AuthorizerConfig) (*Authorizer, error) {
	states := jetstream.KeyValueConfig{
		Bucket:      StatesBucket,
		Description: "OAuth authorizations under way (state nonce, sealed PKCE verifier)",
		History:     1,
		TTL:         StateTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, cfg.Replicas),
	}
	var kv jetstream.KeyValue
	var err error
	if cfg.OwnStates {
		kv, err = js.CreateOrUpdateKeyValue(ctx, states)
	} else {
		kv, err = natsx.OpenKeyValue(ctx, js, states)
	}
	if err != nil {
		return nil, fmt.Errorf("open oauth states bucket: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	tmpl := cfg.RedirectTemplate
	if tmpl == "" {
		tmpl = DefaultRedirectTemplate
	}
	return &Authorizer{keys: keys, states: kv, oauthURL: strings.TrimRight(cfg.OAuthURL, "/"), redirect: tmpl,
		client: hc, now: time.Now}, nil
}

// RedirectURL is the connector's redirect URL.
func (a *Authorizer) RedirectURL(ref pipeline.ConnectorRef) string {
	return RedirectURL(a.redirect, ref)
}

func (a *Authorizer) config(clientID, secret, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		RedirectURL:  redirect,
		Endpoint: oauth2.Endpoint{
			AuthURL:   a.oauthURL + "/oauth/authorize",
			TokenURL:  a.oauthURL + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// AuthorizeURL starts an authorization of the OAuth connector rec: it
// keeps the PKCE verifier, sealed, under a fresh nonce for StateTTL, and
// returns the URL to open in a browser.
func (a *Authorizer) AuthorizeURL(ctx context.Context, rec Record) (string, error) {
	ref := rec.Ref()
	nonce := rand.Text()
	verifier := oauth2.GenerateVerifier()
	sealed, err := a.keys.Seal(verifier, nonceAD(nonce))
	if err != nil {
		return "", err
	}
	exp := a.now().Add(StateTTL)
	p := pending{Tenant: ref.Tenant, Connector: ref.ID, ClientID: rec.ClientID, Redirect: a.RedirectURL(ref),
		Verifier: sealed, Expires: exp.UTC()}
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	if _, err := a.states.Create(ctx, nonce, b); err != nil {
		return "", fmt.Errorf("keep the authorization of %s: %w", ref, err)
	}
	state, err := a.sign(stateClaims{Tenant: ref.Tenant, Connector: ref.ID, Nonce: nonce, Expires: exp.Unix()})
	if err != nil {
		return "", err
	}
	return a.config(rec.ClientID, "", p.Redirect).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), nil
}

func nonceAD(nonce string) string { return "oauth-state/" + nonce + "/verifier" }

func (a *Authorizer) stateKey() ([]byte, error) { return a.keys.derive("oauth state hmac", 32) }

func (a *Authorizer) sign(c stateClaims) (string, error) {
	key, err := a.stateKey()
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

// Verified is an authorization whose state checked out and was taken.
type Verified struct {
	Ref      pipeline.ConnectorRef
	ClientID string
	Redirect string
	verifier string
}

// TakeState checks a callback's state (signature, expiry) and takes its
// authorization, so that it is accepted once. The error is one of the
// ErrState* errors, or one of NATS.
func (a *Authorizer) TakeState(ctx context.Context, state string) (Verified, error) {
	if len(state) > 1024 {
		return Verified{}, ErrStateInvalid
	}
	p, sig, ok := strings.Cut(state, ".")
	if !ok {
		return Verified{}, ErrStateInvalid
	}
	// Any key of the ring: a state signed by a replica before a new key
	// was put first stays good for its 15 minutes.
	keys, err := a.keys.deriveAll("oauth state hmac", 32)
	if err != nil {
		return Verified{}, err
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	signed := false
	for _, key := range keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(p))
		signed = signed || (err == nil && hmac.Equal(got, m.Sum(nil)))
	}
	if !signed {
		return Verified{}, ErrStateInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	var c stateClaims
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return Verified{}, ErrStateInvalid
	}
	ref, err := pipeline.NewConnectorRef(c.Tenant, c.Connector)
	if err != nil {
		return Verified{}, ErrStateInvalid
	}
	if a.now().Unix() > c.Expires {
		return Verified{}, ErrStateExpired
	}
	e, err := a.states.Get(ctx, c.Nonce)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return Verified{}, ErrStateReplayed
	}
	if err != nil {
		return Verified{}, fmt.Errorf("read the authorization: %w", err)
	}
	// Deleting at the revision read makes the taking single: of two
	// callbacks with one state, one deletes, the other finds it changed.
	if err := a.states.Delete(ctx, c.Nonce, jetstream.LastRevision(e.Revision())); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return Verified{}, ErrStateReplayed
		}
		return Verified{}, fmt.Errorf("take the authorization: %w", err)
	}
	var pend pending
	if err := json.Unmarshal(e.Value(), &pend); err != nil || pend.Tenant != ref.Tenant || pend.Connector != ref.ID {
		return Verified{}, ErrStateInvalid
	}
	if a.now().After(pend.Expires) {
		return Verified{}, ErrStateExpired
	}
	v, err := a.keys.Open(pend.Verifier, nonceAD(c.Nonce))
	if err != nil {
		return Verified{}, ErrStateInvalid
	}
	return Verified{Ref: ref, ClientID: pend.ClientID, Redirect: pend.Redirect, verifier: v}, nil
}

// Grant is what Zoom gave for an authorization or a refresh.
type Grant struct {
	Access, Refresh string
	Expiry          time.Time
	Scope           string
}

// ErrInvalidGrant reports a code or refresh token Zoom refuses for good:
// the connector must be authorized again.
var ErrInvalidGrant = errors.New("zoom refused the authorization (invalid_grant): authorize the connector again")

// ErrInvalidClient reports client credentials Zoom refuses.
var ErrInvalidClient = errors.New("zoom refused the client id or secret (invalid_client): check them in the connector's settings")

// Exchange trades an authorization code for tokens at Zoom's token endpoint,
// with the verifier and redirect URI of the authorization v.
func (a *Authorizer) Exchange(ctx context.Context, v Verified, clientSecret, code string) (Grant, error) {
	cfg := a.config(v.ClientID, clientSecret, v.Redirect)
	tok, err := cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, a.client), code, oauth2.VerifierOption(v.verifier))
	if err != nil {
		return Grant{}, tokenError("exchange the authorization code", err)
	}
	return grantOf(tok), nil
}

// RefreshGrant presents a refresh token to Zoom's token endpoint and
// returns the new tokens; Zoom retires the refresh token presented.
func (a *Authorizer) RefreshGrant(ctx context.Context, clientID, clientSecret, refresh string) (Grant, error) {
	cfg := a.config(clientID, clientSecret, "")
	src := cfg.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, a.client), &oauth2.Token{RefreshToken: refresh})
	tok, err := src.Token()
	if err != nil {
		return Grant{}, tokenError("refresh the access token", err)
	}
	return grantOf(tok), nil
}

func grantOf(tok *oauth2.Token) Grant {
	g := Grant{Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: tok.Expiry}
	if s, ok := tok.Extra("scope").(string); ok {
		g.Scope = s
	}
	return g
}

// tokenError turns the token endpoint's refusal into an error that names
// Zoom's error code and never quotes its body.
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", what, redactTokenURL(err))
	}
	switch re.ErrorCode {
	case "invalid_grant":
		return fmt.Errorf("%s: %w", what, ErrInvalidGrant)
	case "invalid_client":
		return fmt.Errorf("%s: %w", what, ErrInvalidClient)
	}
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	if status >= 400 && status < 500 {
		return fmt.Errorf("%s: %w (%d %s)", what, ErrTokenRefused, status, pipeline.Bound(re.ErrorCode, 64))
	}
	return fmt.Errorf("%s: zoom answered %d %s", what, status, pipeline.Bound(re.ErrorCode, 64))
}

// ErrTokenRefused reports a request Zoom's token endpoint refused for a
// reason other than the grant or the client (invalid_request, say: a
// redirect URI that does not match the app's), which no retry changes.
var ErrTokenRefused = errors.New("zoom refused the token request")

// redactTokenURL keeps a transport error's text short and free of the
// request's form (which holds the code or refresh token): only its kind.
func redactTokenURL(err error) error {
	var ue interface{ Timeout() bool }
	if errors.As(err, &ue) && ue.Timeout() {
		return errors.New("zoom's token endpoint did not answer in time")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errors.New("zoom's token endpoint could not be reached")
}
