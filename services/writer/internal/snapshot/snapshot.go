// Package snapshot answers the request-reply clarity.snapshot.<tenant>.<connector>:
// every live record of a connector and the change sequence they are
// consistent with, in chunks the client asks for one after the other.
//
// # Protocol
//
// A request is JSON, at most 4 KiB:
//
//	{}                                 start a snapshot
//	{"limit":N}                        the same, at most N records a chunk
//	{"cursor":"…","limit":N}           the chunk after cursor
//
// limit is 1 to 10,000 (default 2,000). Every reply is one chunk:
//
//	{"sequence":"N","records":[{"kind":…,"key":…,"data":{…}},…],"next":"<cursor>"}
//
// at most about 512 KiB (half of NATS's 1 MiB payload), records in key order
// (kind, then key in byte order). Every chunk of one snapshot carries the same
// sequence; "next" is the cursor to ask for the following chunk with, and is
// "" on the last chunk. Flow control is the client's: nothing comes that it
// did not ask for. Applying, on top of the records, exactly the change
// events whose sequence is greater than N gives the current records.
//
// A refused request is answered {"error":"…","code":"…"}, code one of
// bad_request (fix the request), busy (too many snapshots being read: try
// again shortly), expired (the snapshot ended — the client was idle for
// more than a minute or took longer than its lifetime —: start again with
// {}), internal.
//
// # Why exported snapshots
//
// Every chunk must come from the same database snapshot, and the writer runs
// as several replicas sharing requests in a queue group, so the next chunk
// may reach another replica than the first. The replica that starts a
// snapshot therefore opens a read-only REPEATABLE READ transaction (see
// store.Snapshot for why it is consistent and blocks no writer), exports
// its snapshot (pg_export_snapshot) and keeps it open as the session's
// holder; the cursor names the exported snapshot, and whichever replica
// gets a request with it reads its chunk in a short transaction that
// imports that snapshot (SET TRANSACTION SNAPSHOT). A replica that serves
// a chunk tells the holder on zoom.snapshot.session.<id> (core NATS), which
// keeps the holder alive while the client reads and ends it after the last
// chunk. A holder also ends after Config.Idle without a chunk and after
// Config.Lifetime at most, since an open transaction holds back vacuum's
// horizon; and at most Config.MaxSessions are open per replica. Holders
// and chunk reads use a small pool of their own, so that the writer's
// connections stay the writer's.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
	wire "github.com/claritysecurity/zoom-connector/pkg/snapshot"
	"github.com/claritysecurity/zoom-connector/services/writer/internal/store"
)

// Subject is where the snapshot of connector c is asked for.
func Subject(c pipeline.ConnectorRef) string { return wire.Subject(c) }

// sessionPrefix starts the subjects on which replicas tell a session's
// holder that a chunk of it was served (internal to the writer).
const sessionPrefix = "zoom.snapshot.session."

// Reply codes.
const (
	CodeBadRequest = "bad_request"
	CodeBusy       = wire.CodeBusy
	CodeExpired    = wire.CodeExpired
	CodeInternal   = "internal"
)

// Limits of a request.
const (
	maxRequest   = 4 << 10
	maxCursor    = 2 << 10
	defaultLimit = 2000
	maxLimit     = 10000
)

// Request asks for a snapshot's first chunk (no Cursor) or the next one.
type Request struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// Record is one record of a chunk, as zoomctl snapshot prints it: the
// type its clients read (package snapshot of pkg).
type Record = wire.Record

// Reply is one chunk, or a refusal (Error and Code).
type Reply = wire.Chunk

// Config tunes the server; zero values are the defaults.
type Config struct {
	// MaxSessions bounds the snapshots this replica holds open. Default 4.
	MaxSessions int
	// Workers bounds the requests answered at once. Default 4.
	Workers int
	// Idle ends a session no chunk was asked of for that long. Default 1m.
	Idle time.Duration
	// Lifetime ends a session that long after it started. Default 15m:
	// a million records are some 400 chunks, read in well under a minute.
	Lifetime time.Duration
	// MaxBytes bounds a reply. Default 512 KiB, and at most half of the
	// server's maximum payload.
	MaxBytes int
}

func (c Config) withDefaults(maxPayload int64) Config {
	or := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	c.MaxSessions, c.Workers, c.MaxBytes = or(c.MaxSessions, 4), or(c.Workers, 4), or(c.MaxBytes, 512<<10)
	if maxPayload > 0 {
		c.MaxBytes = min(c.MaxBytes, int(maxPayload/2))
	}
	if c.Idle <= 0 {
		c.Idle = time.Minute
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 15 * time.Minute
	}
	return c
}

// server answers snapshot requests.
type server struct {
	cfg  Config
	pool *pgxpool.Pool
	nc   *nats.Conn
	log  zerolog.Logger

	mu       sync.Mutex
	sessions int // held, or being started
	holders  map[string]*holder
	wg       sync.WaitGroup // holders
}

