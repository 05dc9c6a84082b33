package normalize

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/claritysecurity/zoom-connector/pkg/clarity"
	"github.com/claritysecurity/zoom-connector/pkg/pb"
	"github.com/claritysecurity/zoom-connector/pkg/zoom"
)

// Attribute names: the service_user_attribute records a user yields, each
// only when Zoom has a non-empty value for it (department is Zoom's dept,
// verified is "true" or "false", login_types is comma-separated). A custom
// attribute is named CustomPrefix and its Zoom key. Downstream consumers
// match on these names, so they never change.
const (
	AttrDepartment        = "department"
	AttrTimezone          = "timezone"
	AttrLanguage          = clarity.AttrLanguage
	AttrEmployeeUniqueID  = "employee_unique_id"
	AttrLastClientVersion = "last_client_version"
	AttrVerified          = "verified"
	AttrLoginTypes        = clarity.AttrLoginTypes
	CustomPrefix          = "custom."
)

// TimeLayout is the form of created_at and last_login_at: RFC 3339 in UTC to
// the second, so that one instant always has one spelling whatever offset or
// fraction Zoom wrote it with, and the record's hash does not change with it.
const TimeLayout = "2006-01-02T15:04:05Z"

// timeLayouts are the spellings of a time accepted from Zoom. Zoom documents
// date-time (RFC 3339); the others cost nothing to accept, and a time without
// zone is taken as UTC, the zone of every example time Zoom documents.
// Fractions are accepted by time.Parse after the seconds in every layout.
var timeLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
}

// FormatTime re-spells a Zoom time in TimeLayout, in UTC, truncated to the
// second. It returns "" for an absent or unparsable time: a bad timestamp is
// no reason to lose a whole page of users, and a record omits created_at and
// last_login_at when Zoom has none rather than invent one.
func FormatTime(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Format(TimeLayout)
		}
	}
	return ""
}

// firstTime is the first of ts that FormatTime can spell: Zoom's
// user_created_at, else its created_at. An unparsable user_created_at counts
// as absent, like a missing one.
func firstTime(ts ...string) string {
	for _, t := range ts {
		if f := FormatTime(t); f != "" {
			return f
		}
	}
	return ""
}

// listingStatus is the status of the users of a user listing. Zoom lists
// users by status, so the listing is the authority: a user's own status field
// (which Zoom may omit) is not consulted for these listings.
func listingStatus(l pb.Listing) string {
	switch l {
	case pb.Listing_LISTING_USERS_INACTIVE:
		return clarity.StatusInactive
	case pb.Listing_LISTING_USERS_PENDING:
		return clarity.StatusPending
	}
	return clarity.StatusActive
}

// normEmail is the form in which emails are compared: Zoom names group admins
// by email only, in whatever case they were typed. The email is first cut to
// its bound as a user's is, so that a user's email and an admin's still
// match however long they are.
func normEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(BoundID(s)))
}

// UserKey returns the key of u's service_user record given its status, and
// the id its data carries; ok is false when u cannot be keyed (no id and no
// email), and the caller skips it.
//
// A pending user is keyed "pending:<lower-case email>" with an empty id, even
// when Zoom gives an id (GET /users/{id} may, the pending listing never does):
// otherwise a user read after a webhook and the same user in the next full
// sync would have two keys, and each would delete the other. A user of
// another status that lacks an id (Zoom should not list one) is keyed by
// email the same way rather than dropped; a pending user without email but
// with an id keeps the id.
//
// The id and email are cut to their bounds first, as AppendUser cuts them.
func UserKey(u *zoom.User, status string) (key, id string, ok bool) {
	id, email := BoundID(u.ID), BoundID(u.Email)
	if status == clarity.StatusPending && normEmail(email) != "" {
		id = ""
	}
	if id == "" && normEmail(email) == "" {
		return "", "", false
	}
	return clarity.UserKey(id, email), id, true
}

