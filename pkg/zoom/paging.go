package zoom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ListingKind says which Zoom listing a Listing walks.
type ListingKind int

// The listings of a full sync.
const (
	// ListingUsers is GET /users with one status.
	ListingUsers ListingKind = iota + 1
	// ListingGroups is GET /groups.
	ListingGroups
	// ListingGroupAdmins is GET /groups/{groupId}/admins.
	ListingGroupAdmins
	// ListingRoles is GET /roles, which Zoom does not page.
	ListingRoles
)

// The user statuses GET /users lists, one per listing.
const (
	UserStatusActive   = "active"
	UserStatusInactive = "inactive"
	UserStatusPending  = "pending"
)

// Listing names one Zoom listing. Build it with UsersListing, GroupsListing,
// GroupAdminsListing or RolesListing.
type Listing struct {
	// Kind is the listing.
	Kind ListingKind
	// Status is the user status of a ListingUsers: active, inactive or
	// pending.
	Status string
	// GroupID is the group of a ListingGroupAdmins.
	GroupID string
	// RoleType is the type of the roles of a ListingRoles: "" lists
	// Zoom's default, the common roles; RoleTypeIQ the Zoom IQ
	// (Revenue Accelerator) roles.
	RoleType string
}

// RoleTypeIQ is the type of the Zoom IQ roles, which GET /roles lists only
// with type=iq.
const RoleTypeIQ = "iq"

// IQRolesListing lists the account's Zoom IQ roles.
func IQRolesListing() Listing { return Listing{Kind: ListingRoles, RoleType: RoleTypeIQ} }

// UsersListing lists the users of one status (active, inactive or pending),
// with their custom attributes.
func UsersListing(status string) Listing { return Listing{Kind: ListingUsers, Status: status} }

// GroupsListing lists the account's groups.
func GroupsListing() Listing { return Listing{Kind: ListingGroups} }

// GroupAdminsListing lists the admins of one group. Zoom names admins by email
// and name only.
func GroupAdminsListing(groupID string) Listing {
	return Listing{Kind: ListingGroupAdmins, GroupID: groupID}
}

// RolesListing lists the account's roles.
func RolesListing() Listing { return Listing{Kind: ListingRoles} }

// String names the listing in errors and logs: "users/active", "groups",
// "groups/<id>/admins", "roles".
func (l Listing) String() string {
	switch l.Kind {
	case ListingUsers:
		return "users/" + l.Status
	case ListingGroups:
		return "groups"
	case ListingGroupAdmins:
		return "groups/" + l.GroupID + "/admins"
	case ListingRoles:
		if l.RoleType != "" {
			return "roles/" + l.RoleType
		}
		return "roles"
	}
	return "listing(" + strconv.Itoa(int(l.Kind)) + ")"
}

// Endpoint is the listing's endpoint template, as counted in Stats, such as
// "GET /groups/{groupId}/admins".
func (l Listing) Endpoint() string {
	return http.MethodGet + " " + l.endpoint()
}

func (l Listing) endpoint() string {
	switch l.Kind {
	case ListingUsers:
		return "/users"
	case ListingGroups:
		return "/groups"
	case ListingGroupAdmins:
		return "/groups/{groupId}/admins"
	case ListingRoles:
		return "/roles"
	}
	return ""
}

func (l Listing) validate() error {
	switch l.Kind {
	case ListingUsers:
		switch l.Status {
		case UserStatusActive, UserStatusInactive, UserStatusPending:
			return nil
		}
		return fmt.Errorf("zoom: list users: status %q is not active, inactive or pending", l.Status)
	case ListingGroups:
		return nil
	case ListingRoles:
		switch l.RoleType {
		case "", RoleTypeIQ:
			return nil
		}
		return fmt.Errorf("zoom: list roles: type %q is not iq", l.RoleType)
	case ListingGroupAdmins:
		if l.GroupID == "" {
			return errors.New("zoom: list group admins: empty group id")
		}
		return nil
	}
	return fmt.Errorf("zoom: unknown listing kind %d", l.Kind)
}

