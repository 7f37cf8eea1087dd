package idp

import (
	"crypto/sha256"
	"encoding/base64"
)

// hashToken returns the SHA-256 of a code or refresh token value, base64url
// without padding: the only form in which such a value reaches the store.
// The values are 256 random bits, so a plain hash (no salt, no stretching)
// is enough to make a stolen table useless.
func hashToken(value string) string {
	sum := sha256.Sum256([]byte(value))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
