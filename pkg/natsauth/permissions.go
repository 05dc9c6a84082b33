// Package natsauth is the connector's NATS authorization: one identity per
// role, each allowed exactly the subjects and JetStream API calls it needs
// (publish and subscribe listed separately), and the decentralized JWT
// credentials (an operator, one account, a user per role) that carry those
// permissions to the server.
//
// The permissions are derived from the names in packages pipeline, clarity
// and connector, so that a new stream, consumer or bucket there is one edit
// here, and the tests of this package show each role refused outside them.
package natsauth

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/pkg/snapshot"
)

// Role is one NATS identity of the deployment.
type Role string

// The roles. RoleTenant is one tenant's downstream consumer: its
// permissions depend on the tenant (TenantPermissions).
const (
	RoleFetcher    Role = "fetcher"
	RoleNormalizer Role = "normalizer"
	RoleWriter     Role = "writer"
	RoleWebhook    Role = "webhook"
	// RoleOperator is the operator's zoomctl.
	RoleOperator Role = "zoomctl"
	// RoleClarity is Clarity's backend: admin and provisioning requests,
	// sync triggers, snapshots, and every tenant's events.
	RoleClarity Role = "clarity"
	RoleTenant  Role = "tenant"
)

// Roles are the fixed roles, those Permissions answers.
var Roles = []Role{RoleFetcher, RoleNormalizer, RoleWriter, RoleWebhook, RoleOperator, RoleClarity}

// Permissions is what one identity may do. Publish and Subscribe allow;
// everything else is refused. PublishDeny refuses subjects Publish's
// wildcards would allow.
type Permissions struct {
	Publish     []string
	PublishDeny []string
	Subscribe   []string
	// InboxPrefix is the identity's own reply prefix (its Subscribe
	// allows InboxPrefix.>); the client uses it in place of _INBOX, so
	// that no identity can read another's replies.
	InboxPrefix string
	// Responses lets the identity answer requests it received, on their
	// reply subjects, once each within ResponseWindow.
	Responses bool
}

// ResponseWindow is how long after a request its answer is allowed: the
// longest an admin request may take (the admin API gives itself 2 minutes).
const ResponseWindow = 5 * time.Minute

// InboxPrefix returns the reply prefix of a role's identity.
func InboxPrefix(r Role) string { return "_INBOX_" + string(r) }

// tenantInboxPrefix is the reply prefix of a tenant's consumer named name:
// its own, so that two consumers of a tenant do not read each other's
// replies either.
func tenantInboxPrefix(tenant, name string) string { return "_INBOX_tenant_" + tenant + "_" + name }

// SnapshotSubject is where the snapshot of a tenant's connector is asked
// for (tenant and id may be wildcards), answered by the writer.
func SnapshotSubject(tenant, id string) string {
	return snapshot.Subject(pipeline.ConnectorRef{Tenant: tenant, ID: id})
}

// provisionLeaseBucket holds the lease of the fetcher replica that serves
// provisioning requests.
const provisionLeaseBucket = pipeline.ProvisionLeaseBucket

// snapshotSessions are the writer's own notes between its replicas about
// the snapshot sessions they serve.
const snapshotSessions = "zoom.snapshot.session.>"

// any is a connector reference that matches every connector in a subject.
var anyConnector = pipeline.ConnectorRef{Tenant: "*", ID: "*"}

// every is subject's prefix with ">" for the last token: the subject of
// every connector, e.g. zoom.raw.> from zoom.raw.<tenant>.<connector>.
func every(subject func(pipeline.ConnectorRef) string) string {
	s := subject(pipeline.ConnectorRef{Tenant: "T", ID: "C"})
	return strings.TrimSuffix(s, "T.C") + ">"
}

// jsAPI is the JetStream API prefix.
const jsAPI = "$JS.API."

// streamCreate lets a service look streams up and create them. Every
// service creates every missing stream at start, so that the services start
// in any order; creating a stream that exists with another configuration is
// refused by the server and changes nothing.
func streamCreate(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, jsAPI+"STREAM.INFO."+s, jsAPI+"STREAM.CREATE."+s)
	}
	return out
}

// streamUpdate lets a service change the configuration of streams: only
// their owner's.
func streamUpdate(streams ...string) []string {
	var out []string
	for _, s := range streams {
		out = append(out, jsAPI+"STREAM.UPDATE."+s)
	}
	return out
}

