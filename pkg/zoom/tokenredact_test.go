package zoom

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTokenErrorRedactsASecretAtTheCut: a secret the token endpoint echoes
// is redacted even where the cut of a long answer would fall inside it, so
// no part of it is quoted; the cut leaves valid UTF-8.
func TestTokenErrorRedactsASecretAtTheCut(t *testing.T) {
	secret := "s3cret-" + strings.Repeat("x", 33)
	for _, body := range []string{
		"<html>" + strings.Repeat("c", 190) + secret + "</html>",
		"<html>" + strings.Repeat("c", 150) + secret + strings.Repeat("d", 300) + "</html>",
		`{"error":"invalid_client","reason":"` + strings.Repeat("a", 190) + secret + `"}`,
		`{"error":"` + strings.Repeat("b", 60) + secret + `"}`,
	} {
		e := newTokenError(http.StatusUnauthorized, []byte(body), secret)
		for _, s := range []string{e.Reason, e.OAuthError, e.Error()} {
			if strings.Contains(s, secret[:4]) {
				t.Errorf("%q quotes part of the secret", s)
			}
		}
	}
	e := newTokenError(http.StatusBadGateway, []byte("<p>"+strings.Repeat("é", 150)+"</p>"), secret)
	if !utf8.ValidString(e.Reason) || len(e.Reason) > 210 {
		t.Errorf("reason %q: want valid UTF-8 of about 200 bytes", e.Reason)
	}
}

// TestSnippetIsValidUTF8: the start of a body that is not JSON, quoted in
// an error, is valid UTF-8 whatever the body holds, cut before a character
// and never shortened further by an invalid byte early on.
func TestSnippetIsValidUTF8(t *testing.T) {
	for _, body := range []string{
		strings.Repeat("é", 150),
		"ab\xff" + strings.Repeat("c", 300),
		"<p>\xe6\x97</p>",
	} {
		s := snippet([]byte(body))
		if !utf8.ValidString(s) || len(s) > 200+len("…") {
			t.Errorf("snippet of %q = %q: want valid UTF-8 of at most 200 bytes and the marker", body, s)
		}
	}
	if s := snippet([]byte("ab\xff" + strings.Repeat("c", 300))); !strings.HasPrefix(s, "ab\uFFFDccc") || len(s) < 190 {
		t.Errorf("snippet after an invalid byte = %q: want the body, the byte replaced", s)
	}
}
