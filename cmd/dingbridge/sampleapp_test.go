package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dingbridge/dingbridge/idp"
)

// The sample app's test world: one client, two accounts, a provider whose
// stand-in authenticator signs in whoever testProvider.user names.
const (
	sampleClientID     = "sample"
	sampleClientSecret = "sample-secret-0123456789abcdef"
	sampleAlice        = "acct-alice"
	sampleAliceName    = "张三 Alice"
)

// testAccounts is a hand-written idp.AccountSource.
type testAccounts struct {
	mu sync.Mutex
	m  map[string]idp.Account
}

func (a *testAccounts) Account(_ context.Context, id string) (idp.Account, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, ok := a.m[id]
	if !ok {
		return idp.Account{}, errors.New("no such account")
	}
	return acct, nil
}

// testProvider is a real idp.Provider on loopback, over a MemoryStore.
type testProvider struct {
	issuer  string
	p       *idp.Provider
	user    atomic.Value // the subject the stand-in authenticator signs in
	logins  atomic.Int32 // how many times it was asked
	handler atomic.Pointer[http.Handler]
}

var (
	testProviderKEK   = sha256.Sum256([]byte("cmd test key-encryption key"))
	testProviderToken = sha256.Sum256([]byte("cmd test access-token key"))
	testProviderHash  = sha256.Sum256([]byte("cmd test cookie hash key"))
	testProviderBlock = sha256.Sum256([]byte("cmd test cookie block key"))
)

