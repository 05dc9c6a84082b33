package pipe

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/claritysecurity/zoom-connector/pkg/natsx"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/pipeline"
)

// MaxPayload is the largest message, headers included, that the pipe
// publishes unless Config.MaxPayload says otherwise: NATS's default
// max_payload, 1 MiB, which the deployment's server runs with. New lowers
// it to the server's own limit when that is smaller. A message over the
// limit is refused by every publication, so the pipe splits what would not
// fit.
const MaxPayload = 1 << 20

// idRoom is what the Nats-Msg-Id header of a part may add to a message,
// beyond its stem (the input's id): the header block's first and last
// lines, should the message have no header yet, "Nats-Msg-Id: ", the part's
// suffix ("/records/" and a number, pipeline.DerivedID) and the line end.
const idRoom = len("NATS/1.0\r\n\r\n") + len(jetstream.MsgIDHeader) + len(": \r\n") + len("/"+kindRecords+"/") + 20

// changeMsgs encodes the record batch b of an incremental change of
// connector c as the messages that carry it on c's records subject,
// compressed (pipeline.NewMsg) and each within p.maxPayload once it has a
// message id of stem and a suffix; the caller sets the ids. A batch that
// does not fit in one message is halved, again and again, into batches of
// consecutive changes of b, in b's order: the writer applies each change of
// an incremental batch on its own merits (at the batch's version, against
// what the record holds), so the parts, applied in any order and each at
// least once, leave the records as the whole batch would. The same batch is
// always split the same way, so that a redelivered input yields the same
// messages under the same ids.
func (p *Pipe) changeMsgs(c pipeline.ConnectorRef, b *pb.RecordBatch, stem string) ([]*nats.Msg, error) {
	env := &pb.Envelope{Tenant: c.Tenant, Connector: c.ID, Body: &pb.Envelope_Records{Records: b}}
	msg, err := pipeline.NewMsg(pipeline.RecordsSubject(c), env, "")
	if err != nil {
		return nil, err
	}
	size := payloadSize(msg, len(stem))
	if size <= p.maxPayload {
		return []*nats.Msg{msg}, nil
	}
	n := changeCount(b)
	if n < 2 || !splittable(b) {
		return nil, natsx.Permanent(fmt.Errorf("record batch of %d changes takes %d bytes, more than a message's %d, and cannot be split",
			n, size, p.maxPayload))
	}
	first, err := p.changeMsgs(c, changePart(b, 0, n/2), stem)
	if err != nil {
		return nil, err
	}
	rest, err := p.changeMsgs(c, changePart(b, n/2, n), stem)
	if err != nil {
		return nil, err
	}
	return append(first, rest...), nil
}

// payloadSize is what msg takes against max_payload once it has a message
// id of a stem of stemLen bytes and a part's suffix.
func payloadSize(msg *nats.Msg, stemLen int) int {
	return msg.Size() - len(msg.Subject) - len(msg.Reply) + stemLen + idRoom
}

// splittable reports whether b is an incremental change whose changes stand
// on their own. A page of a full sync (run and reference) is counted as one
// by the writer, and a re-read user (replace_user) must arrive whole: what
// it does not carry is deleted.
func splittable(b *pb.RecordBatch) bool {
	return b.GetRun() == nil && b.GetRef() == nil && b.GetReplaceUser() == "" && b.GetGroupAdmins() == nil
}

// changeCount is the number of changes of b that can travel apart: each
// deletion, record, and email of an admin change.
func changeCount(b *pb.RecordBatch) int {
	n := len(b.GetDeletes()) + len(b.GetRecords())
	for _, ga := range b.GetAdminsRemoved() {
		n += len(ga.GetEmails())
	}
	for _, ga := range b.GetAdminsAdded() {
		n += len(ga.GetEmails())
	}
	return n
}

// changePart returns the changes [from, to) of b, counted as changeCount
// counts them, in the order the writer applies them (deletions, records,
// admins removed, admins added), at b's version.
func changePart(b *pb.RecordBatch, from, to int) *pb.RecordBatch {
	out := &pb.RecordBatch{VersionMs: b.GetVersionMs(), Source: b.GetSource()}
	off := 0
	// take returns the range, within a list of n changes that follows the
	// off changes before it, of the changes that belong to the part.
	take := func(n int) (lo, hi int, ok bool) {
		lo, hi = max(from-off, 0), min(to-off, n)
		off += n
		return lo, hi, lo < hi
	}
	if lo, hi, ok := take(len(b.GetDeletes())); ok {
		out.Deletes = b.GetDeletes()[lo:hi]
	}
	if lo, hi, ok := take(len(b.GetRecords())); ok {
		out.Records = b.GetRecords()[lo:hi]
	}
	admins := func(gas []*pb.GroupAdmins) []*pb.GroupAdmins {
		var part []*pb.GroupAdmins
		for _, ga := range gas {
			if lo, hi, ok := take(len(ga.GetEmails())); ok {
				part = append(part, &pb.GroupAdmins{GroupId: ga.GetGroupId(), Emails: ga.GetEmails()[lo:hi]})
			}
		}
		return part
	}
	out.AdminsRemoved = admins(b.GetAdminsRemoved())
	out.AdminsAdded = admins(b.GetAdminsAdded())
	return out
}

// readGroups divides bs, the changes of a bundle of users read back
// (each replacing one user), into groups that each fit in one message of
// connector c's records subject within p.maxPayload once it has a message
// id of stemLen bytes and a part: all of bs when it fits, else halves, again
// and again, in bs's order. Each change stands on its own (the writer
// applies it at its own version), so the groups, applied in any order, leave
// what bs leaves; a user's change is never cut. A change too large for a
// message alone is returned in tooLarge: the caller leaves it out.
func (p *Pipe) readGroups(c pipeline.ConnectorRef, bs []*pb.RecordBatch, stemLen int) (groups [][]*pb.RecordBatch, tooLarge []*pb.RecordBatch, err error) {
	env := &pb.Envelope{Tenant: c.Tenant, Connector: c.ID, Body: &pb.Envelope_RecordBatches{RecordBatches: &pb.RecordBatches{Batches: bs}}}
	msg, err := pipeline.NewMsg(pipeline.RecordsSubject(c), env, "")
	if err != nil {
		return nil, nil, err
	}
	if payloadSize(msg, stemLen) <= p.maxPayload {
		return [][]*pb.RecordBatch{bs}, nil, nil
	}
	if len(bs) == 1 {
		return nil, bs, nil
	}
	first, tooLarge, err := p.readGroups(c, bs[:len(bs)/2], stemLen)
	if err != nil {
		return nil, nil, err
	}
	rest, more, err := p.readGroups(c, bs[len(bs)/2:], stemLen)
	if err != nil {
		return nil, nil, err
	}
	return append(first, rest...), append(tooLarge, more...), nil
}
