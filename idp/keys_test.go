package idp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

var (
	keysKEK      = bytes.Repeat([]byte{0x42}, 32)
	keysOtherKEK = bytes.Repeat([]byte{0x24}, 32)
	keysT0       = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

// keyClock is a settable clock safe for concurrent use.
type keyClock struct {
	mu  sync.Mutex
	now time.Time
}

func newKeyClock() *keyClock { return &keyClock{now: keysT0} }

func (c *keyClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *keyClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testKeyStore is an in-memory keyStore with Store's version semantics,
// counting calls and letting a test act just before a write lands.
type testKeyStore struct {
	mu      sync.Mutex
	set     KeySet
	reads   int
	writes  int
	readErr error
	// beforeReplace, if set, runs before each ReplaceSigningKeys call is
	// applied (outside the lock), so a test can interleave another writer.
	beforeReplace func()
}

func (s *testKeyStore) SigningKeys(context.Context) (KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.readErr != nil {
		return KeySet{}, s.readErr
	}
	return copyKeySet(s.set), nil
}

func (s *testKeyStore) ReplaceSigningKeys(_ context.Context, fromVersion int64, keys []SigningKey) (int64, error) {
	if s.beforeReplace != nil {
		s.beforeReplace()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fromVersion != s.set.Version {
		return 0, ErrConflict
	}
	s.writes++
	s.set = copyKeySet(KeySet{Version: s.set.Version + 1, Keys: keys})
	return s.set.Version, nil
}

// onFirstCall returns a function that runs f on its first call only; f
// may call it again (unlike sync.Once, which would deadlock).
func onFirstCall(f func()) func() {
	var fired atomic.Bool
	return func() {
		if fired.CompareAndSwap(false, true) {
			f()
		}
	}
}

// snapshot returns what is stored.
func (s *testKeyStore) snapshot() KeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyKeySet(s.set)
}

// tamper changes the stored keys behind the managers' backs, as a new
// version.
func (s *testKeyStore) tamper(f func(keys []SigningKey) []SigningKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = copyKeySet(KeySet{Version: s.set.Version + 1, Keys: f(copyKeySet(s.set).Keys)})
}

func (s *testKeyStore) counts() (reads, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.writes
}

func copyKeySet(set KeySet) KeySet {
	out := KeySet{Version: set.Version}
	for _, k := range set.Keys {
		k.EncryptedPrivateKey = bytes.Clone(k.EncryptedPrivateKey)
		k.PublicJWK = bytes.Clone(k.PublicJWK)
		if k.ActivatedAt != nil {
			k.ActivatedAt = timePtr(*k.ActivatedAt)
		}
		if k.RetiredAt != nil {
			k.RetiredAt = timePtr(*k.RetiredAt)
		}
		out.Keys = append(out.Keys, k)
	}
	return out
}

// countingAEAD counts decryptions.
type countingAEAD struct {
	cipher.AEAD
	opens atomic.Int64
}

func (c *countingAEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	c.opens.Add(1)
	return c.AEAD.Open(dst, nonce, ciphertext, additionalData)
}

func newTestKeyManager(t testing.TB, store keyStore, clock *keyClock, algs ...string) *KeyManager {
	t.Helper()
	cfg := KeyConfig{Store: store, KEK: keysKEK, Now: clock.Now}
	if len(algs) > 0 {
		cfg.Algorithms = algs
	}
	m, err := NewKeyManager(cfg)
	if err != nil {
		t.Fatalf("NewKeyManager: %v", err)
	}
	return m
}

func ensureKeys(t *testing.T, m *KeyManager) {
	t.Helper()
	if err := m.Ensure(t.Context()); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

func rotateKeys(t *testing.T, m *KeyManager) {
	t.Helper()
	if err := m.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
}

// keyIDs returns the kids of alg's keys in state.
func keyIDs(set KeySet, alg string, state KeyState) []string {
	var ids []string
	for _, k := range set.Keys {
		if k.Algorithm == alg && k.State == state {
			ids = append(ids, k.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// onlyKeyID returns the single kid of alg's keys in state.
func onlyKeyID(t *testing.T, set KeySet, alg string, state KeyState) string {
	t.Helper()
	ids := keyIDs(set, alg, state)
	if len(ids) != 1 {
		t.Fatalf("%s %s keys = %v, want exactly one", alg, state, ids)
	}
	return ids[0]
}

// keysJWKS serves the manager's key set through zitadel's JWKS handler
// and returns the parsed set and the raw JSON objects.
func keysJWKS(t *testing.T, m *KeyManager) (jose.JSONWebKeySet, []map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	op.Keys(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/keys", nil), m)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /keys = %d %s, want 200", rec.Code, rec.Body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("parse JWKS: %v", err)
	}
	return set, raw.Keys
}

func jwksKIDs(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

// keysTestPayload is about the size of an ID token's claims.
var keysTestPayload = []byte(`{"iss":"https://login.example.com","sub":"acct_7f3c2a9e4b1d4e0f9a8b","aud":["portal-web"],` +
	`"exp":1772359200,"iat":1772355600,"auth_time":1772355590,"nonce":"n-0S6_WzA2Mj9xkQ3pLm","amr":["dingtalk"],` +
	`"azp":"portal-web","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","c_hash":"LDktKdoQak3Pk0cnXxCltA","sid":"s_01HV2M8Q6Z",` +
	`"name":"Zhang Wei","preferred_username":"zhang.wei","email":"zhang.wei@example.com","email_verified":true,` +
	`"dingtalk_corp_id":"ding0f1e2d3c4b5a6978","dingtalk_user_id":"manager4821","dingtalk_union_id":"iPiS2sT9kXqzR5vYbWc1dwiEiE"}`)

// signWithManager signs a JWT with alg's current key the way op does.
func signWithManager(t testing.TB, m *KeyManager, alg string) string {
	t.Helper()
	key, err := m.SigningKey(t.Context(), alg)
	if err != nil {
		t.Fatalf("SigningKey(%s): %v", alg, err)
	}
	signer, err := op.SignerFromKey(key)
	if err != nil {
		t.Fatalf("SignerFromKey: %v", err)
	}
	jws, err := signer.Sign(keysTestPayload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatalf("CompactSerialize: %v", err)
	}
	return token
}

// verifyAgainstJWKS checks token's signature against the key its kid names in
// jwks, as a relying party would.
func verifyAgainstJWKS(token string, jwks jose.JSONWebKeySet) error {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := jwks.Key(kid)
	if len(keys) == 0 {
		return fmt.Errorf("kid %s not in JWKS", kid)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return err
	}
	if !bytes.Equal(payload, keysTestPayload) {
		return errors.New("payload changed")
	}
	return nil
}

func jwtKID(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestNewKeyManagerValidation(t *testing.T) {
	store := &testKeyStore{}
	tests := []struct {
		name string
		cfg  KeyConfig
		want []string // substrings of the error; none means valid
	}{
		{name: "defaults", cfg: KeyConfig{Store: store, KEK: keysKEK}},
		{name: "one algorithm", cfg: KeyConfig{Store: store, KEK: keysKEK, Algorithms: []string{"ES256"}, RSABits: 3072}},
		{name: "short KEK", cfg: KeyConfig{Store: store, KEK: keysKEK[:16]},
			want: []string{"secrets.key_encryption_key must be 32 bytes, got 16"}},
		{name: "no store", cfg: KeyConfig{KEK: keysKEK}, want: []string{"store is required"}},
		{name: "unknown algorithm", cfg: KeyConfig{Store: store, KEK: keysKEK, Algorithms: []string{"RS256", "HS256"}},
			want: []string{`"HS256" is not supported`}},
		{name: "duplicate algorithm", cfg: KeyConfig{Store: store, KEK: keysKEK, Algorithms: []string{"ES256", "ES256"}},
			want: []string{`"ES256" is listed twice`}},
		{name: "empty algorithms", cfg: KeyConfig{Store: store, KEK: keysKEK, Algorithms: []string{}},
			want: []string{"at least one signing algorithm"}},
		{name: "small RSA", cfg: KeyConfig{Store: store, KEK: keysKEK, RSABits: 1024}, want: []string{"RSA key size 1024"}},
		{name: "retire within cache", cfg: KeyConfig{Store: store, KEK: keysKEK, RetireAfter: time.Minute, CacheFor: time.Hour},
			want: []string{"retire-after 1m0s must be longer than the cache time 1h0m0s"}},
		{
			name: "every problem at once",
			cfg: KeyConfig{KEK: nil, Algorithms: []string{"none"}, RotationPeriod: -time.Hour,
				RetireAfter: -time.Hour, CacheFor: -time.Second, RSABits: 512},
			want: []string{"store is required", "got 0", `"none" is not supported`, "rotation period -1h0m0s",
				"retire-after -1h0m0s", "cache time -1s", "RSA key size 512"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewKeyManager(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil || m == nil {
					t.Fatalf("NewKeyManager = %v, %v; want a manager", m, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewKeyManager error = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("NewKeyManager error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestKeyEnsureBootstrap(t *testing.T) {
	store := &testKeyStore{}
	clock := newKeyClock()
	m := newTestKeyManager(t, store, clock)
	ensureKeys(t, m)

	set := store.snapshot()
	if got, want := len(set.Keys), 4; got != want {
		t.Fatalf("stored %d keys, want %d (current+next for RS256 and ES256)", got, want)
	}
	for _, alg := range []string{"RS256", "ES256"} {
		cur := onlyKeyID(t, set, alg, KeyCurrent)
		next := onlyKeyID(t, set, alg, KeyNext)
		if cur == next {
			t.Errorf("%s current and next share kid %s", alg, cur)
		}
		if got := keyIDs(set, alg, KeyPrevious); len(got) != 0 {
			t.Errorf("%s previous keys = %v, want none", alg, got)
		}
	}
	for _, k := range set.Keys {
		if !k.CreatedAt.Equal(keysT0) {
			t.Errorf("key %s CreatedAt = %v, want %v", k.ID, k.CreatedAt, keysT0)
		}
		switch k.State {
		case KeyCurrent:
			if k.ActivatedAt == nil || !k.ActivatedAt.Equal(keysT0) {
				t.Errorf("current key %s ActivatedAt = %v, want %v", k.ID, k.ActivatedAt, keysT0)
			}
		case KeyNext:
			if k.ActivatedAt != nil {
				t.Errorf("next key %s ActivatedAt = %v, want nil", k.ID, k.ActivatedAt)
			}
		}
		if k.RetiredAt != nil {
			t.Errorf("key %s RetiredAt = %v, want nil", k.ID, k.RetiredAt)
		}
	}
	wantAlgs := []jose.SignatureAlgorithm{jose.RS256, jose.ES256}
	if got := m.Algorithms(t.Context()); !slices.Equal(got, wantAlgs) {
		t.Errorf("Algorithms = %v, want %v", got, wantAlgs)
	}

	// Idempotent: a second Ensure, by this manager or another replica,
	// writes nothing.
	ensureKeys(t, m)
	ensureKeys(t, newTestKeyManager(t, store, clock))
	if _, writes := store.counts(); writes != 1 {
		t.Errorf("store writes after three Ensure calls = %d, want 1", writes)
	}
}

func TestKeyEnsureRace(t *testing.T) {
	// Another replica bootstraps between this manager's read and its
	// write: the write conflicts, and Ensure adopts the other's keys.
	store := &testKeyStore{}
	clock := newKeyClock()
	m1 := newTestKeyManager(t, store, clock, "ES256")
	m2 := newTestKeyManager(t, store, clock, "ES256")
	store.beforeReplace = onFirstCall(func() { ensureKeys(t, m2) })
	ensureKeys(t, m1)

	set := store.snapshot()
	if set.Version != 1 || len(set.Keys) != 2 {
		t.Fatalf("store version %d with %d keys, want version 1 with 2 keys", set.Version, len(set.Keys))
	}
	want := onlyKeyID(t, set, "ES256", KeyCurrent)
	for i, m := range []*KeyManager{m1, m2} {
		k, err := m.SigningKey(t.Context(), "ES256")
		if err != nil {
			t.Fatalf("manager %d SigningKey: %v", i+1, err)
		}
		if k.ID() != want {
			t.Errorf("manager %d signs with %s, want %s", i+1, k.ID(), want)
		}
	}
}

func TestKeyIDIsThumbprint(t *testing.T) {
	// RFC 7638 §3.1.
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	rfcKey := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := keyID(rfcKey)
	if err != nil {
		t.Fatalf("keyID: %v", err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("keyID(RFC 7638 example) = %q, want %q", got, want)
	}

	// Every stored key's kid is the thumbprint of its public JWK.
	store := &testKeyStore{}
	ensureKeys(t, newTestKeyManager(t, store, newKeyClock()))
	for _, k := range store.snapshot().Keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			t.Fatalf("key %s: parse public JWK: %v", k.ID, err)
		}
		got, err := keyID(jwk.Key)
		if err != nil {
			t.Fatalf("key %s: keyID: %v", k.ID, err)
		}
		if got != k.ID || jwk.KeyID != k.ID {
			t.Errorf("key %s: thumbprint %s, JWK kid %s; want both %s", k.ID, got, jwk.KeyID, k.ID)
		}
		if jwk.Use != "sig" || jwk.Algorithm != k.Algorithm {
			t.Errorf("key %s: JWK use %q alg %q, want sig %s", k.ID, jwk.Use, jwk.Algorithm, k.Algorithm)
		}
	}
}

func TestKeyPrivateKeyEncrypted(t *testing.T) {
	store := &testKeyStore{}
	ensureKeys(t, newTestKeyManager(t, store, newKeyClock()))

	// Decrypt independently of the manager: AES-256-GCM under the KEK,
	// 12-byte nonce prefix, AAD kid|alg.
	block, err := aes.NewCipher(keysKEK)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range store.snapshot().Keys {
		t.Run(k.Algorithm+"_"+string(k.State), func(t *testing.T) {
			if _, err := x509.ParsePKCS8PrivateKey(k.EncryptedPrivateKey); err == nil {
				t.Fatal("stored private key parses as PKCS#8, want ciphertext")
			}
			if len(k.EncryptedPrivateKey) < 12+16 {
				t.Fatalf("ciphertext is %d bytes, want nonce + tag at least", len(k.EncryptedPrivateKey))
			}
			nonce, ct := k.EncryptedPrivateKey[:12], k.EncryptedPrivateKey[12:]
			der, err := gcm.Open(nil, nonce, ct, []byte(k.ID+"|"+k.Algorithm))
			if err != nil {
				t.Fatalf("decrypt with KEK: %v", err)
			}
			priv, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				t.Fatalf("parse decrypted PKCS#8: %v", err)
			}
			var pub any
			switch p := priv.(type) {
			case *rsa.PrivateKey:
				if got := p.N.BitLen(); got != 2048 {
					t.Errorf("RSA key is %d bits, want 2048", got)
				}
				pub = p.Public()
			case *ecdsa.PrivateKey:
				if p.Curve != elliptic.P256() {
					t.Errorf("EC key curve = %s, want P-256", p.Curve.Params().Name)
				}
				pub = p.Public()
			}
			if got, _ := keyID(pub); got != k.ID {
				t.Errorf("decrypted key thumbprint = %s, want kid %s", got, k.ID)
			}
		})
	}
}

func TestKeyDecryptFailures(t *testing.T) {
	tests := []struct {
		name   string
		kek    []byte
		tamper func(t *testing.T, keys []SigningKey) []SigningKey
		want   string
	}{
		{
			name: "different KEK",
			kek:  keysOtherKEK,
			want: "cannot decrypt: is secrets.key_encryption_key the same on every replica?",
		},
		{
			name: "ciphertexts swapped between rows of one algorithm",
			kek:  keysKEK,
			tamper: func(t *testing.T, keys []SigningKey) []SigningKey {
				i, j := keyIndex(t, keys, "ES256", KeyCurrent), keyIndex(t, keys, "ES256", KeyNext)
				keys[i].EncryptedPrivateKey, keys[j].EncryptedPrivateKey = keys[j].EncryptedPrivateKey, keys[i].EncryptedPrivateKey
				return keys
			},
			want: "cannot decrypt",
		},
		{
			name: "ciphertexts swapped between algorithms",
			kek:  keysKEK,
			tamper: func(t *testing.T, keys []SigningKey) []SigningKey {
				i, j := keyIndex(t, keys, "RS256", KeyCurrent), keyIndex(t, keys, "ES256", KeyCurrent)
				keys[i].EncryptedPrivateKey, keys[j].EncryptedPrivateKey = keys[j].EncryptedPrivateKey, keys[i].EncryptedPrivateKey
				return keys
			},
			want: "cannot decrypt",
		},
		{
			name: "truncated ciphertext",
			kek:  keysKEK,
			tamper: func(t *testing.T, keys []SigningKey) []SigningKey {
				i := keyIndex(t, keys, "ES256", KeyNext)
				keys[i].EncryptedPrivateKey = keys[i].EncryptedPrivateKey[:5]
				return keys
			},
			want: "cannot decrypt",
		},
		{
			name: "public JWK swapped between rows",
			kek:  keysKEK,
			tamper: func(t *testing.T, keys []SigningKey) []SigningKey {
				i, j := keyIndex(t, keys, "ES256", KeyCurrent), keyIndex(t, keys, "ES256", KeyNext)
				keys[i].PublicJWK, keys[j].PublicJWK = keys[j].PublicJWK, keys[i].PublicJWK
				return keys
			},
			want: "public JWK does not match",
		},
		{
			name: "row written without the KEK",
			kek:  keysKEK,
			tamper: func(t *testing.T, keys []SigningKey) []SigningKey {
				// Someone with write access to the database but not the
				// KEK adds their own key: it must never be published.
				intruder, err := NewKeyManager(KeyConfig{Store: &testKeyStore{}, KEK: keysOtherKEK})
				if err != nil {
					t.Fatal(err)
				}
				k, err := intruder.newKey("ES256", KeyNext, keysT0)
				if err != nil {
					t.Fatal(err)
				}
				return append(keys, k)
			},
			want: "cannot decrypt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &testKeyStore{}
			clock := newKeyClock()
			ensureKeys(t, newTestKeyManager(t, store, clock))
			if tt.tamper != nil {
				store.tamper(func(keys []SigningKey) []SigningKey { return tt.tamper(t, keys) })
			}
			m, err := NewKeyManager(KeyConfig{Store: store, KEK: tt.kek, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			before := store.snapshot()

			_, err = m.SigningKey(t.Context(), "ES256")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SigningKey error = %v, want %q", err, tt.want)
			}
			if _, err := m.KeySet(t.Context()); err == nil {
				t.Error("KeySet error = nil, want a decryption failure")
			}
			// A replica that cannot read the keys must not add any.
			clock.Advance(48 * time.Hour)
			for name, f := range map[string]func(context.Context) error{"Ensure": m.Ensure, "Rotate": m.Rotate} {
				if err := f(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s error = %v, want %q", name, err, tt.want)
				}
			}
			if after := store.snapshot(); after.Version != before.Version {
				t.Errorf("store version = %d after failed calls, want %d", after.Version, before.Version)
			}
		})
	}
}

func keyIndex(t *testing.T, keys []SigningKey, alg string, state KeyState) int {
	t.Helper()
	i := slices.IndexFunc(keys, func(k SigningKey) bool { return k.Algorithm == alg && k.State == state })
	if i < 0 {
		t.Fatalf("no %s %s key", alg, state)
	}
	return i
}

func TestKeyJWKSHasNoPrivateMembers(t *testing.T) {
	store := &testKeyStore{}
	clock := newKeyClock()
	m := newTestKeyManager(t, store, clock)
	ensureKeys(t, m)
	clock.Advance(time.Hour)
	rotateKeys(t, m) // so that every state is published

	set := store.snapshot()
	_, raw := keysJWKS(t, m)
	if got, want := len(raw), len(set.Keys); got != want {
		t.Fatalf("JWKS has %d keys, want %d", got, want)
	}
	stored := make([]map[string]any, 0, len(set.Keys))
	for _, k := range set.Keys {
		var jwk map[string]any
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			t.Fatalf("key %s: parse public JWK: %v", k.ID, err)
		}
		stored = append(stored, jwk)
	}
	private := []string{"d", "p", "q", "dp", "dq", "qi"}
	for where, jwks := range map[string][]map[string]any{"JWKS": raw, "stored public JWK": stored} {
		seen := make(map[any]bool)
		for _, jwk := range jwks {
			for _, member := range private {
				if _, ok := jwk[member]; ok {
					t.Errorf("%s key %v has private member %q", where, jwk["kid"], member)
				}
			}
			if jwk["use"] != "sig" || jwk["kid"] == "" || (jwk["alg"] != "RS256" && jwk["alg"] != "ES256") {
				t.Errorf("%s key: use %v kid %v alg %v, want sig, a kid, RS256 or ES256", where, jwk["use"], jwk["kid"], jwk["alg"])
			}
			if seen[jwk["kid"]] {
				t.Errorf("%s has kid %v twice", where, jwk["kid"])
			}
			seen[jwk["kid"]] = true
		}
	}
}

// TestKeyRotationOverlap covers OP-31 and OP-40: the next key is published
// before it signs, the previous key stays published for RetireAfter after it
// stops signing, and only then disappears.
func TestKeyRotationOverlap(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			store := &testKeyStore{}
			clock := newKeyClock()
			m := newTestKeyManager(t, store, clock, alg)
			ensureKeys(t, m)

			set := store.snapshot()
			keyA := onlyKeyID(t, set, alg, KeyCurrent)
			keyB := onlyKeyID(t, set, alg, KeyNext)
			jwksBefore, _ := keysJWKS(t, m) // what a relying party caches
			if got := jwksKIDs(jwksBefore); !slices.Contains(got, keyB) {
				t.Fatalf("JWKS before rotation = %v, want it to publish next key %s", got, keyB)
			}
			tokenA := signWithManager(t, m, alg)
			if got := jwtKID(t, tokenA); got != keyA {
				t.Fatalf("token kid = %s, want current key %s", got, keyA)
			}

			// First rotation: A → previous, B → current.
			clock.Advance(time.Hour)
			rotateKeys(t, m)
			rotatedAt := clock.Now()
			set = store.snapshot()
			if got := onlyKeyID(t, set, alg, KeyCurrent); got != keyB {
				t.Errorf("current after rotation = %s, want the former next key %s", got, keyB)
			}
			if got := keyIDs(set, alg, KeyPrevious); !slices.Equal(got, []string{keyA}) {
				t.Errorf("previous after rotation = %v, want [%s]", got, keyA)
			}
			for _, k := range set.Keys {
				switch k.ID {
				case keyA:
					if k.RetiredAt == nil || !k.RetiredAt.Equal(rotatedAt) {
						t.Errorf("key A RetiredAt = %v, want %v", k.RetiredAt, rotatedAt)
					}
				case keyB:
					if k.ActivatedAt == nil || !k.ActivatedAt.Equal(rotatedAt) {
						t.Errorf("key B ActivatedAt = %v, want %v", k.ActivatedAt, rotatedAt)
					}
				}
			}
			keyC := onlyKeyID(t, set, alg, KeyNext)
			if keyC == keyA || keyC == keyB {
				t.Errorf("next after rotation = %s, want a fresh key", keyC)
			}

			jwksAfter, _ := keysJWKS(t, m)
			if got, want := jwksKIDs(jwksAfter), sortedKIDs(keyA, keyB, keyC); !slices.Equal(got, want) {
				t.Errorf("JWKS after rotation = %v, want %v", got, want)
			}
			if err := verifyAgainstJWKS(tokenA, jwksAfter); err != nil {
				t.Errorf("token signed before rotation does not verify against the JWKS after: %v", err)
			}
			tokenB := signWithManager(t, m, alg)
			if got := jwtKID(t, tokenB); got != keyB {
				t.Errorf("token kid after rotation = %s, want %s", got, keyB)
			}
			if err := verifyAgainstJWKS(tokenB, jwksBefore); err != nil {
				t.Errorf("token signed after rotation does not verify against the JWKS cached before it: %v", err)
			}

			// Second rotation within RetireAfter: two previous keys.
			clock.Advance(time.Hour)
			rotateKeys(t, m)
			set = store.snapshot()
			if got, want := keyIDs(set, alg, KeyPrevious), sortedKIDs(keyA, keyB); !slices.Equal(got, want) {
				t.Errorf("previous after second rotation = %v, want %v", got, want)
			}

			// RetireAfter (24h) after A retired: A is dropped at the next
			// rotation, B (retired an hour later) is still published.
			clock.Advance(23 * time.Hour)
			rotateKeys(t, m)
			set = store.snapshot()
			keyD := onlyKeyID(t, set, alg, KeyCurrent)
			if got, want := keyIDs(set, alg, KeyPrevious), sortedKIDs(keyB, keyC); !slices.Equal(got, want) {
				t.Errorf("previous after RetireAfter = %v, want %v", got, want)
			}
			jwksLater, _ := keysJWKS(t, m)
			if got := jwksKIDs(jwksLater); slices.Contains(got, keyA) || !slices.Contains(got, keyB) || !slices.Contains(got, keyD) {
				t.Errorf("JWKS after RetireAfter = %v, want %s gone and %s, %s present", got, keyA, keyB, keyD)
			}
			if err := verifyAgainstJWKS(tokenA, jwksLater); err == nil {
				t.Error("token of a key retired RetireAfter ago still verifies, want it rejected")
			}
			if err := verifyAgainstJWKS(tokenB, jwksLater); err != nil {
				t.Errorf("token of a key retired 23h ago: %v, want it to verify", err)
			}
		})
	}
}

func sortedKIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestKeyRotateConcurrentReplicas(t *testing.T) {
	t.Run("conflicting write", func(t *testing.T) {
		// m1 reads, then m2 rotates before m1's write lands; m1 re-reads,
		// sees the current key it meant to replace is gone, and stops.
		// The clock moves past rotateGrace so only the kid rule can stop
		// a second rotation.
		store := &testKeyStore{}
		clock := newKeyClock()
		m1 := newTestKeyManager(t, store, clock, "ES256")
		m2 := newTestKeyManager(t, store, clock, "ES256")
		ensureKeys(t, m1)
		clock.Advance(time.Hour)
		before := store.snapshot()
		store.beforeReplace = onFirstCall(func() {
			rotateKeys(t, m2)
			clock.Advance(2 * rotateGrace)
		})
		rotateKeys(t, m1)
		assertRotatedOnce(t, before, store.snapshot(), "ES256")
	})
	t.Run("back to back", func(t *testing.T) {
		// Two Rotate calls that do not overlap, on different replicas,
		// within rotateGrace: one rotation. After the grace, another.
		store := &testKeyStore{}
		clock := newKeyClock()
		m1 := newTestKeyManager(t, store, clock, "ES256")
		m2 := newTestKeyManager(t, store, clock, "ES256")
		ensureKeys(t, m1)
		clock.Advance(time.Hour)
		before := store.snapshot()
		rotateKeys(t, m1)
		clock.Advance(rotateGrace - time.Second)
		rotateKeys(t, m2)
		after := store.snapshot()
		assertRotatedOnce(t, before, after, "ES256")

		clock.Advance(time.Second)
		rotateKeys(t, m2)
		assertRotatedOnce(t, after, store.snapshot(), "ES256")
	})
	t.Run("parallel", func(t *testing.T) {
		store := &testKeyStore{}
		clock := newKeyClock()
		managers := make([]*KeyManager, 4)
		for i := range managers {
			managers[i] = newTestKeyManager(t, store, clock, "ES256")
		}
		ensureKeys(t, managers[0])
		clock.Advance(time.Hour)
		before := store.snapshot()
		var wg sync.WaitGroup
		errs := make([]error, len(managers))
		for i, m := range managers {
			wg.Go(func() { errs[i] = m.Rotate(t.Context()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("manager %d Rotate: %v", i+1, err)
			}
		}
		assertRotatedOnce(t, before, store.snapshot(), "ES256")
	})
}

// assertRotatedOnce checks that after is before rotated exactly once.
func assertRotatedOnce(t *testing.T, before, after KeySet, alg string) {
	t.Helper()
	if got, want := onlyKeyID(t, after, alg, KeyCurrent), onlyKeyID(t, before, alg, KeyNext); got != want {
		t.Errorf("current = %s, want the former next key %s", got, want)
	}
	wantPrevious := append(keyIDs(before, alg, KeyPrevious), onlyKeyID(t, before, alg, KeyCurrent))
	slices.Sort(wantPrevious)
	if got := keyIDs(after, alg, KeyPrevious); !slices.Equal(got, wantPrevious) {
		t.Errorf("previous = %v, want %v", got, wantPrevious)
	}
	if got, want := after.Version, before.Version+1; got != want {
		t.Errorf("store version = %d, want %d (one write)", got, want)
	}
}

func TestKeyMaybeRotate(t *testing.T) {
	const period = 30 * 24 * time.Hour // the default
	tests := []struct {
		name        string
		elapsed     time.Duration
		wantRotated bool
	}{
		{name: "fresh", elapsed: 0},
		{name: "just before the period", elapsed: period - time.Nanosecond},
		{name: "at the period", elapsed: period, wantRotated: true},
		{name: "long after", elapsed: 3 * period, wantRotated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &testKeyStore{}
			clock := newKeyClock()
			m := newTestKeyManager(t, store, clock, "ES256")
			ensureKeys(t, m)
			before := store.snapshot()
			clock.Advance(tt.elapsed)
			if err := m.MaybeRotate(t.Context()); err != nil {
				t.Fatalf("MaybeRotate: %v", err)
			}
			after := store.snapshot()
			if !tt.wantRotated {
				if after.Version != before.Version {
					t.Errorf("store version = %d, want %d (no rotation)", after.Version, before.Version)
				}
				return
			}
			assertRotatedOnce(t, before, after, "ES256")
			// A second scheduled run (this replica or another) finds the
			// new key fresh and does nothing.
			if err := newTestKeyManager(t, store, clock, "ES256").MaybeRotate(t.Context()); err != nil {
				t.Fatalf("second MaybeRotate: %v", err)
			}
			if got := store.snapshot().Version; got != after.Version {
				t.Errorf("store version after second MaybeRotate = %d, want %d", got, after.Version)
			}
		})
	}

	t.Run("drops expired previous keys without rotating", func(t *testing.T) {
		store := &testKeyStore{}
		clock := newKeyClock()
		m := newTestKeyManager(t, store, clock, "ES256")
		ensureKeys(t, m)
		clock.Advance(time.Hour)
		rotateKeys(t, m)
		set := store.snapshot()
		current := onlyKeyID(t, set, "ES256", KeyCurrent)
		clock.Advance(24*time.Hour - time.Nanosecond)
		if err := m.MaybeRotate(t.Context()); err != nil {
			t.Fatalf("MaybeRotate: %v", err)
		}
		if got := len(keyIDs(store.snapshot(), "ES256", KeyPrevious)); got != 1 {
			t.Fatalf("previous keys just before RetireAfter = %d, want 1", got)
		}
		clock.Advance(time.Nanosecond)
		if err := m.MaybeRotate(t.Context()); err != nil {
			t.Fatalf("MaybeRotate: %v", err)
		}
		set = store.snapshot()
		if got := keyIDs(set, "ES256", KeyPrevious); len(got) != 0 {
			t.Errorf("previous keys at RetireAfter = %v, want none", got)
		}
		if got := onlyKeyID(t, set, "ES256", KeyCurrent); got != current {
			t.Errorf("current = %s, want %s (no rotation)", got, current)
		}
	})
}

func TestKeyUnconfiguredAlgorithmRetired(t *testing.T) {
	store := &testKeyStore{}
	clock := newKeyClock()
	ensureKeys(t, newTestKeyManager(t, store, clock, "ES256", "RS256"))
	oldES := onlyKeyID(t, store.snapshot(), "ES256", KeyCurrent)

	// The configuration drops ES256: Ensure leaves its keys alone, the
	// scheduled run retires them, and RetireAfter later they are gone.
	m := newTestKeyManager(t, store, clock, "RS256")
	ensureKeys(t, m)
	if got := len(store.snapshot().Keys); got != 4 {
		t.Fatalf("keys after Ensure = %d, want 4 (ES256 untouched)", got)
	}
	if err := m.MaybeRotate(t.Context()); err != nil {
		t.Fatalf("MaybeRotate: %v", err)
	}
	set := store.snapshot()
	if got := keyIDs(set, "ES256", KeyPrevious); !slices.Equal(got, []string{oldES}) {
		t.Errorf("ES256 previous = %v, want [%s]", got, oldES)
	}
	if got := len(keyIDs(set, "ES256", KeyCurrent)) + len(keyIDs(set, "ES256", KeyNext)); got != 0 {
		t.Errorf("ES256 current+next keys = %d, want 0", got)
	}
	if _, err := m.SigningKey(t.Context(), "ES256"); err == nil {
		t.Error("SigningKey(ES256) error = nil, want no current key")
	}
	clock.Advance(24 * time.Hour)
	if err := m.MaybeRotate(t.Context()); err != nil {
		t.Fatalf("MaybeRotate: %v", err)
	}
	for _, k := range store.snapshot().Keys {
		if k.Algorithm == "ES256" {
			t.Errorf("ES256 key %s (%s) still stored after RetireAfter", k.ID, k.State)
		}
	}
}

func TestKeyCacheSeesOtherReplica(t *testing.T) {
	store := &testKeyStore{}
	clock := newKeyClock()
	m1 := newTestKeyManager(t, store, clock, "ES256")
	m2 := newTestKeyManager(t, store, clock, "ES256")
	ensureKeys(t, m1)
	set := store.snapshot()
	keyA, keyB := onlyKeyID(t, set, "ES256", KeyCurrent), onlyKeyID(t, set, "ES256", KeyNext)

	clock.Advance(time.Hour)
	signingKID := func() string {
		t.Helper()
		k, err := m2.SigningKey(t.Context(), "ES256")
		if err != nil {
			t.Fatalf("SigningKey: %v", err)
		}
		return k.ID()
	}
	if got := signingKID(); got != keyA {
		t.Fatalf("m2 signs with %s, want %s", got, keyA)
	}
	rotateKeys(t, m1)

	tests := []struct {
		name    string
		advance time.Duration
		want    string
	}{
		{name: "right after the rotation", advance: 0, want: keyA},
		{name: "just before CacheFor", advance: 30*time.Second - time.Nanosecond, want: keyA},
		{name: "at CacheFor", advance: time.Nanosecond, want: keyB},
	}
	for _, tt := range tests {
		clock.Advance(tt.advance)
		if got := signingKID(); got != tt.want {
			t.Errorf("%s: m2 signs with %s, want %s", tt.name, got, tt.want)
		}
	}
	// m2's stale signing was safe: its token verifies against m1's JWKS.
	jwks, _ := keysJWKS(t, m1)
	if !slices.Contains(jwksKIDs(jwks), keyA) {
		t.Errorf("JWKS = %v, want it to keep %s", jwksKIDs(jwks), keyA)
	}
}

func TestKeyServingIsCached(t *testing.T) {
	store := &testKeyStore{}
	clock := newKeyClock()
	ensureKeys(t, newTestKeyManager(t, store, clock))

	m := newTestKeyManager(t, store, clock)
	aead := &countingAEAD{AEAD: m.aead}
	m.aead = aead
	serve := func(n int) {
		t.Helper()
		for range n {
			for _, alg := range []string{"RS256", "ES256"} {
				if _, err := m.SigningKey(t.Context(), alg); err != nil {
					t.Fatalf("SigningKey(%s): %v", alg, err)
				}
			}
			if _, err := m.KeySet(t.Context()); err != nil {
				t.Fatalf("KeySet: %v", err)
			}
		}
	}
	readsBefore, _ := store.counts()
	check := func(step string, wantReads int, wantOpens int64) {
		t.Helper()
		reads, _ := store.counts()
		if got := reads - readsBefore; got != wantReads {
			t.Errorf("%s: store reads = %d, want %d", step, got, wantReads)
		}
		if got := aead.opens.Load(); got != wantOpens {
			t.Errorf("%s: decryptions = %d, want %d", step, got, wantOpens)
		}
	}

	serve(100)
	check("first 100 requests", 1, 4) // one read; each of the 4 keys decrypted once
	clock.Advance(29 * time.Second)
	serve(100)
	check("within CacheFor", 1, 4)
	clock.Advance(time.Second)
	serve(100)
	check("after CacheFor, same version", 2, 4)

	// A rotation elsewhere: only the new key is decrypted.
	clock.Advance(time.Hour)
	rotateKeys(t, newTestKeyManager(t, store, clock))
	readsBefore, _ = store.counts()
	serve(100)
	check("after another replica rotated", 1, 4+2) // fresh RS256 and ES256 next keys
}

func TestKeyRun(t *testing.T) {
	t.Run("rotates when due", func(t *testing.T) {
		store := &testKeyStore{}
		clock := newKeyClock()
		m := newTestKeyManager(t, store, clock, "ES256")
		ensureKeys(t, m)
		before := store.snapshot()
		clock.Advance(31 * 24 * time.Hour)
		wrote := make(chan struct{})
		store.beforeReplace = onFirstCall(func() { close(wrote) })

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Run(ctx, time.Hour)
		}()
		<-wrote
		cancel()
		<-done
		assertRotatedOnce(t, before, store.snapshot(), "ES256")
	})
	t.Run("logs failures", func(t *testing.T) {
		store := &testKeyStore{readErr: errors.New("connection refused")}
		logs := make(chan string, 10)
		m, err := NewKeyManager(KeyConfig{
			Store: store, KEK: keysKEK, Now: newKeyClock().Now,
			Logger: slog.New(slog.NewTextHandler(logLines(logs), nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Run(ctx, time.Hour)
		}()
		line := <-logs
		cancel()
		<-done
		for _, want := range []string{"level=WARN", "connection refused"} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q, want it to contain %q", line, want)
			}
		}
	})
}

// TestKeyManagerOnStores runs the key lifecycle on the package's real
// stores: replicas bootstrapping and rotating at once, tokens verifying
// across the rotation, a replica with the wrong KEK refused.
func TestKeyManagerOnStores(t *testing.T) {
	stores := []struct {
		name string
		new  func(t *testing.T) keyStore
	}{
		{name: "memory", new: func(*testing.T) keyStore { return NewMemoryStore() }},
		{name: "postgres", new: func(t *testing.T) keyStore { return NewPostgresStore(pgtest.NewDatabase(t)) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			clock := newKeyClock()
			replicas := make([]*KeyManager, 3)
			for i := range replicas {
				replicas[i] = newTestKeyManager(t, store, clock)
			}
			parallel := func(name string, f func(*KeyManager) error) {
				t.Helper()
				var wg sync.WaitGroup
				errs := make([]error, len(replicas))
				for i, m := range replicas {
					wg.Go(func() { errs[i] = f(m) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("replica %d %s: %v", i+1, name, err)
					}
				}
			}
			parallel("Ensure", func(m *KeyManager) error { return m.Ensure(t.Context()) })
			before, err := store.SigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if before.Version != 1 || len(before.Keys) != 4 {
				t.Fatalf("after Ensure: version %d with %d keys, want version 1 with 4", before.Version, len(before.Keys))
			}
			tokens := map[string]string{}
			for _, alg := range []string{"RS256", "ES256"} {
				tokens[alg] = signWithManager(t, replicas[1], alg)
			}

			clock.Advance(time.Hour)
			parallel("Rotate", func(m *KeyManager) error { return m.Rotate(t.Context()) })
			after, err := store.SigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, alg := range []string{"RS256", "ES256"} {
				assertRotatedOnce(t, before, after, alg)
			}
			jwks, _ := keysJWKS(t, replicas[2])
			for alg, token := range tokens {
				if err := verifyAgainstJWKS(token, jwks); err != nil {
					t.Errorf("%s token signed before the rotation: %v", alg, err)
				}
			}

			stranger, err := NewKeyManager(KeyConfig{Store: store, KEK: keysOtherKEK, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if err := stranger.Ensure(t.Context()); err == nil || !strings.Contains(err.Error(), "cannot decrypt") {
				t.Errorf("Ensure with another KEK: error = %v, want cannot decrypt", err)
			}
		})
	}
}

type logLines chan string

func (w logLines) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestKeyLogValueRedacts(t *testing.T) {
	store := &testKeyStore{}
	cfg := KeyConfig{Store: store, KEK: keysKEK, Now: newKeyClock().Now}
	m, err := NewKeyManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ensureKeys(t, m)
	key, err := m.SigningKey(t.Context(), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("keys", "config", cfg, "manager", m, "key", key)
	out := buf.String()
	for _, secret := range []string{fmt.Sprint(keysKEK), "66 66 66", "D:", "Precomputed"} {
		if strings.Contains(out, secret) {
			t.Errorf("log %q contains %q", out, secret)
		}
	}
	if !strings.Contains(out, "kid="+key.ID()) {
		t.Errorf("log %q, want it to name kid %s", out, key.ID())
	}
}

// benchmarkSign signs an ID-token-sized JWT per iteration the way op
// does: SigningKey, SignerFromKey, Sign, CompactSerialize.
func benchmarkSign(b *testing.B, alg string) {
	store := &testKeyStore{}
	m := newTestKeyManager(b, store, &keyClock{now: time.Now()}, alg)
	if err := m.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		key, err := m.SigningKey(b.Context(), alg)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := op.SignerFromKey(key)
		if err != nil {
			b.Fatal(err)
		}
		jws, err := signer.Sign(keysTestPayload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.CompactSerialize(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignRS256(b *testing.B) { benchmarkSign(b, "RS256") }
func BenchmarkSignES256(b *testing.B) { benchmarkSign(b, "ES256") }

// BenchmarkSigningKey is the cache lookup alone.
func BenchmarkSigningKey(b *testing.B) {
	m := newTestKeyManager(b, &testKeyStore{}, &keyClock{now: time.Now()}, "ES256")
	if err := m.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.SigningKey(b.Context(), "ES256"); err != nil {
			b.Fatal(err)
		}
	}
}
