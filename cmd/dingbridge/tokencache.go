package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/idp"
)

var _ dingtalk.TokenCache = (*appTokenCache)(nil)

// appTokenCache shares DingTalk app access tokens between replicas through
// the provider's store (SECURITY.md BR-13), so that one replica fetches a
// token and the others use it instead of each calling DingTalk's
// rate-limited token endpoint.
//
// The token is a secret, so the store holds it only encrypted: AES-256-GCM
// with a random nonce prefixed to the ciphertext, and the app key as
// associated data, so that a ciphertext copied into another app's row does
// not decrypt. The cache never fails a sign-in: a store or decryption error
// is logged and reported as a miss, and the client then fetches a token
// itself.
type appTokenCache struct {
	store  idp.Store
	aead   cipher.AEAD
	logger *slog.Logger
}

// newAppTokenCache returns a cache in store, encrypting under key (see
// decodeSecrets: derived from the key-encryption key).
func newAppTokenCache(store idp.Store, key [32]byte, logger *slog.Logger) (*appTokenCache, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("dingtalk app token cache: %w", err)
	}
	// The nonce is random, drawn per Seal and prefixed to the ciphertext: a
	// 96-bit random nonce is safe for far more tokens than DingTalk will
	// ever issue under one key.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("dingtalk app token cache: %w", err)
	}
	return &appTokenCache{store: store, aead: aead, logger: logger}, nil
}

// Load implements dingtalk.TokenCache. Whatever goes wrong is a miss.
func (c *appTokenCache) Load(ctx context.Context, appKey string) (string, time.Time, bool) {
	ciphertext, expiresAt, err := c.store.DingTalkAppToken(ctx, appKey)
	if errors.Is(err, idp.ErrNotFound) {
		return "", time.Time{}, false
	}
	if err != nil {
		c.logger.WarnContext(ctx, "shared dingtalk app token unavailable; fetching one",
			"app_key", appKey, "err", err)
		return "", time.Time{}, false
	}
	token, err := c.aead.Open(nil, nil, ciphertext, []byte(appKey))
	if err != nil {
		// Another key-encryption key (a rotation, or a replica configured
		// differently) or a row that is not this app's. The next fetch
		// replaces it, as its expiry is later.
		c.logger.WarnContext(ctx, "shared dingtalk app token does not decrypt; fetching one",
			"app_key", appKey, "err", err)
		return "", time.Time{}, false
	}
	return string(token), expiresAt, true
}

// Store implements dingtalk.TokenCache. The store keeps whichever token
// expires last (see idp.Store.PutDingTalkAppToken), so a replica that
// fetched earlier but writes later does not replace a newer token.
func (c *appTokenCache) Store(ctx context.Context, appKey, token string, expiresAt time.Time) {
	ciphertext := c.aead.Seal(nil, nil, []byte(token), []byte(appKey))
	if err := c.store.PutDingTalkAppToken(ctx, appKey, ciphertext, expiresAt); err != nil {
		c.logger.WarnContext(ctx, "could not share the dingtalk app token with other replicas",
			"app_key", appKey, "err", err)
	}
}
