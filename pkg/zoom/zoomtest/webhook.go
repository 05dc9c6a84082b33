package zoomtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Delivery is one webhook notification the simulator made, and what became
// of it. With no webhook URL set the notification is still built and logged,
// with an empty URL and no status, so that tests can look at it.
type Delivery struct {
	// Event is the event name, such as "user.deactivated".
	Event string `json:"event"`
	// Account is the id of the account the notification is about, whose
	// subscription it went to.
	Account string `json:"account,omitempty"`
	// URL is where it was sent; empty when no webhook URL was set.
	URL string `json:"url,omitempty"`
	// Body is the exact request body, the bytes the signature covers.
	Body json.RawMessage `json:"body"`
	// Timestamp and Signature are the x-zm-request-timestamp and
	// x-zm-signature headers.
	Timestamp string `json:"timestamp"`
	Signature string `json:"signature"`
	// Status is the receiver's HTTP status, 0 when there was no answer.
	Status int `json:"status,omitempty"`
	// Err is why the delivery failed to get an answer (timeout, refused
	// connection); nil otherwise.
	Err error `json:"-"`
}

// Sent reports whether the notification got an answer in the 2xx range, the
// only answer Zoom counts as delivered.
func (d Delivery) Sent() bool { return d.Err == nil && d.Status >= 200 && d.Status < 300 }

// MarshalJSON adds the error text, which error values do not marshal.
func (d Delivery) MarshalJSON() ([]byte, error) {
	type plain Delivery
	var errText string
	if d.Err != nil {
		errText = d.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Error string `json:"error,omitempty"`
	}{plain(d), errText})
}

// envelope and payload give the notification body the field order of Zoom's
// examples: event, event_ts, payload{account_id, operator, operator_id,
// creation_type, time_stamp, object, old_object}.
type envelope struct {
	Event   string  `json:"event"`
	EventTS int64   `json:"event_ts"`
	Payload payload `json:"payload"`
}

type payload struct {
	AccountID    string         `json:"account_id"`
	Operator     string         `json:"operator,omitempty"`
	OperatorID   string         `json:"operator_id,omitempty"`
	CreationType string         `json:"creation_type,omitempty"`
	TimeStamp    int64          `json:"time_stamp,omitempty"`
	Object       map[string]any `json:"object"`
	OldObject    map[string]any `json:"old_object,omitempty"`
}

const eventLogCap = 10000

// eventLog keeps the most recent deliveries.
type eventLog struct {
	mu   sync.Mutex
	list []Delivery
}

func (l *eventLog) add(d Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.list) >= eventLogCap {
		l.list = append(l.list[:0], l.list[len(l.list)-eventLogCap/2:]...)
	}
	l.list = append(l.list, d)
}

// Events returns the webhook notifications made so far (the most recent
// 10,000 at most), in order, sent or not.
func (s *Server) Events() []Delivery {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return append([]Delivery(nil), s.events.list...)
}

// ResetEvents empties the log of notifications.
func (s *Server) ResetEvents() {
	s.events.mu.Lock()
	s.events.list = nil
	s.events.mu.Unlock()
}

// Sign computes Zoom's webhook signature of a body sent at timestamp (Unix
// seconds, as in x-zm-request-timestamp): "v0=" and the hex HMAC-SHA256 of
// "v0:{timestamp}:{body}" keyed with the webhook secret token.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:", timestamp)
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// deliver builds, signs, sends and logs one notification of the account.
func (a *Account) deliver(ctx context.Context, ev event) Delivery {
	env := envelope{
		Event:   ev.name,
		EventTS: ev.at.UnixMilli(),
		Payload: payload{AccountID: a.id, CreationType: ev.creationType, Object: ev.object, OldObject: ev.oldObject},
	}
	if ev.operator {
		env.Payload.Operator, env.Payload.OperatorID = ev.operatorEmail, ev.operatorID
	}
	if ev.timeStamp {
		env.Payload.TimeStamp = ev.at.UnixMilli()
	}
	return a.send(ctx, ev.name, mustJSON(env))
}

// mustJSON marshals the simulator's own notification bodies, which are
// maps of strings, ints and slices and structs of them: they always
// marshal.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// send signs a notification body with the account's secret token, sends it
// to the account's webhook URL and logs it. Zoom gives an endpoint 3
// seconds; the client's timeout (Options.WebhookTimeout) does the same here.
func (a *Account) send(ctx context.Context, name string, body []byte) Delivery {
	s := a.srv
	ts := strconv.FormatInt(s.now().Unix(), 10)
	d := Delivery{Event: name, Account: a.id, Body: body, Timestamp: ts, Signature: Sign(a.WebhookSecret(), ts, body), URL: a.WebhookURL()}
	if d.URL != "" {
		d.Status, d.Err = s.post(ctx, d)
	}
	s.events.add(d)
	return d
}

func (s *Server) post(ctx context.Context, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	rid := make([]byte, 16)
	_, _ = rand.Read(rid)
	h := req.Header
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("User-Agent", "Zoom Marketplace/1.0a")
	h.Set("x-zm-request-timestamp", d.Timestamp)
	h.Set("x-zm-signature", d.Signature)
	h.Set("x-zm-request-id", hex.EncodeToString(rid))
	h.Set("x-zm-trackingid", "v=2.0;clid=us06;rid="+hex.EncodeToString(rid[:8]))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("deliver %s: %w", d.Event, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
