package credcheck

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestTokenErrorCutsBetweenCharacters: the reason and OAuth error of a
// refusal are cut before a character, never inside one, then "…".
func TestTokenErrorCutsBetweenCharacters(t *testing.T) {
	reason, code := strings.Repeat("a", 199), strings.Repeat("b", 63)
	body, err := json.Marshal(map[string]string{"error": code + "日本", "reason": reason + "日本"})
	if err != nil {
		t.Fatal(err)
	}
	e := tokenError(http.StatusBadRequest, body, "")
	if !utf8.ValidString(e.Reason) || e.Reason != reason+"…" {
		t.Errorf("reason of %d bytes ending %q, want the %d bytes before 日, then …", len(e.Reason), e.Reason[max(0, len(e.Reason)-8):], len(reason))
	}
	if !utf8.ValidString(e.OAuthError) || e.OAuthError != code+"…" {
		t.Errorf("oauth error of %d bytes ending %q, want the %d bytes before 日, then …", len(e.OAuthError), e.OAuthError[max(0, len(e.OAuthError)-8):], len(code))
	}
}

// TestTokenErrorRedactsASecretAtTheCut: a secret the endpoint echoes is
// redacted even where the cut would fall inside it, so no part of it is
// quoted.
func TestTokenErrorRedactsASecretAtTheCut(t *testing.T) {
	secret := "s3cret-" + strings.Repeat("x", 33)
	for _, body := range []string{
		`{"error":"invalid_client","reason":"` + strings.Repeat("a", 190) + secret + `"}`,
		`{"error":"` + strings.Repeat("b", 60) + secret + `"}`,
		"<html>" + strings.Repeat("c", 190) + secret + "</html>",
	} {
		e := tokenError(http.StatusUnauthorized, []byte(body), secret)
		for _, s := range []string{e.Reason, e.OAuthError, e.Error()} {
			if strings.Contains(s, secret[:4]) {
				t.Errorf("%q quotes part of the secret", s)
			}
		}
	}
}
