package idp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The test world: one confidential client, one public client, one ES256
// client with JWT access tokens, and three accounts.
const (
	appID         = "app"
	appSecret     = "app-secret-0123456789abcdef"
	appRedirect   = "https://app.example.com/cb"
	appLogout     = "https://app.example.com/bye"
	otherID       = "other"
	otherSecret   = "other-secret-0123456789abcdef"
	otherRedir    = "https://other.example.com/cb?tenant=1"
	spaID         = "spa"
	spaRedirect   = "http://127.0.0.1:3000/cb"
	esID          = "es"
	esSecret      = "es-secret-0123456789abcdef"
	esRedirect    = "https://es.example.com/cb"
	corp2ID       = "corp2-only"
	corp2Secret   = "corp2-secret-0123456789abcdef"
	corp2Redirect = "https://corp2.example.com/cb"
	userAlice     = "acct-alice"
	userBob       = "acct-bob"
)

func testClients() []ClientConfig {
	all := []string{"openid", "profile", "email", "phone", "groups", "offline_access", "dingtalk"}
	return []ClientConfig{
		{ID: appID, Secret: appSecret, RedirectURIs: []string{appRedirect, appRedirect + "2"},
			PostLogoutRedirectURIs: []string{appLogout}, Scopes: all},
		{ID: otherID, Secret: otherSecret, RedirectURIs: []string{otherRedir}, Scopes: all},
		{ID: spaID, Public: true, RedirectURIs: []string{spaRedirect}, Scopes: []string{"openid", "profile"}},
		{ID: esID, Secret: esSecret, RedirectURIs: []string{esRedirect}, Scopes: all,
			IDTokenAlgorithm: "ES256", AccessTokenJWT: true},
		{ID: corp2ID, Secret: corp2Secret, RedirectURIs: []string{corp2Redirect}, Scopes: all, Corps: []string{"dingcorp2"}},
	}
}

// accounts is a hand-written AccountSource.
type accounts struct {
	mu    sync.Mutex
	m     map[string]Account
	reads atomic.Int32 // Account calls, for counting reads per request
}

func newAccounts() *accounts {
	return &accounts{m: map[string]Account{
		userAlice: {ID: userAlice, Username: "alice", DisplayName: "张三 Alice", Email: "alice@corp.example.com",
			EmailVerified: true, Phone: "+86 138 0000 0001", Groups: []string{"staff", "wiki-admins"}},
		userBob: {ID: userBob, Username: "bob", DisplayName: "李四 Bob", Email: "bob@corp.example.com"},
	}}
}

func (a *accounts) Account(_ context.Context, id string) (Account, error) {
	a.reads.Add(1)
	a.mu.Lock()
	defer a.mu.Unlock()
	acct, ok := a.m[id]
	if !ok {
		return Account{}, errors.New("no such account")
	}
	return acct, nil
}

func (a *accounts) disable(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	acct := a.m[id]
	acct.Disabled = true
	a.m[id] = acct
}

// clock is the provider's time; tests move it instead of sleeping. It
// starts at the real time because the library stamps iat/exp with it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a running provider and what a test needs to drive it.
type env struct {
	t        *testing.T
	issuer   string
	srv      *httptest.Server
	p        *Provider
	store    Store
	accounts *accounts
	clock    *clock
	user     atomic.Value // subject the stand-in authenticator signs in
	logins   atomic.Int32 // how many times the authenticator was asked
	keys     *KeyManager
	handler  atomic.Pointer[http.Handler] // what the test server runs
}

var (
	testCookieHash  = sha256.Sum256([]byte("cookie hash key for tests"))
	testCookieBlock = sha256.Sum256([]byte("cookie block key for tests"))
	providerKEK     = sha256.Sum256([]byte("key-encryption key for tests"))
	testCrypto      = sha256.Sum256([]byte("access-token crypto key for tests"))
)

// newEnv starts a provider on loopback over a MemoryStore.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWithStore(t, NewMemoryStore())
}