// durable lets a service create, look up and pull from its durable
// consumer of a stream, and acknowledge its messages.
func durable(stream, name string) []string {
	return []string{
		jsAPI + "CONSUMER.CREATE." + stream + "." + name,
		jsAPI + "CONSUMER.CREATE." + stream + "." + name + ".>",
		jsAPI + "CONSUMER.DURABLE.CREATE." + stream + "." + name,
		jsAPI + "CONSUMER.INFO." + stream + "." + name,
		jsAPI + "CONSUMER.MSG.NEXT." + stream + "." + name,
		"$JS.ACK." + stream + "." + name + ".>",
	}
}

// bucket lets a service create, read, watch and write a key-value bucket:
// the API calls the key-value client makes, and no others. A purge of a
// key (kv.Purge) is a message with a roll-up header on the key's subject,
// not the stream purge API: no role may purge or delete a bucket's stream,
// and only the bucket's owner may change its configuration (service).
func bucket(name string) []string {
	s := "KV_" + name
	return []string{
		"$KV." + name + ".>",
		jsAPI + "STREAM.INFO." + s,   // open the bucket, its status
		jsAPI + "STREAM.CREATE." + s, // create it when missing
		jsAPI + "DIRECT.GET." + s,    // a get of a revision
		jsAPI + "DIRECT.GET." + s + ".>",
		jsAPI + "STREAM.MSG.GET." + s, // a get where direct gets are off
		// watchers (WatchAll, Keys, History): ordered consumers the client
		// names, created, looked up and deleted
		jsAPI + "CONSUMER.CREATE." + s,
		jsAPI + "CONSUMER.CREATE." + s + ".>",
		jsAPI + "CONSUMER.INFO." + s + ".*",
		jsAPI + "CONSUMER.DELETE." + s + ".*",
		"$JS.FC." + s + ".>", // flow control of watchers
	}
}

// orderedReader lets an identity read a stream through ordered consumers
// (ephemeral, named by the client) with any filter.
func orderedReader(stream string) []string {
	return []string{
		jsAPI + "STREAM.INFO." + stream,
		jsAPI + "CONSUMER.CREATE." + stream + ".>",
		jsAPI + "CONSUMER.INFO." + stream + ".*",
		jsAPI + "CONSUMER.DELETE." + stream + ".*",
		jsAPI + "CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.FC." + stream + ".>",
	}
}

// allStreams are the names of every stream the services ensure.
func allStreams() []string {
	var out []string
	for _, c := range pipeline.Streams(1) {
		out = append(out, c.Name)
	}
	return out
}

// ownedStreams are the names of the streams r owns (pipeline.StreamOwner).
func ownedStreams(r Role) []string {
	var out []string
	for _, c := range pipeline.OwnedStreams(string(r), pipeline.Streams(1)) {
		out = append(out, c.Name)
	}
	return out
}

// service is what every service may do: account information, look up and
// create every stream, change the configuration of the streams and buckets
// it owns, and receive its replies.
func service(r Role) Permissions {
	p := Permissions{
		Publish:     append([]string{jsAPI + "INFO"}, streamCreate(allStreams()...)...),
		Subscribe:   []string{InboxPrefix(r) + ".>"},
		InboxPrefix: InboxPrefix(r),
	}
	p.Publish = append(p.Publish, streamUpdate(ownedStreams(r)...)...)
	for _, b := range ownedBuckets(r) {
		p.Publish = append(p.Publish, streamUpdate("KV_"+b)...)
	}
	return p
}

// consume adds a durable consumer of stream and the dead letters of its
// messages.
func (p *Permissions) consume(stream, name string) {
	p.Publish = append(p.Publish, durable(stream, name)...)
	p.Publish = append(p.Publish, pipeline.DeadLetterSubject(stream))
}

// adminOps are the admin operations the webhook service answers.
var adminOps = []string{connector.OpAdd, connector.OpUpdate, connector.OpAuthorize, connector.OpShow, connector.OpRemove}

// writerAdminOps are the admin operations the writer answers.
var writerAdminOps = []string{connector.OpConfirmDeletions, connector.OpPurge}

