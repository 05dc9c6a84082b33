package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// signaturePrefix is the version tag of Zoom's signature scheme, both in the
// signed message ("v0:") and in the header ("v0=").
const signaturePrefix = "v0"

// Sign computes the x-zm-signature of a notification: "v0=" and the hex
// HMAC-SHA256, keyed with the secret token, of "v0:{timestamp}:{body}", where
// timestamp is the x-zm-request-timestamp header as sent and body the raw
// request body.
func Sign(secret Secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(signaturePrefix + ":" + timestamp + ":"))
	m.Write(body)
	return signaturePrefix + "=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is the signature of body sent at
// timestamp. The comparison takes constant time, so that response times
// reveal nothing about how much of a forged signature is right; only the exact
// spelling Zoom sends (lower-case hex) verifies. An empty secret verifies
// nothing, so that a misconfigured connector cannot accept unsigned input.
func Verify(secret Secret, timestamp string, body []byte, signature string) bool {
	if secret == "" {
		return false
	}
	return hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body)))
}

// Fresh reports whether timestamp (Unix seconds, as in
// x-zm-request-timestamp) lies within maxSkew of now, either way: a
// notification older than that is a replay, and one from further in the
// future cannot have come from Zoom with a sane clock.
func Fresh(timestamp string, now time.Time, maxSkew time.Duration) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	// Compare with bounds rather than the difference, which could overflow
	// for absurd timestamps.
	skew := int64(maxSkew / time.Second)
	return sec >= now.Unix()-skew && sec <= now.Unix()+skew
}

// EncryptToken is the encryptedToken of the answer to an
// endpoint.url_validation request: the hex HMAC-SHA256 of plainToken keyed
// with the secret token.
func EncryptToken(secret Secret, plainToken string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(plainToken))
	return hex.EncodeToString(m.Sum(nil))
}
