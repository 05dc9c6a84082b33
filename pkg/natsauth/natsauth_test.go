package natsauth_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/connector"
	"github.com/claritysecurity/zoom-connector/pkg/natsauth"
	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/natsx/natstest"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// secured runs a server with the authorization natsauth.Init writes, and
// returns its URL and the credentials directory.
func secured(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := natsauth.Init(dir); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if _, err := natsauth.IssueTenant(dir, tenant, "app"); err != nil {
			t.Fatal(err)
		}
	}
	s, err := natstest.StartWithConfig(t.TempDir(), 0, filepath.Join(dir, natsauth.FileServerConfig))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL(), dir
}

// client is one identity's connection and the permission violations the
// server reported to it.
type client struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	refused chan string
}

func dial(t *testing.T, url, creds string) *client {
	t.Helper()
	c := &client{refused: make(chan string, 100)}
	var err error
	c.nc, c.js, err = natsx.ConnectAuth(context.Background(), url, "test", natsx.Auth{CredsFile: creds}, zerolog.Nop(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if subject, ok := natsx.PermissionSubject(err); ok {
				c.refused <- subject
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

func dialRole(t *testing.T, url, dir string, r natsauth.Role) *client {
	return dial(t, url, filepath.Join(dir, natsauth.CredsFile(r)))
}

// expectRefused waits for the server's refusal of subject.
func (c *client) expectRefused(t *testing.T, subject string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-c.refused:
			if s == subject {
				return
			}
		case <-timeout:
			t.Fatalf("the server did not refuse %s", subject)
		}
	}
}

// expectRefusedLike waits for the server's refusal of a subject that
// starts with prefix and ends with suffix.
func (c *client) expectRefusedLike(t *testing.T, prefix, suffix string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s := <-c.refused:
			if strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix) {
				return
			}
		case <-timeout:
			t.Fatalf("the server did not refuse %s…%s", prefix, suffix)
		}
	}
}

// short is a context for a request the server is expected to refuse: it
// drops the request, so the client waits for nothing.
func short(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

// expectNoRefusal checks that the server refused nothing so far.
func (c *client) expectNoRefusal(t *testing.T) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-c.refused:
		t.Fatalf("the server refused %s", s)
	case <-time.After(200 * time.Millisecond):
	}
}

func (c *client) publishRefused(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.expectRefused(t, subject)
}

func (c *client) subscribeRefused(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.expectRefused(t, subject)
}

// ensureStreams does what service r does at start: it creates every
// missing stream and applies its configuration to the streams it owns.
func ensureStreams(t *testing.T, js jetstream.JetStream, r natsauth.Role) {
	t.Helper()
	if err := natsx.CreateMissingStreams(context.Background(), js, pipeline.Streams(1)...); err != nil {
		t.Fatal(err)
	}
	if err := natsx.EnsureStreams(context.Background(), js, pipeline.OwnedStreams(string(r), pipeline.Streams(1))...); err != nil {
		t.Fatal(err)
	}
}

// TestRolesRefusedOutsidePermissions: for each role, a publish and a
// subscription outside its permissions are refused by the server.
func TestRolesRefusedOutsidePermissions(t *testing.T) {
	url, dir := secured(t)
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	cases := []struct {
		creds       string
		publish     string
		subscribe   string
		allowedSub  string
		allowedPubs []string
	}{
		{natsauth.CredsFile(natsauth.RoleFetcher), pipeline.RecordsSubject(acme), "zoom.admin.>", "", nil},
		// a Clarity-Reply-To that names an event subject
		{natsauth.CredsFile(natsauth.RoleFetcher), pipeline.EventSubject(acme, clarity.KindServiceUser), "zoom.provision.>", "", nil},
		{natsauth.CredsFile(natsauth.RoleFetcher), pipeline.ProvisionSubject(acme), "_INBOX_clarity.>", "", nil},
		{natsauth.CredsFile(natsauth.RoleNormalizer), "zoom.provision.acme.zoom", "clarity.entitlements.>", "", nil},
		// record counts are the writer's to answer and the console's to ask
		{natsauth.CredsFile(natsauth.RoleNormalizer), pipeline.CountsSubject(acme), pipeline.CountsFilter, "", nil},
		{natsauth.CredsFile(natsauth.RoleFetcher), pipeline.CountsSubject(acme), pipeline.CountsFilter, "", nil},
		{natsauth.CredsFile(natsauth.RoleWriter), pipeline.SyncSubject(acme), "zoom.raw.>", natsauth.SnapshotSubject("*", "*"), nil},
		{natsauth.CredsFile(natsauth.RoleWebhook), pipeline.RecordsSubject(acme), "clarity.entitlements.>", connector.SubjectList, nil},
		{natsauth.CredsFile(natsauth.RoleOperator), pipeline.EventSubject(acme, clarity.KindSync), "clarity.entitlements.>", "", nil},
		{natsauth.CredsFile(natsauth.RoleClarity), pipeline.RawSubject(acme), "zoom.admin.>", "", nil},
		{natsauth.TenantCredsFile("acme", "app"), pipeline.SyncSubject(acme), "clarity.entitlements.acme.>", "", nil},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.creds, ".creds")+"/"+tc.publish, func(t *testing.T) {
			c := dial(t, url, filepath.Join(dir, tc.creds))
			c.publishRefused(t, tc.publish)
			c.subscribeRefused(t, tc.subscribe)
			if tc.allowedSub != "" {
				if _, err := c.nc.SubscribeSync(tc.allowedSub); err != nil {
					t.Fatal(err)
				}
				c.expectNoRefusal(t)
			}
		})
	}
}

