package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/credcheck"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/admin"
)

// Bounds of the Connect form's fields.
const (
	maxName     = 63
	maxClientID = 256
	maxAccount  = 256
	maxSecret   = 1024
	maxSchedule = 32
)

// The Connect form's buttons (the action field).
const (
	connectValidate = "validate"
	connectSave     = "save"
)

// connectForm is the Connect Zoom page's data.
type connectForm struct {
	Tenant, Connector, Auth, AccountID, ClientID, Schedule string
	RedirectURL                                            string
	Scopes                                                 []credcheck.Scope
	SecretSet, WebhookSet                                  bool
	// Checks are the results of Validate; Verdict sums them up.
	Checks     []check
	Verdict    string
	VerdictBad bool
}

// check is one line of a validation.
type check struct {
	State, What, Detail string
	Bad                 bool
}

func (c *Console) form(d draft) connectForm {
	f := connectForm{Tenant: d.Tenant, Connector: d.Connector, Auth: d.Auth, AccountID: d.AccountID, ClientID: d.ClientID,
		Schedule: d.Schedule, Scopes: credcheck.Required(), SecretSet: d.ClientSecret != "", WebhookSet: d.WebhookSecret != ""}
	if f.Tenant == "" {
		f.Tenant = "default"
	}
	if f.Connector == "" {
		f.Connector = "zoom"
	}
	if f.Auth == "" {
		f.Auth = connector.AuthOAuth
	}
	if f.Schedule == "" {
		f.Schedule = admin.DefaultSchedule
	}
	if ref, err := pipeline.NewConnectorRef(f.Tenant, f.Connector); err == nil {
		f.RedirectURL = connector.RedirectURL(c.cfg.RedirectTemplate, ref)
	}
	return f
}

// connectPage shows the form; ?tenant=&connector= (the first step's GET
// form) names the connector whose redirect URL to show.
func (c *Console) connectPage(w http.ResponseWriter, r *http.Request, s *session) {
	var d draft
	c.sessions.with(s, func(s *session) { d = s.draft })
	q := r.URL.Query()
	var errs []string
	if t, id := q.Get("tenant"), q.Get("connector"); t != "" || id != "" {
		t, id = strings.TrimSpace(t), strings.TrimSpace(id)
		if _, err := pipeline.NewConnectorRef(t, id); err != nil {
			errs = append(errs, "The tenant and service identifier must each be 1 to 63 lower-case letters, digits, - or _, starting with a letter or digit.")
		} else if t != d.Tenant || id != d.Connector {
			d = draft{Tenant: t, Connector: id, Auth: d.Auth, Schedule: d.Schedule}
			c.sessions.with(s, func(s *session) { s.draft = d })
		}
	}
	c.render(w, http.StatusOK, "connect", c.withSession(s, page{Title: "Connect Zoom", Error: strings.Join(errs, " "), Data: c.form(d)}))
}

// readForm reads and bounds the posted fields into the session's draft; a
// secret typed replaces the kept one, sealed. It returns what is wrong.
func (c *Console) readForm(r *http.Request, s *session) (draft, []string) {
	f := r.PostForm
	get := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	var errs []string
	var prev draft
	c.sessions.with(s, func(s *session) { prev = s.draft })
	d := draft{Tenant: get("tenant"), Connector: get("connector"), Auth: get("auth"), AccountID: get("account_id"),
		ClientID: get("client_id"), Schedule: get("schedule")}
	ref, err := pipeline.NewConnectorRef(d.Tenant, d.Connector)
	if err != nil {
		errs = append(errs, "The tenant and service identifier must each be 1 to 63 lower-case letters, digits, - or _, starting with a letter or digit.")
		d.Tenant, d.Connector = bound(d.Tenant, maxName), bound(d.Connector, maxName)
	}
	if d.Auth != connector.AuthOAuth && d.Auth != connector.AuthS2S {
		errs = append(errs, "Choose the kind of Zoom app: OAuth or Server-to-Server OAuth.")
		d.Auth = ""
	}
	if len(d.ClientID) > maxClientID || strings.ContainsAny(d.ClientID, " \t\r\n") {
		errs = append(errs, "The Client ID is at most 256 characters, without spaces.")
		d.ClientID = ""
	}
	if len(d.AccountID) > maxAccount || strings.ContainsAny(d.AccountID, " \t\r\n") {
		errs = append(errs, "The Account ID is at most 256 characters, without spaces.")
		d.AccountID = ""
	}
	if d.Schedule == "" {
		d.Schedule = admin.DefaultSchedule
	}
	if len(d.Schedule) > maxSchedule {
		d.Schedule = bound(d.Schedule, maxSchedule)
	}
	if _, err := connector.ParseSchedule(d.Schedule); err != nil {
		errs = append(errs, "The schedule is manual or a duration of at least 1m, such as 24h or 30m.")
	}
	// Kept secrets belong to the connector they were typed for.
	if prev.Tenant == d.Tenant && prev.Connector == d.Connector {
		d.ClientSecret, d.WebhookSecret = prev.ClientSecret, prev.WebhookSecret
	}
	for _, sf := range []struct {
		field, value string
		dst          *connector.Sealed
	}{
		{connector.FieldClientSecret, f.Get("client_secret"), &d.ClientSecret},
		{connector.FieldWebhookSecret, f.Get("webhook_secret"), &d.WebhookSecret},
	} {
		v := strings.TrimSpace(sf.value)
		switch {
		case v == "":
		case len(v) > maxSecret:
			errs = append(errs, "A secret is at most 1024 characters.")
		case err == nil:
			sealed, serr := c.cfg.Keys.Seal(v, draftAD(s, ref, sf.field))
			if serr != nil {
				errs = append(errs, "The secret could not be kept: "+bound(serr.Error(), 200))
				continue
			}
			*sf.dst = sealed
		}
	}
	c.sessions.with(s, func(s *session) { s.draft = d })
	return d, errs
}

