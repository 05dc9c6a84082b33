// Package connector owns what the connector registry keeps of each Zoom
// connection: its settings, its state, and its secrets (client secret,
// webhook secret token, access and refresh tokens), which are stored only
// sealed under CONNECTOR_SECRETS_KEY.
package connector

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Sealed is a secret as stored: "<key id>:<base64 of nonce and AES-256-GCM
// ciphertext>". The key id names the key of the Keyring that sealed it.
type Sealed string

// KeyID returns the id of the key that sealed s ("" when s is empty or
// malformed).
func (s Sealed) KeyID() string {
	id, _, ok := strings.Cut(string(s), ":")
	if !ok {
		return ""
	}
	return id
}

// ErrNoKey reports that CONNECTOR_SECRETS_KEY is not set: no secret can be
// stored or read.
var ErrNoKey = errors.New("connector: CONNECTOR_SECRETS_KEY is not set")

// ErrUnknownKey reports a sealed secret whose key is not in the keyring (a
// key was dropped from CONNECTOR_SECRETS_KEY before rotate-key re-sealed
// what it sealed).
var ErrUnknownKey = errors.New("connector: sealed under a key CONNECTOR_SECRETS_KEY does not hold")

// ErrOpen reports a sealed secret that does not open: corrupt, or sealed
// for another record (the associated data differs).
var ErrOpen = errors.New("connector: sealed secret does not open")

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

type key struct {
	id   string
	aead cipher.AEAD
	raw  []byte
}

// Keyring seals and opens secrets under CONNECTOR_SECRETS_KEY: a
// comma-separated list of "<key id>:<base64 of 32 bytes>", the first the
// current key (everything is sealed under it), the others still read, so
// that keys can be rotated: add a new key first, run rotate-key, then drop
// the old one.
type Keyring struct {
	keys    []key
	current *key
}

// ParseKeyring reads the value of CONNECTOR_SECRETS_KEY. Its errors never
// quote the value.
func ParseKeyring(v string) (*Keyring, error) {
	if strings.TrimSpace(v) == "" {
		return nil, ErrNoKey
	}
	kr := &Keyring{}
	seen := map[string]bool{}
	for i, part := range strings.Split(v, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("CONNECTOR_SECRETS_KEY: entry %d is not <key id>:<base64 of 32 bytes> (a key id is 1 to 32 of A-Z, a-z, 0-9, '_' and '-')", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("CONNECTOR_SECRETS_KEY: key id %q appears twice", id)
		}
		seen[id] = true
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("CONNECTOR_SECRETS_KEY: key %q is not the base64 of 32 bytes", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("CONNECTOR_SECRETS_KEY: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("CONNECTOR_SECRETS_KEY: key %q: %w", id, err)
		}
		kr.keys = append(kr.keys, key{id: id, aead: aead, raw: raw})
	}
	kr.current = &kr.keys[0]
	return kr, nil
}

// CurrentKeyID is the id of the key everything is sealed under.
func (k *Keyring) CurrentKeyID() string { return k.current.id }

// Seal encrypts plaintext under the current key. ad binds the secret to its
// place (the connector and the field): a sealed value copied to another
// connector or field does not open there. An empty plaintext seals to "".
func (k *Keyring) Seal(plaintext, ad string) (Sealed, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, k.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("connector: seal: %w", err)
	}
	out := k.current.aead.Seal(nonce, nonce, []byte(plaintext), []byte(ad))
	return Sealed(k.current.id + ":" + base64.RawStdEncoding.EncodeToString(out)), nil
}