// AppendUser appends the records of one Zoom user with the given status to
// dst: its service_user, its grants (each distinct group, its role, its
// license when its type has one) and its non-empty attributes. It returns the
// user's key, or false (and dst unchanged) when the user cannot be keyed.
// Every value is first cut to its bound (boundUser).
func AppendUser(dst []*pb.Record, u *zoom.User, status string) ([]*pb.Record, string, bool) {
	u = boundUser(u)
	key, id, ok := UserKey(u, status)
	if !ok {
		return dst, "", false
	}
	su := clarity.ServiceUser{
		ID:          id,
		Email:       u.Email,
		FirstName:   u.FirstName,
		LastName:    u.LastName,
		DisplayName: u.DisplayName,
		Status:      status,
		License:     clarity.License(u.Type),
		RoleID:      u.RoleID,
		CreatedAt:   firstTime(u.UserCreatedAt, u.CreatedAt),
		LastLoginAt: FormatTime(u.LastLoginTime),
	}
	dst = slices.Grow(dst, userRecords(u))
	dst = append(dst, UserRecord(key, &su))

	for i, g := range u.GroupIDs {
		if g == "" || seen(u.GroupIDs[:i], g) {
			continue
		}
		dst = append(dst, GrantRecord(key, clarity.GroupKey(g)))
	}
	if u.RoleID != "" {
		dst = append(dst, GrantRecord(key, clarity.RoleKey(u.RoleID)))
	}
	if lk, ok := clarity.LicenseKey(u.Type); ok {
		dst = append(dst, GrantRecord(key, lk))
	}
	for _, e := range LicenseTiers(u) {
		dst = append(dst, GrantRecord(key, e.ID))
	}

	dst = appendAttr(dst, key, AttrDepartment, u.Dept)
	dst = appendAttr(dst, key, AttrTimezone, u.Timezone)
	dst = appendAttr(dst, key, AttrLanguage, u.Language)
	dst = appendAttr(dst, key, AttrEmployeeUniqueID, u.EmployeeUniqueID)
	dst = appendAttr(dst, key, AttrLastClientVersion, u.LastClientVersion)
	dst = appendAttr(dst, key, AttrVerified, verified(u.Verified))
	dst = appendAttr(dst, key, AttrLoginTypes, loginTypes(u.LoginTypes))
	for i, ca := range u.CustomAttributes {
		// A key Zoom repeats would give two records with one key in one
		// batch; the first non-empty value wins.
		if ca.Key == "" || ca.Value == "" || seenCustom(u.CustomAttributes[:i], ca.Key) {
			continue
		}
		dst = append(dst, AttributeRecord(key, CustomPrefix+ca.Key, ca.Value))
	}
	return dst, key, true
}

// boundUser returns u with the values the records take cut to their
// bounds: ids, the email and custom attribute keys by BoundID, the other
// text by BoundValue. It returns u itself when every value is short enough
// not to need a look, which is the rule, else a copy; u is left as it is.
func boundUser(u *zoom.User) *zoom.User {
	if withinBounds(u) {
		return u
	}
	b := *u
	b.ID = BoundID(b.ID)
	b.Email = BoundID(b.Email)
	b.RoleID = BoundID(b.RoleID)
	b.GroupIDs = boundIDs(b.GroupIDs)
	for _, f := range []*string{&b.FirstName, &b.LastName, &b.DisplayName, &b.Dept, &b.Timezone,
		&b.Language, &b.EmployeeUniqueID, &b.LastClientVersion} {
		*f = BoundValue(*f)
	}
	cloned := false
	for i, ca := range b.CustomAttributes {
		if k, v := BoundID(ca.Key), BoundValue(ca.Value); k != ca.Key || v != ca.Value {
			if !cloned {
				b.CustomAttributes, cloned = slices.Clone(b.CustomAttributes), true
			}
			b.CustomAttributes[i].Key, b.CustomAttributes[i].Value = k, v
		}
	}
	return &b
}