// draftAD binds a kept secret to the session, connector and field.
func draftAD(s *session, ref pipeline.ConnectorRef, field string) string {
	return "console-draft/" + s.id + "/" + ref.Key() + "/" + field
}

func (c *Console) openDraft(s *session, d draft, field string, v connector.Sealed) (string, error) {
	if v == "" {
		return "", nil
	}
	ref := pipeline.ConnectorRef{Tenant: d.Tenant, ID: d.Connector}
	return c.cfg.Keys.Open(v, draftAD(s, ref, field))
}

func (c *Console) connectPost(w http.ResponseWriter, r *http.Request, s *session) {
	d, errs := c.readForm(r, s)
	f := c.form(d)
	action := r.PostForm.Get("action")
	if len(errs) > 0 {
		c.render(w, http.StatusUnprocessableEntity, "connect", c.withSession(s, page{Title: "Connect Zoom", Error: strings.Join(errs, " "), Data: f}))
		return
	}
	switch action {
	case connectValidate:
		c.validate(r.Context(), s, d, &f)
		c.render(w, http.StatusOK, "connect", c.withSession(s, page{Title: "Connect Zoom", Data: f}))
	case connectSave:
		c.save(w, r, s, d, f)
	default:
		c.render(w, http.StatusBadRequest, "connect", c.withSession(s, page{Title: "Connect Zoom", Error: "Choose Validate or Save.", Data: f}))
	}
}

