package connector

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func newKey(t testing.TB, id string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}

func TestParseKeyringRejectsWithoutQuoting(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for _, v := range []string{
		"",
		"k1",
		"k1:" + secret[:20],
		"k 1:" + secret,
		"k1:" + secret + ",k1:" + secret,
		"k1:not base64!" + secret,
	} {
		_, err := ParseKeyring(v)
		if err == nil {
			t.Errorf("ParseKeyring(%q) = nil error, want one", v)
			continue
		}
		if strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("ParseKeyring error quotes the key: %v", err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	kr, err := ParseKeyring(newKey(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := kr.Seal("my client secret", "acme/zoom client_secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s), "my client secret") || s.KeyID() != "k1" {
		t.Fatalf("sealed %q: want ciphertext under k1", s)
	}
	if got, err := kr.Open(s, "acme/zoom client_secret"); err != nil || got != "my client secret" {
		t.Errorf("Open = %q, %v; want the secret", got, err)
	}
	// Sealed for one place, it opens nowhere else.
	if _, err := kr.Open(s, "other/zoom client_secret"); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with other associated data = %v, want ErrOpen", err)
	}
	// Two seals of one secret differ (a fresh nonce each).
	s2, _ := kr.Seal("my client secret", "acme/zoom client_secret")
	if s2 == s {
		t.Error("two seals of one secret are equal")
	}
	// Tampered, it does not open.
	b := []byte(s)
	b[len(b)-2] ^= 1
	if _, err := kr.Open(Sealed(b), "acme/zoom client_secret"); err == nil {
		t.Error("a tampered secret opened")
	}
	if got, err := kr.Seal("", "x"); err != nil || got != "" {
		t.Errorf("Seal(\"\") = %q, %v; want \"\"", got, err)
	}
}

func TestRotation(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	old, err := ParseKeyring(k1)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := old.Seal("token", "ad")
	// k2 is added as the current key: k1's secrets still open, and
	// Reseal moves them to k2.
	both, err := ParseKeyring(k2 + "," + k1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open(s, "ad"); err != nil || got != "token" {
		t.Fatalf("Open after adding a key = %q, %v", got, err)
	}
	r, changed, err := both.Reseal(s, "ad")
	if err != nil || !changed || r.KeyID() != "k2" {
		t.Fatalf("Reseal = %q, %v, %v; want under k2", r, changed, err)
	}
	if _, changed, _ := both.Reseal(r, "ad"); changed {
		t.Error("Reseal of a secret under the current key changed it")
	}
	// k1 dropped: what k2 sealed opens, what only k1 sealed is named
	// unreadable.
	only2, _ := ParseKeyring(k2)
	if got, err := only2.Open(r, "ad"); err != nil || got != "token" {
		t.Errorf("Open under k2 = %q, %v", got, err)
	}
	if _, err := only2.Open(s, "ad"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open of a k1 secret without k1 = %v, want ErrUnknownKey", err)
	}
}

func TestTransport(t *testing.T) {
	kr, _ := ParseKeyring(newKey(t, "k1"))
	pub, err := kr.TransportPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := SealForTransport(pub, "add acme/zoom client_secret", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ct, "s3cret") {
		t.Fatal("sealed for transport in plain text")
	}
	if got, err := kr.OpenTransport(ct, "add acme/zoom client_secret"); err != nil || got != "s3cret" {
		t.Errorf("OpenTransport = %q, %v", got, err)
	}
	if _, err := kr.OpenTransport(ct, "add other/zoom client_secret"); err == nil {
		t.Error("a secret sealed for one use opened for another")
	}
	other, _ := ParseKeyring(newKey(t, "k9"))
	if _, err := other.OpenTransport(ct, "add acme/zoom client_secret"); err == nil {
		t.Error("another keyring opened the secret")
	}
}
