package idp

import (
	"cmp"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // crypto.SHA256 for RFC 7638 thumbprints
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// keyStore is the part of Store the key manager uses.
type keyStore interface {
	SigningKeys(ctx context.Context) (KeySet, error)
	ReplaceSigningKeys(ctx context.Context, fromVersion int64, keys []SigningKey) (int64, error)
}

var (
	_ keyStore       = Store(nil)
	_ op.SigningKey  = (*signingKey)(nil)
	_ op.Key         = (*publicKey)(nil)
	_ op.KeyProvider = (*KeyManager)(nil)
	_ slog.LogValuer = KeyConfig{}
	_ slog.LogValuer = (*KeyManager)(nil)
	_ slog.LogValuer = (*signingKey)(nil)
)

// Key defaults and limits.
const (
	defaultRotationPeriod = 30 * 24 * time.Hour
	defaultRetireAfter    = 24 * time.Hour
	defaultCacheFor       = 30 * time.Second
	defaultRSABits        = 2048
	minRSABits            = 2048 // SECURITY.md SEC-03
	maxRSABits            = 8192
	kekSize               = 32 // AES-256

	// rotateGrace is how recently a key may have become current for Rotate
	// to leave its algorithm alone: see Rotate.
	rotateGrace = time.Minute
	// maxKeyWriteAttempts bounds the read, decide, compare-and-swap loop
	// when other replicas keep changing the key set.
	maxKeyWriteAttempts = 5
)

// Signing algorithms a KeyManager can keep keys for.
const (
	algRS256 = string(jose.RS256)
	algES256 = string(jose.ES256)
)

var defaultAlgorithms = []string{algRS256, algES256}

// KeyConfig configures a KeyManager. Zero durations and sizes take their
// defaults.
type KeyConfig struct {
	// Store persists the key set; every replica shares it.
	Store keyStore
	// KEK is the 32-byte key-encryption key (config
	// secrets.key_encryption_key). It must be the same on every replica.
	KEK []byte
	// Algorithms are the signing algorithms to keep a key chain for, in
	// order of preference: "RS256", "ES256". Default both, RS256 first.
	Algorithms []string
	// RotationPeriod is how long a key stays current before MaybeRotate
	// replaces it. Default 30 days.
	RotationPeriod time.Duration
	// RetireAfter is how long a key stays published after it stopped
	// signing. It must cover the longest token lifetime plus the time
	// relying parties cache the JWKS. Default 24h.
	RetireAfter time.Duration
	// CacheFor is how long a replica trusts its cached key set before it
	// reads the store again. Default 30s.
	CacheFor time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives rotation events; default discards.
	Logger *slog.Logger
	// RSABits is the RSA modulus size for new RS256 keys. Default 2048.
	RSABits int
}

// LogValue keeps the KEK out of logs.
func (c KeyConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("algorithms", c.Algorithms),
		slog.Duration("rotation_period", c.RotationPeriod),
		slog.Duration("retire_after", c.RetireAfter),
		slog.Duration("cache_for", c.CacheFor),
		slog.Int("rsa_bits", c.RSABits),
		slog.String("kek", "[redacted]"),
	)
}

// KeyManager keeps the provider's signing keys: it generates them, stores
// their private halves encrypted under the KEK, rotates them through next →
// current → previous, and serves them to the op package from a cache, so
// that signing and publishing never decrypt or read the store per request.
// It is safe for concurrent use, and several replicas may share one store.
type KeyManager struct {
	store          keyStore
	aead           cipher.AEAD // AES-256-GCM under the KEK, random nonce prefix
	algs           []string
	joseAlgs       []jose.SignatureAlgorithm
	rotationPeriod time.Duration
	retireAfter    time.Duration
	cacheFor       time.Duration
	rsaBits        int
	now            func() time.Time
	logger         *slog.Logger

	// cached is read without locking on the hot path.
	cached atomic.Pointer[keySnapshot]
	// loadMu serializes store reloads and guards private.
	loadMu sync.Mutex
	// private holds decrypted private keys by kid|alg, so a key is
	// decrypted once per process, not once per reload.
	private map[string]crypto.Signer
}

// keySnapshot is one version of the key set, ready to serve.
type keySnapshot struct {
	version  int64
	loadedAt time.Time
	current  map[string]*signingKey // by algorithm
	public   []op.Key               // every published key, current first
}

func (s *keySnapshot) fresh(now time.Time, cacheFor time.Duration) bool {
	age := now.Sub(s.loadedAt)
	return age >= 0 && age < cacheFor
}

