package fake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// randomBytes returns n bytes from crypto/rand, which never fails.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// randomHex returns 2n lowercase hex characters, the shape of DingTalk's
// tokens and codes.
func randomHex(n int) string {
	return hex.EncodeToString(randomBytes(n))
}

// randomFrom returns n characters drawn from alphabet.
func randomFrom(alphabet string, n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const (
	lowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz"
	alnum      = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// newRequestID returns a request id shaped like the host's own: new-API
// ids are upper-case UUIDs, old-API ids 13 lower-case characters.
func newRequestID(f family) string {
	if f != familyNew {
		return randomFrom(lowerAlnum, 13)
	}
	b := randomBytes(16)
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
