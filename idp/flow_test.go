package idp

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestOP01_CodeFlowWithStockLibraries(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	v := authParams()
	idt, tok := e.signIn(e.browser(), r, v)

	c := claimsOf(t, idt)
	if idt.Subject != userAlice {
		t.Errorf("sub = %q, want %q", idt.Subject, userAlice)
	}
	if idt.Issuer != e.issuer {
		t.Errorf("iss = %q, want %q", idt.Issuer, e.issuer)
	}
	if !slices.Contains(idt.Audience, appID) {
		t.Errorf("aud = %v, want it to contain %q", idt.Audience, appID)
	}
	if iat := idt.IssuedAt; time.Since(iat).Abs() > 5*time.Minute {
		t.Errorf("iat = %v, want within 5 minutes of now", iat)
	}
	if _, ok := c["auth_time"]; !ok {
		t.Error("ID token has no auth_time")
	}
	if amr, _ := c["amr"].([]any); len(amr) == 0 || amr[0] != "dingtalk" {
		t.Errorf("amr = %v, want it to start with dingtalk", c["amr"])
	}
	if tok.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", tok.TokenType)
	}
	// With an access token, profile claims come from userinfo (OIDC Core 5.4).
	info, err := r.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("go-oidc UserInfo: %v", err)
	}
	if info.Subject != idt.Subject || info.Email != "alice@corp.example.com" || !info.EmailVerified {
		t.Errorf("userinfo = %+v, want sub %q and the verified email", info, idt.Subject)
	}
	var profile struct {
		Name              string `json:"name"`
		PreferredUsername string `json:"preferred_username"`
	}
	if err := info.Claims(&profile); err != nil {
		t.Fatal(err)
	}
	if profile.Name != "张三 Alice" || profile.PreferredUsername != "alice" {
		t.Errorf("userinfo profile = %+v", profile)
	}
}

func TestOP01_TokenResponseHeaders(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams())
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	if tr.status != http.StatusOK {
		t.Fatalf("token = %d %v", tr.status, tr.body)
	}
	if got := tr.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store (RFC 6749 §5.1)", got)
	}
	if got := tr.header.Get("Pragma"); got != "no-cache" {
		t.Errorf("Pragma = %q, want no-cache", got)
	}
	for _, k := range []string{"access_token", "id_token", "token_type"} {
		if tr.str(k) == "" {
			t.Errorf("token response lacks %s", k)
		}
	}
	if tr.str("refresh_token") != "" {
		t.Error("refresh_token issued without offline_access")
	}
}

func TestOP02_ClientSecretPost(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams())
	tr := e.token(appID, appSecret, "post", codeForm(code, appRedirect))
	if tr.status != http.StatusOK || tr.str("id_token") == "" {
		t.Fatalf("client_secret_post exchange = %d %v, want 200 with an id_token", tr.status, tr.body)
	}
}

func TestOP07_NoNonce(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	idt, _ := e.signIn(e.browser(), r, authParams("nonce", ""))
	if _, ok := claimsOf(t, idt)["nonce"]; ok {
		t.Error("ID token has a nonce although none was sent")
	}
}

func TestOP09_OP16_ReorderedScopesAndUnknownParameter(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	v := authParams("scope", "email profile openid", "extra", "foobar", "display", "popup",
		"ui_locales", "se", "claims_locales", "se", "acr_values", "1 2", "login_hint", "<script>")
	idt, _ := e.signIn(e.browser(), r, v)
	if idt.Subject != userAlice {
		t.Errorf("sub = %q, want %q", idt.Subject, userAlice)
	}
}