// newTestProvider starts a provider whose clients are clients(issuer).
// Until ready is called it answers 503 to everything, like a provider that
// has not started yet; startProvider calls it at once.
func newTestProvider(t *testing.T, clients func(issuer string) []idp.ClientConfig) *testProvider {
	t.Helper()
	tp := &testProvider{}
	tp.user.Store(sampleAlice)
	down := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not started", http.StatusServiceUnavailable)
	}))
	tp.handler.Store(&down)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*tp.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tp.issuer = srv.URL

	store := idp.NewMemoryStore()
	keys, err := idp.NewKeyManager(idp.KeyConfig{Store: store, KEK: testProviderKEK[:], RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	accounts := &testAccounts{m: map[string]idp.Account{
		sampleAlice: {ID: sampleAlice, Username: "alice", DisplayName: sampleAliceName, Email: "alice@corp.example.com",
			EmailVerified: true, Groups: []string{"staff"}},
		"acct-bob": {ID: "acct-bob", Username: "bob", DisplayName: "李四 Bob"},
	}}
	var p *idp.Provider
	p, err = idp.New(idp.Config{
		Issuer:   tp.issuer,
		Clients:  clients(tp.issuer),
		Store:    store,
		Keys:     keys,
		Accounts: accounts,
		Authenticator: idp.AuthenticatorFunc(func(w http.ResponseWriter, r *http.Request, ar *idp.AuthRequest) {
			tp.logins.Add(1)
			p.Finish(w, r, ar.ID, idp.Login{Subject: tp.user.Load().(string), AMR: []string{"dingtalk", "test"},
				DingTalk: idp.DingTalkIDs{CorpID: "dingcorp1", UserID: "zhangsan", UnionID: "union-zs"}})
		}),
		CryptoKey:      testProviderToken,
		CookieHashKey:  testProviderHash[:],
		CookieBlockKey: testProviderBlock[:],
	})
	if err != nil {
		t.Fatal(err)
	}
	tp.p = p
	return tp
}

// ready makes the provider answer.
func (tp *testProvider) ready() {
	h := tp.p.Handler()
	tp.handler.Store(&h)
}

// sampleClient is the client configuration of a sample app at base.
func sampleClient(base string) idp.ClientConfig {
	return idp.ClientConfig{
		ID: sampleClientID, Name: "Sample", Secret: sampleClientSecret,
		RedirectURIs:           []string{base + "/callback"},
		PostLogoutRedirectURIs: []string{base + "/"},
		InitiateLoginURI:       base + "/login",
		Scopes:                 []string{"openid", "profile", "email", "groups", "dingtalk"},
	}
}

// sampleWorld is a sample app signed in through a test provider.
type sampleWorld struct {
	app      *sampleApp
	appURL   string
	provider *testProvider
}

// newSampleWorld starts a sample app and a provider that knows it as a
// client. The app's server starts first, as its URL is part of the
// client's configuration; with providerUp false the provider answers 503
// until provider.ready is called.
func newSampleWorld(t *testing.T, providerUp bool) *sampleWorld {
	t.Helper()
	w := &sampleWorld{}
	var h atomic.Pointer[sampleApp]
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		h.Load().ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	w.appURL = srv.URL
	w.provider = newTestProvider(t, func(string) []idp.ClientConfig {
		return []idp.ClientConfig{sampleClient(w.appURL)}
	})
	app, err := newSampleApp(sampleAppConfig{
		Issuer: w.provider.issuer, ClientID: sampleClientID, ClientSecret: sampleClientSecret,
		BaseURL: w.appURL, Name: "测试应用 Test app",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.app = app
	h.Store(app)
	if providerUp {
		w.provider.ready()
	}
	return w
}

// jarClient is a browser stand-in: it keeps cookies and follows every
// redirect (all servers are on loopback).
func jarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// fetch sends a request and returns the final response's status, URL and body.
func fetch(t *testing.T, c *http.Client, method, u string) (int, *url.URL, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Request.URL, string(b)
}

func TestSampleAppSignInAndOut(t *testing.T) {
	w := newSampleWorld(t, true)
	c := jarClient(t)

	code, _, body := fetch(t, c, http.MethodGet, w.appURL+"/")
	if code != http.StatusOK || !strings.Contains(body, `id="sign-in"`) || strings.Contains(body, `id="sign-out"`) {
		t.Fatalf("GET / before sign-in = %d, want 200 with the sign-in button; body:\n%.600s", code, body)
	}

	code, at, body := fetch(t, c, http.MethodGet, w.appURL+"/login")
	if code != http.StatusOK || at.String() != w.appURL+"/" {
		t.Fatalf("sign-in ended at %s with %d, want 200 at %s/; body:\n%.600s", at, code, w.appURL, body)
	}
	for _, want := range []string{`id="sign-out"`, `data-claim="sub"`, sampleAlice, sampleAliceName, `data-claim="nonce"`,
		`id="userinfo-claims"`, "alice@corp.example.com", w.provider.issuer} {
		if !strings.Contains(body, want) {
			t.Errorf("claims page lacks %q; body:\n%s", want, body)
		}
	}
	if n := w.provider.logins.Load(); n != 1 {
		t.Errorf("authenticator asked %d times, want 1", n)
	}

	code, at, body = fetch(t, c, http.MethodPost, w.appURL+"/logout")
	if code != http.StatusOK || at.Path != "/" || at.Host != strings.TrimPrefix(w.appURL, "http://") {
		t.Fatalf("sign-out ended at %s with %d, want 200 at the app's /; body:\n%.600s", at, code, body)
	}
	if !strings.Contains(body, `id="signed-out"`) || !strings.Contains(body, `id="sign-in"`) || strings.Contains(body, sampleAlice) {
		t.Errorf("page after sign-out is not the signed-out home page; body:\n%s", body)
	}

	// The provider's session ended too: signing in again asks the
	// authenticator again.
	if code, _, body = fetch(t, c, http.MethodGet, w.appURL+"/login"); code != http.StatusOK || !strings.Contains(body, sampleAlice) {
		t.Fatalf("second sign-in = %d; body:\n%.600s", code, body)
	}
	if n := w.provider.logins.Load(); n != 2 {
		t.Errorf("authenticator asked %d times after sign-out and sign-in, want 2", n)
	}
}

func TestSampleAppInitiateLogin(t *testing.T) {
	w := newSampleWorld(t, true)
	tests := []struct {
		name     string
		query    url.Values
		wantCode int
		wantAt   string // path and query the browser ends on
	}{
		{"from the provider", url.Values{"iss": {w.provider.issuer}}, http.StatusOK, "/"},
		{"with a target in the app", url.Values{"iss": {w.provider.issuer}, "target_link_uri": {w.appURL + "/?from=workbench"}},
			http.StatusOK, "/?from=workbench"},
		{"with a target elsewhere", url.Values{"iss": {w.provider.issuer}, "target_link_uri": {"https://evil.example/"}},
			http.StatusOK, "/"},
		{"wrong iss", url.Values{"iss": {"https://evil.example"}}, http.StatusBadRequest, "/login"},
		{"issuer with a trailing slash", url.Values{"iss": {w.provider.issuer + "/"}}, http.StatusBadRequest, "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, at, body := fetch(t, jarClient(t), http.MethodGet, w.appURL+"/login?"+tt.query.Encode())
			got := at.Path
			if at.RawQuery != "" && tt.wantCode == http.StatusOK {
				got += "?" + at.RawQuery
			}
			if code != tt.wantCode || got != tt.wantAt {
				t.Errorf("initiate login = %d at %s, want %d at %s; body:\n%.600s", code, got, tt.wantCode, tt.wantAt, body)
			}
			if tt.wantCode == http.StatusOK && !strings.Contains(body, sampleAlice) {
				t.Errorf("not signed in after initiate login; body:\n%.600s", body)
			}
		})
	}
}

func TestSampleAppDiscoversLazily(t *testing.T) {
	w := newSampleWorld(t, false)
	c := jarClient(t)
	if code, _, body := fetch(t, c, http.MethodGet, w.appURL+"/"); code != http.StatusOK || !strings.Contains(body, `id="sign-in"`) {
		t.Errorf("home page while the provider is down = %d, want 200 with the sign-in button", code)
	}
	if code, _, body := fetch(t, c, http.MethodGet, w.appURL+"/login"); code != http.StatusServiceUnavailable || !strings.Contains(body, `id="error"`) {
		t.Errorf("sign-in while the provider is down = %d, want 503 error page; body:\n%.600s", code, body)
	}
	w.provider.ready()
	if code, _, body := fetch(t, c, http.MethodGet, w.appURL+"/login"); code != http.StatusOK || !strings.Contains(body, sampleAlice) {
		t.Errorf("sign-in once the provider is up = %d, want signed in; body:\n%.600s", code, body)
	}
}

func TestSampleAppCallbackErrors(t *testing.T) {
	w := newSampleWorld(t, true)
	noRedirect := func(t *testing.T) *http.Client {
		c := jarClient(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	// started returns a client with a sign-in in progress and its state.
	started := func(t *testing.T) (*http.Client, string) {
		c := noRedirect(t)
		resp, err := c.Get(w.appURL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("GET /login = %d %q, want a redirect to the provider", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Errorf("authorization request %v lacks PKCE S256, nonce or state", q)
		}
		return c, q.Get("state")
	}
	tests := []struct {
		name     string
		fresh    bool // no sign-in in progress
		query    func(state string) url.Values
		wantCode int
		want     []string
		notWant  []string
	}{
		{"provider error, escaped", false, func(s string) url.Values {
			return url.Values{"state": {s}, "error": {"access_denied"}, "error_description": {"<script>alert(1)</script> 用户取消"}}
		}, http.StatusBadRequest, []string{`id="oauth-error">access_denied`, "&lt;script&gt;alert(1)&lt;/script&gt; 用户取消"}, []string{"<script>"}},
		{"wrong state", false, func(string) url.Values { return url.Values{"state": {"forged"}, "code": {"x"}} },
			http.StatusBadRequest, []string{`id="error"`}, nil},
		{"no sign-in in progress", true, func(string) url.Values { return url.Values{"state": {"s"}, "code": {"x"}} },
			http.StatusBadRequest, []string{`id="error"`}, nil},
		{"wrong iss", false, func(s string) url.Values {
			return url.Values{"state": {s}, "code": {"x"}, "iss": {"https://evil.example"}}
		},
			http.StatusBadRequest, []string{`id="error"`}, nil},
		{"bad code", false, func(s string) url.Values { return url.Values{"state": {s}, "code": {"not-a-code"}} },
			http.StatusBadGateway, []string{`id="oauth-error">invalid_grant`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, state := noRedirect(t), ""
			if !tt.fresh {
				c, state = started(t)
			}
			code, _, body := fetch(t, c, http.MethodGet, w.appURL+"/callback?"+tt.query(state).Encode())
			if code != tt.wantCode {
				t.Errorf("callback = %d, want %d; body:\n%.800s", code, tt.wantCode, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("error page lacks %q; body:\n%s", s, body)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(body, s) {
					t.Errorf("error page contains %q; body:\n%s", s, body)
				}
			}
		})
	}
}

func TestSampleAppHeadersAndCookies(t *testing.T) {
	w := newSampleWorld(t, true)
	c := jarClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(w.appURL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' " + w.provider.issuer} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, want)
		}
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("GET /login set %d cookies, want 1", len(cookies))
	}
	if ck := cookies[0]; !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Errorf("flow cookie %+v, want HttpOnly, SameSite=Lax, Path=/, a Max-Age", ck)
	}
}

func TestNewSampleAppRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  sampleAppConfig
	}{
		{"no issuer", sampleAppConfig{ClientID: "a", BaseURL: "http://127.0.0.1:1"}},
		{"relative base URL", sampleAppConfig{Issuer: "http://127.0.0.1:2", ClientID: "a", BaseURL: "/app"}},
		{"no client id", sampleAppConfig{Issuer: "http://127.0.0.1:2", BaseURL: "http://127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newSampleApp(tt.cfg); err == nil {
				t.Errorf("newSampleApp(%+v) = nil error, want one", tt.cfg)
			}
		})
	}
}
