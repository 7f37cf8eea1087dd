package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/dingtalk/sharedlimit"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/web"
)

// keyRotationCheck is how often each replica asks whether a signing key is
// due for rotation; the rotation itself happens once, on one replica.
const keyRotationCheck = time.Hour

// accountSource lets the provider read accounts from the mapping.
type accountSource struct {
	store interface {
		AccountByID(ctx context.Context, id string) (mapping.Account, error)
	}
}

func (a accountSource) Account(ctx context.Context, id string) (idp.Account, error) {
	acct, err := a.store.AccountByID(ctx, id)
	if err != nil {
		return idp.Account{}, err
	}
	return idp.Account{
		ID: acct.ID, Username: acct.Username, DisplayName: acct.DisplayName,
		Email: acct.Email, EmailVerified: acct.EmailVerified, Phone: acct.Phone,
		Groups: acct.Groups, Disabled: acct.Disabled,
	}, nil
}

// oidcParts are what the provider is built from: its store, the mapping's
// accounts, and the DingTalk sign-in.
type oidcParts struct {
	store    idp.Store
	accounts idp.AccountSource
	dingtalk *idp.DingTalkConfig
	observer idp.Observer // nil: nothing counted or audited
}

// startProvider builds the OpenID Connect provider and starts its
// background jobs (signing-key bootstrap and rotation, clean-up), which stop
// with ctx. keysReady reports whether signing keys exist yet: they are
// created in the background, so that a database outage at start-up shows as
// "not ready" instead of a crash loop.
func startProvider(ctx context.Context, cfg *Config, parts oidcParts, logger *slog.Logger) (p *idp.Provider, keysReady func() bool, err error) {
	keys, err := newKeyManager(cfg, parts.store, logger)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := decodeSecrets(cfg.Secrets)
	if err != nil {
		return nil, nil, err
	}
	clients, err := providerClients(cfg)
	if err != nil {
		return nil, nil, err
	}
	p, err = idp.New(idp.Config{
		Issuer:          cfg.Issuer,
		Clients:         idpClients(clients),
		Store:           parts.store,
		Keys:            keys,
		Accounts:        parts.accounts,
		DingTalk:        parts.dingtalk,
		CryptoKey:       secrets.tokenKey,
		CookieHashKey:   secrets.cookieHash,
		CookieBlockKey:  secrets.cookieBlock,
		SessionLifetime: cfg.OIDC.SessionLifetime,
		Observer:        parts.observer,
		Logger:          logger,
	})
	if err != nil {
		return nil, nil, err
	}
	var ready atomic.Bool
	first := keys.Ensure(ctx) // the usual case: the database is up
	ready.Store(first == nil)
	go func() {
		if first != nil {
			logger.WarnContext(ctx, "signing keys not ready; retrying in the background", "err", first)
			if !ensureKeys(ctx, keys, logger) {
				return
			}
			ready.Store(true)
		}
		keys.Run(ctx, keyRotationCheck)
	}()
	go idp.RunGC(ctx, parts.store, cfg.OIDC.CleanupInterval, cfg.OIDC.CleanupRetention, time.Now, logger)
	return p, ready.Load, nil
}