func TestOP22_AuthorizeByPOST(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	v := authParams()
	resp, err := b.PostForm(e.issuer+"/authorize", v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	q := e.redirectParams(resp, appRedirect)
	if q.Get("code") == "" || q.Get("state") != v.Get("state") {
		t.Errorf("POST /authorize redirect = %v, want a code and the state", q)
	}
}

func TestOP11_PromptLoginAuthenticatesAgain(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := e.rp(appID, appSecret, appRedirect)
	first, _ := e.signIn(b, r, authParams())
	e.clock.advance(2 * time.Second)
	second, _ := e.signIn(b, r, authParams("prompt", "login"))
	if got := e.logins.Load(); got != 2 {
		t.Errorf("authenticator asked %d times, want 2 (prompt=login must show login again)", got)
	}
	if !authTime(t, second).After(authTime(t, first)) {
		t.Errorf("auth_time after prompt=login = %v, want later than %v", authTime(t, second), authTime(t, first))
	}
}

func TestOP12_PromptNoneWithoutSession(t *testing.T) {
	e := newEnv(t)
	v := authParams("prompt", "none")
	q := e.redirectParams(e.authorize(e.browser(), v), appRedirect)
	if q.Get("error") != "login_required" || q.Get("code") != "" || q.Get("state") != v.Get("state") || q.Get("iss") != e.issuer {
		t.Errorf("prompt=none without session redirected with %v, want error=login_required, the state, iss and no code", q)
	}
	if e.logins.Load() != 0 {
		t.Error("prompt=none showed the login")
	}
}

func TestOP13_OP15_SessionReusedWithoutLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := e.rp(appID, appSecret, appRedirect)
	first, _ := e.signIn(b, r, authParams("max_age", "15000"))
	e.clock.advance(3 * time.Second)
	for _, extra := range [][]string{{"prompt", "none"}, {"max_age", "10000"}} {
		next, _ := e.signIn(b, r, authParams(extra...))
		if next.Subject != first.Subject || !authTime(t, next).Equal(authTime(t, first)) {
			t.Errorf("%v: sub %q auth_time %v, want %q and %v", extra, next.Subject, authTime(t, next), first.Subject, authTime(t, first))
		}
	}
	if got := e.logins.Load(); got != 1 {
		t.Errorf("authenticator asked %d times, want 1", got)
	}
}

func TestOP13_SSOAcrossClients(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.signIn(b, e.rp(appID, appSecret, appRedirect), authParams())
	v := authParams("client_id", otherID, "redirect_uri", otherRedir, "prompt", "none")
	idt, _ := e.signIn(b, e.rp(otherID, otherSecret, otherRedir), v)
	if idt.Subject != userAlice || e.logins.Load() != 1 {
		t.Errorf("second client: sub %q after %d logins, want %q after 1", idt.Subject, e.logins.Load(), userAlice)
	}
}

func TestOP14_MaxAgeForcesLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := e.rp(appID, appSecret, appRedirect)
	first, _ := e.signIn(b, r, authParams())
	e.clock.advance(2 * time.Second)
	second, _ := e.signIn(b, r, authParams("max_age", "1"))
	if e.logins.Load() != 2 {
		t.Errorf("authenticator asked %d times, want 2", e.logins.Load())
	}
	if !authTime(t, second).After(authTime(t, first)) {
		t.Errorf("auth_time = %v, want later than %v", authTime(t, second), authTime(t, first))
	}
	if _, ok := claimsOf(t, second)["auth_time"]; !ok {
		t.Error("ID token for a max_age request has no auth_time")
	}
}

func TestRFC27_MaxAgeZeroAlwaysAuthenticates(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.code(b, authParams())
	e.code(b, authParams("max_age", "0"))
	if e.logins.Load() != 2 {
		t.Errorf("authenticator asked %d times, want 2", e.logins.Load())
	}
}

func TestOP17_IDTokenHint(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := e.rp(appID, appSecret, appRedirect)
	_, tok := e.signIn(b, r, authParams())
	hint := tok.Extra("id_token").(string)
	idt, _ := e.signIn(b, r, authParams("prompt", "none", "id_token_hint", hint))
	if idt.Subject != userAlice {
		t.Errorf("sub = %q, want %q", idt.Subject, userAlice)
	}
}

func TestBAD20_IDTokenHintOfAnotherUser(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	e.user.Store(userBob)
	_, bobTok := e.signIn(e.browser(), r, authParams())
	e.user.Store(userAlice)
	b := e.browser()
	e.signIn(b, r, authParams())
	q := e.redirectParams(e.authorize(b, authParams("prompt", "none", "id_token_hint", bobTok.Extra("id_token").(string))), appRedirect)
	if q.Get("error") != "login_required" || q.Get("code") != "" {
		t.Errorf("hint of bob while alice is signed in: %v, want login_required and no code", q)
	}
}

