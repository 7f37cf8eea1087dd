package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// tokenCacheConfig is a configuration with the simulator's first corp and
// fresh random keys.
func tokenCacheConfig(t *testing.T, dtURL string) *Config {
	t.Helper()
	corp := fake.DefaultFixture().Corps[0]
	app := corp.Apps[0]
	cfg := &Config{
		Secrets: SecretsConfig{KeyEncryptionKey: randomKey(), CookieHashKey: randomKey(), CookieBlockKey: randomKey()},
		DingTalk: DingTalkConfig{
			APIBaseURL: dtURL, OAPIBaseURL: dtURL, LoginBaseURL: dtURL,
		},
		Corps: []CorpConfig{{ID: corp.ID, Name: corp.Name, AppKey: app.AppKey, AppSecret: app.AppSecret, AgentID: app.AgentID}},
	}
	cfg.applyDefaults()
	return cfg
}

// replicaClient builds the DingTalk client of the first corp as one replica
// does: through dingTalkLogin, with the shared store.
func replicaClient(t *testing.T, cfg *Config, store idp.Store, logger *slog.Logger) *dingtalk.Client {
	t.Helper()
	login, err := dingTalkLogin(cfg, mapping.NewMemory(mapping.Options{}), store, nil, nil, logger)
	if err != nil {
		t.Fatalf("dingTalkLogin: %v", err)
	}
	client, ok := login.Corps[0].Client.(*dingtalk.Client)
	if !ok {
		t.Fatalf("corp client is a %T, want *dingtalk.Client", login.Corps[0].Client)
	}
	return client
}