// NewKeyManager checks cfg, applies defaults and returns a manager. It does
// not touch the store: call Ensure before serving.
func NewKeyManager(cfg KeyConfig) (*KeyManager, error) {
	if cfg.Algorithms == nil {
		cfg.Algorithms = defaultAlgorithms
	}
	if cfg.RotationPeriod == 0 {
		cfg.RotationPeriod = defaultRotationPeriod
	}
	if cfg.RetireAfter == 0 {
		cfg.RetireAfter = defaultRetireAfter
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = defaultCacheFor
	}
	if cfg.RSABits == 0 {
		cfg.RSABits = defaultRSABits
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("keys: store is required"))
	}
	if len(cfg.KEK) != kekSize {
		errs = append(errs, fmt.Errorf("keys: secrets.key_encryption_key must be %d bytes, got %d", kekSize, len(cfg.KEK)))
	}
	if len(cfg.Algorithms) == 0 {
		errs = append(errs, errors.New("keys: at least one signing algorithm is required"))
	}
	for i, alg := range cfg.Algorithms {
		if alg != algRS256 && alg != algES256 {
			errs = append(errs, fmt.Errorf("keys: signing algorithm %q is not supported (want RS256 or ES256)", alg))
		}
		if slices.Index(cfg.Algorithms, alg) < i {
			errs = append(errs, fmt.Errorf("keys: signing algorithm %q is listed twice", alg))
		}
	}
	if cfg.RotationPeriod < 0 {
		errs = append(errs, fmt.Errorf("keys: rotation period %v must be positive", cfg.RotationPeriod))
	}
	if cfg.RetireAfter < 0 {
		errs = append(errs, fmt.Errorf("keys: retire-after %v must be positive", cfg.RetireAfter))
	}
	if cfg.CacheFor < 0 {
		errs = append(errs, fmt.Errorf("keys: cache time %v must be positive", cfg.CacheFor))
	}
	// A replica may sign with a key for up to CacheFor after another
	// replica retired it, and relying parties must see a next key before it
	// signs: both windows have to be shorter than the key lifetimes.
	if cfg.CacheFor > 0 && cfg.RetireAfter > 0 && cfg.RetireAfter <= cfg.CacheFor {
		errs = append(errs, fmt.Errorf("keys: retire-after %v must be longer than the cache time %v", cfg.RetireAfter, cfg.CacheFor))
	}
	if cfg.CacheFor > 0 && cfg.RotationPeriod > 0 && cfg.RotationPeriod <= cfg.CacheFor {
		errs = append(errs, fmt.Errorf("keys: rotation period %v must be longer than the cache time %v", cfg.RotationPeriod, cfg.CacheFor))
	}
	if cfg.RSABits < minRSABits || cfg.RSABits > maxRSABits {
		errs = append(errs, fmt.Errorf("keys: RSA key size %d must be between %d and %d bits", cfg.RSABits, minRSABits, maxRSABits))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	block, err := aes.NewCipher(cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("keys: key encryption key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("keys: key encryption key: %w", err)
	}
	m := &KeyManager{
		store:          cfg.Store,
		aead:           aead,
		algs:           slices.Clone(cfg.Algorithms),
		rotationPeriod: cfg.RotationPeriod,
		retireAfter:    cfg.RetireAfter,
		cacheFor:       cfg.CacheFor,
		rsaBits:        cfg.RSABits,
		now:            cfg.Now,
		logger:         cfg.Logger,
		private:        make(map[string]crypto.Signer),
	}
	for _, alg := range m.algs {
		m.joseAlgs = append(m.joseAlgs, jose.SignatureAlgorithm(alg))
	}
	return m, nil
}

// LogValue describes the manager without its key material.
func (m *KeyManager) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Any("algorithms", m.algs)}
	if s := m.cached.Load(); s != nil {
		attrs = append(attrs, slog.Int64("key_set_version", s.version))
	}
	return slog.GroupValue(attrs...)
}

// SigningKey returns the current key for alg ("RS256" or "ES256"), from
// the cache. zitadel's op.Storage.SigningKey takes no algorithm: the
// provider's adapter picks one, normally Algorithms()[0].
func (m *KeyManager) SigningKey(ctx context.Context, alg string) (op.SigningKey, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	k, ok := s.current[alg]
	if !ok {
		return nil, fmt.Errorf("no current %s signing key (has KeyManager.Ensure run?)", alg)
	}
	return k, nil
}