func TestOP19_CodeReuse(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams())
	first := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	if first.status != http.StatusOK {
		t.Fatalf("first exchange = %d %v", first.status, first.body)
	}
	second := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	wantOAuthError(t, second, http.StatusBadRequest, "invalid_grant")
	// OP-20: the replay revokes what the first exchange produced.
	if got := e.userinfo(first.str("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("userinfo with the first access token after a code replay = %d, want 401", got.status)
	}
}

// TestBR04_ConcurrentCodeExchanges sends one code to the token endpoint 20
// times at once, on each store, for several rounds, every other round with
// offline_access. At most one exchange may succeed, and since the other 19
// are replays (RFC 6749 §4.1.2), whatever the winner was issued must end
// revoked, although the winner mints its tokens after its code was consumed,
// possibly after a loser already revoked the grant.
func TestBR04_ConcurrentCodeExchanges(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) Store
	}{
		{"memory", func(*testing.T) Store { return NewMemoryStore() }},
		{"postgres", func(t *testing.T) Store { return NewPostgresStore(pgtest.NewDatabase(t)) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnvWithStore(t, st.store(t))
			for round := range 10 {
				concurrentCodeExchanges(t, e, round, round%2 == 1)
			}
		})
	}
}

func concurrentCodeExchanges(t *testing.T, e *env, round int, offline bool) {
	scope := "openid profile email"
	if offline {
		scope += " offline_access"
	}
	code := e.code(e.browser(), authParams("scope", scope))
	responses := make([]tokenResponse, 20)
	var wg sync.WaitGroup
	for i := range responses {
		wg.Go(func() {
			responses[i] = e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
		})
	}
	wg.Wait()
	var issued []tokenResponse
	for _, tr := range responses {
		switch tr.status {
		case http.StatusOK:
			issued = append(issued, tr)
		case http.StatusBadRequest:
			if got := tr.str("error"); got != "invalid_grant" {
				t.Errorf("round %d: error = %q, want invalid_grant", round, got)
			}
		default:
			t.Errorf("round %d: status %d %q, want 200 or 400", round, tr.status, tr.str("error"))
		}
	}
	if len(issued) > 1 {
		t.Errorf("round %d: %d of 20 concurrent exchanges succeeded, want at most 1", round, len(issued))
	}
	// The winner's token creation may have been refused (the grant was
	// revoked first) or may have succeeded; either way nothing usable remains.
	for _, tr := range issued {
		if got := e.userinfo(tr.str("access_token")); got.status != http.StatusUnauthorized {
			t.Errorf("round %d: userinfo with the access token of a replayed code = %d, want 401", round, got.status)
		}
		if rt := tr.str("refresh_token"); rt != "" {
			v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
			if got := e.token(appID, appSecret, "basic", v); got.status != http.StatusBadRequest {
				t.Errorf("round %d: refresh with the refresh token of a replayed code = %d %q, want 400", round, got.status, got.str("error"))
			}
		} else if offline {
			t.Errorf("round %d: exchange with offline_access issued no refresh token", round)
		}
	}
}

func TestRFC06_CodeExpiresAfter60Seconds(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams())
	e.clock.advance(61 * time.Second)
	wantOAuthError(t, e.token(appID, appSecret, "basic", codeForm(code, appRedirect)), http.StatusBadRequest, "invalid_grant")
}

func TestOP25_RefreshTokenRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams("scope", "openid offline_access"))
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	rt1 := tr.str("refresh_token")
	if rt1 == "" {
		t.Fatalf("no refresh_token with offline_access: %v", tr.body)
	}
	for _, c := range rt1 {
		if c < 0x20 || c > 0x7e {
			t.Fatalf("refresh token has a character outside [\\x20-\\x7E]: %q", rt1)
		}
	}
	refresh := func(clientID, secret, rt string, extra ...string) tokenResponse {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return e.token(clientID, secret, "basic", v)
	}
	// BAD-42: another client presenting the token.
	wantOAuthError(t, refresh(otherID, otherSecret, rt1), http.StatusBadRequest, "invalid_grant")
	// BAD-44: a wider scope than granted.
	wantOAuthError(t, refresh(appID, appSecret, rt1, "scope", "openid offline_access email"), http.StatusBadRequest, "invalid_scope")

	second := refresh(appID, appSecret, rt1)
	if second.status != http.StatusOK || second.str("access_token") == "" || second.str("id_token") == "" {
		t.Fatalf("refresh = %d %v, want new tokens", second.status, second.body)
	}
	rt2 := second.str("refresh_token")
	if rt2 == "" || rt2 == rt1 {
		t.Fatalf("refresh token not rotated: %q", rt2)
	}
	if got := second.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	// The refreshed access token is stored with the rotation, and works
	// until its family dies.
	if got := e.userinfo(second.str("access_token")); got.status != http.StatusOK {
		t.Errorf("refreshed access token: userinfo = %d %v, want 200", got.status, got.body)
	}
	// RFC-12 / BAD-43: the rotated-away token is a replay; the family dies.
	wantOAuthError(t, refresh(appID, appSecret, rt1), http.StatusBadRequest, "invalid_grant")
	wantOAuthError(t, refresh(appID, appSecret, rt2), http.StatusBadRequest, "invalid_grant")
	if got := e.userinfo(second.str("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("access token of a revoked family: userinfo = %d, want 401", got.status)
	}
}

