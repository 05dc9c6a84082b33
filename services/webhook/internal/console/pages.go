package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/credcheck"
	"github.com/claritysecurity/zoom-connector/services/webhook/internal/admin"
)

// Actions on a connector, the last part of POST /connectors/{t}/{c}/{action}.
const (
	ActionSync      = "sync"
	ActionAuthorize = "authorize"
	ActionDisable   = "disable"
	ActionEnable    = "enable"
	ActionRemove    = "remove"
)

// adminTimeout bounds a call of the admin API (an add checks credentials
// at Zoom).
const adminTimeout = 45 * time.Second

var funcs = template.FuncMap{
	"kindLabel": kindLabel,
	"kinds":     func() []string { return clarity.Kinds },
	"count":     func(m map[string]int64, k string) int64 { return m[k] },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"dur": roundDuration,
	"path": func(ref pipeline.ConnectorRef) string {
		return "/connectors/" + url.PathEscape(ref.Tenant) + "/" + url.PathEscape(ref.ID)
	},
}

// row is one connector in the list, and the head of its page.
type row struct {
	Ref      pipeline.ConnectorRef
	View     connector.View
	Activity Snapshot
	// Counts are the records it holds now, as the writer counted them.
	Counts      Counts
	Last        *Run
	DeadLetters int
	// LastResult and LastAt come from the registry when the events of the
	// last run are no longer held.
	LastResult, LastAt, LastError string
}

// row reads a connector's row; deadline bounds the wait for its record
// counts.
func (c *Console) row(e connector.Entry, dead map[pipeline.ConnectorRef]int, deadline time.Time) row {
	ref := e.Ref()
	r := row{Ref: ref, View: view(e.Record, c.cfg.RedirectTemplate), Activity: c.cfg.Activity.Of(ref), DeadLetters: dead[ref]}
	r.Counts = c.counts.of(deadline, ref, endKey(r.Activity))
	if last, ok := r.Activity.Last(); ok {
		r.Last = &last
	}
	if ls := e.LastSync; ls != nil {
		r.LastResult, r.LastAt, r.LastError = ls.Result, ls.FinishedAt, ls.Error
	}
	return r
}

