package natsauth_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/service"
)

// serviceRoles are the roles of the services that ensure the streams.
var serviceRoles = []natsauth.Role{natsauth.RoleFetcher, natsauth.RoleNormalizer, natsauth.RoleWriter, natsauth.RoleWebhook}

// startService runs service r's start path (service.JetStream) with its
// credentials and the given environment, and opens the buckets r uses the
// way r's code does: CreateOrUpdateKeyValue for those it owns, as they are
// for the others.
func startService(t *testing.T, url, dir string, r natsauth.Role, env map[string]string) jetstream.JetStream {
	t.Helper()
	vars := map[string]string{"NATS_URL": url, "NATS_CREDS": filepath.Join(dir, natsauth.CredsFile(r))}
	for k, v := range env {
		vars[k] = v
	}
	e := service.EnvFrom(vars)
	c := service.ReadCommon(e, "ADDR", ":0")
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := service.JetStream(ctx, c, string(r), zerolog.Nop())
	if err != nil {
		t.Fatalf("%s starts: %v", r, err)
	}
	t.Cleanup(nc.Close)
	for _, b := range bucketsOf(t, r) {
		cfg := jetstream.KeyValueConfig{Bucket: b, History: 1, Storage: jetstream.FileStorage}
		if natsauth.BucketOwner(b) == r {
			_, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		} else {
			_, err = natsx.OpenKeyValue(ctx, js, cfg)
		}
		if err != nil {
			t.Fatalf("%s opens bucket %s: %v", r, b, err)
		}
	}
	return js
}

// bucketsOf are the buckets role r may use, read from its permissions.
func bucketsOf(t *testing.T, r natsauth.Role) []string {
	t.Helper()
	p, err := natsauth.PermissionsOf(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range p.Publish {
		if b, ok := strings.CutPrefix(s, "$KV."); ok {
			out = append(out, strings.TrimSuffix(b, ".>"))
		}
	}
	return out
}

// streamConfig returns a stream's configuration as the server holds it.
func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return st.CachedInfo().Config
}

// hostile is cfg as someone would set it to lose every message: one kept,
// for a second, and another subject.
func hostile(cfg jetstream.StreamConfig) jetstream.StreamConfig {
	cfg.MaxMsgs = 1
	cfg.MaxAge = time.Second
	cfg.Subjects = []string{"zoom.hostile.>"}
	return cfg
}

// TestOnlyTheOwnerChangesAStream: every service but CLARITY_ENTITLEMENTS'
// owner, the writer, is refused a change of its configuration, and the
// webhook service a change of every stream (it owns none); each stream is
// as its owner made it afterwards. A create of an existing stream with
// another configuration, which every service may ask for, is refused by
// the server and changes nothing either.
func TestOnlyTheOwnerChangesAStream(t *testing.T) {
	url, dir := secured(t)
	owners := map[natsauth.Role]jetstream.JetStream{}
	for _, r := range serviceRoles {
		owners[r] = startService(t, url, dir, r, nil)
	}
	before := map[string]jetstream.StreamConfig{}
	for _, sc := range pipeline.Streams(1) {
		before[sc.Name] = streamConfig(t, owners[natsauth.RoleWriter], sc.Name)
	}
	type attempt struct {
		role   natsauth.Role
		stream string
	}
	var attempts []attempt
	for _, r := range serviceRoles {
		if r != natsauth.RoleWriter {
			attempts = append(attempts, attempt{r, clarity.StreamEntitlements})
		}
	}
	for _, sc := range pipeline.Streams(1) {
		if sc.Name != clarity.StreamEntitlements {
			attempts = append(attempts, attempt{natsauth.RoleWebhook, sc.Name})
		}
	}
	// a work queue of another service than the webhook's
	attempts = append(attempts, attempt{natsauth.RoleNormalizer, pipeline.StreamSync}, attempt{natsauth.RoleFetcher, pipeline.StreamRecords})
	for _, a := range attempts {
		t.Run(string(a.role)+"/"+a.stream, func(t *testing.T) {
			t.Parallel()
			if owner := pipeline.StreamOwner(a.stream); owner == string(a.role) {
				t.Fatalf("%s owns %s", a.role, a.stream)
			}
			c := dialRole(t, url, dir, a.role)
			if _, err := c.js.UpdateStream(short(t), hostile(before[a.stream])); err == nil {
				t.Fatalf("%s changed %s", a.role, a.stream)
			}
			c.expectRefused(t, "$JS.API.STREAM.UPDATE."+a.stream)
			if _, err := c.js.CreateStream(context.Background(), hostile(before[a.stream])); err == nil {
				t.Fatalf("%s created %s again with another configuration", a.role, a.stream)
			}
			after := streamConfig(t, owners[natsauth.RoleWriter], a.stream)
			if after.MaxMsgs != before[a.stream].MaxMsgs || after.MaxAge != before[a.stream].MaxAge ||
				!slices.Equal(after.Subjects, before[a.stream].Subjects) {
				t.Fatalf("%s is now %d messages, %s, %v; was %d, %s, %v", a.stream, after.MaxMsgs, after.MaxAge, after.Subjects,
					before[a.stream].MaxMsgs, before[a.stream].MaxAge, before[a.stream].Subjects)
			}
		})
	}
}