// KeySet returns the public half of every stored key, whatever its state
// (next, current, previous) and algorithm: the JWKS. Publishing next keys
// lets relying parties verify a new key's tokens from the moment it signs;
// publishing previous keys lets them verify tokens an old key signed.
func (m *KeyManager) KeySet(ctx context.Context) ([]op.Key, error) {
	s, err := m.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.public), nil
}

// Algorithms returns the configured signing algorithms, preferred first.
func (m *KeyManager) Algorithms(context.Context) []jose.SignatureAlgorithm {
	return slices.Clone(m.joseAlgs)
}

// Ensure makes sure every configured algorithm has a current and a next
// key, creating what is missing. It is idempotent, and safe to run on every
// replica at start-up: if another replica stores keys first, Ensure adopts
// them. It fails if the stored keys do not decrypt under the KEK.
func (m *KeyManager) Ensure(ctx context.Context) error {
	err := m.update(ctx, func(KeySet, time.Time) planOptions { return planOptions{} })
	if err != nil {
		return fmt.Errorf("ensure signing keys: %w", err)
	}
	return nil
}

// Rotate rotates every configured algorithm now (on command): its current
// key becomes previous, its next key becomes current, and a fresh next key
// is created. Previous keys retired at least RetireAfter ago are dropped.
//
// Several replicas may run Rotate at once (or one right after another) and
// the keys still rotate once. The rule, per algorithm: Rotate rotates away
// from the current key it saw on its first read of the store; if, when it
// re-reads after losing a compare-and-swap, the current key is a different
// one, another replica has already rotated, and this call does not rotate
// that algorithm again. Moreover, Rotate leaves alone an algorithm whose
// current key became current less than a minute ago (rotateGrace), which
// covers calls that did not overlap but landed on different replicas within
// moments; that also keeps a key that has been published as next for only
// seconds from being made current by a double rotation.
func (m *KeyManager) Rotate(ctx context.Context) error {
	var seen map[string]string // current kid per algorithm at the first read
	var recent []string
	err := m.update(ctx, func(set KeySet, now time.Time) planOptions {
		if seen == nil {
			seen = currentKIDs(set)
		}
		recent = recent[:0]
		return planOptions{
			prune: true,
			rotate: func(alg string, cur SigningKey) bool {
				if cur.ID != seen[alg] {
					return false // rotated by another replica since we looked
				}
				if now.Sub(activatedAt(cur)) < rotateGrace {
					recent = append(recent, alg)
					return false
				}
				return true
			},
		}
	})
	if err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	for _, alg := range recent {
		m.logger.InfoContext(ctx, "signing key not rotated: it became current less than a minute ago",
			"alg", alg, "grace", rotateGrace)
	}
	return nil
}

// MaybeRotate rotates each configured algorithm whose current key has been
// current for RotationPeriod, and drops previous keys retired at least
// RetireAfter ago. Keys of algorithms no longer configured are retired
// (current becomes previous, next is dropped). It is what Run does on
// schedule; concurrent calls from several replicas rotate once, since the
// first rotation resets the current key's age.
func (m *KeyManager) MaybeRotate(ctx context.Context) error {
	err := m.update(ctx, func(_ KeySet, now time.Time) planOptions {
		return planOptions{
			prune: true,
			rotate: func(_ string, cur SigningKey) bool {
				return !activatedAt(cur).Add(m.rotationPeriod).After(now)
			},
		}
	})
	if err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	return nil
}