// TestAppTokenSharedBetweenReplicas runs two replicas' DingTalk clients on
// one Postgres store: the second uses the token the first fetched, so
// DingTalk is asked once, and the store holds only its ciphertext.
func TestAppTokenSharedBetweenReplicas(t *testing.T) {
	ctx := t.Context()
	sim := fake.New(fake.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	store := idp.NewPostgresStore(pgtest.NewDatabase(t))
	cfg := tokenCacheConfig(t, srv.URL)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	first, err := replicaClient(t, cfg, store, logger).AppToken(ctx)
	if err != nil {
		t.Fatalf("replica 1 AppToken: %v", err)
	}
	second, err := replicaClient(t, cfg, store, logger).AppToken(ctx)
	if err != nil {
		t.Fatalf("replica 2 AppToken: %v", err)
	}
	if second != first {
		t.Errorf("replica 2 token = %q, want replica 1's %q", second, first)
	}
	if got := sim.Calls(fake.EndpointAppToken); got != 1 {
		t.Errorf("simulator served %d app tokens, want 1 for both replicas", got)
	}

	appKey := cfg.Corps[0].AppKey
	ciphertext, expiresAt, err := store.DingTalkAppToken(ctx, appKey)
	if err != nil {
		t.Fatalf("DingTalkAppToken: %v", err)
	}
	if bytes.Contains(ciphertext, []byte(first)) {
		t.Errorf("stored ciphertext %q contains the token %q", ciphertext, first)
	}
	if life := time.Until(expiresAt); life <= 0 || life > 2*time.Hour {
		t.Errorf("stored token expires in %v, want within DingTalk's 2 hours", life)
	}
	if strings.Contains(logs.String(), first) {
		t.Errorf("the token appears in the logs:\n%s", logs.String())
	}
}

// TestAppTokenCache checks the encryption: what is sealed for one app
// decrypts only for that app and only under the same key, and failures are
// misses that are logged without the token.
func TestAppTokenCache(t *testing.T) {
	const token = "app-token-0123456789abcdef"
	ctx := t.Context()
	expiresAt := time.Date(2030, time.May, 6, 7, 8, 9, 123456789, time.UTC)
	key := func(s string) [32]byte {
		secrets, err := decodeSecrets(SecretsConfig{KeyEncryptionKey: s})
		if err != nil {
			t.Fatal(err)
		}
		return secrets.appTokenKey
	}
	kek := randomKey()
	newCache := func(store idp.Store, k [32]byte) (*appTokenCache, *lockedBuffer) {
		t.Helper()
		var logs lockedBuffer
		c, err := newAppTokenCache(store, k, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return c, &logs
	}

	t.Run("round trip", func(t *testing.T) {
		store := idp.NewMemoryStore()
		c, _ := newCache(store, key(kek))
		c.Store(ctx, "app-1", token, expiresAt)
		got, exp, ok := c.Load(ctx, "app-1")
		if !ok || got != token || !exp.Equal(expiresAt.Truncate(time.Microsecond)) {
			t.Errorf("Load = %q, %v, %v; want %q, %v, true", got, exp, ok, token, expiresAt)
		}
		ciphertext, _, err := store.DingTalkAppToken(ctx, "app-1")
		if err != nil || bytes.Contains(ciphertext, []byte(token)) {
			t.Errorf("stored %q, %v; want a ciphertext without the token", ciphertext, err)
		}
		// A second replica with the same key-encryption key reads it.
		other, _ := newCache(store, key(kek))
		if got, _, ok := other.Load(ctx, "app-1"); !ok || got != token {
			t.Errorf("Load by another replica = %q, %v; want %q, true", got, ok, token)
		}
	})
	t.Run("not found is a quiet miss", func(t *testing.T) {
		c, logs := newCache(idp.NewMemoryStore(), key(kek))
		if got, _, ok := c.Load(ctx, "app-1"); ok || got != "" {
			t.Errorf("Load = %q, %v; want a miss", got, ok)
		}
		if logs.String() != "" {
			t.Errorf("a miss logged %q, want nothing", logs.String())
		}
	})

	misses := []struct {
		name string
		// prepare stores something under app-2 and returns the cache to
		// load it with.
		prepare func(store idp.Store) (*appTokenCache, *lockedBuffer)
		log     string
	}{
		{
			name: "ciphertext moved to another app's row",
			prepare: func(store idp.Store) (*appTokenCache, *lockedBuffer) {
				c, logs := newCache(store, key(kek))
				c.Store(ctx, "app-1", token, expiresAt)
				ciphertext, exp, err := store.DingTalkAppToken(ctx, "app-1")
				if err != nil {
					t.Fatal(err)
				}
				if err := store.PutDingTalkAppToken(ctx, "app-2", ciphertext, exp); err != nil {
					t.Fatal(err)
				}
				return c, logs
			},
			log: "does not decrypt",
		},
		{
			name: "another key-encryption key",
			prepare: func(store idp.Store) (*appTokenCache, *lockedBuffer) {
				old, _ := newCache(store, key(randomKey()))
				old.Store(ctx, "app-2", token, expiresAt)
				return newCache(store, key(kek))
			},
			log: "does not decrypt",
		},
		{
			name: "tampered ciphertext",
			prepare: func(store idp.Store) (*appTokenCache, *lockedBuffer) {
				c, logs := newCache(store, key(kek))
				c.Store(ctx, "app-2", token, expiresAt)
				ciphertext, exp, err := store.DingTalkAppToken(ctx, "app-2")
				if err != nil {
					t.Fatal(err)
				}
				ciphertext[len(ciphertext)-1] ^= 1
				if err := store.PutDingTalkAppToken(ctx, "app-2", ciphertext, exp.Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				return c, logs
			},
			log: "does not decrypt",
		},
		{
			name: "store error",
			prepare: func(store idp.Store) (*appTokenCache, *lockedBuffer) {
				return newCache(failingTokenStore{store}, key(kek))
			},
			log: "shared dingtalk app token unavailable",
		},
	}
	for _, tt := range misses {
		t.Run(tt.name, func(t *testing.T) {
			c, logs := tt.prepare(idp.NewMemoryStore())
			if got, _, ok := c.Load(ctx, "app-2"); ok || got != "" {
				t.Errorf("Load = %q, %v; want a miss", got, ok)
			}
			out := logs.String()
			if !strings.Contains(out, "level=WARN") || !strings.Contains(out, tt.log) || !strings.Contains(out, "app_key=app-2") {
				t.Errorf("logs = %q, want a warning %q for app_key=app-2", out, tt.log)
			}
			if strings.Contains(out, token) {
				t.Errorf("logs = %q, contain the token", out)
			}
		})
	}

	t.Run("store error on Store is logged", func(t *testing.T) {
		c, logs := newCache(failingTokenStore{idp.NewMemoryStore()}, key(kek))
		c.Store(ctx, "app-1", token, expiresAt)
		out := logs.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "could not share") {
			t.Errorf("logs = %q, want a warning", out)
		}
		if strings.Contains(out, token) {
			t.Errorf("logs = %q, contain the token", out)
		}
	})
}

// TestAppTokenKeyDerived checks that the app token key comes from the
// key-encryption key and is not the opaque access token key.
func TestAppTokenKeyDerived(t *testing.T) {
	kek := randomKey()
	a, err := decodeSecrets(SecretsConfig{KeyEncryptionKey: kek})
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeSecrets(SecretsConfig{KeyEncryptionKey: kek})
	if err != nil {
		t.Fatal(err)
	}
	if a.appTokenKey != b.appTokenKey {
		t.Error("appTokenKey differs between two decodings of one key-encryption key")
	}
	if a.appTokenKey == a.tokenKey {
		t.Error("appTokenKey = tokenKey, want keys derived for separate purposes")
	}
	if a.appTokenKey == ([32]byte{}) {
		t.Error("appTokenKey is zero")
	}
}

// failingTokenStore is a store whose app token methods fail.
type failingTokenStore struct{ idp.Store }

var errStoreDown = errors.New("store down")

func (failingTokenStore) DingTalkAppToken(context.Context, string) ([]byte, time.Time, error) {
	return nil, time.Time{}, errStoreDown
}

func (failingTokenStore) PutDingTalkAppToken(context.Context, string, []byte, time.Time) error {
	return errStoreDown
}
