package idp

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// benchProvider is a provider on loopback whose authenticator signs alice
// in at once, with one client per signing algorithm and access-token format.
type benchProvider struct {
	issuer string
	http   *http.Client // no cookies, no redirects followed
}

// Clients of benchProvider: ID token algorithm × access-token format.
var benchClients = []struct {
	id, alg string
	jwtAT   bool
}{
	{"rs256", "RS256", false},
	{"es256", "ES256", false},
	{"rs256-jwt-at", "RS256", true},
	{"es256-jwt-at", "ES256", true},
}

const (
	benchSecret   = "bench-secret-0123456789abcdef"
	benchRedirect = "https://bench.example.com/cb"
)

func newBenchProvider(b *testing.B) *benchProvider {
	b.Helper()
	store := NewMemoryStore()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	b.Cleanup(srv.Close)
	keys, err := NewKeyManager(KeyConfig{Store: store, KEK: providerKEK[:], RSABits: 2048})
	if err != nil {
		b.Fatal(err)
	}
	if err := keys.Ensure(b.Context()); err != nil {
		b.Fatal(err)
	}
	var clients []ClientConfig
	for _, c := range benchClients {
		clients = append(clients, ClientConfig{ID: c.id, Secret: benchSecret, RedirectURIs: []string{benchRedirect},
			Scopes: []string{"openid", "profile", "email", "offline_access"}, IDTokenAlgorithm: c.alg, AccessTokenJWT: c.jwtAT})
	}
	var p *Provider
	p, err = New(Config{
		Issuer: srv.URL, Clients: clients, Store: store, Keys: keys, Accounts: newAccounts(),
		Authenticator: AuthenticatorFunc(func(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
			p.Finish(w, r, ar.ID, Login{Subject: userAlice, AMR: []string{"dingtalk"},
				DingTalk: DingTalkIDs{CorpID: "dingcorp1", UserID: "zhangsan", UnionID: "union-zs"}})
		}),
		CryptoKey: testCrypto, CookieHashKey: testCookieHash[:], CookieBlockKey: testCookieBlock[:],
	})
	if err != nil {
		b.Fatal(err)
	}
	h = p.Handler()
	return &benchProvider{issuer: srv.URL, http: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// authorizeURL is a valid PKCE request of client; the verifier is returned.
func (bp *benchProvider) authorizeURL(client, redirectURI string) (string, string) {
	verifier, challenge := pkce()
	v := url.Values{
		"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirectURI},
		"scope": {"openid profile email"}, "state": {"st-" + randomID()}, "nonce": {"n-" + randomID()},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	return bp.issuer + "/authorize?" + v.Encode(), verifier
}

// code runs a browser's side of a sign-in (following the provider's own
// redirects with its cookies) and returns the code.
func (bp *benchProvider) code(b *testing.B, client string) (code, verifier string) {
	next, verifier := bp.authorizeURL(client, benchRedirect)
	jar := map[string]string{}
	for range 8 {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		resp, err := bp.http.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			jar[c.Name] = c.Value
		}
		loc, err := resp.Location()
		if err != nil {
			b.Fatalf("GET %s = %d without Location", next, resp.StatusCode)
		}
		if strings.HasPrefix(loc.String(), benchRedirect) {
			if c := loc.Query().Get("code"); c != "" {
				return c, verifier
			}
			b.Fatalf("redirect without code: %s", loc)
		}
		next = loc.String()
	}
	b.Fatal("too many redirects")
	return "", ""
}

// BenchmarkCodeExchange is the token endpoint's authorization_code grant:
// client authentication, code and PKCE check, ID token (and, for the
// -jwt-at clients, access token) signing, refresh token issuance. The
// browser's part of the flow runs outside the timer.
func BenchmarkCodeExchange(b *testing.B) {
	bp := newBenchProvider(b)
	for _, c := range benchClients {
		b.Run(c.id, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				code, verifier := bp.code(b, c.id)
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {benchRedirect}, "code_verifier": {verifier}}
				req, _ := http.NewRequest(http.MethodPost, bp.issuer+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(c.id, benchSecret)
				b.StartTimer()
				resp, err := bp.http.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var body struct {
					IDToken string `json:"id_token"`
				}
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || body.IDToken == "" {
					b.Fatalf("token = %d (%v), want 200 with an id_token", resp.StatusCode, err)
				}
			}
		})
	}
}

// BenchmarkSignInInProcess is the provider's whole part of a sign-in
// (authorize → login → code → token) with an authenticator that approves at
// once: what dingbridge costs per sign-in without DingTalk.
func BenchmarkSignInInProcess(b *testing.B) {
	bp := newBenchProvider(b)
	for _, c := range benchClients[:2] {
		b.Run(c.id, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				code, verifier := bp.code(b, c.id)
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {benchRedirect}, "code_verifier": {verifier}}
				req, _ := http.NewRequest(http.MethodPost, bp.issuer+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(c.id, benchSecret)
				resp, err := bp.http.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("token = %d", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkAuthorize is GET /authorize: parsing, client and redirect-URI
// validation, and (when valid) storing the request and redirecting to the
// login; a wrong redirect URI is refused with a page and stores nothing.
func BenchmarkAuthorize(b *testing.B) {
	bp := newBenchProvider(b)
	for _, tc := range []struct {
		name, redirect string
		status         int
	}{
		{"valid", benchRedirect, http.StatusFound},
		{"unregistered_redirect_uri", benchRedirect + "/evil", http.StatusBadRequest},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, _ := bp.authorizeURL("rs256", tc.redirect)
				resp, err := bp.http.Get(u)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					b.Fatalf("GET /authorize = %d, want %d", resp.StatusCode, tc.status)
				}
			}
		})
	}
}

// BenchmarkUpstreamConsume is the store's one-time consumption of a
// DingTalk state on the callback (creating it runs outside the timer).
func BenchmarkUpstreamConsume(b *testing.B) {
	for _, s := range []struct {
		name string
		new  func(b *testing.B) Store
	}{
		{"memory", func(*testing.B) Store { return NewMemoryStore() }},
		{"postgres", func(b *testing.B) Store { return NewPostgresStore(pgtest.NewDatabase(b)) }},
	} {
		b.Run(s.name, func(b *testing.B) {
			store := s.new(b)
			ctx := b.Context()
			now := time.Now()
			// Transactions are created in batches outside the timer:
			// stopping the timer for every one would cost more than a
			// consume from memory.
			const batch = 1024
			hashes := make([]string, 0, batch)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if i%batch == 0 {
					b.StopTimer()
					hashes = hashes[:0]
					for j := range min(batch, b.N-i) {
						hash := fmt.Sprintf("state-%d-%s", i+j, randomID())
						if err := store.CreateUpstream(ctx, newUpstream(hash, "web", now, 10*time.Minute)); err != nil {
							b.Fatal(err)
						}
						hashes = append(hashes, hash)
					}
					b.StartTimer()
				}
				if _, err := store.ConsumeUpstream(ctx, hashes[i%batch], now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
