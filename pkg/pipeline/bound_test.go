package pipeline

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Bound cuts before a character, never inside one, and keeps a string
// within its bound as it is.
func TestBound(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"},   // é is 2 bytes: cut before it
		{"ab€", 4, "ab…"}, // € is 3 bytes
		{"€€", 3, "€…"},   // at a boundary
		{"𝄞x", 3, "…"},    // a 4-byte character longer than the bound
		{"abc", 0, "…"},
	}
	for _, tt := range tests {
		if got := Bound(tt.s, tt.n); got != tt.want {
			t.Errorf("Bound(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	long := strings.Repeat("é", 200)
	for n := range 10 {
		if got := Bound(long, 100+n); !utf8.ValidString(got) || len(got) > 100+n+len("…") {
			t.Errorf("Bound of %d é at %d: %q", 200, 100+n, got)
		}
	}
}

// CheckName quotes a bad name cut before a character, never inside one.
func TestCheckNameQuotesANameCutBetweenCharacters(t *testing.T) {
	kept := strings.Repeat("a", 63)
	err := CheckName("tenant", kept+"日本")
	if err == nil {
		t.Fatal("a name with 日 was taken")
	}
	if msg := err.Error(); strings.Contains(msg, `\x`) || !strings.Contains(msg, `"`+kept+`…"`) {
		t.Errorf("error %q, want the name's %d bytes before 日, then …", msg, len(kept))
	}
}