// TestNoServiceDeletesOrPurgesAStream: no service may delete or purge a
// stream, nor a bucket's stream (a bucket's owner included); one that
// uses a bucket but does not own it may not change its configuration.
// What the streams held is still there afterwards.
func TestNoServiceDeletesOrPurgesAStream(t *testing.T) {
	url, dir := secured(t)
	writer := startService(t, url, dir, natsauth.RoleWriter, nil)
	for _, r := range serviceRoles {
		startService(t, url, dir, r, nil)
	}
	ctx := context.Background()
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	if _, err := writer.Publish(ctx, pipeline.EventSubject(acme, clarity.KindServiceUser), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	kv, err := writer.KeyValue(ctx, connector.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, r := range serviceRoles {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			c := dialRole(t, url, dir, r)
			// through the client, as the code would call them
			st, err := c.js.Stream(ctx, clarity.StreamEntitlements)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Purge(short(t)); err == nil {
				t.Fatalf("%s purged %s", r, clarity.StreamEntitlements)
			}
			c.expectRefused(t, "$JS.API.STREAM.PURGE."+clarity.StreamEntitlements)
			if err := c.js.DeleteStream(short(t), clarity.StreamEntitlements); err == nil {
				t.Fatalf("%s deleted %s", r, clarity.StreamEntitlements)
			}
			c.expectRefused(t, "$JS.API.STREAM.DELETE."+clarity.StreamEntitlements)
			// every stream and bucket the role uses, as raw API requests
			var streams []string
			for _, sc := range pipeline.Streams(1) {
				streams = append(streams, sc.Name)
			}
			for _, b := range bucketsOf(t, r) {
				streams = append(streams, "KV_"+b)
			}
			for _, name := range streams {
				c.publishRefused(t, "$JS.API.STREAM.PURGE."+name)
				c.publishRefused(t, "$JS.API.STREAM.DELETE."+name)
			}
			for _, b := range bucketsOf(t, r) {
				if natsauth.BucketOwner(b) == r {
					continue
				}
				cfg := streamConfig(t, c.js, "KV_"+b)
				cfg.MaxMsgs = 1
				if _, err := c.js.UpdateStream(short(t), cfg); err == nil {
					t.Fatalf("%s changed bucket %s", r, b)
				}
				c.expectRefused(t, "$JS.API.STREAM.UPDATE.KV_"+b)
				if got := streamConfig(t, c.js, "KV_"+b).MaxMsgs; got != -1 {
					t.Fatalf("bucket %s keeps %d messages after the refused change", b, got)
				}
			}
			if slices.Contains(bucketsOf(t, r), connector.Bucket) {
				if err := c.js.DeleteKeyValue(short(t), connector.Bucket); err == nil {
					t.Fatalf("%s deleted the registry's bucket", r)
				}
				c.expectRefused(t, "$JS.API.STREAM.DELETE.KV_"+connector.Bucket)
			}
		})
	}
	t.Cleanup(func() {
		info, err := streamInfo(writer, clarity.StreamEntitlements)
		if err != nil || info.State.Msgs != 1 {
			t.Errorf("CLARITY_ENTITLEMENTS holds %v (%v), want its event", info, err)
		}
		if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
			t.Errorf("the registry lost its key: %v", err)
		}
	})
}

func streamInfo(js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		return nil, err
	}
	return st.Info(context.Background())
}

