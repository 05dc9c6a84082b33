package normalize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// WebhookSource is the RecordBatch.Source of every batch built from a Zoom
// webhook event.
const WebhookSource = "webhook"

// An event's time becomes the version of the records it changes, and a
// record keeps its version until newer input comes: a full sync's input is
// as new as the sync's start. An event dated in the future would therefore
// outlive every full sync until that date, and with it whatever it said,
// however wrong. So an event's time is not believed beyond its receipt.
const (
	// MaxEventSkew is how far after its receipt an event's time is taken
	// as it is: Zoom's clock and the connector's may disagree by seconds.
	// A later time is taken as the receipt plus MaxEventSkew, so that
	// the event still orders after everything Zoom sent before it, and a
	// full sync started a minute after its receipt overrides it.
	MaxEventSkew = time.Minute
	// MaxEventAhead is how far after its receipt an event may be dated
	// at all: no clock is a day wrong by accident, and an event that
	// claims a later time is refused (ErrFutureEvent) rather than
	// trusted with a made-up one.
	MaxEventAhead = 24 * time.Hour
)

// ErrFutureEvent marks a webhook event dated more than MaxEventAhead after
// its receipt. It wraps ErrBadPage: no retry makes the event any less
// wrong.
var ErrFutureEvent = fmt.Errorf("%w: event dated in the future", ErrBadPage)

// Result is what the pipeline does about one webhook event: write Batch,
// ask the fetcher to re-read the users of Hints, both, or nothing at all
// (Ignored).
type Result struct {
	// Batch is the incremental change for the writer, nil when there is none.
	Batch *pb.RecordBatch
	// Hints name users to re-read with GET /users/{id}. Tenant and Connector
	// are left for the caller, who knows them.
	Hints []*pb.FetchUser
	// Ignored is true for an event that changes no record: one the
	// connector does not handle (user.signed_in, group.settings_updated, …),
	// or one that carries nothing to act on (a group.updated that did not
	// rename the group, a member event without member ids).
	Ignored bool
}

// notification is the part of a Zoom notification body the mapping reads.
// The payload stays raw until the event is known to be one the connector
// handles, so that an odd payload of an ignored event is ignored with it.
type notification struct {
	Event   string          `json:"event"`
	EventTS millis          `json:"event_ts"`
	Payload json.RawMessage `json:"payload"`
}

type payload struct {
	TimeStamp millis          `json:"time_stamp"`
	Object    json.RawMessage `json:"object"`
}

// millis is an epoch-milliseconds time that reads as 0 when it is anything
// but a positive number: the times only order events, each has a fallback,
// and a genuine event must not be lost over a malformed one.
type millis int64

