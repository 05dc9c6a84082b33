package zoomtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"net/http"
	"strconv"
)

// Page tokens are stateless: the position in the listing, the page number,
// the time of issue and the page-token epoch, packed with varints and
// authenticated with an HMAC under a key only this server knows. They look
// opaque like Zoom's, cost no memory, and a token of another listing, a
// forged one, an old one or one issued before Faults.ExpirePageTokens is
// refused with 400 code 300, as Zoom refuses an invalid or expired token.

type cursor struct {
	listing uint64 // which listing (route and filters) the token belongs to
	last    uint64 // sequence number (or offset) of the last item returned
	page    int    // page number of the page the token fetches
	issued  int64  // unix milliseconds
	epoch   uint32
}

const macLen = 8

func (s *Server) encodeCursor(c cursor) string {
	b := make([]byte, 0, 48)
	b = binary.AppendUvarint(b, c.listing)
	b = binary.AppendUvarint(b, c.last)
	b = binary.AppendUvarint(b, uint64(c.page))
	b = binary.AppendUvarint(b, uint64(c.issued))
	b = binary.AppendUvarint(b, uint64(c.epoch))
	m := hmac.New(sha256.New, s.pageKey)
	m.Write(b)
	b = m.Sum(b)[:len(b)+macLen]
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor returns the token's cursor when it is authentic, of the given
// listing (any listing when listing is 0), unexpired and of the current
// epoch.
func (s *Server) decodeCursor(tok string, listing uint64) (cursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) <= macLen {
		return cursor{}, false
	}
	body, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	m := hmac.New(sha256.New, s.pageKey)
	m.Write(body)
	if !hmac.Equal(m.Sum(nil)[:macLen], mac) {
		return cursor{}, false
	}
	var vals [5]uint64
	for i := range vals {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			return cursor{}, false
		}
		vals[i], body = v, body[n:]
	}
	c := cursor{listing: vals[0], last: vals[1], page: int(vals[2]), issued: int64(vals[3]), epoch: uint32(vals[4])}
	if listing != 0 && c.listing != listing {
		return cursor{}, false
	}
	if c.epoch != s.pageEpoch.Load() {
		return cursor{}, false
	}
	if s.now().UnixMilli()-c.issued > s.opts.PageTokenTTL.Milliseconds() {
		return cursor{}, false
	}
	return c, true
}

// listingKey identifies a listing: its route and the filters that select its
// items. A token is valid only for the listing that issued it.
func listingKey(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	if k := h.Sum64(); k != 0 {
		return k
	}
	return 1
}

// listingKey is listingKey for one account's listing: a page token of one
// account is then refused by another's listing.
func (a *Account) listingKey(parts ...string) uint64 {
	return listingKey(append([]string{a.id}, parts...)...)
}

// pageParams are a listing request's paging parameters.
type pageParams struct {
	listing uint64
	size    int
	last    uint64 // from a next_page_token: the last item already returned
	token   bool
	offset  int // from the deprecated page_number, without a token
	page    int
}

// parsePage reads page_size, next_page_token and page_number, answering the
// error itself when they are invalid.
func (s *Server) parsePage(w http.ResponseWriter, r *http.Request, listing uint64, maxSize int) (pageParams, bool) {
	q := r.URL.Query()
	p := pageParams{listing: listing, size: 30, page: 1}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxSize {
			writeValidation(w, "page_size", "Invalid field.")
			return p, false
		}
		if n > 0 {
			p.size = n
		}
	}
	if tok := q.Get("next_page_token"); tok != "" {
		c, ok := s.decodeCursor(tok, listing)
		if !ok {
			writeError(w, http.StatusBadRequest, 300, "The next page token is invalid or expired.")
			return p, false
		}
		p.token, p.last, p.page = true, c.last, c.page
		return p, true
	}
	if v := q.Get("page_number"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, "page_number", "Invalid field.")
			return p, false
		}
		p.page, p.offset = n, (n-1)*p.size
	}
	return p, true
}

// pageOf returns the page number a listing request asks for, for fault rules
// that fail a listing after some page; 0 when its token is not valid.
func (s *Server) pageOf(r *http.Request) int {
	q := r.URL.Query()
	if tok := q.Get("next_page_token"); tok != "" {
		c, ok := s.decodeCursor(tok, 0)
		if !ok {
			return 0
		}
		return c.page
	}
	if n, err := strconv.Atoi(q.Get("page_number")); err == nil && n > 0 {
		return n
	}
	return 1
}

// pageInfo describes the page a request gets.
type pageInfo struct {
	start, end int
	total      int
	next       string
}

func (pi pageInfo) pageCount(size int) int { return (pi.total + size - 1) / size }

// seqPage cuts one page from a list ordered by sequence number.
func (s *Server) seqPage(p pageParams, n int, seqAt func(i int) uint64) pageInfo {
	pi := pageInfo{total: n}
	switch {
	case p.token:
		lo, hi := 0, n
		for lo < hi { // first index with seq > p.last
			mid := int(uint(lo+hi) >> 1)
			if seqAt(mid) <= p.last {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		pi.start = lo
	default:
		pi.start = min(p.offset, n)
	}
	pi.end = min(pi.start+p.size, n)
	if pi.end < n {
		pi.next = s.encodeCursor(cursor{
			listing: p.listing, last: seqAt(pi.end - 1), page: p.page + 1,
			issued: s.now().UnixMilli(), epoch: s.pageEpoch.Load(),
		})
	}
	return pi
}

// offsetPage cuts one page from a list without sequence numbers (group
// admins), with the offset as the position.
func (s *Server) offsetPage(p pageParams, n int) pageInfo {
	pi := pageInfo{total: n}
	switch {
	case p.token:
		pi.start = min(int(p.last), n)
	default:
		pi.start = min(p.offset, n)
	}
	pi.end = min(pi.start+p.size, n)
	if pi.end < n {
		pi.next = s.encodeCursor(cursor{
			listing: p.listing, last: uint64(pi.end), page: p.page + 1,
			issued: s.now().UnixMilli(), epoch: s.pageEpoch.Load(),
		})
	}
	return pi
}