// Run calls MaybeRotate now and then every interval (default an hour) until
// ctx ends, logging failures at Warn.
func (m *KeyManager) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Hour
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		if err := m.MaybeRotate(ctx); err != nil && ctx.Err() == nil {
			m.logger.WarnContext(ctx, "scheduled signing key rotation failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// planOptions says how plan changes a key set beyond filling gaps.
type planOptions struct {
	// rotate reports whether to rotate alg away from its current key; nil
	// never rotates.
	rotate func(alg string, current SigningKey) bool
	// prune drops expired previous keys and retires unconfigured algorithms.
	prune bool
}

// update reads the key set, checks that it decrypts, lets decide choose
// what to change, and stores the result if it differs, re-reading and
// re-deciding when another replica wrote in between. It installs the
// resulting set in the cache.
func (m *KeyManager) update(ctx context.Context, decide func(KeySet, time.Time) planOptions) error {
	var conflict error
	for range maxKeyWriteAttempts {
		set, err := m.store.SigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("read signing keys: %w", err)
		}
		now := m.now()
		// Decrypting what is stored before writing means a replica with
		// the wrong KEK fails here instead of adding keys the others
		// cannot read.
		if err := m.install(set, now); err != nil {
			return err
		}
		keys, changed, err := m.plan(set, now, decide(set, now))
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
		version, err := m.store.ReplaceSigningKeys(ctx, set.Version, keys)
		if errors.Is(err, ErrConflict) {
			conflict = err
			m.logger.DebugContext(ctx, "signing key set changed by another replica, re-reading", "version", set.Version)
			continue
		}
		if err != nil {
			return fmt.Errorf("store signing keys: %w", err)
		}
		next := KeySet{Version: version, Keys: keys}
		m.logChanges(ctx, set, next)
		return m.install(next, now)
	}
	return fmt.Errorf("store signing keys: gave up after %d attempts: %w", maxKeyWriteAttempts, conflict)
}

// plan returns the key set that should replace set, and whether it differs.
func (m *KeyManager) plan(set KeySet, now time.Time, opt planOptions) ([]SigningKey, bool, error) {
	byAlg := make(map[string][]SigningKey)
	var others []string // stored algorithms that are not configured
	for _, k := range set.Keys {
		if _, ok := byAlg[k.Algorithm]; !ok && !slices.Contains(m.algs, k.Algorithm) {
			others = append(others, k.Algorithm)
		}
		byAlg[k.Algorithm] = append(byAlg[k.Algorithm], k)
	}
	var out []SigningKey
	changed := false
	for _, alg := range m.algs {
		keys, c, err := m.planAlgorithm(alg, byAlg[alg], now, opt)
		if err != nil {
			return nil, false, err
		}
		out = append(out, keys...)
		changed = changed || c
	}
	for _, alg := range others {
		if !opt.prune {
			out = append(out, byAlg[alg]...)
			continue
		}
		keys, c := m.retireAlgorithm(byAlg[alg], now)
		out = append(out, keys...)
		changed = changed || c
	}
	return out, changed, nil
}

// planAlgorithm plans one configured algorithm's chain: exactly one current
// and one next key, plus the previous keys still within RetireAfter.
func (m *KeyManager) planAlgorithm(alg string, keys []SigningKey, now time.Time, opt planOptions) ([]SigningKey, bool, error) {
	var currents, nexts, previous []SigningKey
	for _, k := range keys {
		switch k.State {
		case KeyCurrent:
			currents = append(currents, k)
		case KeyNext:
			nexts = append(nexts, k)
		default:
			previous = append(previous, k)
		}
	}
	changed := false

	// Repair: one current (the latest activated), one next (the newest).
	slices.SortStableFunc(currents, func(a, b SigningKey) int { return activatedAt(b).Compare(activatedAt(a)) })
	for _, k := range currents[min(1, len(currents)):] {
		previous = append(previous, retired(k, now))
		changed = true
	}
	slices.SortStableFunc(nexts, func(a, b SigningKey) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(nexts) > 1 {
		changed = true // extra next keys never signed anything: drop them
	}
	var cur, next *SigningKey
	if len(currents) > 0 {
		cur = &currents[0]
	}
	if len(nexts) > 0 {
		next = &nexts[0]
	}

	if cur != nil && opt.rotate != nil && opt.rotate(alg, *cur) {
		previous = append(previous, retired(*cur, now))
		cur = nil
	}
	if cur == nil {
		// Promote the published next key if there is one, so relying
		// parties already know the key that now signs.
		if next != nil {
			k := *next
			k.State = KeyCurrent
			k.ActivatedAt = timePtr(now)
			cur, next = &k, nil
		} else {
			k, err := m.newKey(alg, KeyCurrent, now)
			if err != nil {
				return nil, false, err
			}
			cur = &k
		}
		changed = true
	}
	if next == nil {
		k, err := m.newKey(alg, KeyNext, now)
		if err != nil {
			return nil, false, err
		}
		next = &k
		changed = true
	}
	if opt.prune {
		var c bool
		previous, c = m.prunePrevious(previous, now)
		changed = changed || c
	}
	return append([]SigningKey{*cur, *next}, previous...), changed, nil
}

// retireAlgorithm winds down an algorithm that is no longer configured: its
// current key becomes previous, its next key is dropped (it never signed),
// and its previous keys expire as usual.
func (m *KeyManager) retireAlgorithm(keys []SigningKey, now time.Time) ([]SigningKey, bool) {
	var previous []SigningKey
	changed := false
	for _, k := range keys {
		switch k.State {
		case KeyCurrent:
			previous = append(previous, retired(k, now))
			changed = true
		case KeyNext:
			changed = true
		default:
			previous = append(previous, k)
		}
	}
	previous, c := m.prunePrevious(previous, now)
	return previous, changed || c
}

// prunePrevious drops previous keys retired at least RetireAfter ago.
func (m *KeyManager) prunePrevious(previous []SigningKey, now time.Time) ([]SigningKey, bool) {
	changed := false
	kept := previous[:0]
	for _, k := range previous {
		if k.RetiredAt == nil { // not expected; start its clock now
			k = retired(k, now)
			changed = true
		}
		if !k.RetiredAt.Add(m.retireAfter).After(now) {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	return kept, changed
}

func retired(k SigningKey, now time.Time) SigningKey {
	k.State = KeyPrevious
	k.RetiredAt = timePtr(now)
	return k
}

func activatedAt(k SigningKey) time.Time {
	if k.ActivatedAt != nil {
		return *k.ActivatedAt
	}
	return k.CreatedAt
}

func timePtr(t time.Time) *time.Time { return &t }

func currentKIDs(set KeySet) map[string]string {
	kids := make(map[string]string)
	latest := make(map[string]time.Time)
	for _, k := range set.Keys {
		if k.State != KeyCurrent {
			continue
		}
		if t, ok := latest[k.Algorithm]; !ok || activatedAt(k).After(t) {
			kids[k.Algorithm], latest[k.Algorithm] = k.ID, activatedAt(k)
		}
	}
	return kids
}

func (m *KeyManager) logChanges(ctx context.Context, from, to KeySet) {
	before := make(map[string]KeyState, len(from.Keys))
	for _, k := range from.Keys {
		before[k.ID] = k.State
	}
	after := make(map[string]bool, len(to.Keys))
	for _, k := range to.Keys {
		after[k.ID] = true
		if old, ok := before[k.ID]; !ok || old != k.State {
			m.logger.InfoContext(ctx, "signing key state changed",
				"kid", k.ID, "alg", k.Algorithm, "from", string(old), "to", string(k.State), "version", to.Version)
		}
	}
	for _, k := range from.Keys {
		if !after[k.ID] {
			m.logger.InfoContext(ctx, "signing key removed", "kid", k.ID, "alg", k.Algorithm, "version", to.Version)
		}
	}
}

// snapshot returns the cached key set, reading the store again once it is
// CacheFor old. Concurrent callers wait for one reload.
func (m *KeyManager) snapshot(ctx context.Context) (*keySnapshot, error) {
	if s := m.cached.Load(); s != nil && s.fresh(m.now(), m.cacheFor) {
		return s, nil
	}
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	if s := m.cached.Load(); s != nil && s.fresh(m.now(), m.cacheFor) {
		return s, nil // another caller reloaded while we waited
	}
	set, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	s, err := m.buildLocked(set, m.now())
	if err != nil {
		return nil, err
	}
	m.cached.Store(s)
	return s, nil
}

// install makes set the cached key set, decrypting keys it has not seen.
func (m *KeyManager) install(set KeySet, now time.Time) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	s, err := m.buildLocked(set, now)
	if err != nil {
		return err
	}
	m.cached.Store(s)
	return nil
}

// buildLocked turns a stored key set into a snapshot. Every key is
// decrypted (once per process) and checked against its kid and public JWK,
// and what is published is derived from the decrypted private key: a row
// written by someone without the KEK is an error, never a trusted key.
// m.loadMu must be held.
func (m *KeyManager) buildLocked(set KeySet, now time.Time) (*keySnapshot, error) {
	if old := m.cached.Load(); old != nil && old.version == set.Version && set.Version != 0 {
		s := *old // a version's keys never change
		s.loadedAt = now
		return &s, nil
	}
	s := &keySnapshot{
		version:  set.Version,
		loadedAt: now,
		current:  make(map[string]*signingKey),
		public:   make([]op.Key, 0, len(set.Keys)),
	}
	keys := slices.Clone(set.Keys)
	slices.SortStableFunc(keys, func(a, b SigningKey) int {
		return cmp.Or(
			cmp.Compare(m.algorithmRank(a.Algorithm), m.algorithmRank(b.Algorithm)),
			cmp.Compare(a.Algorithm, b.Algorithm),
			cmp.Compare(stateRank(a.State), stateRank(b.State)),
			activatedAt(b).Compare(activatedAt(a)),
		)
	})
	used := make(map[string]crypto.Signer, len(keys))
	for _, k := range keys {
		ref := k.ID + "|" + k.Algorithm
		priv, ok := m.private[ref]
		if !ok {
			var err error
			if priv, err = m.openKey(k); err != nil {
				return nil, err
			}
		}
		used[ref] = priv
		s.public = append(s.public, &publicKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Algorithm), key: priv.Public()})
		if k.State == KeyCurrent {
			if _, dup := s.current[k.Algorithm]; !dup { // sorted: latest activated first
				s.current[k.Algorithm] = &signingKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Algorithm), key: priv}
			}
		}
	}
	m.private = used // forget keys no longer stored
	return s, nil
}