// TestOwnerAppliesItsConfiguration: CLARITY_ENTITLEMENTS takes the
// retention of its owner, the writer, when the writer starts, and not that
// of another service starting after it; the owner of a bucket applies its
// configuration to it.
func TestOwnerAppliesItsConfiguration(t *testing.T) {
	url, dir := secured(t)
	startService(t, url, dir, natsauth.RoleWebhook, map[string]string{"EVENTS_MAX_AGE": "2h"})
	webhookJS := startService(t, url, dir, natsauth.RoleWebhook, nil)
	if got := streamConfig(t, webhookJS, clarity.StreamEntitlements).MaxAge; got != 2*time.Hour {
		t.Fatalf("CLARITY_ENTITLEMENTS created by the webhook service keeps %s, want its 2h", got)
	}
	writer := startService(t, url, dir, natsauth.RoleWriter, map[string]string{"EVENTS_MAX_AGE": "36h", "EVENTS_MAX_BYTES": "1073741824"})
	if cfg := streamConfig(t, writer, clarity.StreamEntitlements); cfg.MaxAge != 36*time.Hour || cfg.MaxBytes != 1<<30 {
		t.Fatalf("after the writer started CLARITY_ENTITLEMENTS keeps %s and %d bytes, want 36h and 1 GiB", cfg.MaxAge, cfg.MaxBytes)
	}
	for _, r := range []natsauth.Role{natsauth.RoleFetcher, natsauth.RoleNormalizer, natsauth.RoleWebhook} {
		startService(t, url, dir, r, map[string]string{"EVENTS_MAX_AGE": "2h"})
	}
	if cfg := streamConfig(t, writer, clarity.StreamEntitlements); cfg.MaxAge != 36*time.Hour || cfg.MaxBytes != 1<<30 {
		t.Fatalf("after the other services started CLARITY_ENTITLEMENTS keeps %s and %d bytes, want the writer's 36h and 1 GiB", cfg.MaxAge, cfg.MaxBytes)
	}
	// The registry's owner, the webhook service, applies a new description;
	// the writer, which opens it too, leaves it.
	ctx := context.Background()
	c := dialRole(t, url, dir, natsauth.RoleWebhook)
	if _, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: connector.Bucket, Description: "owned", History: 1, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("the owner changes the registry's bucket: %v", err)
	}
	w := dialRole(t, url, dir, natsauth.RoleWriter)
	if _, err := connector.Open(ctx, w.js, 1); err != nil {
		t.Fatalf("the writer opens the registry: %v", err)
	}
	w.expectNoRefusal(t)
	if got := streamConfig(t, w.js, "KV_"+connector.Bucket).Description; got != "owned" {
		t.Fatalf("the registry's bucket is described %q, want the owner's", got)
	}
}

// TestServicesStartInAnyOrder: against a server with no streams yet, the
// services start in any order, each with different retention settings;
// every stream is then as its owner configured it, and a sync trigger
// published before the fetcher first ran is kept for it.
func TestServicesStartInAnyOrder(t *testing.T) {
	orders := [][]natsauth.Role{
		{natsauth.RoleWebhook, natsauth.RoleFetcher, natsauth.RoleNormalizer, natsauth.RoleWriter},
		{natsauth.RoleWriter, natsauth.RoleWebhook, natsauth.RoleNormalizer, natsauth.RoleFetcher},
		{natsauth.RoleNormalizer, natsauth.RoleWriter, natsauth.RoleFetcher, natsauth.RoleWebhook},
		{natsauth.RoleFetcher, natsauth.RoleNormalizer, natsauth.RoleWebhook, natsauth.RoleWriter},
	}
	maxAge := map[natsauth.Role]time.Duration{
		natsauth.RoleFetcher: 2 * time.Hour, natsauth.RoleNormalizer: 3 * time.Hour,
		natsauth.RoleWriter: 4 * time.Hour, natsauth.RoleWebhook: 5 * time.Hour,
	}
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			url, dir := secured(t)
			var js jetstream.JetStream
			triggered := false
			for _, r := range order {
				js = startService(t, url, dir, r, map[string]string{"EVENTS_MAX_AGE": maxAge[r].String()})
				if r == natsauth.RoleFetcher {
					continue
				}
				if !triggered && !slices.Contains(order[:slices.Index(order, r)], natsauth.RoleFetcher) {
					clarityC := dialRole(t, url, dir, natsauth.RoleClarity)
					if _, err := clarityC.js.Publish(context.Background(), pipeline.SyncSubject(acme), []byte(`{"mode":"full"}`)); err != nil {
						t.Fatalf("a trigger before the fetcher ran: %v", err)
					}
					triggered = true
				}
			}
			for _, want := range pipeline.WithEventRetention(pipeline.Streams(1), maxAge[natsauth.RoleWriter], 0) {
				got := streamConfig(t, js, want.Name)
				// the server's default duplicate window where none is set
				if want.Duplicates == 0 {
					want.Duplicates = 2 * time.Minute
				}
				if got.MaxAge != want.MaxAge || !slices.Equal(got.Subjects, want.Subjects) || got.Retention != want.Retention ||
					got.Duplicates != want.Duplicates {
					t.Errorf("%s: %s, %v, %v, %s; want its owner's %s, %v, %v, %s", want.Name, got.MaxAge, got.Subjects, got.Retention,
						got.Duplicates, want.MaxAge, want.Subjects, want.Retention, want.Duplicates)
				}
			}
			if triggered {
				st, err := js.Stream(context.Background(), pipeline.StreamSync)
				if err != nil {
					t.Fatal(err)
				}
				info, err := st.Info(context.Background())
				if err != nil || info.State.Msgs != 1 {
					t.Fatalf("ZOOM_SYNC holds %v messages (%v), want the trigger published before the fetcher ran", info, err)
				}
			}
		})
	}
}