// TestServicesWorkWithinPermissions: each service ensures the streams,
// creates its durable consumers and buckets, and publishes what it hands on;
// a consumer another service owns is refused.
func TestServicesWorkWithinPermissions(t *testing.T) {
	url, dir := secured(t)
	ctx := context.Background()
	acme := pipeline.ConnectorRef{Tenant: "acme", ID: "zoom"}
	consumers := map[natsauth.Role][][2]string{
		natsauth.RoleFetcher:    {{pipeline.StreamSync, pipeline.ConsumerFetcher}, {pipeline.StreamHint, pipeline.ConsumerFetcherHints}},
		natsauth.RoleNormalizer: {{pipeline.StreamRaw, pipeline.ConsumerNormalizer}, {pipeline.StreamWebhook, pipeline.ConsumerNormalizerWebhook}},
		natsauth.RoleWriter:     {{pipeline.StreamRecords, pipeline.ConsumerWriter}, {pipeline.StreamProvisionResults, pipeline.ConsumerWriterProvision}},
		natsauth.RoleWebhook:    {{clarity.StreamEntitlements, pipeline.ConsumerLastSync}},
	}
	publishes := map[natsauth.Role]string{
		natsauth.RoleFetcher:    pipeline.RawSubject(acme),
		natsauth.RoleNormalizer: pipeline.RecordsSubject(acme),
		natsauth.RoleWriter:     pipeline.EventSubject(acme, clarity.KindServiceUser),
		natsauth.RoleWebhook:    pipeline.WebhookSubject(acme),
		natsauth.RoleOperator:   pipeline.SyncSubject(acme),
		natsauth.RoleClarity:    pipeline.ProvisionSubject(acme),
	}
	buckets := map[natsauth.Role][]string{
		natsauth.RoleFetcher: {connector.Bucket, connector.StatesBucket, pipeline.RunsBucket, pipeline.ScheduleBucket, pipeline.ProvisionBucket, "zoom_provision_lease", pipeline.ProvisionHoldBucket, pipeline.BudgetBucket},
		natsauth.RoleWriter:  {connector.Bucket, pipeline.ProvisionHoldBucket},
		natsauth.RoleWebhook: {connector.Bucket, connector.StatesBucket},
	}
	for _, r := range []natsauth.Role{natsauth.RoleFetcher, natsauth.RoleNormalizer, natsauth.RoleWriter, natsauth.RoleWebhook, natsauth.RoleOperator, natsauth.RoleClarity} {
		t.Run(string(r), func(t *testing.T) {
			c := dialRole(t, url, dir, r)
			if r != natsauth.RoleClarity {
				ensureStreams(t, c.js, r)
			}
			for _, sc := range consumers[r] {
				cons, err := c.js.CreateOrUpdateConsumer(ctx, sc[0], jetstream.ConsumerConfig{Durable: sc[1], AckPolicy: jetstream.AckExplicitPolicy})
				if err != nil {
					t.Fatalf("consumer %s of %s: %v", sc[1], sc[0], err)
				}
				if _, err := cons.Fetch(1, jetstream.FetchMaxWait(100*time.Millisecond)); err != nil {
					t.Fatalf("pull from %s: %v", sc[1], err)
				}
			}
			if _, err := c.js.Publish(ctx, publishes[r], []byte("{}")); err != nil {
				t.Fatalf("publish to %s: %v", publishes[r], err)
			}
			for _, b := range buckets[r] {
				open := natsx.OpenKeyValue
				if natsauth.BucketOwner(b) == r {
					open = func(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
						return js.CreateOrUpdateKeyValue(ctx, cfg)
					}
				}
				kv, err := open(ctx, c.js, jetstream.KeyValueConfig{Bucket: b})
				if err != nil {
					t.Fatalf("bucket %s: %v", b, err)
				}
				if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
					t.Fatalf("put in %s: %v", b, err)
				}
				if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
					t.Fatalf("get from %s: %v", b, err)
				}
				w, err := kv.WatchAll(ctx)
				if err != nil {
					t.Fatalf("watch %s: %v", b, err)
				}
				<-w.Updates()
				_ = w.Stop()
			}
			if r == natsauth.RoleFetcher {
				// The provisioning worker: the requests in order, one
				// deleted once served, its result handed to the writer.
				if _, err := c.js.Publish(ctx, pipeline.ProvisionSubject(acme), []byte("{}")); err == nil {
					t.Fatal("the fetcher published a provisioning request")
				}
				c.expectRefused(t, pipeline.ProvisionSubject(acme))
				clarityC := dialRole(t, url, dir, natsauth.RoleClarity)
				ack, err := clarityC.js.Publish(ctx, pipeline.ProvisionSubject(acme), []byte("{}"))
				if err != nil {
					t.Fatal(err)
				}
				oc, err := c.js.OrderedConsumer(ctx, pipeline.StreamProvision, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := oc.Next(jetstream.FetchMaxWait(2 * time.Second)); err != nil {
					t.Fatalf("read a provisioning request: %v", err)
				}
				st, err := c.js.Stream(ctx, pipeline.StreamProvision)
				if err != nil {
					t.Fatal(err)
				}
				if err := st.DeleteMsg(ctx, ack.Sequence); err != nil {
					t.Fatalf("delete a served request: %v", err)
				}
				if _, err := c.js.Publish(ctx, pipeline.ProvisionResultSubject(acme), []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			c.expectNoRefusal(t)
		})
	}
	// The writer answers the console's request for record counts.
	writer, webhook := dialRole(t, url, dir, natsauth.RoleWriter), dialRole(t, url, dir, natsauth.RoleWebhook)
	sub, err := writer.nc.QueueSubscribe(pipeline.CountsFilter, "writer", func(m *nats.Msg) { _ = m.Respond([]byte(`{"records":{}}`)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := writer.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := webhook.nc.Request(pipeline.CountsSubject(acme), nil, 5*time.Second); err != nil || string(m.Data) != `{"records":{}}` {
		t.Fatalf("the webhook service asked for counts: %v", err)
	}
	writer.expectNoRefusal(t)
	webhook.expectNoRefusal(t)
	// A service cannot take another's consumer, nor read a bucket it has
	// no business with.
	norm := dialRole(t, url, dir, natsauth.RoleNormalizer)
	if _, err := norm.js.CreateOrUpdateConsumer(short(t), pipeline.StreamRecords, jetstream.ConsumerConfig{Durable: pipeline.ConsumerWriter}); err == nil {
		t.Fatal("the normalizer created the writer's consumer")
	}
	norm.expectRefusedLike(t, "$JS.API.CONSUMER.", pipeline.StreamRecords+"."+pipeline.ConsumerWriter)
	if _, err := norm.js.KeyValue(short(t), connector.Bucket); err == nil {
		t.Fatal("the normalizer opened the connector registry")
	}
	norm.expectRefusedLike(t, "$JS.API.STREAM.INFO.KV_"+connector.Bucket, "")
}

// TestTenantReadsOnlyItsOwnEvents: a tenant's consumer reads its tenant's
// events through an ordered consumer, and cannot read another tenant's,
// create a consumer on another stream, nor pull from a service's consumer.
func TestTenantReadsOnlyItsOwnEvents(t *testing.T) {
	url, dir := secured(t)
	ctx := context.Background()
	writer := dialRole(t, url, dir, natsauth.RoleWriter)
	ensureStreams(t, writer.js, natsauth.RoleWriter)
	webhook := dialRole(t, url, dir, natsauth.RoleWebhook)
	if _, err := webhook.js.CreateOrUpdateConsumer(ctx, clarity.StreamEntitlements, jetstream.ConsumerConfig{
		Durable: pipeline.ConsumerLastSync, AckPolicy: jetstream.AckExplicitPolicy,
		FilterSubjects: []string{pipeline.EventsOfKind(clarity.KindSync)}}); err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"acme", "globex"} {
		ref := pipeline.ConnectorRef{Tenant: tenant, ID: "zoom"}
		for _, kind := range []string{clarity.KindServiceUser, clarity.KindSync} {
			if _, err := writer.js.Publish(ctx, pipeline.EventSubject(ref, kind), []byte(tenant)); err != nil {
				t.Fatal(err)
			}
		}
	}
	acme := dial(t, url, filepath.Join(dir, natsauth.TenantCredsFile("acme", "app")))

	// Its own events: every one, and only its tenant's.
	cons, err := acme.js.OrderedConsumer(ctx, clarity.StreamEntitlements, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"clarity.entitlements.acme.>"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
	}
	if len(got) != 2 || got[0] != "acme" || got[1] != "acme" {
		t.Fatalf("acme read %q, want its two events", got)
	}

	// Another tenant's events, all tenants', another stream.
	for _, filter := range []string{"clarity.entitlements.globex.>", "clarity.entitlements.>", "clarity.entitlements.*.zoom.sync"} {
		// as an ordered consumer asks for one: named, with one filter
		_, err := acme.js.CreateOrUpdateConsumer(short(t), clarity.StreamEntitlements, jetstream.ConsumerConfig{
			Name: "mine", FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy})
		if err == nil {
			t.Errorf("acme created a consumer of %s", filter)
		}
		acme.expectRefusedLike(t, "$JS.API.CONSUMER.CREATE."+clarity.StreamEntitlements+".", "."+filter)
	}
	if _, err := acme.js.CreateOrUpdateConsumer(short(t), pipeline.StreamRaw, jetstream.ConsumerConfig{
		Name: "x", FilterSubject: "zoom.raw.acme.>"}); err == nil {
		t.Error("acme created a consumer on ZOOM_RAW")
	}
	acme.expectRefusedLike(t, "$JS.API.CONSUMER.CREATE."+pipeline.StreamRaw+".x", "")
	// The webhook service's consumer holds every tenant's sync events.
	next := "$JS.API.CONSUMER.MSG.NEXT." + clarity.StreamEntitlements + "." + pipeline.ConsumerLastSync
	acme.publishRefused(t, next)
	// Publishing an event or a trigger, even its own.
	acme.publishRefused(t, "clarity.entitlements.acme.zoom.sync")
}

// TestConnectRefusedWithoutUsableCredentials: no credentials, credentials
// of another deployment, and a file that is not credentials each stop the
// connection at once with one error that says so and shows no secret.
func TestConnectRefusedWithoutUsableCredentials(t *testing.T) {
	url, dir := secured(t)
	ctx := context.Background()
	start := time.Now()
	_, _, err := natsx.ConnectAuth(ctx, url, "test", natsx.Auth{}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "refused the connection without credentials") {
		t.Fatalf("without credentials: %v", err)
	}

	other := t.TempDir()
	if _, err := natsauth.Init(other); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(other, natsauth.CredsFile(natsauth.RoleWriter))
	_, _, err = natsx.ConnectAuth(ctx, url, "test", natsx.Auth{CredsFile: foreign}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "refused the connection with the credentials of NATS_CREDS") {
		t.Fatalf("another deployment's credentials: %v", err)
	}
	b, _ := os.ReadFile(foreign)
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 20 && strings.Contains(err.Error(), line) {
			t.Fatalf("the error shows the credentials: %v", err)
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("refusals took %s: the client retried", d)
	}

	notCreds := filepath.Join(dir, natsauth.FileOperatorSeed)
	_, _, err = natsx.ConnectAuth(ctx, url, "test", natsx.Auth{CredsFile: notCreds}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "is not a NATS credentials file") {
		t.Fatalf("a seed file as credentials: %v", err)
	}
	seed, _ := os.ReadFile(notCreds)
	if strings.Contains(err.Error(), strings.TrimSpace(string(seed))) {
		t.Fatal("the error shows the seed")
	}
	if _, _, err := natsx.ConnectAuth(ctx, url, "test", natsx.Auth{CredsFile: filepath.Join(dir, "missing.creds")}, zerolog.Nop()); err == nil ||
		!strings.HasPrefix(err.Error(), "NATS_CREDS: ") {
		t.Fatalf("a missing file: %v", err)
	}
}

// TestInitKeepsTheAuthority: running init again keeps the keys, so that
// credentials issued before stay valid against the new configuration.
func TestInitKeepsTheAuthority(t *testing.T) {
	url, dir := secured(t)
	before, err := os.ReadFile(filepath.Join(dir, natsauth.FileAccountSeed))
	if err != nil {
		t.Fatal(err)
	}
	confBefore, _ := os.ReadFile(filepath.Join(dir, natsauth.FileServerConfig))
	if _, err := natsauth.Init(dir); err != nil {
		t.Fatal(err)
	}
	// The operator and the system account stay the same: a running server
	// reloads the configuration written again.
	confAfter, _ := os.ReadFile(filepath.Join(dir, natsauth.FileServerConfig))
	for _, key := range []string{"operator:", "system_account:"} {
		if line(string(confBefore), key) == "" || line(string(confBefore), key) != line(string(confAfter), key) {
			t.Errorf("the configuration's %s changed", key)
		}
	}
	after, _ := os.ReadFile(filepath.Join(dir, natsauth.FileAccountSeed))
	if string(before) != string(after) {
		t.Fatal("init replaced the account key")
	}
	// The tenant's credentials issued before still connect.
	dial(t, url, filepath.Join(dir, natsauth.TenantCredsFile("acme", "app")))
	for _, name := range []string{natsauth.FileAccountSeed, natsauth.FileOperatorSeed, natsauth.CredsFile(natsauth.RoleWriter)} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if _, err := natsauth.IssueTenant(dir, "Bad Tenant", "app"); err == nil {
		t.Error("a tenant with a bad name was issued credentials")
	}
}

// TestEveryStreamHasItsRoles: every stream the services ensure has a role
// that publishes to it and one, not the operator, that reads it (the dead
// letters aside, which the operator reads), so that a stream added to
// package pipeline without permissions fails here.
func TestEveryStreamHasItsRoles(t *testing.T) {
	perms := map[natsauth.Role]natsauth.Permissions{}
	for _, r := range natsauth.Roles {
		p, err := natsauth.PermissionsOf(r)
		if err != nil {
			t.Fatal(err)
		}
		perms[r] = p
	}
	for _, sc := range pipeline.Streams(1) {
		var publishers, readers []natsauth.Role
		for r, p := range perms {
			for _, subject := range sc.Subjects {
				if slices.ContainsFunc(p.Publish, func(allow string) bool { return covers(allow, subject) }) {
					publishers = append(publishers, r)
					break
				}
			}
			if r != natsauth.RoleOperator && slices.ContainsFunc(p.Publish, func(allow string) bool {
				return strings.HasPrefix(allow, "$JS.API.CONSUMER.MSG.NEXT."+sc.Name+".")
			}) {
				readers = append(readers, r)
			}
		}
		if len(publishers) == 0 {
			t.Errorf("no role publishes to stream %s (%v)", sc.Name, sc.Subjects)
		}
		if len(readers) == 0 && sc.Name != pipeline.StreamDeadLetter {
			t.Errorf("no service reads stream %s", sc.Name)
		}
	}
}

// covers reports whether the permission subject allow allows every subject
// filter matches.
func covers(allow, filter string) bool {
	a, f := strings.Split(allow, "."), strings.Split(filter, ".")
	for i, tok := range a {
		if tok == ">" {
			return len(f) > i
		}
		if i >= len(f) {
			return false
		}
		if tok != "*" && tok != f[i] || tok == "*" && f[i] == ">" {
			return false
		}
	}
	return len(a) == len(f)
}

// TestTLSAndCredentials: a server configured as the deployment's (the
// authorization fragment included, TLS with a certificate the directory's
// CA signed) takes a client with the CA and a role's credentials over
// tls://, and refuses one without the CA.
func TestTLSAndCredentials(t *testing.T) {
	dir := t.TempDir()
	if _, err := natsauth.Init(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.IssueServerCert(dir, "nats", []string{"nats", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("include "+natsauth.FileServerConfig+"\n"+
		"tls {\n  cert_file: \""+filepath.Join(dir, "nats.crt")+"\"\n  key_file: \""+filepath.Join(dir, "nats.key")+"\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := natstest.StartWithConfig(t.TempDir(), 0, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	url := "tls://" + s.Addr().String()
	creds := filepath.Join(dir, natsauth.CredsFile(natsauth.RoleWriter))
	nc, js, err := natsx.ConnectAuth(context.Background(), url, "test", natsx.Auth{CredsFile: creds, CAFile: filepath.Join(dir, natsauth.FileCACert)}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Fatalf("not TLS: %v", err)
	}
	ensureStreams(t, js, natsauth.RoleWriter)
	if _, _, err := natsx.ConnectAuth(context.Background(), url, "test", natsx.Auth{CredsFile: creds}, zerolog.Nop()); err == nil ||
		!strings.Contains(err.Error(), "certificate is not trusted") {
		t.Fatalf("without the CA: %v", err)
	}
	// Issuing a second certificate keeps the CA.
	ca, _ := os.ReadFile(filepath.Join(dir, natsauth.FileCACert))
	if _, err := natsauth.IssueServerCert(dir, "postgres", []string{"postgres"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, natsauth.FileCACert)); string(again) != string(ca) {
		t.Fatal("a second certificate replaced the CA")
	}
}

// TestPermissionViolationLogged: a refusal is logged with its subject, and
// the log shows nothing of the credentials.
func TestPermissionViolationLogged(t *testing.T) {
	url, dir := secured(t)
	var logs syncBuffer
	creds := filepath.Join(dir, natsauth.CredsFile(natsauth.RoleNormalizer))
	nc, _, err := natsx.ConnectAuth(context.Background(), url, "test", natsx.Auth{CredsFile: creds}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("zoom.provision.acme.zoom", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), `"subject":"zoom.provision.acme.zoom"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log of the refusal with its subject:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "permission violation") {
		t.Fatalf("the log does not say what was refused:\n%s", logs.String())
	}
	b, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 20 && !strings.HasPrefix(line, "---") && strings.Contains(logs.String(), line) {
			t.Fatal("the log shows the credentials")
		}
	}
}

// syncBuffer is a buffer the client's callbacks and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRevokedCredentialsRefused: a tenant consumer's credentials revoked,
// the server reloads the configuration written again: the consumer's
// connection is closed and it cannot connect again; the other credentials
// still connect.
func TestRevokedCredentialsRefused(t *testing.T) {
	dir := t.TempDir()
	if _, err := natsauth.Init(dir); err != nil {
		t.Fatal(err)
	}
	gone, err := natsauth.IssueTenant(dir, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	kept, err := natsauth.IssueTenant(dir, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	// A server as nats-server -c runs it, so that it can reload.
	conf := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(conf, []byte("include "+natsauth.FileServerConfig+"\nlisten: 127.0.0.1:-1\n"+
		"jetstream { store_dir: \""+t.TempDir()+"\" }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	old := dial(t, s.ClientURL(), gone)

	name, err := natsauth.Revoke(dir, gone)
	if err != nil {
		t.Fatal(err)
	}
	if name != "tenant-acme-old" {
		t.Errorf("revoked %q", name)
	}
	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); old.nc.IsConnected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the revoked consumer stays connected")
		}
	}
	if _, _, err := natsx.ConnectAuth(context.Background(), s.ClientURL(), "test", natsx.Auth{CredsFile: gone}, zerolog.Nop()); err == nil ||
		!strings.Contains(err.Error(), "refused the connection with the credentials of NATS_CREDS") {
		t.Fatalf("revoked credentials: %v", err)
	}
	dial(t, s.ClientURL(), kept)
	dial(t, s.ClientURL(), filepath.Join(dir, natsauth.CredsFile(natsauth.RoleWriter)))

	other := t.TempDir()
	if _, err := natsauth.Init(other); err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.Revoke(dir, filepath.Join(other, natsauth.CredsFile(natsauth.RoleWriter))); err == nil {
		t.Error("revoked credentials another account issued")
	}
}

// line returns the line of text that starts with prefix.
func line(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