func TestOP25_RefreshedIDTokenIsConsistent(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	r.oauth.Scopes = append(r.oauth.Scopes, "offline_access")
	idt, tok := e.signIn(e.browser(), r, authParams("scope", "openid offline_access"))
	fresh, err := r.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("oauth2 refresh: %v", err)
	}
	idt2, err := r.verifier.Verify(t.Context(), fresh.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	if idt2.Subject != idt.Subject || idt2.Issuer != idt.Issuer || !authTime(t, idt2).Equal(authTime(t, idt)) ||
		!slices.Equal(idt2.Audience, idt.Audience) {
		t.Errorf("refreshed ID token (sub %q iss %q auth_time %v aud %v) differs from the first (%q %q %v %v)",
			idt2.Subject, idt2.Issuer, authTime(t, idt2), idt2.Audience, idt.Subject, idt.Issuer, authTime(t, idt), idt.Audience)
	}
}

func TestBR16_DisabledAccountLosesRefreshAndUserinfo(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams("scope", "openid offline_access"))
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	e.accounts.disable(userAlice)
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}
	wantOAuthError(t, e.token(appID, appSecret, "basic", v), http.StatusBadRequest, "invalid_grant")
	if got := e.userinfo(tr.str("access_token")); got.status != http.StatusUnauthorized {
		t.Errorf("userinfo for a disabled account = %d, want 401", got.status)
	}
	// And the next sign-in is refused with a page, not a code.
	resp := e.authorize(e.browser(), authParams())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page(t, resp), "账号无法登录") {
		t.Errorf("sign-in of a disabled account = %d, want 403 with the account page", resp.StatusCode)
	}
}

func TestOP26_PKCE(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	v := authParams("code_challenge", challenge, "code_challenge_method", "S256", "test_verifier", verifier)
	idt, _ := e.signIn(e.browser(), e.rp(appID, appSecret, appRedirect), v)
	if idt.Subject != userAlice {
		t.Errorf("sub = %q", idt.Subject)
	}
}

func TestPKCEPublicClient(t *testing.T) {
	e := newEnv(t)
	verifier, challenge := pkce()
	v := authParams("client_id", spaID, "redirect_uri", spaRedirect, "scope", "openid profile",
		"code_challenge", challenge, "code_challenge_method", "S256")
	code := e.code(e.browser(), v)
	tr := e.token(spaID, "", "none", codeForm(code, spaRedirect, "code_verifier", verifier))
	if tr.status != http.StatusOK || tr.str("id_token") == "" {
		t.Fatalf("public client exchange = %d %v", tr.status, tr.body)
	}
	// A public client without PKCE is refused at /authorize.
	q := e.redirectParams(e.authorize(e.browser(), authParams("client_id", spaID, "redirect_uri", spaRedirect)), spaRedirect)
	if q.Get("error") != "invalid_request" {
		t.Errorf("public client without PKCE: %v, want invalid_request", q)
	}
}