// validate checks the form's credentials as zoomctl validate does: for a
// Server-to-Server app a token, its scopes and one call; an OAuth app's
// are checked by Zoom when it is authorized.
func (c *Console) validate(ctx context.Context, s *session, d draft, f *connectForm) {
	secret, err := c.openDraft(s, d, connector.FieldClientSecret, d.ClientSecret)
	if err != nil {
		f.Verdict, f.VerdictBad = "The kept Client Secret could not be opened: type it again.", true
		return
	}
	var missing []string
	for _, m := range []struct{ what, v string }{{"Client ID", d.ClientID}, {"Client Secret", secret}} {
		if m.v == "" {
			missing = append(missing, m.what)
		}
	}
	if d.Auth == connector.AuthS2S && d.AccountID == "" {
		missing = append(missing, "Account ID")
	}
	if len(missing) > 0 {
		f.Verdict, f.VerdictBad = "Enter the "+strings.Join(missing, ", ")+" first.", true
		return
	}
	if d.Auth == connector.AuthOAuth {
		f.Checks = append(f.Checks, check{State: "ok", What: "fields", Detail: "Client ID and Client Secret entered"})
		f.Verdict = "Zoom checks an OAuth app's Client ID, Secret and scopes when it is authorized: Save, then choose Authorize on Zoom's page. The connector's page then lists the scopes Zoom granted."
		return
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	creds := credcheck.Credentials{AccountID: d.AccountID, ClientID: d.ClientID, ClientSecret: secret,
		OAuthURL: strings.TrimRight(c.cfg.OAuthURL, "/"), APIURL: strings.TrimRight(c.cfg.APIURL, "/"), HTTPClient: c.cfg.HTTPClient}
	tok, err := credcheck.FetchToken(ctx, creds)
	if err != nil {
		var te *zoom.TokenError
		detail := "Zoom's token endpoint did not answer"
		if errors.As(err, &te) && !te.Retryable() {
			detail = "Zoom refused them: check the Account ID, Client ID and Client Secret"
		}
		f.Checks = append(f.Checks, check{State: "failed", What: "credentials", Detail: detail, Bad: true})
		f.Verdict, f.VerdictBad = "Validation failed: "+bound(strings.ReplaceAll(err.Error(), secret, "[redacted]"), 300), true
		return
	}
	scopes := strings.Fields(tok.Scope)
	f.Checks = append(f.Checks, check{State: "ok", What: "credentials", Detail: "an access token was issued"})
	var lacking []string
	for _, res := range credcheck.CheckScopes(scopes) {
		switch {
		case len(scopes) == 0:
			f.Checks = append(f.Checks, check{State: "unknown", What: res.Scope.Scope, Detail: res.Purpose + "; the token lists no scopes", Bad: true})
		case res.Lack == nil:
			f.Checks = append(f.Checks, check{State: "ok", What: res.Scope.Scope, Detail: res.Purpose})
		default:
			f.Checks = append(f.Checks, check{State: "missing", What: res.Scope.Scope, Detail: res.Purpose + "; add " + strings.Join(res.Lack, ", "), Bad: true})
			lacking = append(lacking, res.Lack...)
		}
	}
	apiErr := credcheck.Probe(ctx, creds, tok)
	var api *zoom.APIError
	switch {
	case apiErr == nil:
		f.Checks = append(f.Checks, check{State: "ok", What: "GET /users", Detail: "the API answers with this token"})
	case errors.As(apiErr, &api) && !zoom.IsRetryable(apiErr):
		f.Checks = append(f.Checks, check{State: "refused", What: "GET /users", Detail: bound(api.Error(), 300), Bad: true})
	default:
		f.Checks = append(f.Checks, check{State: "failed", What: "GET /users", Detail: "the API did not answer (unreachable, unavailable or rate limited)", Bad: true})
	}
	switch {
	case len(scopes) == 0:
		f.Verdict, f.VerdictBad = "Zoom did not list the token's scopes: check them on the app's Scopes page.", true
	case len(lacking) > 0:
		f.Verdict, f.VerdictBad = "Missing scopes: "+strings.Join(lacking, ", ")+". Add them on the app's Scopes page in the Zoom App Marketplace, then validate again.", true
	case apiErr != nil:
		f.Verdict, f.VerdictBad = "Zoom's API refused or did not answer the check call.", true
	default:
		f.Verdict = "All checks passed: Save to connect."
	}
}

// save registers the connector (or updates it) through the admin API:
// an OAuth app's browser goes on to Zoom's authorize URL; a
// Server-to-Server connector's first sync has started.
func (c *Console) save(w http.ResponseWriter, r *http.Request, s *session, d draft, f connectForm) {
	fail := func(status int, msg string) {
		c.render(w, status, "connect", c.withSession(s, page{Title: "Connect Zoom", Error: msg, Data: f}))
	}
	ref := pipeline.ConnectorRef{Tenant: d.Tenant, ID: d.Connector}
	secret, err1 := c.openDraft(s, d, connector.FieldClientSecret, d.ClientSecret)
	webhook, err2 := c.openDraft(s, d, connector.FieldWebhookSecret, d.WebhookSecret)
	if err1 != nil || err2 != nil {
		fail(http.StatusUnprocessableEntity, "A kept secret could not be opened: type the secrets again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	_, exists, err := c.cfg.Registry.Find(ctx, ref, nil)
	if err != nil {
		fail(http.StatusServiceUnavailable, "The registry could not be read: "+bound(err.Error(), 200))
		return
	}
	if !exists && secret == "" {
		fail(http.StatusUnprocessableEntity, "Enter the Client Secret.")
		return
	}
	client := connector.Client{NC: c.cfg.NC, Timeout: adminTimeout}
	req := connector.SettingsRequest{Auth: d.Auth, ClientID: d.ClientID, AccountID: d.AccountID, Schedule: d.Schedule}
	if req.ClientSecret, err = client.SealSecret(ctx, ref, connector.FieldClientSecret, secret); err == nil {
		req.WebhookSecret, err = client.SealSecret(ctx, ref, connector.FieldWebhookSecret, webhook)
	}
	if err != nil {
		fail(http.StatusServiceUnavailable, "The secrets could not be sealed for the admin API: "+adminError(err))
		return
	}
	op := connector.OpAdd
	if exists {
		op = connector.OpUpdate
	}
	rep, err := client.Call(ctx, connector.AdminSubject(ref, op), req)
	if err != nil {
		fail(http.StatusUnprocessableEntity, "Zoom was not connected: "+adminError(err))
		return
	}
	c.sessions.with(s, func(s *session) { s.draft = draft{} })
	if rep.Connector != nil && rep.Connector.AuthorizeURL != "" {
		http.Redirect(w, r, rep.Connector.AuthorizeURL, http.StatusSeeOther)
		return
	}
	msg := "Connector " + ref.String() + " saved."
	if rep.RequestID != "" {
		msg = "Connector " + ref.String() + " saved; its first full sync has started."
	}
	c.sessions.setFlash(s, msg, false)
	http.Redirect(w, r, "/connectors/"+url.PathEscape(ref.Tenant)+"/"+url.PathEscape(ref.ID), http.StatusSeeOther)
}
