package syncer_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
	"github.com/claritysecurity/zoom-connector/pkg/zoom/zoomtest"
	"github.com/claritysecurity/zoom-connector/services/fetcher/internal/syncer"
)

// TestFetchFreeAccount: Zoom refuses a free (Basic) account its groups and
// roles. The fetch completes all the same, with its users' listings in the
// manifest, groups and roles named unavailable, and no group-admin listing
// asked for. A refusal of the group-admin listings alone (the plan changed
// while the run listed groups) makes groups unavailable too.
func TestFetchFreeAccount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		plan            zoomtest.Plan
		adminsRefused   bool
		wantUnavailable []string
		wantListings    []pb.Listing
		wantAdminCalls  bool
	}{
		{
			name: "free", plan: zoomtest.PlanBasic,
			wantUnavailable: []string{clarity.UnavailableGroups, clarity.UnavailableRoles},
			wantListings: []pb.Listing{pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE,
				pb.Listing_LISTING_USERS_PENDING},
		},
		{
			name: "paid", plan: zoomtest.PlanPro,
			wantListings: []pb.Listing{pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE,
				pb.Listing_LISTING_USERS_PENDING, pb.Listing_LISTING_GROUPS, pb.Listing_LISTING_GROUP_ADMINS,
				pb.Listing_LISTING_ROLES},
			wantAdminCalls: true,
		},
		{
			name: "admins refused", plan: zoomtest.PlanPro, adminsRefused: true,
			wantUnavailable: []string{clarity.UnavailableGroups},
			wantListings: []pb.Listing{pb.Listing_LISTING_USERS_ACTIVE, pb.Listing_LISTING_USERS_INACTIVE,
				pb.Listing_LISTING_USERS_PENDING, pb.Listing_LISTING_GROUPS, pb.Listing_LISTING_ROLES},
			wantAdminCalls: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			js := natstest.JetStream(t, pipeline.Streams(1)...)
			org := zoomtest.Generate(5, zoomtest.Size{Users: 60, Groups: 4, Roles: 3})
			sim := zoomtest.NewServer(t, org, zoomtest.Options{Plan: tc.plan})
			if tc.adminsRefused {
				sim.Faults().Add(zoomtest.Fault{Route: "GET /groups/{groupId}/admins", Status: 400,
					Code: zoomtest.CodePaidOnly, Message: "Only available for Paid account."})
			}
			z, err := zoom.New(zoom.Config{
				APIURL: sim.APIBase(), OAuthURL: sim.URL(),
				AccountID: sim.AccountID(), ClientID: sim.ClientID(), ClientSecret: sim.ClientSecret(),
				DisablePacing: true, PageSize: 10,
			})
			if err != nil {
				t.Fatal(err)
			}
			s := syncer.New(syncer.Config{JetStream: js, Concurrency: 2, Log: zerolog.Nop()})
			run := &pb.Run{RunId: "run-1", StartedAtMs: 1, Mode: "full"}
			res, err := s.Fetch(ctx, pipeline.ConnectorRef{Tenant: "default", ID: "zoom"}, run, 1, z)
			if err != nil {
				t.Fatalf("Fetch: %v, want the fetch to complete", err)
			}
			if !slices.Equal(res.Unavailable, tc.wantUnavailable) {
				t.Errorf("unavailable got %q, want %q", res.Unavailable, tc.wantUnavailable)
			}
			var got []pb.Listing
			for _, l := range res.Listings {
				if !slices.Contains(got, l.Listing) {
					got = append(got, l.Listing)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantListings) {
				t.Errorf("manifest listings got %v, want %v", got, tc.wantListings)
			}
			for _, p := range rawPages(t, js, 1) {
				if !slices.Contains(tc.wantListings, p.Ref.Listing) && !(tc.adminsRefused && p.Ref.Listing == pb.Listing_LISTING_GROUP_ADMINS) {
					t.Errorf("page of %v published, want none of a listing not in the manifest", p.Ref.Listing)
				}
			}
			calls := sim.Requests()["GET /groups/{groupId}/admins"]
			if tc.wantAdminCalls != (calls > 0) {
				t.Errorf("%d group-admin requests, want some: %t", calls, tc.wantAdminCalls)
			}
			// Concurrency 2: a second worker may have asked before the
			// first refusal was noted; the other groups' admins are spared.
			if tc.adminsRefused && calls > 2 {
				t.Errorf("%d group-admin requests after a refusal, want at most 2", calls)
			}
		})
	}
}
