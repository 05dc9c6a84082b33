package pipeline

import "unicode/utf8"

// Bound shortens a string from outside for an error or a page: s itself
// when it has at most n bytes, else its start of at most n bytes, cut
// before a character (never inside one), then "…".
func Bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