// view is what the pages show of a record: never a secret, only whether
// one is set.
func view(r connector.Record, redirectTemplate string) connector.View {
	v := connector.View{Tenant: r.Tenant, Connector: r.Connector, Auth: r.Auth, State: r.State, Reason: r.Reason,
		Schedule: r.Schedule, Enrich: r.Enrich, ClientID: r.ClientID, AccountID: r.AccountID, WebhookSet: r.WebhookSecret != "",
		LastSync: r.LastSync, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	if r.Auth == connector.AuthOAuth {
		v.RedirectURL = connector.RedirectURL(redirectTemplate, r.Ref())
	}
	return v
}

func (c *Console) connectorsPage(w http.ResponseWriter, r *http.Request, s *session) {
	dead, err := c.dead.count(r.Context())
	deadErr := ""
	if err != nil {
		c.cfg.Log.Warn().Err(err).Msg("console: count the dead letters")
		deadErr = "The dead letters could not be counted: " + bound(err.Error(), 200)
	}
	var rows []row
	deadline := c.cfg.Now().Add(countsWait) // one wait for every row's counts
	for _, e := range c.cfg.Registry.All() {
		rows = append(rows, c.row(e, dead, deadline))
	}
	if err := c.cfg.Activity.Err(); err != nil {
		deadErr = strings.TrimSpace(deadErr + " The change events cannot be read, so syncs are not shown: " + bound(err.Error(), 200))
	}
	c.render(w, http.StatusOK, "connectors", c.withSession(s, page{Title: "Connectors", Error: deadErr, Data: rows}))
}

// refOf reads the connector a request names; false after answering 404.
func (c *Console) refOf(w http.ResponseWriter, r *http.Request, s *session) (connector.Entry, bool) {
	ref, err := pipeline.NewConnectorRef(r.PathValue("tenant"), r.PathValue("connector"))
	if err == nil {
		var ok bool
		var e connector.Entry
		e, ok, err = c.cfg.Registry.Find(r.Context(), ref, nil)
		if ok {
			return e, true
		}
	}
	msg := "No such connector is registered."
	if err != nil && !errors.Is(err, pipeline.ErrBadName) {
		msg = "The connector could not be read: " + bound(err.Error(), 200)
	}
	c.render(w, http.StatusNotFound, "error", c.withSession(s, page{Title: "Unknown connector", Error: msg}))
	return connector.Entry{}, false
}

// detail is a connector's page.
type detail struct {
	row
	Scopes        []credcheck.Result
	ScopesGranted bool
	RunsChart     template.HTML
	DurationChart template.HTML
	Now           time.Time
	// Reading is set while the console still reads the events it missed;
	// EventsErr says why it cannot read them.
	Reading   bool
	EventsErr string
}

func (c *Console) detail(e connector.Entry, dead map[pipeline.ConnectorRef]int) detail {
	d := detail{row: c.row(e, dead, c.cfg.Now().Add(countsWait)), Now: c.cfg.Now(), Reading: c.cfg.Activity.Reading()}
	if err := c.cfg.Activity.Err(); err != nil {
		d.EventsErr = "The change events cannot be read, so syncs are not shown: " + bound(err.Error(), 200)
	}
	if granted := strings.Fields(e.Tokens.Scope); len(granted) > 0 {
		d.ScopesGranted = true
		d.Scopes = credcheck.CheckScopes(granted)
	}
	d.RunsChart = runsChart(d.Activity.Runs)
	d.DurationChart = durationChart(d.Activity.Runs)
	return d
}

func (c *Console) connectorPage(w http.ResponseWriter, r *http.Request, s *session) {
	e, ok := c.refOf(w, r, s)
	if !ok {
		return
	}
	dead, _ := c.dead.count(r.Context())
	d := c.detail(e, dead)
	c.render(w, http.StatusOK, "connector", c.withSession(s, page{Title: e.Ref().String(), Data: d}))
}

// livePart is the running sync's part of a connector's page, which its
// script fetches every few seconds.
func (c *Console) livePart(w http.ResponseWriter, r *http.Request, s *session) {
	e, ok := c.refOf(w, r, s)
	if !ok {
		return
	}
	dead, _ := c.dead.count(r.Context())
	c.render(w, http.StatusOK, "live", page{Data: c.detail(e, dead)})
}

func (c *Console) connectorAction(w http.ResponseWriter, r *http.Request, s *session) {
	e, ok := c.refOf(w, r, s)
	if !ok {
		return
	}
	ref := e.Ref()
	back := "/connectors/" + url.PathEscape(ref.Tenant) + "/" + url.PathEscape(ref.ID)
	ctx, cancel := context.WithTimeout(r.Context(), adminTimeout)
	defer cancel()
	client := connector.Client{NC: c.cfg.NC, Timeout: adminTimeout}
	switch r.PathValue("action") {
	case ActionSync:
		id, err := admin.Trigger(ctx, c.cfg.JS, ref, "console")
		if err != nil {
			c.sessions.setFlash(s, "The sync could not be started: "+bound(err.Error(), 300), true)
		} else {
			c.sessions.setFlash(s, "Full sync requested (request id "+id+").", false)
		}
		if r.PostForm.Get("from") == "list" {
			back = "/"
		}
	case ActionAuthorize:
		rep, err := client.Call(ctx, connector.AdminSubject(ref, connector.OpAuthorize), struct{}{})
		if err != nil || rep.Connector == nil || rep.Connector.AuthorizeURL == "" {
			c.sessions.setFlash(s, "No authorization could be started: "+adminError(err), true)
			break
		}
		http.Redirect(w, r, rep.Connector.AuthorizeURL, http.StatusSeeOther)
		return
	case ActionDisable, ActionEnable:
		state, reason, msg := connector.StateDisabled, "disabled in the admin console", "Connector disabled: it does not sync until enabled."
		enable := r.PathValue("action") == ActionEnable
		if enable {
			state, reason, msg = connector.StateActive, "", "Connector enabled."
		}
		// Enabling checks the record it changes: one whose credentials
		// were wiped meanwhile is refused, not set active.
		_, err := c.cfg.Registry.Modify(ctx, ref, func(rec *connector.Record) error {
			if enable {
				if err := canEnable(c.cfg.Keys, *rec); err != nil {
					return err
				}
			}
			rec.State, rec.Reason = state, reason
			return nil
		})
		if err != nil {
			msg = enableMessage(err)
		}
		c.sessions.setFlash(s, msg, err != nil)
	case ActionRemove:
		if r.PostForm.Get("confirm") != "yes" {
			c.sessions.setFlash(s, "Tick the box to confirm the removal.", true)
			break
		}
		if _, err := client.Call(ctx, connector.AdminSubject(ref, connector.OpRemove), connector.RemoveRequest{}); err != nil {
			c.sessions.setFlash(s, "The connector could not be removed: "+adminError(err), true)
			break
		}
		c.sessions.setFlash(s, fmt.Sprintf("Connector %s removed: it no longer syncs and its secrets are wiped.", ref), false)
		back = "/"
	default:
		c.render(w, http.StatusNotFound, "error", c.withSession(s, page{Title: "Unknown action", Error: "There is no such action."}))
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// adminError is an admin API error as a page says it.
func adminError(err error) string {
	if err == nil {
		return "the admin API gave no answer."
	}
	return bound(strings.TrimPrefix(err.Error(), connector.ErrAdmin.Error()+": "), 400)
}