// request builds the request of one page. Every page re-sends the first
// page's parameters, as Zoom requires along with next_page_token.
func (l Listing) request(pageSize int, pageToken string) request {
	q := url.Values{}
	r := request{method: http.MethodGet, endpoint: l.endpoint(), path: l.endpoint(), query: q}
	switch l.Kind {
	case ListingUsers:
		q.Set("status", l.Status)
		q.Set("page_size", strconv.Itoa(pageSize))
		q.Set("include_fields", "custom_attributes")
	case ListingGroups:
		q.Set("page_size", strconv.Itoa(pageSize))
	case ListingGroupAdmins:
		r.path = "/groups/" + url.PathEscape(l.GroupID) + "/admins"
		q.Set("page_size", strconv.Itoa(pageSize))
	case ListingRoles:
		// GET /roles takes no paging parameters; type defaults to common.
		if l.RoleType != "" {
			q.Set("type", l.RoleType)
		}
	}
	if pageToken != "" {
		q.Set("next_page_token", pageToken)
	}
	return r
}

// RawPage is one page of a listing, handed over as it arrives.
type RawPage struct {
	// Listing is the listing the page belongs to.
	Listing Listing
	// Number counts pages from 1 within the listing. After a restart it
	// starts at 1 again.
	Number int
	// Body is the answer's body exactly as Zoom sent it.
	Body []byte
	// Last reports the listing's last page: Zoom sent no next_page_token.
	Last bool
	// TotalRecords is Zoom's total_records (0 when Zoom left it out).
	TotalRecords int
	// Items is the number of items (users, groups, admins, roles) on the
	// page.
	Items int
	// FetchedAt is when the answer arrived.
	FetchedAt time.Time
	// RequestedAt is when the request for the page was first made. Zoom's
	// answer reflects its state at some moment after it, so RequestedAt is
	// the safe time to order the page against events: a change that Zoom
	// made while the answer was on its way may be missing from the page.
	RequestedAt time.Time
	// Restarted marks the first page of a listing that started over because
	// Zoom rejected an expired next_page_token (tokens live 15 minutes). The
	// pages handed over before it came from an earlier pass: their content is
	// still true, but the listing's pages are now counted again from this
	// one, and only the new pass ends with a Last page.
	Restarted bool
}

// pageProbe reads just what paging needs from a page; the items themselves
// are skipped, not decoded.
type pageProbe struct {
	NextPageToken string      `json:"next_page_token"`
	TotalRecords  *int        `json:"total_records"`
	Users         *[]struct{} `json:"users"`
	Groups        *[]struct{} `json:"groups"`
	Admins        *[]struct{} `json:"admins"`
	Roles         *[]struct{} `json:"roles"`
}

// list returns the listing's item array, nil when the answer has none. A
// 200 without it is not a page: taken as an empty listing, it would make the
// run delete everything of that kind.
func (p pageProbe) list(k ListingKind) *[]struct{} {
	switch k {
	case ListingUsers:
		return p.Users
	case ListingGroups:
		return p.Groups
	case ListingGroupAdmins:
		return p.Admins
	case ListingRoles:
		return p.Roles
	}
	return nil
}

func (p pageProbe) items(k ListingKind) int {
	if l := p.list(k); l != nil {
		return len(*l)
	}
	return 0
}

// notAPage is the error of a 200 answer without the listing's item array:
// ErrNotAPage, and Zoom's error when the body is one (Zoom's documents list
// "Error Code: 200, Only available for paid account" under the HTTP 200 of
// GET /groups), so that errors.Is can tell a plan's refusal.
func notAPage(l Listing, body []byte) error {
	var eb ErrorBody
	if json.Unmarshal(body, &eb) != nil || eb.Code == 0 {
		return ErrNotAPage
	}
	return fmt.Errorf("%w: %w", ErrNotAPage, &APIError{
		StatusCode: http.StatusOK, Code: eb.Code, Message: quoted(eb.Message),
		Method: http.MethodGet, Endpoint: l.endpoint(),
	})
}

// ErrShortListing reports a listing whose last page came before it had
// handed over as many items as Zoom said it holds (total_records). Taken as
// complete, it would make the run delete every record it did not list.
var ErrShortListing = errors.New("zoom: the listing ended before all of its records were listed")