// Permissions returns the permissions of a fixed role.
func PermissionsOf(r Role) (Permissions, error) {
	switch r {
	case RoleFetcher:
		p := service(r)
		p.consume(pipeline.StreamSync, pipeline.ConsumerFetcher)
		p.consume(pipeline.StreamHint, pipeline.ConsumerFetcherHints)
		// the service_user events: the users whose details to read
		p.consume(clarity.StreamEntitlements, pipeline.ConsumerFetcherEnrich)
		// whether the trigger that drives a run is still in the stream
		p.Publish = append(p.Publish, jsAPI+"STREAM.MSG.GET."+pipeline.StreamSync)
		p.Publish = append(p.Publish,
			every(pipeline.RawSubject),
			// the scheduler's triggers
			every(pipeline.SyncSubject),
			// a refused trigger is answered with a failed sync event
			pipeline.EventsOfKind(clarity.KindSync),
			// each page's progress, for the admin console
			every(pipeline.ProgressSubject),
		)
		// The OAuth states too: the fetcher refreshes tokens through the
		// connector package's Authorizer, which opens that bucket.
		for _, b := range []string{connector.Bucket, connector.StatesBucket, pipeline.RunsBucket, pipeline.ScheduleBucket,
			pipeline.ProvisionBucket, provisionLeaseBucket, pipeline.ProvisionHoldBucket, pipeline.BudgetBucket, pipeline.EnrichBucket} {
			p.Publish = append(p.Publish, bucket(b)...)
		}
		// The provisioning worker reads the requests in order through
		// ordered consumers, deletes each it served, hands the result to
		// the writer, and answers on the requester's inbox: the inbox of
		// Clarity's backend or of the operator's zoomctl, nowhere else.
		p.Publish = append(p.Publish, orderedReader(pipeline.StreamProvision)...)
		p.Publish = append(p.Publish,
			jsAPI+"STREAM.MSG.DELETE."+pipeline.StreamProvision,
			every(pipeline.ProvisionResultSubject),
			InboxPrefix(RoleClarity)+".>",
			InboxPrefix(RoleOperator)+".>",
		)
		return p, nil
	case RoleNormalizer:
		p := service(r)
		p.consume(pipeline.StreamRaw, pipeline.ConsumerNormalizer)
		p.consume(pipeline.StreamWebhook, pipeline.ConsumerNormalizerWebhook)
		p.Publish = append(p.Publish, every(pipeline.RecordsSubject), every(pipeline.HintSubject))
		return p, nil
	case RoleWriter:
		p := service(r)
		p.consume(pipeline.StreamRecords, pipeline.ConsumerWriter)
		p.consume(pipeline.StreamProvisionResults, pipeline.ConsumerWriterProvision)
		p.Publish = append(p.Publish, "clarity.entitlements.>", snapshotSessions,
			// what a provisioning changed, as the worker read it back: the
			// users' pages to the normalizer, a group's admins to itself
			every(pipeline.RawSubject), every(pipeline.RecordsSubject))
		p.Publish = append(p.Publish, bucket(connector.Bucket)...)
		// The users a provisioning write is under way for: their changes
		// wait for its result, which lifts the marks.
		p.Publish = append(p.Publish, bucket(pipeline.ProvisionHoldBucket)...)
		p.Subscribe = append(p.Subscribe, SnapshotSubject("*", "*"), snapshotSessions)
		// the admin console's question: a connector's live records per kind
		p.Subscribe = append(p.Subscribe, pipeline.CountsFilter)
		for _, op := range writerAdminOps {
			p.Subscribe = append(p.Subscribe, connector.AdminSubject(anyConnector, op))
		}
		p.Responses = true
		return p, nil
	case RoleWebhook:
		p := service(r)
		p.Publish = append(p.Publish, durable(clarity.StreamEntitlements, pipeline.ConsumerLastSync)...)
		p.Publish = append(p.Publish,
			every(pipeline.WebhookSubject),
			// the first sync of an authorized connector
			every(pipeline.SyncSubject),
		)
		for _, b := range []string{connector.Bucket, connector.StatesBucket} {
			p.Publish = append(p.Publish, bucket(b)...)
		}
		for _, op := range adminOps {
			p.Subscribe = append(p.Subscribe, connector.AdminSubject(anyConnector, op))
		}
		p.Subscribe = append(p.Subscribe, connector.SubjectList, connector.SubjectRotateKey, connector.SubjectTransportKey)
		// The admin console (ADMIN_ADDR): it reads the change events and
		// the dead letters, calls the admin API as a client, asks the
		// writer for record counts, and hears the fetchers' progress.
		p.Publish = append(p.Publish, orderedReader(clarity.StreamEntitlements)...)
		p.Publish = append(p.Publish, orderedReader(pipeline.StreamDeadLetter)...)
		p.Publish = append(p.Publish, connector.AdminSubject(anyConnector, "*"), connector.SubjectTransportKey)
		p.Publish = append(p.Publish, pipeline.CountsSubject(anyConnector))
		// Its readers' grants name any consumer: the other services'
		// durable consumers of the stream are refused.
		p.PublishDeny = servicesDurables(clarity.StreamEntitlements, pipeline.ConsumerLastSync)
		p.Subscribe = append(p.Subscribe, pipeline.ProgressFilter)
		p.Responses = true
		return p, nil
	case RoleOperator:
		// The operator runs the deployment: its streams, dead letters and
		// connectors; it does not publish change events.
		return Permissions{
			Publish: []string{
				"zoom.>",
				SnapshotSubject("*", "*"),
				jsAPI + ">",
				"$JS.ACK.>",
				"$JS.FC.>",
			},
			Subscribe:   []string{InboxPrefix(r) + ".>", "zoom.bench.>"},
			InboxPrefix: InboxPrefix(r),
		}, nil
	case RoleClarity:
		p := Permissions{
			Publish: []string{
				jsAPI + "INFO",
				every(pipeline.SyncSubject),
				connector.AdminSubject(anyConnector, "*"),
				connector.SubjectList,
				connector.SubjectTransportKey,
				SnapshotSubject("*", "*"),
			},
			Subscribe:   []string{InboxPrefix(r) + ".>"},
			InboxPrefix: InboxPrefix(r),
		}
		p.Publish = append(p.Publish, pipeline.ProvisionSubject(anyConnector))
		p.Publish = append(p.Publish, orderedReader(clarity.StreamEntitlements)...)
		p.PublishDeny = servicesDurables(clarity.StreamEntitlements)
		return p, nil
	}
	return Permissions{}, fmt.Errorf("natsauth: no role %q (one of %s, or a tenant's consumer)", r, roleNames())
}

