package pipeline

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestProvisionSubjects(t *testing.T) {
	c := ConnectorRef{Tenant: "acme", ID: "zoom-eu"}
	if got, err := ProvisionResultConnector(ProvisionResultSubject(c)); err != nil || got != c {
		t.Fatalf("result subject's connector: %v, %v", got, err)
	}
	for _, bad := range []string{ProvisionSubject(c), "zoom.provision.results.acme", "zoom.provision.results.Acme.zoom"} {
		if _, err := ProvisionResultConnector(bad); err == nil {
			t.Errorf("%s read as a result's subject", bad)
		}
	}
	// The request stream must not capture results (and the other way).
	var req, res jetstream.StreamConfig
	for _, s := range Streams(1) {
		switch s.Name {
		case StreamProvision:
			req = s
		case StreamProvisionResults:
			res = s
		}
	}
	if !subjectMatches(req.Subjects[0], ProvisionSubject(c)) || subjectMatches(req.Subjects[0], ProvisionResultSubject(c)) ||
		!subjectMatches(res.Subjects[0], ProvisionResultSubject(c)) || subjectMatches(res.Subjects[0], ProvisionSubject(c)) {
		t.Fatalf("streams %v and %v do not split requests and results", req.Subjects, res.Subjects)
	}
	if ProvisionKey(c, "r1") == ProvisionKey(c, "r2") || ProvisionKey(c, "r1") == ProvisionKey(ConnectorRef{Tenant: "acme", ID: "zoom"}, "r1") {
		t.Fatal("provisioning keys collide")
	}
}

// subjectMatches reports whether a subject matches a filter with * and >.
func subjectMatches(filter, subject string) bool {
	f, s := splitDots(filter), splitDots(subject)
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