func (m *millis) UnmarshalJSON(b []byte) error {
	*m = 0
	s := string(b)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil && v > 0 {
		*m = millis(v)
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f < math.MaxInt64 {
		*m = millis(f)
	}
	return nil
}

// webhookUser is the object of the user events.
type webhookUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// webhookGroup is the object of the group events. Name is a pointer because
// group.updated carries only the id and the fields that changed.
type webhookGroup struct {
	ID      string          `json:"id"`
	Name    *string         `json:"name"`
	Members []webhookMember `json:"members"`
	Admins  []webhookMember `json:"admins"`
}

// webhookMember is one item of a group event's members or admins.
type webhookMember struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Webhook maps one verified Zoom event notification to what the pipeline
// does about it. received is the time the notification was received, in
// epoch milliseconds: the caller passes the time JetStream stored it, which
// no replica's clock can move, or 0 to use the time the webhook service
// wrote in it (ev.ReceivedAtMs).
//
// Its version, the Zoom time every batch and hint carries, is the event's
// event_ts, else the payload's time_stamp, else the time of receipt; a time
// later than the receipt plus MaxEventSkew is taken as that, and one later
// than the receipt plus MaxEventAhead is refused with ErrFutureEvent. An
// error wraps ErrBadPage: the body is not JSON, an event the connector
// handles lacks the ids it needs, or it is dated too far ahead.
//
// Ids, emails and names are cut to their bounds as the listings' are
// (BoundID, BoundValue), so that an event names the records a full sync
// makes; a hint keeps the user id as Zoom wrote it, for the fetcher to read
// the user by.
//
// User events carry only some of the user's fields (user.updated only those
// that changed), so they do not write the user: they ask the fetcher to
// re-read it, and the whole answer replaces the user's state at the event's
// time. Group events carry everything their change needs and become a batch.
func Webhook(ev *pb.WebhookEvent, received int64) (Result, error) {
	var n notification
	if err := json.Unmarshal(ev.GetBody(), &n); err != nil {
		return Result{}, fmt.Errorf("%w: decode webhook event: %w", ErrBadPage, err)
	}
	name := n.Event
	if name == "" {
		name = ev.GetEvent()
	}
	var handle func(string, json.RawMessage, int64) (Result, error)
	switch name {
	case "user.created", "user.updated", "user.activated", "user.deactivated", "user.invitation_accepted",
		"user.deleted", "user.disassociated":
		handle = userEvent
	case "group.created", "group.updated", "group.deleted",
		"group.member_added", "group.member_deleted", "group.members_deleted",
		"group.admin_added", "group.admin_deleted":
		handle = groupEvent
	default:
		return Result{Ignored: true}, nil
	}
	var p payload
	if len(n.Payload) == 0 || bytes.Equal(n.Payload, []byte("null")) {
		return Result{}, fmt.Errorf("%w: %s without payload", ErrBadPage, name)
	}
	if err := json.Unmarshal(n.Payload, &p); err != nil {
		return Result{}, fmt.Errorf("%w: decode %s payload: %w", ErrBadPage, name, err)
	}
	if received <= 0 {
		received = ev.GetReceivedAtMs()
	}
	version := ev.GetEventTsMs()
	for _, v := range []int64{int64(n.EventTS), int64(p.TimeStamp), received} {
		if version > 0 {
			break
		}
		version = v
	}
	// The writer orders changes by this time and refuses a change without
	// one; the receiver always sets received_at, so only a hand-made event
	// lacks every time.
	if version <= 0 {
		return Result{}, fmt.Errorf("%w: %s without a time", ErrBadPage, name)
	}
	version, err := notAhead(name, version, received)
	if err != nil {
		return Result{}, err
	}
	return handle(name, p.Object, version)
}

// notAhead returns the version of an event dated version and received at
// received (both epoch ms): version itself, or the receipt plus
// MaxEventSkew when it is later than that, or ErrFutureEvent when it is
// later than the receipt plus MaxEventAhead. Without a time of receipt (a
// hand-made event) there is nothing to compare with, and version stands.
func notAhead(name string, version, received int64) (int64, error) {
	if received <= 0 {
		return version, nil
	}
	if version-received > MaxEventAhead.Milliseconds() {
		return 0, fmt.Errorf("%w: %s dated %s, more than %s after its receipt at %s", ErrFutureEvent, name,
			time.UnixMilli(version).UTC().Format(time.RFC3339Nano), MaxEventAhead,
			time.UnixMilli(received).UTC().Format(time.RFC3339Nano))
	}
	return min(version, received+MaxEventSkew.Milliseconds()), nil
}

// userEvent maps the user events.
func userEvent(name string, object json.RawMessage, version int64) (Result, error) {
	var u webhookUser
	if err := decodeObject(name, object, &u); err != nil {
		return Result{}, err
	}
	if u.ID == "" {
		return Result{}, fmt.Errorf("%w: %s without user id", ErrBadPage, name)
	}
	// The keys are those the listings give the user: of its id and email
	// cut to their bounds.
	id, email := BoundID(u.ID), BoundID(u.Email)
	switch name {
	case "user.deleted", "user.disassociated":
		// Both leave the account; only these events tell them apart, and
		// the deletion says which (a disassociated person keeps a Zoom
		// account of their own under the same email).
		// A pending invitee is stored under its email, not its id.
		removal := clarity.RemovalDeleted
		if name == "user.disassociated" {
			removal = clarity.RemovalDisassociated
		}
		return Result{Batch: webhookBatch(version, func(b *pb.RecordBatch) {
			b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: id, Removal: removal}}
			if normEmail(email) != "" {
				b.Deletes = append(b.Deletes, &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER, Key: clarity.UserKey("", email), Removal: removal})
			}
		})}, nil
	}
	res := Result{Hints: []*pb.FetchUser{{UserId: u.ID, VersionMs: version}}}
	if name == "user.invitation_accepted" && normEmail(email) != "" {
		// The invitee was listed as pending, keyed by email; now it has an
		// id and is re-read under it. The pending record gives way, its
		// grants and attributes with it. The key is spelled as UserKey
		// spells a pending user's, or it would miss the record.
		res.Batch = webhookBatch(version, func(b *pb.RecordBatch) {
			b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: clarity.UserKey("", email)}}
		})
	}
	return res, nil
}