// withinBounds reports whether every value of u that the records take is
// short enough to be within its bound whatever its characters.
func withinBounds(u *zoom.User) bool {
	const short = MaxValueBytes / maxEscape
	if len(u.ID) > MaxIDBytes || len(u.Email) > MaxIDBytes || len(u.RoleID) > MaxIDBytes ||
		len(u.FirstName) > short || len(u.LastName) > short || len(u.DisplayName) > short || len(u.Dept) > short ||
		len(u.Timezone) > short || len(u.Language) > short || len(u.EmployeeUniqueID) > short || len(u.LastClientVersion) > short {
		return false
	}
	for _, g := range u.GroupIDs {
		if len(g) > MaxIDBytes {
			return false
		}
	}
	for _, ca := range u.CustomAttributes {
		if len(ca.Key) > MaxIDBytes || len(ca.Value) > short {
			return false
		}
	}
	return true
}

// userRecords is an upper bound of the number of records AppendUser makes
// for u, so that a page's record slice is allocated once.
func userRecords(u *zoom.User) int {
	return 1 + len(u.GroupIDs) + 2 + 1 + len(u.LicenseInfoList) + 7 + len(u.CustomAttributes)
}

func appendAttr(dst []*pb.Record, userKey, name, value string) []*pb.Record {
	if value == "" {
		return dst
	}
	return append(dst, AttributeRecord(userKey, name, value))
}

// verified spells Zoom's verified flag: 1 is "true", 0 is "false". An absent
// flag, or a value Zoom does not document, yields no attribute rather than a
// guess.
func verified(v *int) string {
	if v == nil {
		return ""
	}
	switch *v {
	case 1:
		return "true"
	case 0:
		return "false"
	}
	return ""
}

// loginTypes spells a user's login types as sorted, distinct, comma-separated
// integers. They are a set; sorting keeps the attribute (and its hash) from
// changing when Zoom merely lists them in another order.
func loginTypes(ts []int) string {
	switch len(ts) {
	case 0:
		return ""
	case 1:
		return strconv.Itoa(ts[0])
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	s = slices.Compact(s)
	b := make([]byte, 0, 4*len(s))
	for i, t := range s {
		n := len(b)
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(t), 10)
		// Like any value, the list is bounded (digits, signs and commas
		// take as many bytes in JSON); it is cut after a whole type.
		if len(b) > MaxValueBytes {
			b = b[:n]
			break
		}
	}
	return string(b)
}

// seen reports whether v occurs in before. A user belongs to a handful of
// groups, so a scan beats building a set.
func seen(before []string, v string) bool {
	return slices.Contains(before, v)
}

func seenCustom(before []zoom.CustomAttribute, k string) bool {
	for _, ca := range before {
		if ca.Key == k && ca.Value != "" {
			return true
		}
	}
	return false
}

// usersPage maps one page of GET /users listed with the given status.
func usersPage(b *pb.RecordBatch, body []byte, status string) (Stats, error) {
	var list zoom.UserList
	if err := decode(body, "users page", &list); err != nil {
		return Stats{}, err
	}
	// encoding/json leaves the slice nil only when the field is missing or
	// null: such an answer is no page, and must never read as an empty listing.
	if list.Users == nil {
		return Stats{}, fmt.Errorf("%w: no users array", ErrBadPage)
	}
	st := Stats{Items: len(list.Users)}
	n := 0
	for i := range list.Users {
		n += userRecords(&list.Users[i])
	}
	recs := make([]*pb.Record, 0, n)
	var tiers tierEntitlements
	for i := range list.Users {
		var ok bool
		if recs, _, ok = AppendUser(recs, &list.Users[i], status); !ok {
			st.Skipped++
		} else {
			tiers.add(LicenseTiers(&list.Users[i]))
		}
	}
	b.Records = append(recs, tiers.recs...)
	return st, nil
}

