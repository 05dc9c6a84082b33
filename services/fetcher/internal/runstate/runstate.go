// Package runstate coordinates full-sync runs across fetcher replicas with a
// JetStream key-value bucket: one key per connector (its Key) holds the
// active run and the triggers it serves. Compare-and-set on the key's
// revision makes "at most one run per connector" hold without a lock
// service.
package runstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// State is the value stored for a connector.
type State struct {
	RunID       string   `json:"run_id"`
	StartedAtMs int64    `json:"started_at_ms"`
	Mode        string   `json:"mode"`
	RequestIDs  []string `json:"request_ids"`
	Active      bool     `json:"active"`
	// TriggerSeq is the stream sequence of the trigger whose handler runs
	// the sync; a redelivery of that trigger resumes the run.
	TriggerSeq uint64 `json:"trigger_seq"`
	// Attempt counts the fetches of this run (resumes after a crash or a
	// shutdown).
	Attempt int `json:"attempt"`
	// Ended is set just before the run's end (its manifest, or its
	// failure) is published, with the request ids it names: a resumed
	// run whose end may be out already does not fetch again, and the
	// triggers that joined after it get a run of their own.
	Ended    bool     `json:"ended,omitempty"`
	EndedFor []string `json:"ended_for,omitempty"`
}

// Store reads and writes run states.
type Store struct {
	kv  jetstream.KeyValue
	js  jetstream.JetStream
	now func() time.Time
}

// Open creates the bucket if needed.
func Open(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      pipeline.RunsBucket,
		Description: "the active full-sync run of each connector",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open run state bucket: %w", err)
	}
	return &Store{kv: kv, js: js, now: time.Now}, nil
}

// Decision says what a trigger handler must do.
type Decision int

// Decisions of Claim.
const (
	// Coalesced: a run is already active; the trigger joined it.
	Coalesced Decision = iota
	// Start: a new run was claimed for this trigger.
	Start
	// Resume: this trigger's run was interrupted; fetch it again.
	Resume
	// Served: a late redelivery of the trigger whose run has already ended.
	Served
)

// Claim decides, atomically, what the trigger with stream sequence seq does.
// The returned state and revision belong to the claimed run.
func (s *Store) Claim(ctx context.Context, c pipeline.ConnectorRef, seq uint64, requestID, mode string) (Decision, State, uint64, error) {
	k := c.Key()
	for {
		st, rev, err := s.get(ctx, k)
		if err != nil {
			return 0, st, 0, err
		}
		var d Decision
		orphan := false
		if st.Active && st.TriggerSeq != seq {
			if orphan, err = s.driverGone(ctx, st.TriggerSeq); err != nil {
				return 0, st, 0, err
			}
		}
		switch {
		case st.Active && st.TriggerSeq != seq && !orphan:
			if requestID == "" || slices.Contains(st.RequestIDs, requestID) {
				return Coalesced, st, rev, nil
			}
			st.RequestIDs = append(st.RequestIDs, requestID)
			d = Coalesced
		case st.Active && !orphan:
			st.Attempt++
			d = Resume
		case st.TriggerSeq == seq && st.RunID != "":
			// The run this trigger started has ended; the delivery is a
			// leftover (handed back while another delivery finished it).
			return Served, st, rev, nil
		default:
			// No run, or an orphan: a new run for this trigger. (The
			// writer fails an orphaned run once it makes no progress.)
			started := s.now().UnixMilli()
			if started <= st.StartedAtMs {
				// Generations must grow even if clocks step back.
				started = st.StartedAtMs + 1
			}
			st = State{RunID: NewRunID(), StartedAtMs: started, Mode: mode, Active: true, TriggerSeq: seq, Attempt: 1}
			if requestID != "" {
				st.RequestIDs = []string{requestID}
			}
			d = Start
		}
		newRev, err := s.put(ctx, k, st, rev)
		if errors.Is(err, ErrConflict) {
			continue // another replica changed the key first; decide again
		}
		if err != nil {
			return 0, st, 0, err
		}
		return d, st, newRev, nil
	}
}

// driverGone reports whether the trigger with stream sequence seq, whose
// handler drives the active run, has left the trigger stream (a work
// queue) without the run being closed: its handler settled it for good
// (dead-lettered after a panic, or out of deliveries). Nobody drives that
// run any more, and without this test every later trigger would join it.
func (s *Store) driverGone(ctx context.Context, seq uint64) (bool, error) {
	stream, err := s.js.Stream(ctx, pipeline.StreamSync)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil // not this deployment's (tests without streams)
	}
	if err != nil {
		return false, fmt.Errorf("read trigger stream: %w", err)
	}
	if _, err := stream.GetMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return true, nil
		}
		return false, fmt.Errorf("read the run's trigger: %w", err)
	}
	return false, nil
}

// Current returns the connector's state and its revision.
func (s *Store) Current(ctx context.Context, c pipeline.ConnectorRef) (State, uint64, error) {
	return s.get(ctx, c.Key())
}

// ErrConflict reports that the state changed since it was read.
var ErrConflict = errors.New("runstate: state changed concurrently")

// Close marks the run at revision rev finished. It fails with ErrConflict
// when the state changed since (a trigger joined).
func (s *Store) Close(ctx context.Context, c pipeline.ConnectorRef, st State, rev uint64) error {
	st.Active = false
	_, err := s.put(ctx, c.Key(), st, rev)
	return err
}

// Update stores st at revision rev and returns the new revision.
func (s *Store) Update(ctx context.Context, c pipeline.ConnectorRef, st State, rev uint64) (uint64, error) {
	return s.put(ctx, c.Key(), st, rev)
}

func (s *Store) get(ctx context.Context, k string) (State, uint64, error) {
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("read run state: %w", err)
	}
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		// A value no fetcher can read is replaced by the next claim.
		return State{}, e.Revision(), nil
	}
	return st, e.Revision(), nil
}

func (s *Store) put(ctx context.Context, k string, st State, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	var n uint64
	if rev == 0 {
		n, err = s.kv.Create(ctx, k, b)
	} else {
		n, err = s.kv.Update(ctx, k, b, rev)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, ErrConflict
	default:
		return 0, fmt.Errorf("write run state: %w", err)
	}
}

// NewRunID returns a new random run id.
func NewRunID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
