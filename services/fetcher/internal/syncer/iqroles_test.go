package syncer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// TestFetchIQRoles: GET /roles lists one type of roles a call, common by
// default. A full sync lists the Zoom IQ roles too, as a roles listing
// keyed "iq", in the run's manifest.
func TestFetchIQRoles(t *testing.T) {
	ctx := context.Background()
	js := natstest.JetStream(t, pipeline.Streams(1)...)
	org := zoomtest.Generate(3, zoomtest.Size{Users: 20, Groups: 1, Roles: 2})
	org.Roles = append(org.Roles, zoomtest.Role{ID: "iqR1", Name: "IQ Manager", Description: "Revenue Accelerator", Type: "iq"})
	sim := zoomtest.NewServer(t, org, zoomtest.Options{})
	z, err := zoom.New(zoom.Config{
		APIURL: sim.APIBase(), OAuthURL: sim.URL(),
		AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
		DisablePacing: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()})
	res, err := s.Fetch(ctx, pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}, &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"}, 1, z)
	if err != nil {
		t.Fatal(err)
	}
	manifest := map[string]bool{}
	for _, l := range res.Listings {
		if l.Listing == pb.Listing_LISTING_ROLES {
			manifest[l.ListingKey] = true
		}
	}
	if !manifest[""] || !manifest[zoom.RoleTypeIQ] || len(manifest) != 2 {
		t.Errorf("manifest roles listings %v, want the common (key \"\") and the iq ones", manifest)
	}
	bodies := map[string]string{}
	for _, p := range rawPages(t, js, 1) {
		if p.Ref.Listing == pb.Listing_LISTING_ROLES {
			bodies[p.Ref.ListingKey] = string(p.Body)
		}
	}
	if !strings.Contains(bodies[zoom.RoleTypeIQ], `"iqR1"`) || strings.Contains(bodies[""], `"iqR1"`) {
		t.Errorf("roles pages %q, want iqR1 in the iq page only", bodies)
	}
	if n := sim.Requests()["GET /roles"]; n != 2 {
		t.Errorf("%d GET /roles, want 2 (common and iq)", n)
	}
}