// invitee reports whether u, the answer to GET /users/{id}, is a user
// whose invitation is pending. Zoom answers such a user with its id and a
// created_at that is the time of the call, and nothing else: no email to
// key it by as the pending listing does, no status, no type. A body that
// says pending, or lacks an email (which every member of an account has),
// is one.
// A body without id nor email is no user at all, and no invitee.
func invitee(u *zoom.User) bool {
	if BoundID(u.ID) == "" {
		return false
	}
	return u.Status == clarity.StatusPending || normEmail(u.Email) == ""
}

// readUser decodes the answer to GET /users/{id} and gives the user with
// its status. ok is false when there is nothing to map: the body does not
// decode (err), or the user is a pending invitee (st counts it).
func readUser(p *pb.RawPage) (u zoom.User, status string, st Stats, ok bool, err error) {
	if err := decode(p.GetBody(), "user", &u); err != nil {
		return u, "", Stats{}, false, err
	}
	if invitee(&u) {
		// Nothing of it is what the pending listing keys the invitee by,
		// and its created_at is no time Zoom keeps: the pending listing
		// of the next full sync gives the invitee's record, and the
		// invitation_accepted event the user's.
		return u, "", Stats{Items: 1, Invitees: 1}, false, nil
	}
	// A single user carries its own status, unlike a listed one. Zoom
	// documents the field for GET /users/{id}; should a body lack it, active
	// is the status the user most likely has (it was just read by id, which
	// a pending user in a listing has not).
	status = u.Status
	if status == "" {
		status = clarity.StatusActive
	}
	return u, status, Stats{}, true, nil
}

// userPage maps the answer to GET /users/{id}, read after a webhook hint. The
// batch replaces the user's grants and attributes (ReplaceUser), since the
// body is the user's whole current state. When Zoom answered that the user
// does not exist, the batch deletes it instead. A pending user read back
// (see invitee) makes an empty batch: it waits for the next full sync, or
// for the acceptance of its invitation.
func userPage(b *pb.RecordBatch, p *pb.RawPage) (Stats, error) {
	if p.GetNotFound() {
		if p.GetUserId() == "" {
			return Stats{}, fmt.Errorf("%w: user not found, but no user id", ErrBadPage)
		}
		// The hint carried the id as Zoom wrote it; the user's key is the
		// id cut to its bound, as AppendUser cuts it. Why the user went
		// is known only to a reader that removed it (a provisioning
		// remove_user); else Zoom does not say, and it is absent.
		var removal string
		switch r := p.GetRemoval(); r {
		case clarity.RemovalDeleted, clarity.RemovalDisassociated:
			removal = r
		case "", clarity.RemovalAbsent:
		default:
			return Stats{}, fmt.Errorf("%w: user %q not found with removal %.32q", ErrBadPage, p.GetUserId(), r)
		}
		b.Deletes = []*pb.RecordRef{{Kind: pb.Kind_KIND_SERVICE_USER, Key: BoundID(p.GetUserId()), Removal: removal}}
		return Stats{Items: 1}, nil
	}
	u, status, st, ok, err := readUser(p)
	if !ok {
		return st, err
	}
	// GET /users/{id} also returns language and login types, which the
	// listings of a full sync do not. Keeping them would make a user's
	// records depend on the path that last read it, and every full sync would
	// delete what every webhook re-read added. Enrichment from GET
	// /users/{id} is an option for all users or none, off by default.
	u.Language, u.LoginTypes = "", nil
	u.JobTitle, u.Location, u.Company, u.Manager, u.CostCenter = "", "", "", "", ""
	recs, key, ok := AppendUser(nil, &u, status)
	if !ok {
		return Stats{Items: 1, Skipped: 1}, fmt.Errorf("%w: user %q has neither id nor email", ErrBadPage, p.GetUserId())
	}
	var tiers tierEntitlements
	tiers.add(LicenseTiers(&u))
	b.Records = append(recs, tiers.recs...)
	b.ReplaceUser = key
	return Stats{Items: 1}, nil
}
