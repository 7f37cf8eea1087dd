package idp

import (
	"crypto/rand"
	"encoding/base64"
)

// randomID returns 128 random bits, base64url: ids of requests, tokens and
// sessions, unguessable so that knowing one never lets you find another.
func randomID() string { return randomString(16) }

// randomSecret returns 256 random bits, base64url: codes and refresh tokens,
// whose value is a credential (printable ASCII only, as RFC 6749 requires).
func randomSecret() string { return randomString(32) }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