func newEnvWithStore(t *testing.T, store Store) *env {
	t.Helper()
	e := &env{t: t, store: store, accounts: newAccounts(), clock: &clock{t: time.Now().Truncate(time.Second)}}
	e.user.Store(userAlice)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	keys, err := NewKeyManager(KeyConfig{Store: store, KEK: providerKEK[:], Now: e.clock.now, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.keys = keys
	e.p = e.newProvider(store, keys)
	h := e.p.Handler()
	e.handler.Store(&h)
	return e
}

// newProvider builds a provider instance on the env's issuer, store and
// keys: a second "replica" when called again.
func (e *env) newProvider(store Store, keys signer) *Provider {
	var p *Provider
	p, err := New(Config{
		Issuer:   e.issuer,
		Clients:  testClients(),
		Store:    store,
		Keys:     keys,
		Accounts: e.accounts,
		Authenticator: AuthenticatorFunc(func(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
			e.logins.Add(1)
			p.Finish(w, r, ar.ID, Login{Subject: e.user.Load().(string), AMR: []string{"dingtalk", "test"},
				DingTalk: DingTalkIDs{CorpID: "dingcorp1", UserID: "zhangsan", UnionID: "union-zs"}})
		}),
		CryptoKey:      testCrypto,
		CookieHashKey:  testCookieHash[:],
		CookieBlockKey: testCookieBlock[:],
		Now:            e.clock.now,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// browser is a cookie-keeping HTTP client that follows redirects within
// the provider and stops at the first redirect anywhere else (the client).
type browser struct {
	*http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	issuer, _ := url.Parse(e.issuer)
	return &browser{&http.Client{
		Jar: jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != issuer.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

// authParams are the parameters of a normal request for client appID.
func authParams(extra ...string) url.Values {
	v := url.Values{
		"response_type": {"code"},
		"client_id":     {appID},
		"redirect_uri":  {appRedirect},
		"scope":         {"openid profile email"},
		"state":         {"st-" + randomID()},
		"nonce":         {"n-" + randomID()},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v
}

// authorize sends the browser to /authorize and returns the response that
// leaves the provider (a redirect to the client) or the page it stopped on.
func (e *env) authorize(b *browser, v url.Values) *http.Response {
	e.t.Helper()
	resp, err := b.Get(e.issuer + "/authorize?" + v.Encode())
	if err != nil {
		e.t.Fatalf("GET /authorize: %v", err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// redirectParams returns the query of a redirect to the client, failing the
// test if the response is anything else.
func (e *env) redirectParams(resp *http.Response, wantPrefix string) url.Values {
	e.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, wantPrefix) {
		body, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("response = %d Location %q, want a redirect to %s; body:\n%.500s", resp.StatusCode, loc, wantPrefix, body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Query()
}

// code runs an authorization request to the end and returns the code.
func (e *env) code(b *browser, v url.Values) string {
	e.t.Helper()
	q := e.redirectParams(e.authorize(b, v), v.Get("redirect_uri"))
	if q.Get("error") != "" {
		e.t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if got, want := q.Get("state"), v.Get("state"); got != want {
		e.t.Errorf("state = %q, want %q", got, want)
	}
	if got := q.Get("iss"); got != e.issuer {
		e.t.Errorf("iss = %q, want %q (RFC 9207)", got, e.issuer)
	}
	return q.Get("code")
}

// tokenResponse is the token endpoint's answer, raw.
type tokenResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func (t tokenResponse) str(k string) string { s, _ := t.body[k].(string); return s }

// token posts a token request; auth is "basic", "post" or "none".
func (e *env) token(clientID, secret, auth string, form url.Values) tokenResponse {
	e.t.Helper()
	if auth == "post" || auth == "none" {
		form.Set("client_id", clientID)
	}
	if auth == "post" {
		form.Set("client_secret", secret)
	}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth == "basic" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) tokenResponse {
	e.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	tr := tokenResponse{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	_ = json.Unmarshal(raw, &tr.body)
	return tr
}

func codeForm(code, redirectURI string, extra ...string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return v
}

// wantOAuthError checks an error response of the token family of endpoints.
func wantOAuthError(t *testing.T, tr tokenResponse, status int, code string) {
	t.Helper()
	if tr.status != status || tr.str("error") != code {
		t.Errorf("response = %d %v, want %d error=%s", tr.status, tr.body, status, code)
	}
}

// rp is a relying party built from stock libraries: go-oidc for discovery
// and ID token verification, x/oauth2 for the code exchange.
type rp struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
}

func (e *env) rp(clientID, secret, redirectURI string, algs ...string) *rp {
	e.t.Helper()
	ctx := e.t.Context()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatalf("go-oidc discovery: %v", err)
	}
	if len(algs) == 0 {
		algs = []string{"RS256"}
	}
	return &rp{
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: algs}),
		oauth: &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURI,
			Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"}},
	}
}

// signIn runs a whole sign-in with the stock libraries and returns the
// verified ID token and the OAuth2 token.
func (e *env) signIn(b *browser, r *rp, v url.Values) (*oidc.IDToken, *oauth2.Token) {
	e.t.Helper()
	code := e.code(b, v)
	var opts []oauth2.AuthCodeOption
	if verifier := v.Get("test_verifier"); verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := r.oauth.Exchange(e.t.Context(), code, opts...)
	if err != nil {
		e.t.Fatalf("oauth2 Exchange: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		e.t.Fatal("token response has no id_token")
	}
	idt, err := r.verifier.Verify(e.t.Context(), raw)
	if err != nil {
		e.t.Fatalf("go-oidc Verify: %v", err)
	}
	if got, want := idt.Nonce, v.Get("nonce"); got != want {
		e.t.Errorf("nonce = %q, want %q", got, want)
	}
	return idt, tok
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = randomSecret()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// userinfo calls the userinfo endpoint with a bearer token.
func (e *env) userinfo(accessToken string) tokenResponse {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	return e.do(req)
}

// claims decodes an ID token's claims.
func claimsOf(t *testing.T, idt *oidc.IDToken) map[string]any {
	t.Helper()
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// page reads an HTML response body.
func page(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return string(b)
}
