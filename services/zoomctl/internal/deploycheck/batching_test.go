package deploycheck

import (
	"regexp"
	"strconv"
	"testing"
)

// TestDeployedHintsCanCoalesceABulkChange: the fetcher holds at most
// HINT_CONCURRENCY re-read hints at once, and so a batch of them. A batch
// is listed instead of re-read user by user only when it holds more users
// than a listing of the account has pages (334 pages of 300 at 100,000
// users): a deployment that holds a few hints re-reads a bulk change of
// 10,000 users one request at a time.
func TestDeployedHintsCanCoalesceABulkChange(t *testing.T) {
	env := find(t, build(t), "ConfigMap", "zoom-connector-env")
	m := regexp.MustCompile(`(?m)^  HINT_CONCURRENCY: "?(\d+)"?$`).FindStringSubmatch(env.text)
	if m == nil {
		return // the fetcher's default, 5000
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	const least = 1000
	if n < least {
		t.Errorf("HINT_CONCURRENCY is %d in deploy/k8s: a batch of re-read hints holds at most that many users, "+
			"too few to list a bulk change instead of re-reading it user by user; want at least %d", n, least)
	}
}
