package normalize

import (
	"unicode/utf8"
)

// Bounds of the values records take from Zoom. Zoom's own values are far
// smaller (ids of 22 characters, emails of at most 254, names of a few
// dozen); the bounds exist so that no value, however long, can make a record
// that the pipeline cannot carry: every change of a record becomes one
// CloudEvent, one NATS message, and NATS takes at most 1 MiB a message. An
// event that could not be published would hold back every later change of
// its connector for good.
//
// Values are cut to their bound at a character boundary, so that a cut
// value is as valid UTF-8 as the value it was cut from. A cut value is
// taken the same way wherever it appears, so that records still refer to
// one another: a user's group ids and the groups listing, a user's email and
// the group admins listing, a user id in a webhook and in a listing.
//
// The largest change event these bounds allow is that of a service_user.
// Its subject and id together (a user id twice, or a pending key and an
// empty id), its email and its role id take at most 4 × 6 × MaxIDBytes
// bytes escaped, its first, last and display names MaxValueBytes each, its
// status, license and times under 100 bytes, its field names about 150,
// and the envelope, with 63-character tenant and connector names, and the
// headers under 1 KiB: 3 × 65,536 + 4 × 3,072 + 2,000 bytes, about 210 KB. An entitlement's is about 140 KB (name and description), an
// attribute's about 80 KB, a grant's about 20 KB: each well under 1 MiB,
// with room for the extension attributes an event may grow.
const (
	// MaxIDBytes bounds, in bytes, every value that becomes part of a
	// record key or is matched against one: user, group and role ids,
	// emails and custom attribute keys. Keys are stored in PostgreSQL
	// B-tree indexes, whose entries cannot exceed 2,704 bytes; a key
	// joins at most two such values (a grant: user key "|" entitlement
	// key), so the bound is far below what the event size would allow.
	MaxIDBytes = 512
	// MaxKeyBytes bounds every record key, user key and entitlement key
	// the normalizer makes: a pending user's key is "pending:" and its
	// email in lower case, which may take up to half as many bytes again
	// as the email (U+023A, two bytes, is ⱥ, three in lower case), and a
	// grant's key is that, "|" and "group_admin:" and a group id:
	// 8 + 768 + 1 + 12 + 512 = 1,301 bytes at most.
	MaxKeyBytes = 2 << 10
	// MaxValueBytes bounds every other value taken from Zoom (names,
	// display names, descriptions, attribute values, custom ones
	// included), measured as the value takes in a change event: as a
	// JSON string, every character counted as JSON writes it (a control
	// character, and "<", ">" or "&" escaped for HTML, as \u00XX, six
	// bytes; a quote or backslash, two). A value of plain text keeps up to
	// 64 KiB; one made of characters JSON must escape, down to a sixth
	// of that. Measuring the escaped size is what keeps the largest event
	// small: a bound on the bytes themselves would let three names of
	// control characters alone take 1.1 MiB.
	MaxValueBytes = 64 << 10
)

// adminSuffix ends the name of a group_admin entitlement.
const adminSuffix = " (admin)"

// BoundID cuts s to at most MaxIDBytes bytes, at a character boundary.
func BoundID(s string) string {
	if len(s) <= MaxIDBytes {
		return s
	}
	i := 0
	for i < len(s) {
		_, size := utf8.DecodeRuneInString(s[i:])
		if i+size > MaxIDBytes {
			break
		}
		i += size
	}
	return s[:i]
}

// BoundValue cuts s, at a character boundary, to the longest prefix that
// takes at most MaxValueBytes as a JSON string in a change event.
func BoundValue(s string) string { return boundEscaped(s, MaxValueBytes) }

// boundEscaped cuts s, at a character boundary, to the longest prefix that
// takes at most limit bytes as a JSON string (quotes left out), with HTML
// escaping, the costlier of the two ways events write strings.
func boundEscaped(s string, limit int) string {
	// No character takes more than six bytes escaped: most values are
	// known to fit without looking at them.
	if len(s) <= limit/maxEscape {
		return s
	}
	n := 0
	for i := 0; i < len(s); {
		c := escapedSize(s[i:])
		if n+c.escaped > limit {
			return s[:i]
		}
		n += c.escaped
		i += c.size
	}
	return s
}

// maxEscape is the most bytes one byte of a string takes as JSON: a control
// character, or an invalid byte (written as \ufffd), takes six.
const maxEscape = 6

// charSize is the size of one character of a string, as it is and as JSON
// writes it.
type charSize struct{ size, escaped int }

// escapedSize measures the first character of s as clarity.AppendJSONString
// writes it with HTML escaping.
func escapedSize(s string) charSize {
	if c := s[0]; c < utf8.RuneSelf {
		switch {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			return charSize{1, 2}
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			return charSize{1, 6}
		}
		return charSize{1, 1}
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
		return charSize{size, 6}
	}
	return charSize{size, size}
}

// boundIDs returns ids with each cut by BoundID: ids itself when none needs
// it, which is the rule, else a copy.
func boundIDs(ids []string) []string {
	for i, id := range ids {
		if len(id) > MaxIDBytes {
			out := make([]string, len(ids))
			copy(out, ids[:i])
			for j := i; j < len(ids); j++ {
				out[j] = BoundID(ids[j])
			}
			return out
		}
	}
	return ids
}