// TestEveryStreamAndBucketHasAnOwner: each stream the services ensure and
// each bucket a role uses has exactly one owner, a service whose
// credentials allow the update and that uses the bucket; no other role may
// update it. The services' names are their roles'.
func TestEveryStreamAndBucketHasAnOwner(t *testing.T) {
	names := map[string]natsauth.Role{pipeline.ServiceFetcher: natsauth.RoleFetcher, pipeline.ServiceNormalizer: natsauth.RoleNormalizer,
		pipeline.ServiceWriter: natsauth.RoleWriter, pipeline.ServiceWebhook: natsauth.RoleWebhook}
	for name, r := range names {
		if name != string(r) {
			t.Errorf("service %s has role %s", name, r)
		}
	}
	updaters := func(subject string) []natsauth.Role {
		var out []natsauth.Role
		for _, r := range serviceRoles {
			p, err := natsauth.PermissionsOf(r)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(p.Publish, func(allow string) bool { return covers(allow, subject) }) {
				out = append(out, r)
			}
		}
		return out
	}
	for _, sc := range pipeline.Streams(1) {
		owner := pipeline.StreamOwner(sc.Name)
		if got := updaters("$JS.API.STREAM.UPDATE." + sc.Name); len(got) != 1 || string(got[0]) != owner {
			t.Errorf("stream %s is owned by %q and may be updated by %v", sc.Name, owner, got)
		}
	}
	for _, r := range serviceRoles {
		for _, b := range bucketsOf(t, r) {
			owner := natsauth.BucketOwner(b)
			if !slices.Contains(bucketsOf(t, owner), b) {
				t.Errorf("bucket %s is owned by %q, which does not use it", b, owner)
			}
			if got := updaters("$JS.API.STREAM.UPDATE.KV_" + b); len(got) != 1 || got[0] != owner {
				t.Errorf("bucket %s is owned by %q and may be updated by %v", b, owner, got)
			}
		}
	}
}

// The webhook service reads CLARITY_ENTITLEMENTS through consumers it
// names, and keeps its own durable one; it may not delete, read or
// replace the fetcher's.
func TestWebhookLeavesTheFetchersDurable(t *testing.T) {
	url, dir := secured(t)
	fetcher := startService(t, url, dir, natsauth.RoleFetcher, nil)
	ctx := context.Background()
	st, err := fetcher.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: pipeline.ConsumerFetcherEnrich, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	w := dialRole(t, url, dir, natsauth.RoleWebhook)
	wst, err := w.js.Stream(ctx, clarity.StreamEntitlements)
	if err != nil {
		t.Fatal(err)
	}
	if err := wst.DeleteConsumer(short(t), pipeline.ConsumerFetcherEnrich); err == nil {
		t.Errorf("the webhook service deleted the fetcher's durable %s", pipeline.ConsumerFetcherEnrich)
	}
	if _, err := wst.CreateOrUpdateConsumer(short(t), jetstream.ConsumerConfig{Durable: pipeline.ConsumerFetcherEnrich,
		AckPolicy: jetstream.AckNonePolicy}); err == nil {
		t.Errorf("the webhook service replaced the fetcher's durable %s", pipeline.ConsumerFetcherEnrich)
	}
	if c, err := st.Consumer(ctx, pipeline.ConsumerFetcherEnrich); err != nil || c.CachedInfo().Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("the fetcher's durable after the webhook's attempts: %v", err)
	}
	// Its own durable and the consumers it names still work.
	if _, err := wst.CreateOrUpdateConsumer(short(t), jetstream.ConsumerConfig{Durable: pipeline.ConsumerLastSync,
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: pipeline.EventsOfKind(clarity.KindSync)}); err != nil {
		t.Errorf("the webhook service's own durable %s: %v", pipeline.ConsumerLastSync, err)
	}
	if _, err := wst.OrderedConsumer(short(t), jetstream.OrderedConsumerConfig{FilterSubjects: []string{"clarity.entitlements.>"}}); err != nil {
		t.Errorf("the webhook service's ordered consumer: %v", err)
	}
}