// holder is a session's open transaction, waiting for its chunks to be read.
type holder struct {
	touched chan struct{} // a chunk was served (capacity 1: one pending is enough)
	done    chan struct{} // the last chunk was served
	once    sync.Once
}

// Serve answers snapshot requests until ctx ends; replicas share them (a
// queue group). Sessions read through a pool of their own, configured as
// pool is.
func Serve(ctx context.Context, nc *nats.Conn, pool *pgxpool.Pool, log zerolog.Logger, cfg Config) error {
	cfg = cfg.withDefaults(nc.MaxPayload())
	pcfg := pool.Config()
	pcfg.MaxConns, pcfg.MinConns = int32(cfg.MaxSessions+cfg.Workers), 0
	own, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("snapshot pool: %w", err)
	}
	defer own.Close()
	s := &server{cfg: cfg, pool: own, nc: nc, log: log, holders: map[string]*holder{}}

	sem := make(chan struct{}, cfg.Workers)
	var workers sync.WaitGroup
	req, err := nc.QueueSubscribe("clarity.snapshot.*.*", "writer", func(m *nats.Msg) {
		// The subscription's callback runs one message at a time: a
		// request is read on a goroutine of its own, Workers at most.
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		workers.Add(1)
		go func() {
			defer func() { <-sem; workers.Done() }()
			s.respond(ctx, m)
		}()
	})
	if err != nil {
		return fmt.Errorf("subscribe snapshot requests: %w", err)
	}
	ses, err := nc.Subscribe(sessionPrefix+"*", s.notified)
	if err != nil {
		_ = req.Unsubscribe()
		return fmt.Errorf("subscribe snapshot sessions: %w", err)
	}
	<-ctx.Done()
	// No new request, then no request on its way (one may start a
	// session), then no session, then the pool closes (deferred).
	_ = req.Unsubscribe()
	workers.Wait()
	_ = ses.Unsubscribe()
	s.stop()
	s.wg.Wait()
	return nil
}

func (s *server) respond(ctx context.Context, m *nats.Msg) {
	r := s.answer(ctx, m)
	if r.Code != "" {
		ev := s.log.Debug()
		if r.Code == CodeInternal {
			ev = s.log.Warn()
		}
		ev.Str("subject", m.Subject).Str("code", r.Code).Str("error", r.Error).Msg("snapshot request refused")
	}
	b, err := json.Marshal(r)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
		s.log.Warn().Err(err).Str("subject", m.Subject).Msg("snapshot reply")
	}
}

func refuse(code, format string, args ...any) Reply {
	return Reply{Code: code, Error: fmt.Sprintf(format, args...), Records: []Record{}}
}

func (s *server) answer(ctx context.Context, m *nats.Msg) Reply {
	c, err := pipeline.FromSubject(m.Subject)
	if err != nil {
		return refuse(CodeBadRequest, "%v", err)
	}
	if len(m.Data) > maxRequest {
		return refuse(CodeBadRequest, "request of %d bytes: at most %d", len(m.Data), maxRequest)
	}
	var req Request
	if len(strings.TrimSpace(string(m.Data))) > 0 {
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return refuse(CodeBadRequest, `request must be {} or {"cursor":"…","limit":N}: %v`, err)
		}
	}
	switch {
	case req.Limit == 0:
		req.Limit = defaultLimit
	case req.Limit < 0 || req.Limit > maxLimit:
		return refuse(CodeBadRequest, "limit %d: must be 1 to %d", req.Limit, maxLimit)
	}
	if len(req.Cursor) > maxCursor {
		return refuse(CodeBadRequest, "cursor of %d bytes: at most %d", len(req.Cursor), maxCursor)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if req.Cursor == "" {
		return s.start(ctx, c, req.Limit)
	}
	return s.next(ctx, c, req.Cursor, req.Limit)
}

// start opens a session, answers its first chunk, and keeps the session
// open for the next ones, unless that chunk was the last.
func (s *server) start(ctx context.Context, c pipeline.ConnectorRef, limit int) Reply {
	s.mu.Lock()
	if s.sessions >= s.cfg.MaxSessions {
		s.mu.Unlock()
		return refuse(CodeBusy, "%d snapshots are being read: try again shortly", s.cfg.MaxSessions)
	}
	s.sessions++
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		s.sessions--
		s.mu.Unlock()
	}
	sn, err := store.BeginSnapshot(ctx, s.pool, c)
	if err != nil {
		release()
		return refuse(CodeInternal, "%v", err)
	}
	id, err := sn.Export(ctx)
	var r Reply
	if err == nil {
		r, err = s.chunk(ctx, sn, id, store.Position{}, limit)
	}
	if err != nil || r.Next == "" {
		_ = sn.Close(ctx)
		release()
		if err != nil {
			return refuse(CodeInternal, "%v", err)
		}
		return r
	}
	// Registered before the reply goes, so that the client's next request,
	// served by any replica, finds the holder to tell.
	h := &holder{touched: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	s.holders[id] = h
	s.mu.Unlock()
	s.wg.Add(1)
	go s.hold(id, sn, h)
	return r
}

