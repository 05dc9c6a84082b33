// Package snapshot is the client of the writer's request-reply
// clarity.snapshot.<tenant>.<connector>: every current record of a
// connector and the change sequence they are consistent with, read chunk by
// chunk (the protocol is described in the README, "Downstream: snapshot,
// then follow").
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// Record is one record of a snapshot, as zoomctl snapshot prints it.
type Record struct {
	Kind string          `json:"kind"`
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
}

// Chunk is one reply: the records of one chunk, the sequence every chunk of
// the snapshot carries, and the cursor of the next chunk ("" after the
// last); or a refusal (Error and Code).
type Chunk struct {
	Sequence string   `json:"sequence,omitempty"`
	Records  []Record `json:"records"`
	Next     string   `json:"next"`
	Error    string   `json:"error,omitempty"`
	Code     string   `json:"code,omitempty"`
}

// The refusal codes a client acts on.
const (
	CodeBusy    = "busy"
	CodeExpired = "expired"
)

// ErrExpired reports a snapshot the writer no longer holds (the client was
// idle too long, or read past the snapshot's lifetime): start again.
var ErrExpired = errors.New("snapshot expired")

// ErrBusy reports a writer that holds as many open snapshots as it may:
// try again shortly.
var ErrBusy = errors.New("snapshot service busy")

// Subject is where the snapshot of connector c is asked for.
func Subject(c pipeline.ConnectorRef) string { return "clarity.snapshot." + c.Key() }

// requestTimeout bounds the wait for one chunk.
const requestTimeout = 30 * time.Second

// Request reads a connector's snapshot from the writer over NATS, chunk by
// chunk (limit records at most each, 0 for the writer's default), asking
// for the next chunk only once fn has taken the previous one. It calls
// seqFn once with the snapshot's sequence, before any record. A refused
// request is an error; ErrExpired means start again, ErrBusy try again
// shortly. A reply is never larger than the connection's maximum payload,
// which bounds what one chunk may hold.
func Request(ctx context.Context, nc *nats.Conn, ref pipeline.ConnectorRef, limit int, seqFn func(int64) error, fn func(Record) error) error {
	subject := Subject(ref)
	cursor := ""
	seq := int64(-1)
	for {
		req, err := json.Marshal(struct {
			Cursor string `json:"cursor,omitempty"`
			Limit  int    `json:"limit,omitempty"`
		}{cursor, limit})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		m, err := nc.RequestWithContext(rctx, subject, req)
		cancel()
		if err != nil {
			return fmt.Errorf("request %s: %w", subject, err)
		}
		var c Chunk
		if err := json.Unmarshal(m.Data, &c); err != nil {
			return fmt.Errorf("decode snapshot chunk: %w", err)
		}
		switch {
		case c.Code == CodeExpired:
			return fmt.Errorf("%w: %s", ErrExpired, bound(c.Error))
		case c.Code == CodeBusy:
			return fmt.Errorf("%w: %s", ErrBusy, bound(c.Error))
		case c.Error != "" || c.Code != "":
			return fmt.Errorf("snapshot refused (%s): %s", bound(c.Code), bound(c.Error))
		}
		n, err := strconv.ParseInt(c.Sequence, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("snapshot chunk: sequence %q is not a decimal sequence", bound(c.Sequence))
		}
		switch {
		case seq < 0:
			seq = n
			if seqFn != nil {
				if err := seqFn(seq); err != nil {
					return err
				}
			}
		case n != seq:
			return fmt.Errorf("snapshot chunk at sequence %d, the snapshot's is %d", n, seq)
		}
		for _, r := range c.Records {
			if err := fn(r); err != nil {
				return err
			}
		}
		if c.Next == "" {
			return nil
		}
		cursor = c.Next
	}
}

// bound shortens a string from a reply for an error message.
func bound(s string) string { return pipeline.Bound(s, 200) }