// tally counts the items of one pass over a listing against the
// total_records of its pages.
type tally struct {
	items int
	// known reports whether any page carried total_records; low and high
	// are the least and greatest it gave.
	known     bool
	low, high int
}

func (t *tally) add(items int, total *int) {
	t.items += items
	if total == nil {
		return
	}
	if !t.known || *total < t.low {
		t.low = *total
	}
	if !t.known || *total > t.high {
		t.high = *total
	}
	t.known = true
}

// short reports whether the pass listed fewer items than Zoom's totals
// allow. Users created or deleted while a listing pages change its
// total_records from page to page, and each such change can shift one item
// past a page boundary in either direction: the spread of the totals seen
// is allowed. Changes that offset each other (a user leaving the part not
// yet listed while another joins the part already listed) leave the totals
// alone and still cost an item each: two items and one in 100 more are
// allowed for those. A listing cut short misses far more (a page of 300,
// or everything after one). A listing without total_records is not
// checked.
func (t *tally) short() bool {
	return t.known && t.items < t.low-(t.high-t.low)-2-t.low/100
}

// Pages walks listing l to its last page and calls fn with each page as it
// arrives, so that an organisation of any size passes through in constant
// memory. An error from fn stops the walk and is returned as is.
//
// When Zoom rejects a next_page_token as invalid or expired (400 code 300),
// the listing starts over from its first page, at most
// Config.MaxListingRestarts times; the first page of the new pass has
// Restarted set. GET /roles is one request, but a next_page_token on it is
// followed all the same.
func (c *Client) Pages(ctx context.Context, l Listing, fn func(p RawPage) error) error {
	if err := l.validate(); err != nil {
		return err
	}
	var (
		pageToken string
		number    int
		restarts  int
		restarted bool
		// The tokens of this pass: one seen again would lead through the
		// same pages forever.
		seen = map[string]bool{}
		// What this pass has listed, checked against total_records
		// before its last page is handed over.
		count tally
	)
	for {
		requested := c.now()
		body, err := c.do(ctx, l.request(c.cfg.PageSize, pageToken))
		if err != nil {
			var api *APIError
			if pageToken != "" && errors.As(err, &api) && api.pageTokenRejected() {
				if restarts >= c.cfg.MaxListingRestarts {
					return fmt.Errorf("list %s page %d: page token rejected after %d restarts: %w",
						l, number+1, restarts, err)
				}
				restarts++
				c.count.add(func(s *Stats) { s.Restarts++ })
				c.log.Warn().Str("listing", l.String()).Int("page", number+1).Int("restart", restarts).
					Msg("zoom: next_page_token rejected, restarting the listing")
				pageToken, number, restarted = "", 0, true
				clear(seen)
				count = tally{}
				continue
			}
			return fmt.Errorf("list %s page %d: %w", l, number+1, err)
		}
		fetched := c.now()
		number++
		var probe pageProbe
		if err := Decode(body, &probe); err != nil {
			return fmt.Errorf("list %s page %d: decode: %w", l, number, err)
		}
		if probe.list(l.Kind) == nil {
			return fmt.Errorf("list %s page %d: %w", l, number, notAPage(l, body))
		}
		next := probe.NextPageToken
		if next != "" && (next == pageToken || seen[next]) {
			return fmt.Errorf("list %s page %d: zoom sent a next_page_token it had sent before", l, number)
		}
		seen[next] = true
		items := probe.items(l.Kind)
		count.add(items, probe.TotalRecords)
		if next == "" && count.short() {
			return fmt.Errorf("list %s page %d: %d items listed, but zoom counts %d (total_records): %w",
				l, number, count.items, count.low, ErrShortListing)
		}
		total := 0
		if probe.TotalRecords != nil {
			total = *probe.TotalRecords
		}
		p := RawPage{
			Listing:      l,
			Number:       number,
			Body:         body,
			Last:         next == "",
			TotalRecords: total,
			Items:        items,
			FetchedAt:    fetched,
			RequestedAt:  requested,
			Restarted:    restarted && number == 1,
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.Last {
			return nil
		}
		pageToken = next
	}
}