// hold keeps a session's transaction open until its last chunk is
// served, it is idle for Config.Idle, Config.Lifetime has passed, or the
// server stops.
func (s *server) hold(id string, sn *store.Snapshot, h *holder) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.holders, id)
		s.sessions--
		s.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sn.Close(cctx); err != nil {
			s.log.Warn().Err(err).Msg("close snapshot")
		}
	}()
	life := time.NewTimer(s.cfg.Lifetime)
	defer life.Stop()
	idle := time.NewTimer(s.cfg.Idle)
	defer idle.Stop()
	for {
		select {
		case <-h.done:
			return
		case <-life.C:
			return
		case <-idle.C:
			return
		case <-h.touched:
			idle.Reset(s.cfg.Idle)
		}
	}
}

// stop ends every holder, when the server stops.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.holders {
		h.once.Do(func() { close(h.done) })
	}
}

// notified hears that a chunk of a session was served, "end" when it was
// the last; only the replica holding the session acts on it.
func (s *server) notified(m *nats.Msg) {
	id := strings.TrimPrefix(m.Subject, sessionPrefix)
	s.mu.Lock()
	h := s.holders[id]
	s.mu.Unlock()
	if h == nil {
		return
	}
	if string(m.Data) == "end" {
		h.once.Do(func() { close(h.done) })
		return
	}
	select {
	case h.touched <- struct{}{}:
	default:
	}
}

// next answers the chunk after cursor, in a transaction that imports the
// session's snapshot, and tells the session's holder.
func (s *server) next(ctx context.Context, c pipeline.ConnectorRef, cursor string, limit int) Reply {
	id, cid, pos, err := parseCursor(cursor)
	if err != nil {
		return refuse(CodeBadRequest, "%v", err)
	}
	sn, err := store.ImportSnapshot(ctx, s.pool, c, id)
	if errors.Is(err, store.ErrSnapshotGone) {
		return refuse(CodeExpired, "snapshot expired: start again with {}")
	}
	if err != nil {
		return refuse(CodeInternal, "%v", err)
	}
	defer sn.Close(ctx) //nolint:errcheck
	if sn.ConnectorID() != cid {
		return refuse(CodeBadRequest, "cursor of another connector than %s", c)
	}
	r, err := s.chunk(ctx, sn, id, pos, limit)
	if err != nil {
		return refuse(CodeInternal, "%v", err)
	}
	note := "touch"
	if r.Next == "" {
		note = "end"
	}
	// At most once: a lost note lets the holder end at its idle timeout
	// (early only if notes keep being lost; the client then starts again).
	_ = s.nc.Publish(sessionPrefix+id, []byte(note))
	return r
}

// chunk reads the records after pos, at most limit of them and of at most
// Config.MaxBytes once encoded (one at least, however large).
func (s *server) chunk(ctx context.Context, sn *store.Snapshot, id string, pos store.Position, limit int) (Reply, error) {
	r := Reply{Sequence: strconv.FormatInt(sn.Sequence(), 10), Records: []Record{}}
	// What the reply holds besides its records, cursor included.
	size := 64 + len(r.Sequence) + 2*len(id) + 2*len(pos.Key) + 2*maxCursor
	full := false
	n, err := sn.Records(ctx, pos, limit, func(rec store.SnapshotRecord) bool {
		out := Record{Kind: pipeline.KindName(rec.Kind), Key: rec.Key, Data: rec.Data}
		b, err := json.Marshal(out)
		if err != nil {
			// Data the store holds is JSON; were it not, the record is
			// sent as null rather than the snapshot failing.
			out.Data = json.RawMessage("null")
			b, _ = json.Marshal(out)
		}
		if size+len(b)+1 > s.cfg.MaxBytes && len(r.Records) > 0 {
			full = true
			return false
		}
		size += len(b) + 1
		r.Records = append(r.Records, out)
		pos = store.Position{Kind: rec.Kind, Key: rec.Key}
		return true
	})
	if err != nil {
		return Reply{}, err
	}
	if full || n == limit {
		r.Next = formatCursor(id, sn.ConnectorID(), pos)
	}
	return r, nil
}

// A cursor is "<snapshot id>/<connector row id>/<kind>/<key>": the key,
// last, may hold any byte. Clients treat it as opaque.
func formatCursor(id string, cid int64, pos store.Position) string {
	return id + "/" + strconv.FormatInt(cid, 10) + "/" + strconv.Itoa(int(pos.Kind)) + "/" + pos.Key
}

func parseCursor(s string) (id string, cid int64, pos store.Position, err error) {
	parts := strings.SplitN(s, "/", 4)
	bad := errors.New("malformed cursor: pass the next of the previous reply")
	if len(parts) != 4 || !store.ValidSnapshotID(parts[0]) {
		return "", 0, pos, bad
	}
	cid, err1 := strconv.ParseInt(parts[1], 10, 64)
	kind, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil || kind < 0 || kind > 1000 {
		return "", 0, pos, bad
	}
	return parts[0], cid, store.Position{Kind: pb.Kind(kind), Key: parts[3]}, nil
}