// Open decrypts s, sealed with the same ad. "" opens to "".
func (k *Keyring) Open(s Sealed, ad string) (string, error) {
	if s == "" {
		return "", nil
	}
	id, b64, ok := strings.Cut(string(s), ":")
	if !ok {
		return "", ErrOpen
	}
	var kk *key
	for i := range k.keys {
		if k.keys[i].id == id {
			kk = &k.keys[i]
		}
	}
	if kk == nil {
		return "", fmt.Errorf("%w (key id %q)", ErrUnknownKey, id)
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	n := kk.aead.NonceSize()
	if err != nil || len(raw) < n+kk.aead.Overhead() {
		return "", ErrOpen
	}
	pt, err := kk.aead.Open(nil, raw[:n], raw[n:], []byte(ad))
	if err != nil {
		return "", ErrOpen
	}
	return string(pt), nil
}

// Reseal returns s sealed under the current key, and whether it changed.
func (k *Keyring) Reseal(s Sealed, ad string) (Sealed, bool, error) {
	if s == "" || s.KeyID() == k.current.id {
		return s, false, nil
	}
	pt, err := k.Open(s, ad)
	if err != nil {
		return s, false, err
	}
	out, err := k.Seal(pt, ad)
	return out, err == nil, err
}

// derive returns n bytes derived from the current key for purpose, so that
// one configured secret yields independent keys (state signing, the admin
// API's transport key) without any being usable for another.
func (k *Keyring) derive(purpose string, n int) ([]byte, error) {
	return deriveFrom(k.current.raw, purpose, n)
}

// deriveAll derives purpose's key from every key of the ring, the current
// first: what one replica made under the key that was current for it opens
// on a replica that has since put a new key first (a rolling restart).
func (k *Keyring) deriveAll(purpose string, n int) ([][]byte, error) {
	out := make([][]byte, 0, len(k.keys))
	for _, kk := range k.keys {
		b, err := deriveFrom(kk.raw, purpose, n)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func deriveFrom(raw []byte, purpose string, n int) ([]byte, error) {
	return hkdf.Key(sha256.New, raw, nil, "zoom-connector "+purpose, n)
}

// transportKey is the X25519 key pair with which a service opens secrets
// that a client sealed to its public key (TransportPublicKey), so that
// secrets cross NATS only encrypted and clients never need the keyring.
func (k *Keyring) transportKey() (hpke.PrivateKey, error) {
	ikm, err := k.derive("admin transport x25519", 32)
	if err != nil {
		return nil, err
	}
	return hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(ikm)
}

// TransportPublicKey is the public key (raw X25519, 32 bytes) to which
// clients of the admin API seal secrets (SealForTransport).
func (k *Keyring) TransportPublicKey() ([]byte, error) {
	priv, err := k.transportKey()
	if err != nil {
		return nil, err
	}
	return priv.PublicKey().Bytes(), nil
}

// transport is the HPKE suite of the admin API's sealed secrets.
func transport() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES256GCM() }

// SealForTransport seals plaintext to the service's public key pub (from
// TransportPublicKey) with HPKE (X25519, HKDF-SHA256, AES-256-GCM); info
// binds it to its use. The result is base64.
func SealForTransport(pub []byte, info, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	pk, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("connector: transport key: %w", err)
	}
	kdf, aead := transport()
	ct, err := hpke.Seal(pk, kdf, aead, []byte(info), []byte(plaintext))
	if err != nil {
		return "", fmt.Errorf("connector: seal for transport: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// OpenTransport opens what a client sealed with SealForTransport, to the
// transport key of any key of the ring (a client may have asked a replica
// that still had another key first).
func (k *Keyring) OpenTransport(sealed, info string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	ct, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrOpen
	}
	ikms, err := k.deriveAll("admin transport x25519", 32)
	if err != nil {
		return "", err
	}
	kdf, aead := transport()
	for _, ikm := range ikms {
		sk, err := hpke.DHKEM(ecdh.X25519()).DeriveKeyPair(ikm)
		if err != nil {
			return "", err
		}
		if pt, err := hpke.Open(sk, kdf, aead, []byte(info), ct); err == nil {
			return string(pt), nil
		}
	}
	return "", ErrOpen
}