func (m *KeyManager) algorithmRank(alg string) int {
	if i := slices.Index(m.algs, alg); i >= 0 {
		return i
	}
	return len(m.algs)
}

func stateRank(s KeyState) int {
	switch s {
	case KeyCurrent:
		return 0
	case KeyNext:
		return 1
	default:
		return 2
	}
}

// newKey generates a key for alg and returns it sealed for storage.
func (m *KeyManager) newKey(alg string, state KeyState, now time.Time) (SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case algRS256:
		priv, err = rsa.GenerateKey(rand.Reader, m.rsaBits)
	case algES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate %s signing key: %w", alg, err)
	}
	return m.sealKey(alg, priv, state, now)
}

// sealKey returns priv as a stored key: kid from its public key, private
// key as PKCS#8 encrypted under the KEK, public key as a JWK.
func (m *KeyManager) sealKey(alg string, priv crypto.Signer, state KeyState, now time.Time) (SigningKey, error) {
	kid, err := keyID(priv.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("new %s signing key: %w", alg, err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return SigningKey{}, fmt.Errorf("new %s signing key: public JWK: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, fmt.Errorf("new %s signing key: PKCS#8: %w", alg, err)
	}
	sealed := m.aead.Seal(nil, nil, der, keyAAD(kid, alg))
	clear(der)
	k := SigningKey{
		ID:                  kid,
		Algorithm:           alg,
		State:               state,
		EncryptedPrivateKey: sealed,
		PublicJWK:           jwk,
		CreatedAt:           now,
	}
	if state == KeyCurrent {
		k.ActivatedAt = timePtr(now)
	}
	return k, nil
}

// openKey decrypts a stored key and checks it: right type for its
// algorithm, kid equal to its thumbprint, stored public JWK its own.
func (m *KeyManager) openKey(k SigningKey) (crypto.Signer, error) {
	der, err := m.aead.Open(nil, nil, k.EncryptedPrivateKey, keyAAD(k.ID, k.Algorithm))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: cannot decrypt: is secrets.key_encryption_key the same on every replica?", k.ID)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: parse private key: %w", k.ID, err)
	}
	var priv crypto.Signer
	switch key := parsed.(type) {
	case *rsa.PrivateKey:
		if k.Algorithm == algRS256 && key.N.BitLen() >= minRSABits {
			priv = key
		}
	case *ecdsa.PrivateKey:
		if k.Algorithm == algES256 && key.Curve == elliptic.P256() {
			priv = key
		}
	}
	if priv == nil {
		return nil, fmt.Errorf("signing key %s: a %T is not a valid %s key", k.ID, parsed, k.Algorithm)
	}
	kid, err := keyID(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	if kid != k.ID {
		return nil, fmt.Errorf("signing key %s: private key has thumbprint %s", k.ID, kid)
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
		return nil, fmt.Errorf("signing key %s: public JWK: %w", k.ID, err)
	}
	if !jwk.IsPublic() {
		return nil, fmt.Errorf("signing key %s: public JWK is not a public key", k.ID)
	}
	if jwkKID, err := keyID(jwk.Key); err != nil || jwkKID != k.ID || jwk.KeyID != k.ID || jwk.Algorithm != k.Algorithm {
		return nil, fmt.Errorf("signing key %s: public JWK does not match the private key", k.ID)
	}
	return priv, nil
}

// keyAAD binds a ciphertext to its row: it cannot be moved to another kid
// or algorithm.
func keyAAD(kid, alg string) []byte { return []byte(kid + "|" + alg) }

// keyID is the RFC 7638 JWK thumbprint (SHA-256, base64url) of pub.
func keyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("JWK thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// signingKey is a decrypted current key, as op signs with it.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey, as go-jose requires
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// LogValue keeps the private key out of logs.
func (k *signingKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.id), slog.String("alg", string(k.alg)))
}

// publicKey is a published key, as op puts it in the JWKS.
type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }
