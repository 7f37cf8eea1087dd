package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// waitingCtx reports, through waiting, when a caller starts waiting on it:
// AppToken watches its context only while it waits for a shared fetch.
type waitingCtx struct {
	context.Context
	once    sync.Once
	waiting func()
}

func (c *waitingCtx) Done() <-chan struct{} {
	c.once.Do(c.waiting)
	return c.Context.Done()
}

// serveTokens answers the new token endpoint with tok-1, tok-2, … and the
// given expireIn.
func serveTokens(expireIn int64) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf(`{"accessToken":"tok-%d","expireIn":%d}`, n.Add(1), expireIn)
		serveBytes("application/json", http.StatusOK, []byte(body))(w, r)
	}
}

func TestAppTokenRequest(t *testing.T) {
	tests := []struct {
		name  string
		opts  []func(*Config)
		want  wantRequest
		token string
	}{
		{
			name: "new endpoint",
			want: wantRequest{
				method: http.MethodPost, path: "/v1.0/oauth2/accessToken",
				header: map[string]string{headerUserToken: ""},
				body:   `{"appKey":"` + testAppKey + `","appSecret":"` + testAppSecret + `"}`,
			},
			token: testAppToken,
		},
		{
			name: "legacy gettoken takes its parameters in the query",
			opts: []func(*Config){withLegacyToken},
			want: wantRequest{
				method: http.MethodGet, path: "/gettoken",
				query: url.Values{"appkey": {testAppKey}, "appsecret": {testAppSecret}},
			},
			token: testLegacyToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			inner := serveFile(t, "app_token.json", http.StatusOK)
			if tt.want.path == "/gettoken" {
				inner = serveFile(t, "gettoken.json", http.StatusOK)
			}
			srv.handle(tt.want.path, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, tt.want)
				inner(w, r)
			})
			c, _ := newTestClient(t, srv, tt.opts...)
			got, err := c.AppToken(t.Context())
			if err != nil {
				t.Fatalf("AppToken: %v", err)
			}
			if got != tt.token {
				t.Errorf("token = %q, want %q", got, tt.token)
			}
		})
	}
}

func TestAppTokenCacheLifetime(t *testing.T) {
	tests := []struct {
		name     string
		expireIn int64
		want     time.Duration // how long the first token is used
	}{
		{"7200s minus the 10m margin", 7200, 6600 * time.Second},
		{"zero uses the floor", 0, time.Minute},
		{"negative uses the floor", -30, time.Minute},
		{"shorter than the margin uses the floor", 300, time.Minute},
		{"margin leaves less than the floor", 630, time.Minute},
		{"margin leaves more than the floor", 700, 100 * time.Second},
		{"absurd values are capped", 1 << 62, 24*time.Hour - 10*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			const path = "/v1.0/oauth2/accessToken"
			srv.handle(path, serveTokens(tt.expireIn))
			clock := &fakeClock{now: testNow}
			c, _ := newTestClient(t, srv, func(c *Config) { c.Now = clock.Now })

			steps := []struct {
				advance   time.Duration
				wantToken string
				wantCalls int
			}{
				{0, "tok-1", 1},
				{tt.want - time.Second, "tok-1", 1},
				{time.Second, "tok-2", 2},
			}
			for _, s := range steps {
				clock.Advance(s.advance)
				got, err := c.AppToken(t.Context())
				if err != nil {
					t.Fatalf("AppToken: %v", err)
				}
				if got != s.wantToken {
					t.Errorf("after %v: token = %q, want %q", s.advance, got, s.wantToken)
				}
				if n := srv.count(path); n != s.wantCalls {
					t.Errorf("after %v: token calls = %d, want %d", s.advance, n, s.wantCalls)
				}
			}
		})
	}
}

// startWaiters runs n AppToken calls while the token endpoint is held, and
// releases it only once all n are waiting, so they must share one fetch.
func startWaiters(t *testing.T, srv *testServer, c *Client, n int) (tokens []string, errs []error) {
	t.Helper()
	release := make(chan struct{})
	const path = "/v1.0/oauth2/accessToken"
	inner := srv.routes[path]
	srv.handle(path, func(w http.ResponseWriter, r *http.Request) {
		<-release
		inner(w, r)
	})
	var waiting, done sync.WaitGroup
	waiting.Add(n)
	tokens, errs = make([]string, n), make([]error, n)
	for i := range n {
		done.Go(func() {
			ctx := &waitingCtx{Context: t.Context(), waiting: waiting.Done}
			tokens[i], errs[i] = c.AppToken(ctx)
		})
	}
	waiting.Wait()
	close(release)
	done.Wait()
	return tokens, errs
}

func TestAppTokenSingleFlight(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv)
	tokens, errs := startWaiters(t, srv, c, 50)
	for i := range tokens {
		if errs[i] != nil || tokens[i] != testAppToken {
			t.Errorf("caller %d: token, err = %q, %v, want %q, nil", i, tokens[i], errs[i], testAppToken)
		}
	}
	if got := srv.count("/v1.0/oauth2/accessToken"); got != 1 {
		t.Errorf("token calls = %d, want 1", got)
	}
}

func TestAppTokenErrorSharedAndNotCached(t *testing.T) {
	srv := newTestServer(t)
	const path = "/v1.0/oauth2/accessToken"
	srv.handle(path, serveFile(t, "error_bad_credentials.json", http.StatusBadRequest))
	c, _ := newTestClient(t, srv)

	_, errs := startWaiters(t, srv, c, 10)
	for i, err := range errs {
		if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("caller %d: err = %v, want ErrBadCredentials", i, err)
		}
	}
	if got := srv.count(path); got != 1 {
		t.Errorf("token calls = %d, want 1", got)
	}

	srv.handle(path, serveFile(t, "app_token.json", http.StatusOK))
	got, err := c.AppToken(t.Context())
	if err != nil || got != testAppToken {
		t.Errorf("AppToken after the failure = %q, %v, want %q, nil", got, err, testAppToken)
	}
	if got := srv.count(path); got != 2 {
		t.Errorf("token calls = %d, want 2: the error must not be cached", got)
	}
}

func TestAppTokenWaiterGivesUp(t *testing.T) {
	srv := newTestServer(t)
	const path = "/v1.0/oauth2/accessToken"
	entered, release := make(chan struct{}), make(chan struct{})
	srv.handle(path, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		serveFile(t, "app_token.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.AppToken(ctx)
		errc <- err
	}()
	<-entered
	cancel()
	checkIs(t, <-errc, context.Canceled)

	// The fetch outlives the caller that started it and fills the cache.
	close(release)
	got, err := c.AppToken(t.Context())
	if err != nil || got != testAppToken {
		t.Errorf("AppToken = %q, %v, want %q, nil", got, err, testAppToken)
	}
	if n := srv.count(path); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
}

func TestAppTokenRetriedOnceWhenRejected(t *testing.T) {
	tests := []struct {
		name, rejection string
	}{
		{"errcode 88 with sub_code 40014", "error_88.json"},
		{"errcode 42001", "error_token_expired.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle("/v1.0/oauth2/accessToken", serveTokens(7200))
			var seen []string
			var mu sync.Mutex
			srv.handle("/topapi/v2/user/get", func(w http.ResponseWriter, r *http.Request) {
				tok := r.URL.Query().Get("access_token")
				mu.Lock()
				seen = append(seen, tok)
				mu.Unlock()
				if tok == "tok-1" {
					serveFile(t, tt.rejection, http.StatusOK)(w, r)
					return
				}
				serveFile(t, "user_get.json", http.StatusOK)(w, r)
			})
			c, _ := newTestClient(t, srv)

			u, err := c.User(t.Context(), testUserID)
			if err != nil {
				t.Fatalf("User: %v", err)
			}
			if u.UserID != testUserID {
				t.Errorf("UserID = %q, want %q", u.UserID, testUserID)
			}
			if got := srv.count("/v1.0/oauth2/accessToken"); got != 2 {
				t.Errorf("token calls = %d, want 2", got)
			}
			if want := []string{"tok-1", "tok-2"}; fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("tokens sent = %v, want %v", seen, want)
			}
			// The new token stays cached.
			if got, _ := c.AppToken(t.Context()); got != "tok-2" {
				t.Errorf("cached token = %q, want tok-2", got)
			}
		})
	}
}

func TestInvalidateAppTokenKeepsNewerToken(t *testing.T) {
	tests := []struct {
		name, cached, invalidate, want string
	}{
		{"same token is dropped", "tok-1", "tok-1", ""},
		{"a newer token survives a late invalidation", "tok-2", "tok-1", "tok-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{AppKey: testAppKey, AppSecret: testAppSecret})
			if err != nil {
				t.Fatal(err)
			}
			c.tokens.token, c.tokens.expiresAt = tt.cached, time.Now().Add(time.Hour)
			c.invalidateAppToken(tt.invalidate)
			if got := c.tokens.token; got != tt.want {
				t.Errorf("cached token = %q, want %q", got, tt.want)
			}
		})
	}
}

// memTokenCache is a TokenCache in a map.
type memTokenCache struct {
	mu      sync.Mutex
	entries map[string]memTokenEntry
	stores  int
}

type memTokenEntry struct {
	token     string
	expiresAt time.Time
}

func (m *memTokenCache) Load(_ context.Context, appKey string) (string, time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[appKey]
	return e.token, e.expiresAt, ok
}

func (m *memTokenCache) Store(_ context.Context, appKey, token string, expiresAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = make(map[string]memTokenEntry)
	}
	m.entries[appKey] = memTokenEntry{token, expiresAt}
	m.stores++
}

var _ TokenCache = (*memTokenCache)(nil)

func TestAppTokenSharedCache(t *testing.T) {
	tests := []struct {
		name       string
		preload    *memTokenEntry
		wantToken  string
		wantCalls  int
		wantStored memTokenEntry
	}{
		{
			name:       "empty cache is filled",
			wantToken:  testAppToken,
			wantCalls:  1,
			wantStored: memTokenEntry{testAppToken, testNow.Add(6600 * time.Second)},
		},
		{
			name:       "valid shared token is used without a call",
			preload:    &memTokenEntry{"shared-tok", testNow.Add(time.Hour)},
			wantToken:  "shared-tok",
			wantStored: memTokenEntry{"shared-tok", testNow.Add(time.Hour)},
		},
		{
			name:       "expired shared token is replaced",
			preload:    &memTokenEntry{"shared-tok", testNow},
			wantToken:  testAppToken,
			wantCalls:  1,
			wantStored: memTokenEntry{testAppToken, testNow.Add(6600 * time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			cache := &memTokenCache{}
			if tt.preload != nil {
				cache.Store(t.Context(), testAppKey, tt.preload.token, tt.preload.expiresAt)
			}
			c, _ := newTestClient(t, srv, func(c *Config) { c.TokenCache = cache })
			got, err := c.AppToken(t.Context())
			if err != nil {
				t.Fatalf("AppToken: %v", err)
			}
			if got != tt.wantToken {
				t.Errorf("token = %q, want %q", got, tt.wantToken)
			}
			if n := srv.count("/v1.0/oauth2/accessToken"); n != tt.wantCalls {
				t.Errorf("token calls = %d, want %d", n, tt.wantCalls)
			}
			if e := cache.entries[testAppKey]; e != tt.wantStored {
				t.Errorf("shared entry = %+v, want %+v", e, tt.wantStored)
			}
		})
	}
}

func TestAppTokenSharedCacheSkipsRejectedToken(t *testing.T) {
	srv := newTestServer(t)
	cache := &memTokenCache{}
	cache.Store(t.Context(), testAppKey, "revoked-tok", testNow.Add(time.Hour))
	srv.handle("/topapi/v2/user/get", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("access_token") == "revoked-tok" {
			serveFile(t, "error_88.json", http.StatusOK)(w, r)
			return
		}
		serveFile(t, "user_get.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv, func(c *Config) { c.TokenCache = cache })

	if _, err := c.User(t.Context(), testUserID); err != nil {
		t.Fatalf("User: %v", err)
	}
	if n := srv.count("/v1.0/oauth2/accessToken"); n != 1 {
		t.Errorf("token calls = %d, want 1", n)
	}
	if got := cache.entries[testAppKey].token; got != testAppToken {
		t.Errorf("shared token = %q, want the fresh %q", got, testAppToken)
	}
}

func TestAppTokenRetryRefreshFails(t *testing.T) {
	srv := newTestServer(t)
	const tokenPath = "/v1.0/oauth2/accessToken"
	var calls atomic.Int64
	srv.handle(tokenPath, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			serveFile(t, "app_token.json", http.StatusOK)(w, r)
			return
		}
		serveFile(t, "error_bad_credentials.json", http.StatusBadRequest)(w, r)
	})
	srv.handle("/topapi/v2/user/get", serveFile(t, "error_88.json", http.StatusOK))
	c, _ := newTestClient(t, srv)
	_, err := c.User(t.Context(), testUserID)
	checkIs(t, err, ErrBadCredentials)
	if n := srv.count("/topapi/v2/user/get"); n != 1 {
		t.Errorf("user calls = %d, want 1: no retry without a new token", n)
	}
}
