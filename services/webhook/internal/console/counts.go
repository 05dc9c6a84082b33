package console

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// The console's questions to the writer about records per kind.
const (
	// countsEvery is how often a connector's counts are asked for again
	// while its pages are viewed.
	countsEvery = 30 * time.Second
	// countsTimeout bounds one request: longer than the writer's own
	// bound on a count (30 s; a large connector takes seconds), so that a
	// slow count's answer is kept for the next view rather than lost.
	countsTimeout = 35 * time.Second
	// countsWait is how long a page waits for counts it has none of (or
	// only counts from before a run ended): never longer.
	countsWait = 2 * time.Second
	// countsKeep is how long counts are shown while newer ones do not
	// come: after that the page says they are unavailable.
	countsKeep = 3 * countsEvery
)

// Counts are a connector's live records per kind, as the writer counted
// them, or why they are not known.
type Counts struct {
	Records map[string]int64
	// At is when the writer counted them.
	At time.Time
	// Unavailable says why no counts are shown; "" when Records hold.
	Unavailable string
}

// Cell is one kind's count as a page shows it.
func (c Counts) Cell(kind string) string {
	if c.Unavailable != "" || c.Records == nil {
		return "–"
	}
	return strconv.FormatInt(c.Records[kind], 10)
}

// counts asks the writer for each connector's live records per kind
// (pipeline.CountsSubject), keeps the answers, and asks again in the
// background while pages are viewed.
type counts struct {
	nc  *nats.Conn
	now func() time.Time

	mu   sync.Mutex
	conn map[pipeline.ConnectorRef]*countEntry
}

type countEntry struct {
	got   Counts
	asked time.Time // when the request whose answer got holds was sent
	// askedEnd is the last run's end (endKey) when that request was sent;
	// seenEnd the last run's end the pages know of, seen first at seenAt.
	askedEnd, seenEnd string
	seenAt            time.Time
	// pending closes when the request out ends; nil when none is.
	pending chan struct{}
	last    time.Time // when the last request was sent
	viewed  time.Time // when a page last showed them
}

func newCounts(nc *nats.Conn, now func() time.Time) *counts {
	return &counts{nc: nc, now: now, conn: map[pipeline.ConnectorRef]*countEntry{}}
}

// endKey names a connector's last finished run, "" if none: counts asked
// for before a new one ended are stale.
func endKey(a Snapshot) string {
	last, ok := a.Last()
	if !ok {
		return ""
	}
	return last.RunID + " " + last.Result + " " + last.Finished.UTC().Format(time.RFC3339Nano)
}

// of returns the connector's counts. end is its last run's end (endKey).
// A request is sent when none was for countsEvery, or when a run ended
// since the counts shown were asked for (they are then stale: that
// request asks for a count begun after the console saw the end); of waits
// for it until deadline at most when it has no counts to show, or stale
// ones.
func (c *counts) of(deadline time.Time, ref pipeline.ConnectorRef, end string) Counts {
	if c.nc == nil {
		return Counts{Unavailable: "The console has no connection to ask the writer for record counts."}
	}
	now := c.now()
	c.mu.Lock()
	e := c.conn[ref]
	if e == nil {
		if len(c.conn) >= maxConnectors {
			c.forget(now)
		}
		if len(c.conn) >= maxConnectors {
			c.mu.Unlock()
			return Counts{Unavailable: "Too many connectors to count."}
		}
		e = &countEntry{}
		c.conn[ref] = e
	}
	e.viewed = now
	if end != e.seenEnd {
		e.seenEnd, e.seenAt = end, now
	}
	stale := e.asked.IsZero() || e.askedEnd != e.seenEnd
	if e.pending == nil && (stale || now.Sub(e.last) >= countsEvery) {
		e.pending = make(chan struct{})
		e.last = now
		maxAge := time.Duration(0)
		if e.askedEnd != e.seenEnd && e.seenEnd != "" {
			maxAge = max(time.Millisecond, now.Sub(e.seenAt))
		}
		go c.ask(ref, e, now, e.seenEnd, maxAge)
	}
	// Counts older than countsKeep are not shown: the page waits for the
	// request just sent, as for counts it has none of.
	pending, shown := e.pending, !stale && e.got.Unavailable == "" && now.Sub(e.asked) <= countsKeep
	c.mu.Unlock()
	if !shown && pending != nil {
		t := time.NewTimer(max(0, deadline.Sub(now)))
		select {
		case <-pending:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	got := e.got
	switch {
	case got.Unavailable != "":
	case e.asked.IsZero():
		got = Counts{Unavailable: "The record counts are being asked of the writer."}
	case e.askedEnd != e.seenEnd:
		got = Counts{Unavailable: "The record counts are being asked of the writer again: a sync just ended."}
	case c.now().Sub(e.asked) > countsKeep:
		got = Counts{Unavailable: "The writer has not given record counts for a while."}
	}
	return got
}

// forget drops the counts of connectors no page showed for countsKeep
// (removed ones, say), with no request out. c.mu is held.
func (c *counts) forget(now time.Time) {
	for ref, e := range c.conn {
		if e.pending == nil && now.Sub(e.viewed) > countsKeep {
			delete(c.conn, ref)
		}
	}
}

// ask sends one request and keeps its answer.
func (c *counts) ask(ref pipeline.ConnectorRef, e *countEntry, asked time.Time, end string, maxAge time.Duration) {
	var body []byte
	if maxAge > 0 {
		body, _ = json.Marshal(pipeline.CountsRequest{MaxAgeMS: max(1, maxAge.Milliseconds())})
	}
	ctx, cancel := context.WithTimeout(context.Background(), countsTimeout)
	defer cancel()
	var got Counts
	m, err := c.nc.RequestWithContext(ctx, pipeline.CountsSubject(ref), body)
	var r pipeline.RecordCounts
	switch {
	case err != nil:
		got.Unavailable = "The record counts are unavailable: the writer did not answer (" + bound(err.Error(), 120) + ")."
	case len(m.Data) > pipeline.MaxCountsReply || json.Unmarshal(m.Data, &r) != nil:
		got.Unavailable = "The record counts are unavailable: the writer's answer could not be read."
	case r.Error != "":
		got.Unavailable = "The record counts are unavailable: " + bound(r.Error, 200) + "."
	default:
		got = Counts{Records: make(map[string]int64, len(r.Records)), At: r.CountedAt}
		for k, v := range r.Records {
			if len(got.Records) < 16 {
				got.Records[bound(k, 64)] = v
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e.got, e.asked, e.askedEnd = got, asked, end
	close(e.pending)
	e.pending = nil
}
