package follow

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
)

// Position is how far a local copy goes.
type Position struct {
	// Sequence is the change sequence the records are consistent with:
	// the snapshot's, or the last event applied since.
	Sequence int64 `json:"sequence"`
	// Next is the CLARITY_ENTITLEMENTS stream sequence to read on from;
	// 0 when no snapshot was ever loaded.
	Next uint64 `json:"next"`
}

// Record is one record of the local copy.
type Record struct {
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
}

// Change is one applied event: a record's change, or a sync or
// provisioning event (Kind clarity.KindSync or clarity.KindProvisioning,
// Op the sync's or the result's), which changes no record.
type Change struct {
	ID       string          `json:"id"`
	Sequence int64           `json:"sequence"`
	Kind     string          `json:"kind"`
	Op       string          `json:"op"`
	Key      string          `json:"key"`
	Time     time.Time       `json:"time"`
	Data     json.RawMessage `json:"data"`
	// Removal is the removal extension of a service_user deleted event
	// (deleted, disassociated, absent).
	Removal string `json:"removal,omitempty"`
}

// IsRecord reports whether the change is a record's (not a sync or
// provisioning event).
func (c Change) IsRecord() bool {
	return c.Kind != clarity.KindSync && c.Kind != clarity.KindProvisioning
}

// Store keeps a local copy and its position across restarts. Commit and
// Reset are each all or nothing: after a crash, Load gives the records and
// position of the last one that returned nil, so that no change is applied
// twice.
type Store interface {
	// Load replays what was saved: the records of the last Reset as
	// created changes, then each committed change in order. It returns
	// the position they reach, the zero Position when nothing was saved.
	Load(ctx context.Context, fn func(Change) error) (Position, error)
	// Reset replaces every record with records, at pos.
	Reset(ctx context.Context, pos Position, records iter.Seq[Record]) error
	// Commit applies changes on top of what is saved and moves to pos.
	Commit(ctx context.Context, pos Position, changes []Change) error
}

// Compactor is a Store that asks, after a commit, for the whole copy again
// (a Reset at the current position) to bound what Load replays.
type Compactor interface {
	ShouldCompact() bool
}
