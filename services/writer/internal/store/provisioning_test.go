package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// TestRecordProvisioning stores a result once: its audit row and its event
// numbered after the changes committed before it; a redelivery changes
// nothing; a connector the deployment does not serve gets the audit row
// only, and no connector row.
func TestRecordProvisioning(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	applyChange(t, s, change(1, user(t, "u1", "a@example.com", "Ann")))
	before := take(t, pool)
	o := &pipeline.ProvisionOutcome{
		Tenant: ref.Tenant, Connector: ref.ID, AuditKey: "r1",
		Request:     clarity.ProvisionRequest{RequestID: "r1", Action: clarity.ActionDeactivateUser, User: "u1"},
		Result:      clarity.ProvisionResult{RequestID: "r1", Action: clarity.ActionDeactivateUser, Result: clarity.ResultSucceeded},
		RequestedBy: map[string]string{"Clarity-Requested-By": "alice"},
		ReceivedAt:  time.Now().Add(-time.Second).UTC(), FinishedAt: time.Now().UTC(),
		Calls: []pipeline.ZoomCall{{Call: "GET /users/{userId}", Status: 200}, {Call: "PUT /users/{userId}/status", Status: 200}},
	}
	fresh, err := s.RecordProvisioning(ctx, ref, o, true)
	if err != nil || !fresh {
		t.Fatalf("record: %v %v", fresh, err)
	}
	evs := take(t, pool)
	wantTypes(t, evs, "provisioning.succeeded r1")
	if evs[0].Seq != before[len(before)-1].Seq+1 {
		t.Errorf("result sequence %d, want the next after %d", evs[0].Seq, before[len(before)-1].Seq)
	}
	var data clarity.ProvisionResult
	if err := json.Unmarshal([]byte(evs[0].Data), &data); err != nil || data != o.Result {
		t.Errorf("event data %s, want %+v", evs[0].Data, o.Result)
	}
	// A redelivery.
	if fresh, err := s.RecordProvisioning(ctx, ref, o, true); err != nil || fresh {
		t.Fatalf("record again: %v %v", fresh, err)
	}
	wantTypes(t, take(t, pool))
	var by, calls string
	var status int
	if err := pool.QueryRow(ctx, `SELECT requested_by::text, calls::text, zoom_status FROM provisioning_audit WHERE audit_key = 'r1'`).
		Scan(&by, &calls, &status); err != nil {
		t.Fatal(err)
	}
	if by != `{"Clarity-Requested-By": "alice"}` || status != 0 || len(calls) < 40 {
		t.Errorf("audit row: %s %s %d", by, calls, status)
	}
	// A connector not served: audited, no event, no connector row.
	other := pipeline.ConnectorRef{Tenant: "default", ID: "nosuch"}
	o2 := *o
	o2.Connector, o2.AuditKey = other.ID, "seq:7"
	if fresh, err := s.RecordProvisioning(ctx, other, &o2, false); err != nil || !fresh {
		t.Fatalf("record for an unknown connector: %v %v", fresh, err)
	}
	wantTypes(t, take(t, pool))
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM connectors WHERE connector = 'nosuch'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("a connector row for an unknown connector: %d %v", n, err)
	}
	// Retention.
	if _, err := pool.Exec(ctx, `UPDATE provisioning_audit SET received_at = now() - interval '100 days' WHERE audit_key = 'r1'`); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneProvisioning(ctx, time.Now().Add(-90*24*time.Hour)); err != nil || n != 1 {
		t.Errorf("prune: %d %v, want 1", n, err)
	}
}

// TestRecordProvisioningUnstorableText: an outcome whose texts hold NUL or
// are not UTF-8 (which Postgres text and jsonb refuse) is recorded and
// published all the same, its texts cleaned, rather than refused on every
// redelivery.
func TestRecordProvisioningUnstorableText(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	o := &pipeline.ProvisionOutcome{
		Tenant: ref.Tenant, Connector: ref.ID, AuditKey: "r\x00nul",
		Request:     clarity.ProvisionRequest{RequestID: "r\x00nul", Action: "\x00", User: "u\x001"},
		Result:      clarity.ProvisionResult{RequestID: "r\x00nul", Action: "\x00", Result: clarity.ResultFailed, Error: "bad \xff\x00"},
		RequestedBy: map[string]string{"Clarity-Requested-By": "al\x00ice"},
		ReceivedAt:  time.Now().UTC(), FinishedAt: time.Now().UTC(),
		Calls: []pipeline.ZoomCall{{Call: "GET\x00", Status: 200}},
	}
	fresh, err := s.RecordProvisioning(ctx, ref, o, true)
	if err != nil || !fresh {
		t.Fatalf("record: %v %v", fresh, err)
	}
	wantTypes(t, take(t, pool), "provisioning.failed rnul")
	var by, errText string
	if err := pool.QueryRow(ctx, `SELECT requested_by::text, error FROM provisioning_audit WHERE audit_key = 'rnul'`).Scan(&by, &errText); err != nil {
		t.Fatal(err)
	}
	if by != `{"Clarity-Requested-By": "alice"}` || errText != "bad \uFFFD" {
		t.Errorf("audit row: %s %q", by, errText)
	}
}

// TestRecordProvisioningConflict: a request id run again (its result
// forgotten by the worker) finds the first run audited: nothing is
// recorded or published, and the conflict is reported; a redelivery of the
// first run's outcome is not a conflict.
func TestRecordProvisioningConflict(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	first := &pipeline.ProvisionOutcome{
		Tenant: ref.Tenant, Connector: ref.ID, AuditKey: "r-again",
		Request:    clarity.ProvisionRequest{RequestID: "r-again", Action: clarity.ActionDeactivateUser, User: "u1"},
		Result:     clarity.ProvisionResult{RequestID: "r-again", Action: clarity.ActionDeactivateUser, Result: clarity.ResultSucceeded},
		ReceivedAt: time.Now().Add(-time.Minute).UTC(), FinishedAt: time.Now().Add(-time.Minute).UTC(),
	}
	if fresh, err := s.RecordProvisioning(ctx, ref, first, true); err != nil || !fresh {
		t.Fatalf("record: %v %v", fresh, err)
	}
	take(t, pool)
	if fresh, err := s.RecordProvisioning(ctx, ref, first, true); err != nil || fresh {
		t.Fatalf("a redelivery: %v %v; want nothing new and no error", fresh, err)
	}
	again := *first
	again.Result.Result = clarity.ResultAlreadyInEffect
	again.ReceivedAt, again.FinishedAt = time.Now().UTC(), time.Now().UTC()
	for _, event := range []bool{true, false} {
		if fresh, err := s.RecordProvisioning(ctx, ref, &again, event); fresh || !errors.Is(err, store.ErrAuditConflict) {
			t.Fatalf("another run (event %v): %v %v; want ErrAuditConflict", event, fresh, err)
		}
	}
	wantTypes(t, take(t, pool))
	var result string
	if err := pool.QueryRow(ctx, `SELECT result FROM provisioning_audit WHERE audit_key = 'r-again'`).Scan(&result); err != nil || result != clarity.ResultSucceeded {
		t.Fatalf("audit row: %q %v; want the first run's", result, err)
	}
}