// groupEvent maps the group events.
func groupEvent(name string, object json.RawMessage, version int64) (Result, error) {
	var g webhookGroup
	if err := decodeObject(name, object, &g); err != nil {
		return Result{}, err
	}
	if g.ID == "" {
		return Result{}, fmt.Errorf("%w: %s without group id", ErrBadPage, name)
	}
	// The group's entitlements are keyed by its id cut to its bound, as
	// the groups listing cuts it.
	g.ID = BoundID(g.ID)
	var fill func(*pb.RecordBatch)
	switch name {
	case "group.created", "group.updated":
		// group.updated carries only what changed: without a name there
		// is nothing the records hold that changed. group.created always
		// names the group; should it not, the empty name is what Zoom
		// said, and the next full sync corrects it.
		if name == "group.updated" && (g.Name == nil || *g.Name == "") {
			return Result{Ignored: true}, nil
		}
		zg := zoom.Group{ID: g.ID}
		if g.Name != nil {
			zg.Name = *g.Name
		}
		member, admin := GroupEntitlements(&zg)
		fill = func(b *pb.RecordBatch) {
			b.Records = []*pb.Record{EntitlementRecord(&member), EntitlementRecord(&admin)}
		}
	case "group.deleted":
		fill = func(b *pb.RecordBatch) {
			b.Deletes = []*pb.RecordRef{
				{Kind: pb.Kind_KIND_ENTITLEMENT, Key: clarity.GroupKey(g.ID)},
				{Kind: pb.Kind_KIND_ENTITLEMENT, Key: clarity.GroupAdminKey(g.ID)},
			}
		}
	case "group.member_added":
		// A member may be an invitee, whom the listings key by email:
		// the grant goes to both keys, and the writer keeps only the one
		// whose user exists (a grant of no user waits for the next sync).
		keys := memberKeys(g.Members)
		if len(keys) == 0 {
			return Result{Ignored: true}, nil
		}
		recs := make([]*pb.Record, len(keys))
		for i, k := range keys {
			recs[i] = GrantRecord(k, clarity.GroupKey(g.ID))
		}
		fill = func(b *pb.RecordBatch) { b.Records = recs }
	case "group.member_deleted", "group.members_deleted":
		// Zoom's own example of group.member_deleted names itself
		// group.members_deleted; both spellings mean the same.
		keys := memberKeys(g.Members)
		if len(keys) == 0 {
			return Result{Ignored: true}, nil
		}
		dels := make([]*pb.RecordRef, len(keys))
		for i, k := range keys {
			dels[i] = &pb.RecordRef{Kind: pb.Kind_KIND_SERVICE_USER_ENTITLEMENT, Key: clarity.GrantKey(k, clarity.GroupKey(g.ID))}
		}
		fill = func(b *pb.RecordBatch) { b.Deletes = dels }
	case "group.admin_added", "group.admin_deleted":
		// Zoom names admins by email (the id is optional in the event, and
		// absent from the admin listing): the writer resolves emails to
		// users, as it does for a full sync's admin pages.
		emails := make([]string, 0, len(g.Admins))
		for _, a := range g.Admins {
			emails = append(emails, a.Email)
		}
		emails = AdminEmails(emails)
		if len(emails) == 0 {
			return Result{Ignored: true}, nil
		}
		admins := []*pb.GroupAdmins{{GroupId: g.ID, Emails: emails}}
		fill = func(b *pb.RecordBatch) {
			if name == "group.admin_added" {
				b.AdminsAdded = admins
			} else {
				b.AdminsRemoved = admins
			}
		}
	}
	return Result{Batch: webhookBatch(version, fill)}, nil
}

// webhookBatch is a batch of incremental changes at version, filled by fill.
func webhookBatch(version int64, fill func(*pb.RecordBatch)) *pb.RecordBatch {
	b := &pb.RecordBatch{VersionMs: version, Source: WebhookSource}
	fill(b)
	return b
}

// decodeObject decodes payload.object of an event the connector handles; a
// missing or null object is as bad as a malformed one.
func decodeObject(name string, object json.RawMessage, v any) error {
	if len(object) == 0 || bytes.Equal(object, []byte("null")) {
		return fmt.Errorf("%w: %s without payload.object", ErrBadPage, name)
	}
	if err := json.Unmarshal(object, v); err != nil {
		return fmt.Errorf("%w: decode %s object: %w", ErrBadPage, name, err)
	}
	return nil
}

// memberKeys are the distinct user keys members may have, in order: each
// member's id, and for a member with an email the key of an invitee of that
// email, as the pending listing keys it (Zoom's events carry both, and do
// not say whether the member's invitation is pending). Ids and emails are
// cut to their bounds as a listed user's are. A member with neither has no
// key; a repeat would put one record twice in a batch.
func memberKeys(ms []webhookMember) []string {
	keys := make([]string, 0, 2*len(ms))
	done := make(map[string]bool, 2*len(ms))
	add := func(k string) {
		if !done[k] {
			done[k] = true
			keys = append(keys, k)
		}
	}
	for _, m := range ms {
		if id := BoundID(m.ID); id != "" {
			add(id)
		}
		if email := BoundID(m.Email); normEmail(email) != "" {
			add(clarity.UserKey("", email))
		}
	}
	return keys
}