func roleNames() string {
	var s []string
	for _, r := range Roles {
		s = append(s, string(r))
	}
	return strings.Join(s, ", ")
}

// TenantPermissions returns the permissions of one tenant's downstream
// consumer, named name (an application of the tenant): ask for snapshots of the tenant's connectors, and read
// clarity.entitlements.<tenant>.> through ordered consumers whose filter is
// within it. It cannot list consumers, so it cannot find another's, and it
// cannot pull from the services' durable consumers of the stream.
func TenantPermissions(tenant, name string) (Permissions, error) {
	if err := pipeline.CheckName("tenant", tenant); err != nil {
		return Permissions{}, err
	}
	if err := pipeline.CheckName("consumer", name); err != nil {
		return Permissions{}, err
	}
	stream := clarity.StreamEntitlements
	events := clarity.EventSubject(tenant, "*", "*")
	events = strings.TrimSuffix(events, "*.*") + ">"
	p := Permissions{
		Publish: []string{
			SnapshotSubject(tenant, "*"),
			jsAPI + "STREAM.INFO." + stream,
			// the filter is part of the subject: the server refuses a
			// request whose configuration names another
			jsAPI + "CONSUMER.CREATE." + stream + ".*." + events,
			jsAPI + "CONSUMER.INFO." + stream + ".*",
			jsAPI + "CONSUMER.DELETE." + stream + ".*",
			jsAPI + "CONSUMER.MSG.NEXT." + stream + ".*",
		},
		Subscribe:   []string{tenantInboxPrefix(tenant, name) + ".>"},
		InboxPrefix: tenantInboxPrefix(tenant, name),
	}
	p.PublishDeny = servicesDurables(stream)
	return p, nil
}

// servicesDurables refuses the services' durable consumers of a stream,
// but the reader's own (except), to a reader of it: pulling from one
// would take the service's messages, deleting it would lose its place.
func servicesDurables(stream string, except ...string) []string {
	var out []string
	for _, d := range durablesOf(stream) {
		if slices.Contains(except, d) {
			continue
		}
		for _, op := range []string{"CREATE", "DURABLE.CREATE", "INFO", "DELETE", "MSG.NEXT"} {
			out = append(out, jsAPI+"CONSUMER."+op+"."+stream+"."+d)
		}
		out = append(out, jsAPI+"CONSUMER.CREATE."+stream+"."+d+".>")
	}
	return out
}

// durablesOf are the services' durable consumers of a stream.
func durablesOf(stream string) []string {
	if stream == clarity.StreamEntitlements {
		return []string{pipeline.ConsumerLastSync, pipeline.ConsumerFetcherEnrich}
	}
	return nil
}

// sorted returns p with its lists sorted and without repeats, for
// comparison and display.
func (p Permissions) sorted() Permissions {
	for _, l := range []*[]string{&p.Publish, &p.PublishDeny, &p.Subscribe} {
		*l = slices.Compact(slices.Sorted(slices.Values(*l)))
	}
	return p
}
