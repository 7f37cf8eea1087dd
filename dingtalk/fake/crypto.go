package fake

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// callbackCipher is the HTTP event-push crypto of §7.3 (AES-256-CBC,
// IV = key[:16], PKCS#7 to 32 bytes, SHA-1 signature).
type callbackCipher struct {
	token    string
	key      []byte
	ownerKey string // app key (console subscription) or corpId (API registration)
}

// callbackBlock is the padding block size DingTalk uses.
const callbackBlock = 32

// newCallbackCipher decodes the 43-character aes key.
func newCallbackCipher(token, aesKey, ownerKey string) (*callbackCipher, error) {
	if len(aesKey) != 43 {
		return nil, fmt.Errorf("aes key: %d characters, want 43", len(aesKey))
	}
	key, err := base64.StdEncoding.DecodeString(aesKey + "=")
	if err != nil {
		return nil, fmt.Errorf("aes key: %w", err)
	}
	return &callbackCipher{token: token, key: key, ownerKey: ownerKey}, nil
}

// encrypt returns base64(AES-CBC(random16 ‖ len(msg) ‖ msg ‖ ownerKey)).
func (c *callbackCipher) encrypt(msg string) (string, error) {
	return c.seal(randomBytes(16), msg)
}

// seal is encrypt with the random prefix given.
func (c *callbackCipher) seal(random []byte, msg string) (string, error) {
	buf := slices.Clone(random)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, c.ownerKey...)
	pad := callbackBlock - len(buf)%callbackBlock
	for range pad {
		buf = append(buf, byte(pad))
	}
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return "", fmt.Errorf("aes: %w", err)
	}
	cipher.NewCBCEncrypter(block, c.key[:aes.BlockSize]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// errCallbackDecrypt is returned for any malformed ciphertext.
var errCallbackDecrypt = errors.New("callback decrypt failed")

// decrypt reverses encrypt and checks the owner key. Padding of 1..32
// bytes is accepted, since some senders pad to 16.
func (c *callbackCipher) decrypt(encrypted string) (string, error) {
	buf, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return "", errCallbackDecrypt
	}
	block, err := aes.NewCipher(c.key)
	if err != nil {
		return "", fmt.Errorf("aes: %w", err)
	}
	cipher.NewCBCDecrypter(block, c.key[:aes.BlockSize]).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > callbackBlock || pad > len(buf) {
		return "", errCallbackDecrypt
	}
	buf = buf[:len(buf)-pad]
	if len(buf) < 20 {
		return "", errCallbackDecrypt
	}
	n := binary.BigEndian.Uint32(buf[16:20])
	rest := buf[20:]
	if uint64(n) > uint64(len(rest)) {
		return "", errCallbackDecrypt
	}
	msg, owner := rest[:n], rest[n:]
	if string(owner) != c.ownerKey {
		return "", fmt.Errorf("%w: owner key %q, want %q", errCallbackDecrypt, owner, c.ownerKey)
	}
	return string(msg), nil
}

// signature is hex(SHA1(sorted token, timestamp, nonce, encrypt)).
func (c *callbackCipher) signature(timestamp, nonce, encrypt string) string {
	parts := []string{c.token, timestamp, nonce, encrypt}
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// snsSignature is the legacy SNS request signature (§6.3):
// base64(HMAC-SHA256(appSecret, timestamp)), before URL encoding.
func snsSignature(appSecret, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
