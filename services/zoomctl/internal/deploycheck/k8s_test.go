// Package deploycheck checks the deployment manifests: that Kustomize
// builds them, and that what they configure is the secured setup.
package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// repo is the repository's root, from this package's directory.
var repo = filepath.Join("..", "..", "..", "..")

// services are the Deployments, each with a NATS identity of its own.
var services = []string{"fetcher", "normalizer", "writer", "webhook"}

// document is one manifest of the built output.
type document struct{ kind, name, text string }

// build runs Kustomize (the library kubectl kustomize is made of) on
// deploy/k8s: it parses every manifest and resolves the kustomization, as
// kubectl apply -k does. The output is split into its manifests.
func build(t *testing.T) []document {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(repo, "deploy", "k8s"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s: %v", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build deploy/k8s: %v", err)
	}
	kindRe := regexp.MustCompile(`(?m)^kind: (\S+)$`)
	nameRe := regexp.MustCompile(`(?m)^metadata:\n(?:  .*\n)*?  name: (\S+)$`)
	var docs []document
	for _, text := range strings.Split(string(out), "\n---\n") {
		k, n := kindRe.FindStringSubmatch(text), nameRe.FindStringSubmatch(text)
		if k == nil || n == nil {
			t.Fatalf("a manifest without kind or name:\n%s", text)
		}
		docs = append(docs, document{kind: k[1], name: n[1], text: text})
	}
	return docs
}

func find(t *testing.T, docs []document, kind, name string) document {
	t.Helper()
	for _, d := range docs {
		if d.kind == kind && d.name == name {
			return d
		}
	}
	t.Fatalf("no %s %s in deploy/k8s", kind, name)
	return document{}
}

// TestServicesHaveTheirOwnNATSIdentity: each Deployment mounts its own
// credentials Secret and no other, names its file in NATS_CREDS, and
// connects with TLS checked against the CA.
func TestServicesHaveTheirOwnNATSIdentity(t *testing.T) {
	docs := build(t)
	for _, s := range services {
		d := find(t, docs, "Deployment", s)
		if !strings.Contains(d.text, "secretName: zoom-nats-"+s+"\n") {
			t.Errorf("%s does not mount the Secret zoom-nats-%s", s, s)
		}
		if !strings.Contains(d.text, "value: /etc/zoom-nats/"+s+".creds\n") {
			t.Errorf("%s does not set NATS_CREDS to its credentials file", s)
		}
		for _, other := range services {
			if other != s && strings.Contains(d.text, "zoom-nats-"+other) {
				t.Errorf("%s mounts %s's credentials", s, other)
			}
		}
	}
	env := find(t, docs, "ConfigMap", "zoom-connector-env")
	if !strings.Contains(env.text, "NATS_URL: tls://") || !strings.Contains(env.text, "NATS_CA_FILE: /etc/zoom-nats-ca/ca.crt") {
		t.Errorf("the services' environment does not connect with TLS and the CA:\n%s", env.text)
	}
	nats := find(t, docs, "ConfigMap", "nats-config")
	for _, want := range []string{"include ../nats-auth/nats-auth.conf", "tls {", "verify: true"} {
		if !strings.Contains(nats.text, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	for _, open := range []string{"no_auth_user", "authorization {", "accounts {"} {
		if strings.Contains(nats.text, open) {
			t.Errorf("nats.conf configures %q beside the operator's authorization", open)
		}
	}
}

// TestOnlyTheWebhookIsReachableFromTheIngress: ingress is denied to every
// pod by default, the webhook's public port is open to the ingress
// controller only, and NATS's client port to the connector's pods and the
// named clients.
func TestOnlyTheWebhookIsReachableFromTheIngress(t *testing.T) {
	docs := build(t)
	deny := find(t, docs, "NetworkPolicy", "default-deny-ingress")
	if !strings.Contains(deny.text, "podSelector: {}") || strings.Contains(deny.text, "ingress:") {
		t.Errorf("default-deny-ingress does not deny every pod:\n%s", deny.text)
	}
	for _, d := range docs {
		if d.kind != "NetworkPolicy" {
			continue
		}
		if strings.Contains(d.text, "port: 8080") && d.name != "webhook-from-ingress" {
			t.Errorf("%s opens the webhook's public port", d.name)
		}
		if strings.Contains(d.text, "ingress-nginx") && !strings.Contains(d.text, "app.kubernetes.io/name: webhook") {
			t.Errorf("%s lets the ingress controller reach pods other than the webhook", d.name)
		}
		if strings.Contains(d.text, "port: 4222") && !strings.Contains(d.text, "app.kubernetes.io/part-of: zoom-connector") {
			t.Errorf("%s opens NATS to clients other than the connector's and the named ones", d.name)
		}
	}
	find(t, docs, "NetworkPolicy", "nats-clients")
}

// TestDatabaseOverVerifiedTLS: the database URLs of the example Secret
// verify the server's certificate, and the writer's migration runs on the
// owner's login in an init container of its own.
func TestDatabaseOverVerifiedTLS(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "deploy", "k8s", "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	urls := regexp.MustCompile(`postgres://\S+`).FindAllString(string(b), -1)
	if len(urls) == 0 {
		t.Fatal("no database URL in secret.example.yaml")
	}
	for _, u := range urls {
		if !strings.Contains(u, "sslmode=verify-full") {
			t.Errorf("%s does not verify the server", u)
		}
	}
	w := find(t, build(t), "Deployment", "writer")
	init, main := section(w.text, "initContainers"), section(w.text, "containers")
	if !strings.Contains(init, "key: OWNER_DATABASE_URL") || !strings.Contains(init, "WRITER_MIGRATE_ONLY") {
		t.Fatal("the writer's migration does not run on the owner's login in an init container")
	}
	if main == "" || strings.Contains(main, "OWNER_DATABASE_URL") {
		t.Error("the writer's own container sees the owner's URL")
	}
}

// section returns the block of the pod spec's key (its line and the lines
// indented under it) in a built Deployment.
func section(text, key string) string {
	const indent = "      "
	start := strings.Index(text, "\n"+indent+key+":\n")
	if start < 0 {
		return ""
	}
	lines := strings.Split(text[start+1:], "\n")
	out := []string{lines[0]}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, indent+" ") && !strings.HasPrefix(l, indent+"-") {
			break
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
