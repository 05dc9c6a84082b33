package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Enable sets active only a connector that has what a sync needs: an s2s
// connector whose client secret was wiped, or sealed for another
// connector, stays disabled and the page says why; an OAuth connector is
// enabled only by authorizing it again.
func TestEnableNeedsCredentials(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Run(t)
	nc, js, err := natsx.Connect(ctx, srv.ClientURL(), "console-test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	reg, err := connector.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	keys := testKeys(t)
	ref := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	sealed, err := keys.Seal("the-client-secret", connector.SecretAD(ref, connector.FieldClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := keys.Seal("the-client-secret", connector.SecretAD(pipeline.ConnectorRef{Tenant: "acme", ID: "other"}, connector.FieldClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, connector.Record{Tenant: ref.Tenant, Connector: ref.ID, Auth: connector.AuthS2S,
		ClientID: "cid", AccountID: "acct", Schedule: "24h", State: connector.StateDisabled}); err != nil {
		t.Fatal(err)
	}
	oauth := pipeline.ConnectorRef{Tenant: "acme", ID: "oauth"}
	if _, err := reg.Create(ctx, connector.Record{Tenant: oauth.Tenant, Connector: oauth.ID, Auth: connector.AuthOAuth,
		ClientID: "cid", Schedule: "24h", State: connector.StateNeedsReauthorization}); err != nil {
		t.Fatal(err)
	}
	b, _ := newConsole(t, Config{Registry: reg, NC: nc, JS: js, Keys: keys})
	csrf := b.signIn()
	state := func(r pipeline.ConnectorRef) string {
		e, err := reg.Get(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return e.State
	}
	setSecret := func(s connector.Sealed) {
		if _, err := reg.Modify(ctx, ref, func(rec *connector.Record) error { rec.ClientSecret = s; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	enable := func(r pipeline.ConnectorRef) string {
		path := "/connectors/" + r.Tenant + "/" + r.ID
		if resp, _ := b.post(path+"/enable", url.Values{CSRFField: {csrf}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("enable %s: %d", r, resp.StatusCode)
		}
		_, page := b.get(path)
		return page
	}

	if page := enable(ref); state(ref) != connector.StateDisabled || !strings.Contains(page, "no client secret") {
		t.Errorf("enable without a client secret: state %s", state(ref))
	}
	setSecret(foreign)
	if page := enable(ref); state(ref) != connector.StateDisabled || !strings.Contains(page, "cannot be opened") {
		t.Errorf("enable with a client secret sealed for another connector: state %s", state(ref))
	}
	if page := enable(oauth); state(oauth) != connector.StateNeedsReauthorization || !strings.Contains(page, "authorizing it again") {
		t.Errorf("enable of an OAuth connector: state %s", state(oauth))
	}
	setSecret(sealed)
	if page := enable(ref); state(ref) != connector.StateActive || !strings.Contains(page, "Connector enabled.") {
		t.Errorf("enable with its credentials: state %s", state(ref))
	}
}
