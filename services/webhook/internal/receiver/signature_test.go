package receiver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The vectors were computed apart from this code, with openssl:
//
//	printf '%s' 'v0:1739923528:{"event":"user.deleted"}' | openssl dgst -sha256 -hmac "$secret"
//	printf '%s' 'qgg8vlvZRS6UYooatFL8Aw' | openssl dgst -sha256 -hmac "$secret"
const (
	vectorBody      = `{"event":"user.deleted"}`
	vectorSignature = "v0=1637801742be87dee0a5941be2a6370cdf81508f65ed868a27cda2a93b42934a"
	vectorEncrypted = "80600a8ea10a02fa7c5ad660927f7d77917c7e4f22802b730c9d1619cb066036"
)

func TestSign(t *testing.T) {
	if got := Sign(testSecret, "1739923528", []byte(vectorBody)); got != vectorSignature {
		t.Errorf("Sign got %s, want %s", got, vectorSignature)
	}
	if got := EncryptToken(testSecret, "qgg8vlvZRS6UYooatFL8Aw"); got != vectorEncrypted {
		t.Errorf("EncryptToken got %s, want %s", got, vectorEncrypted)
	}
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		secret Secret
		ts     string
		body   string
		sig    string
		want   bool
	}{
		{"correct", testSecret, "1739923528", vectorBody, vectorSignature, true},
		{"other secret", "x" + testSecret, "1739923528", vectorBody, vectorSignature, false},
		{"other timestamp", testSecret, "1739923529", vectorBody, vectorSignature, false},
		{"other body", testSecret, "1739923528", vectorBody + " ", vectorSignature, false},
		{"upper case", testSecret, "1739923528", vectorBody, "v0=" + strings.ToUpper(vectorSignature[3:]), false},
		{"no prefix", testSecret, "1739923528", vectorBody, vectorSignature[3:], false},
		{"other version", testSecret, "1739923528", vectorBody, "v1=" + vectorSignature[3:], false},
		{"truncated", testSecret, "1739923528", vectorBody, vectorSignature[:len(vectorSignature)-1], false},
		{"empty", testSecret, "1739923528", vectorBody, "", false},
		{"empty secret", "", "1739923528", vectorBody, Sign("", "1739923528", []byte(vectorBody)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.secret, tt.ts, []byte(tt.body), tt.sig); got != tt.want {
				t.Errorf("Verify got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	now := time.Unix(1739923528, 0)
	tests := []struct {
		ts   string
		want bool
	}{
		{"1739923528", true},
		{"1739923228", true},  // 5 minutes ago
		{"1739923227", false}, // 5 minutes and a second ago
		{"1739923828", true},  // 5 minutes ahead
		{"1739923829", false},
		{"1739923528000", false}, // milliseconds, not seconds
		{"", false},
		{"17399235.28", false},
		{"-9223372036854775808", false},
		{"9223372036854775807", false},
		{"99999999999999999999", false},
	}
	for _, tt := range tests {
		if got := Fresh(tt.ts, now, MaxSkew); got != tt.want {
			t.Errorf("Fresh(%q) got %v, want %v", tt.ts, got, tt.want)
		}
	}
}

func TestSecretHidden(t *testing.T) {
	c := Connector{Ref: testRef, Secret: testSecret}
	b, _ := json.Marshal(c)
	for _, s := range []string{
		fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c.Secret), string(b),
	} {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

// FuzzSignature checks that Verify never panics and accepts exactly the
// signature Sign makes, and nothing else.
func FuzzSignature(f *testing.F) {
	f.Add(testSecret, "1739923528", []byte(vectorBody), vectorSignature)
	f.Add(testSecret, "1739923528", []byte(vectorBody), "v0="+strings.ToUpper(vectorSignature[3:]))
	f.Add(testSecret, "", []byte{}, "")
	f.Add("", "1739923528", []byte(vectorBody), "v0=")
	f.Add("k", "0", []byte{0xff, 0x00}, "v0=zz")
	f.Fuzz(func(t *testing.T, secret, ts string, body []byte, sig string) {
		got := Verify(Secret(secret), ts, body, sig)
		correct := Sign(Secret(secret), ts, body)
		if want := secret != "" && sig == correct; got != want {
			t.Errorf("Verify(%q, %q, %q, %q) got %v, want %v", secret, ts, body, sig, got, want)
		}
		if secret != "" && !Verify(Secret(secret), ts, body, correct) {
			t.Errorf("the correct signature did not verify")
		}
		if secret != "" && Verify(Secret(secret), ts+"0", body, correct) {
			t.Errorf("a signature verified for another timestamp")
		}
	})
}