func TestPKCEAtTheTokenEndpoint(t *testing.T) {
	verifier, challenge := pkce()
	withChallenge := []string{"code_challenge", challenge, "code_challenge_method", "S256"}
	tests := []struct {
		name      string
		authorize []string
		verifier  string
		wantError string
	}{
		{"BAD-34 challenge sent, no verifier", withChallenge, "", "invalid_request"},
		{"BAD-35/RFC-08 wrong verifier", withChallenge, strings.Repeat("a", 43), "invalid_grant"},
		{"RFC-07 verifier of 42 chars", withChallenge, strings.Repeat("a", 42), "invalid_request"},
		{"RFC-07 verifier of 129 chars", withChallenge, strings.Repeat("a", 129), "invalid_request"},
		{"RFC-07 verifier with +", withChallenge, verifier[:42] + "+", "invalid_request"},
		{"RFC-09/BAD-36 verifier without challenge", nil, verifier, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code := e.code(e.browser(), authParams(tt.authorize...))
			form := codeForm(code, appRedirect)
			if tt.verifier != "" {
				form.Set("code_verifier", tt.verifier)
			}
			wantOAuthError(t, e.token(appID, appSecret, "basic", form), http.StatusBadRequest, tt.wantError)
			if tt.wantError == "invalid_grant" {
				// RFC-08: the code is consumed; the right verifier is too late.
				form.Set("code_verifier", verifier)
				wantOAuthError(t, e.token(appID, appSecret, "basic", form), http.StatusBadRequest, "invalid_grant")
			}
		})
	}
}

func TestES256ClientAndJWTAccessTokens(t *testing.T) {
	e := newEnv(t)
	r := e.rp(esID, esSecret, esRedirect, "ES256")
	idt, tok := e.signIn(e.browser(), r, authParams("client_id", esID, "redirect_uri", esRedirect))
	if idt.Subject != userAlice {
		t.Errorf("sub = %q", idt.Subject)
	}
	// RFC 9068 access token: a JWT the JWKS verifies, naming the client.
	at, err := r.provider.VerifierContext(t.Context(), &oidcConfigSkipAud).Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("JWT access token does not verify against the JWKS: %v", err)
	}
	var c struct {
		ClientID string `json:"client_id"`
	}
	_ = at.Claims(&c)
	if at.Subject != userAlice || c.ClientID != esID {
		t.Errorf("access token sub %q client_id %q, want %q %q", at.Subject, c.ClientID, userAlice, esID)
	}
	if got := e.userinfo(tok.AccessToken); got.status != http.StatusOK || got.str("sub") != userAlice {
		t.Errorf("userinfo with a JWT access token = %d %v", got.status, got.body)
	}
}

func TestDingTalkScopeClaims(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams("scope", "openid dingtalk groups"))
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	info := e.userinfo(tr.str("access_token"))
	for k, want := range map[string]string{"dingtalk_corp_id": "dingcorp1", "dingtalk_user_id": "zhangsan", "dingtalk_union_id": "union-zs"} {
		if got := info.str(k); got != want {
			t.Errorf("userinfo %s = %q, want %q", k, got, want)
		}
	}
	if groups, _ := info.body["groups"].([]any); len(groups) != 2 {
		t.Errorf("groups = %v, want 2", info.body["groups"])
	}
	if info.str("email") != "" {
		t.Error("email claim without the email scope")
	}
}

// oidcConfigSkipAud verifies access tokens, whose audience is not the client.
var oidcConfigSkipAud = oidc.Config{SkipClientIDCheck: true, SupportedSigningAlgs: []string{"ES256", "RS256"}}

// authTime reads an ID token's auth_time claim.
func authTime(t *testing.T, idt *oidc.IDToken) time.Time {
	t.Helper()
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	if err := idt.Claims(&c); err != nil || c.AuthTime == 0 {
		t.Fatalf("ID token has no auth_time (%v)", err)
	}
	return time.Unix(c.AuthTime, 0)
}

// A token, refresh or userinfo request reads the account once, though it
// both checks that the account is active and builds claims from it.
func TestOneAccountReadPerTokenRequest(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams("scope", "openid profile offline_access"))
	count := func(name string, f func() tokenResponse) {
		t.Helper()
		e.accounts.reads.Store(0)
		if tr := f(); tr.status != http.StatusOK {
			t.Fatalf("%s = %d %v", name, tr.status, tr.body)
		}
		if n := e.accounts.reads.Load(); n != 1 {
			t.Errorf("%s read the account %d times, want 1", name, n)
		}
	}
	var tr tokenResponse
	count("code exchange", func() tokenResponse { tr = e.token(appID, appSecret, "basic", codeForm(code, appRedirect)); return tr })
	count("userinfo", func() tokenResponse { return e.userinfo(tr.str("access_token")) })
	count("refresh", func() tokenResponse {
		return e.token(appID, appSecret, "basic", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}})
	})
}