// ensureKeys creates the signing keys if there are none, retrying with
// back-off until it succeeds or ctx ends (false).
func ensureKeys(ctx context.Context, keys *idp.KeyManager, logger *slog.Logger) bool {
	wait := time.Second
	for {
		err := keys.Ensure(ctx)
		if err == nil {
			return true
		}
		logger.WarnContext(ctx, "signing keys not ready; retrying", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

type decodedSecrets struct {
	tokenKey    [32]byte
	appTokenKey [32]byte // encrypts DingTalk app tokens in the store
	cookieHash  []byte
	cookieBlock []byte
}

// decodeSecrets decodes the configured keys. The keys that encrypt opaque
// access tokens and the shared DingTalk app tokens are derived from the
// key-encryption key (HKDF-SHA256, one info string each, so that neither key
// tells anything about the other), so they are the same on every replica
// without another secret to manage.
func decodeSecrets(s SecretsConfig) (decodedSecrets, error) {
	var out decodedSecrets
	for _, k := range []struct {
		info string
		key  *[32]byte
	}{
		{"dingbridge opaque access tokens", &out.tokenKey},
		{"dingbridge dingtalk app tokens", &out.appTokenKey},
	} {
		derived, err := deriveKey(s, k.info)
		if err != nil {
			return out, err
		}
		copy(k.key[:], derived)
	}
	var err error
	if out.cookieHash, err = base64.StdEncoding.DecodeString(s.CookieHashKey); err != nil {
		return out, fmt.Errorf("secrets.cookie_hash_key: %w", err)
	}
	if out.cookieBlock, err = base64.StdEncoding.DecodeString(s.CookieBlockKey); err != nil {
		return out, fmt.Errorf("secrets.cookie_block_key: %w", err)
	}
	return out, nil
}

// deriveKey derives a 32-byte key for one purpose (info) from the
// key-encryption key with HKDF-SHA256: every replica computes the same key
// with no further secret to manage, and no derived key tells anything about
// another or about the KEK.
func deriveKey(s SecretsConfig, info string) ([]byte, error) {
	kek, err := base64.StdEncoding.DecodeString(s.KeyEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("secrets.key_encryption_key: %w", err)
	}
	return hkdf.Key(sha256.New, kek, nil, info, 32)
}

func idpClients(cfgs []ClientConfig) []idp.ClientConfig {
	out := make([]idp.ClientConfig, 0, len(cfgs))
	for _, c := range cfgs {
		out = append(out, idp.ClientConfig{
			ID: c.ID, Name: c.Name, Secret: c.Secret, Public: c.Public,
			RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			InitiateLoginURI: c.InitiateLoginURI, Scopes: c.Scopes, Corps: c.Corps,
			IDTokenAlgorithm:     c.IDTokenSigningAlg,
			AccessTokenJWT:       c.AccessTokenFormat == "jwt",
			IDTokenLifetime:      c.IDTokenLifetime,
			AccessTokenLifetime:  c.AccessTokenLifetime,
			RefreshTokenLifetime: c.RefreshTokenLifetime,
			RefreshFamilyLife:    c.RefreshTokenAbsoluteLifetime,
		})
	}
	return out
}

// mountProvider serves the provider under the issuer's path.
func mountProvider(r chi.Router, issuer string, p *idp.Provider) {
	path := "/"
	if u, err := url.Parse(issuer); err == nil && u.Path != "" {
		path = u.Path
	}
	r.Mount(path, p.Handler())
}

// bridge is dingbridge's HTTP side, assembled the same way for serve,
// demo and bench.
type bridge struct {
	router  chi.Router
	login   *idp.DingTalkConfig   // the sign-in, with the DingTalk clients it uses
	metrics *metrics              // what it counts; served apart from router
	limits  *sharedlimit.Postgres // nil unless shared; Flush once the server has stopped
	console *web.Server           // nil when the admin console is off
}

// drain waits, in a graceful shutdown once the HTTP server has stopped,
// for the console's imports running in the background, so that they
// finish before the database pool closes under them.
func (b *bridge) drain(ctx context.Context) error {
	if b.console == nil {
		return nil
	}
	return b.console.Drain(ctx)
}

// buildBridge is buildBridgeWith its own metrics.
func buildBridge(ctx context.Context, cfg *Config, store idp.Store, accounts mapping.Store,
	dbReady func(context.Context) error, logger *slog.Logger) (*bridge, error) {
	return buildBridgeWith(ctx, cfg, store, accounts, dbReady, newMetrics(), logger)
}

// buildBridgeWith wires the DingTalk sign-in, the provider (with its
// background jobs, stopped by ctx), DingTalk's event callbacks and the
// admin console onto one router, all counting into m. dbReady, when not
// nil, is part of the readiness check, before the signing keys.
func buildBridgeWith(ctx context.Context, cfg *Config, store idp.Store, accounts mapping.Store,
	dbReady func(context.Context) error, m *metrics, logger *slog.Logger) (*bridge, error) {
	limits, err := dingTalkLimits(cfg, accounts, logger)
	if err != nil {
		return nil, err
	}
	login, err := dingTalkLogin(cfg, accounts, store, limits, m, logger)
	if err != nil {
		return nil, err
	}
	m.registerPending(countPending(accounts), logger)
	provider, keysReady, err := startProvider(ctx, cfg, oidcParts{store: store, accounts: accountSource{accounts}, dingtalk: login,
		observer: newBridgeObserver(m, accounts, logger)}, logger)
	if err != nil {
		return nil, err
	}
	trusted, err := parseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	r := newRouter(logger, trusted, func(ctx context.Context) error {
		if dbReady != nil {
			if err := dbReady(ctx); err != nil {
				return fmt.Errorf("%w: %w", errDatabaseUnreachable, err)
			}
		}
		if !keysReady() {
			return errKeysNotReady
		}
		return nil
	})
	mountProvider(r, cfg.Issuer, provider)
	console, err := mountAdmin(r, cfg, accounts, limits, provider, logger)
	if err != nil {
		return nil, err
	}
	end := sessionEnder{provider: provider}
	if console != nil {
		end.console = console
	}
	if err := mountEvents(r, cfg, accounts, end, logger); err != nil {
		return nil, err
	}
	go runImportJobGC(ctx, accounts, cfg.OIDC.CleanupInterval, logger)
	return &bridge{router: r, login: login, metrics: m, limits: limits, console: console}, nil
}
