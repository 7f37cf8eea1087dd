package idp

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Errors shown as a page: the client or its redirect URI cannot be trusted,
// so nothing is redirected (RFC 6749 §4.1.2.1).
func TestAuthorizeErrorPages(t *testing.T) {
	tests := []struct {
		name  string
		query string // raw, so repeated and odd parameters survive
		want  string // text on the page
	}{
		{"BAD-01 unknown client", "response_type=code&scope=openid&client_id=nope&redirect_uri=" + url.QueryEscape(appRedirect), "应用未登记"},
		{"BAD-02 foreign redirect", "response_type=code&scope=openid&client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", "返回地址未登记"},
		{"BAD-03 trailing slash", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape(appRedirect+"/"), "返回地址未登记"},
		{"BAD-04 host case", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape("https://APP.example.com/cb"), "返回地址未登记"},
		{"BAD-07 query added", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape(appRedirect+"?x=1"), "返回地址未登记"},
		{"BAD-08 fragment", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape(appRedirect+"#frag"), "返回地址未登记"},
		{"BAD-09 explicit port", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape("https://app.example.com:443/cb"), "返回地址未登记"},
		{"OP-21 junk appended", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape(appRedirect+"junk"), "返回地址未登记"},
		{"library unescapes twice", "response_type=code&scope=openid&client_id=app&redirect_uri=" + url.QueryEscape(url.QueryEscape(appRedirect)), "返回地址未登记"},
		{"OP-28/BAD-15 no redirect_uri", "response_type=code&scope=openid&client_id=app", "缺少返回地址"},
		{"OP-29 query mismatch", "response_type=code&scope=openid&client_id=other&redirect_uri=" + url.QueryEscape("https://other.example.com/cb?tenant=2"), "返回地址未登记"},
		{"RFC-01 client_id twice", "response_type=code&scope=openid&client_id=app&client_id=other&redirect_uri=" + url.QueryEscape(appRedirect), "不止一次"},
		{"no client_id", "response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(appRedirect), "应用未登记"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.browser().Get(e.issuer + "/authorize?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := page(t, resp)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, tt.want) {
				t.Errorf("= %d Location %q, want 400 page containing %q; body:\n%.300s", resp.StatusCode, resp.Header.Get("Location"), tt.want, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want an HTML page", ct)
			}
		})
	}
}

func TestErrorPageSpeaksEnglishWhenAsked(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/authorize?client_id=nope", nil)
	req.Header.Set("Accept-Language", "en-US,en;q=0.9,zh;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body := page(t, resp); !strings.Contains(body, "Unknown application") || !strings.Contains(body, `lang="en"`) {
		t.Errorf("English page expected; got:\n%.300s", body)
	}
}

// Errors redirected to the (verified) client with state and iss.
func TestAuthorizeErrorRedirects(t *testing.T) {
	_, challenge := pkce()
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"OP-03/BAD-16 response_type missing", []string{"response_type", ""}, "invalid_request"},
		{"BAD-17 response_type token", []string{"response_type", "token"}, "unsupported_response_type"},
		{"BAD-17 response_type id_token token", []string{"response_type", "id_token token"}, "unsupported_response_type"},
		{"RFC-26 response_mode fragment", []string{"response_mode", "fragment"}, "invalid_request"},
		{"OP-39 response_mode form_post is not offered", []string{"response_mode", "form_post"}, "invalid_request"},
		{"BAD-18 prompt none login", []string{"prompt", "none login"}, "invalid_request"},
		{"unknown prompt", []string{"prompt", "whatever"}, "invalid_request"},
		{"BAD-22 max_age -1", []string{"max_age", "-1"}, "invalid_request"},
		{"BAD-22 max_age abc", []string{"max_age", "abc"}, "invalid_request"},
		{"BAD-23/RFC-10 plain PKCE", []string{"code_challenge", challenge, "code_challenge_method", "plain"}, "invalid_request"},
		{"PKCE method defaults to plain", []string{"code_challenge", challenge}, "invalid_request"},
		{"BAD-24 challenge of 10 chars", []string{"code_challenge", "abcdefghij", "code_challenge_method", "S256"}, "invalid_request"},
		{"BAD-24 challenge of 200 chars", []string{"code_challenge", strings.Repeat("a", 200), "code_challenge_method", "S256"}, "invalid_request"},
		{"method without challenge", []string{"code_challenge_method", "S256"}, "invalid_request"},
		{"BAD-26 request object", []string{"request", "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"},
		{"BAD-27 request_uri", []string{"request_uri", "https://evil.example/r"}, "request_uri_not_supported"},
		{"BAD-29 no openid scope", []string{"scope", "profile"}, "invalid_scope"},
		{"BAD-28 huge state", []string{"state", strings.Repeat("s", 5000)}, "invalid_request"},
		{"BAD-28 too many scopes", []string{"scope", "openid" + strings.Repeat(" x", 100)}, "invalid_scope"},
		{"bad id_token_hint", []string{"id_token_hint", "not.a.jwt"}, "login_required"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := authParams(tt.extra...)
			q := e.redirectParams(e.authorize(e.browser(), v), appRedirect)
			if q.Get("error") != tt.want || q.Get("code") != "" {
				t.Errorf("redirect query = %v, want error=%s and no code", q, tt.want)
			}
			if q.Get("iss") != e.issuer {
				t.Errorf("iss = %q, want %q (RFC-17)", q.Get("iss"), e.issuer)
			}
			if want := v.Get("state"); len(want) < 100 && q.Get("state") != want {
				t.Errorf("state = %q, want %q", q.Get("state"), want)
			}
		})
	}
	if e.logins.Load() != 0 {
		t.Errorf("the login ran %d times for invalid requests", e.logins.Load())
	}
}

func TestRFC01_RepeatedParameterRedirectsError(t *testing.T) {
	e := newEnv(t)
	v := authParams()
	v.Add("scope", "openid email")
	q := e.redirectParams(e.authorize(e.browser(), v), appRedirect)
	if q.Get("error") != "invalid_request" {
		t.Errorf("repeated scope: %v, want invalid_request", q)
	}
}

func TestOP29_RegisteredQueryIsPreserved(t *testing.T) {
	e := newEnv(t)
	v := authParams("client_id", otherID, "redirect_uri", otherRedir)
	resp := e.authorize(e.browser(), v)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, otherRedir+"&") {
		t.Fatalf("Location = %q, want the registered URI %q followed by the response", loc, otherRedir)
	}
	q := e.redirectParams(resp, otherRedir)
	if q.Get("tenant") != "1" || q.Get("code") == "" {
		t.Errorf("redirect query = %v, want tenant=1 kept and a code", q)
	}
}

func TestBR02_LoginFromAnotherBrowser(t *testing.T) {
	e := newEnv(t)
	// The victim's browser starts a request; stop before the login.
	victim := e.browser()
	victim.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := e.authorize(victim, authParams())
	loginURL := resp.Header.Get("Location")
	if !strings.Contains(loginURL, "/login?authRequestID=") {
		t.Fatalf("authorize redirected to %q, want /login", loginURL)
	}
	attacker := e.browser()
	r2, err := attacker.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	if r2.StatusCode != http.StatusForbidden || !strings.Contains(page(t, r2), "同一个浏览器") {
		t.Errorf("login URL opened in another browser = %d, want 403 page", r2.StatusCode)
	}
	if e.logins.Load() != 0 {
		t.Error("the login ran for a foreign browser")
	}
}

func TestBAD70_CompletedOrUnknownRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	loginURL := e.authorize(b, authParams()).Header.Get("Location")
	first, err := b.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	for _, u := range []string{loginURL, e.issuer + "/login?authRequestID=unknown"} {
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body := page(t, resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "登录链接已失效") {
			t.Errorf("GET %s = %d, want 400 'start again' page", u, resp.StatusCode)
		}
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	e := newEnv(t)
	newCode := func() string { return e.code(e.browser(), authParams()) }

	t.Run("RFC-03/BAD-31 wrong secret", func(t *testing.T) {
		code := newCode()
		tr := e.token(appID, "wrong-secret", "basic", codeForm(code, appRedirect))
		wantOAuthError(t, tr, http.StatusUnauthorized, "invalid_client")
		if got := tr.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
			t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
		}
		// The code is burned: the right secret is too late.
		wantOAuthError(t, e.token(appID, appSecret, "basic", codeForm(code, appRedirect)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("unknown client", func(t *testing.T) {
		wantOAuthError(t, e.token("nope", "x", "basic", codeForm(newCode(), appRedirect)), http.StatusUnauthorized, "invalid_client")
	})
	t.Run("BAD-32 other client's credentials", func(t *testing.T) {
		wantOAuthError(t, e.token(otherID, otherSecret, "basic", codeForm(newCode(), appRedirect)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("RFC-05/BAD-33 redirect_uri differs", func(t *testing.T) {
		wantOAuthError(t, e.token(appID, appSecret, "basic", codeForm(newCode(), appRedirect+"2")), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("RFC-05/BAD-33 redirect_uri missing", func(t *testing.T) {
		tr := e.token(appID, appSecret, "basic", url.Values{"grant_type": {"authorization_code"}, "code": {newCode()}})
		if tr.status != http.StatusBadRequest || (tr.str("error") != "invalid_grant" && tr.str("error") != "invalid_request") {
			t.Errorf("= %d %v, want 400 invalid_grant or invalid_request", tr.status, tr.body)
		}
	})
	t.Run("garbage code", func(t *testing.T) {
		wantOAuthError(t, e.token(appID, appSecret, "basic", codeForm("garbage", appRedirect)), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("RFC-04/BAD-39 password grant", func(t *testing.T) {
		v := url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}
		wantOAuthError(t, e.token(appID, appSecret, "basic", v), http.StatusBadRequest, "unsupported_grant_type")
	})
	t.Run("RFC-04/BAD-39 client_credentials", func(t *testing.T) {
		tr := e.token(appID, appSecret, "basic", url.Values{"grant_type": {"client_credentials"}})
		if tr.status != http.StatusBadRequest || (tr.str("error") != "unauthorized_client" && tr.str("error") != "unsupported_grant_type") {
			t.Errorf("= %d %v, want 400 unauthorized_client or unsupported_grant_type", tr.status, tr.body)
		}
	})
	t.Run("BAD-39 token exchange", func(t *testing.T) {
		v := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {"x"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}
		tr := e.token(appID, appSecret, "basic", v)
		if tr.status != http.StatusBadRequest || tr.str("error") == "" {
			t.Errorf("= %d %v, want a 400 OAuth error", tr.status, tr.body)
		}
	})
	t.Run("refresh grant for a client without offline_access", func(t *testing.T) {
		tr := e.token(spaID, "", "none", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}})
		wantOAuthError(t, tr, http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("RFC-02/BAD-40 GET", func(t *testing.T) {
		resp, err := http.Get(e.issuer + "/oauth/token?grant_type=authorization_code")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /oauth/token = %d, want 405, 400 or 401", resp.StatusCode)
		}
	})
	t.Run("BAD-41 Basic and body secrets together", func(t *testing.T) {
		form := codeForm(newCode(), appRedirect, "client_id", appID, "client_secret", appSecret)
		wantOAuthError(t, e.token(appID, appSecret, "basic", form), http.StatusBadRequest, "invalid_request")
	})
}

func TestUserinfoErrors(t *testing.T) {
	e := newEnv(t)
	t.Run("RFC-21/BAD-46 no token", func(t *testing.T) {
		tr := e.userinfo("")
		if tr.status != http.StatusUnauthorized || !strings.HasPrefix(tr.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("= %d WWW-Authenticate %q, want 401 with a Bearer challenge", tr.status, tr.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("RFC-21/BAD-46 garbage token", func(t *testing.T) {
		tr := e.userinfo("garbage")
		if tr.status != http.StatusUnauthorized || !strings.Contains(tr.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("= %d WWW-Authenticate %q, want 401 with error=\"invalid_token\"", tr.status, tr.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("BAD-48 token in the query", func(t *testing.T) {
		code := e.code(e.browser(), authParams())
		at := e.token(appID, appSecret, "basic", codeForm(code, appRedirect)).str("access_token")
		resp, err := http.Get(e.issuer + "/userinfo?access_token=" + url.QueryEscape(at))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("= %d, want 400 or 401", resp.StatusCode)
		}
	})
	t.Run("OP-06 POST with bearer header", func(t *testing.T) {
		code := e.code(e.browser(), authParams())
		at := e.token(appID, appSecret, "basic", codeForm(code, appRedirect)).str("access_token")
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		if tr := e.do(req); tr.status != http.StatusOK || tr.str("sub") != userAlice {
			t.Errorf("POST /userinfo = %d %v, want 200 with sub", tr.status, tr.body)
		}
	})
	t.Run("expired access token", func(t *testing.T) {
		code := e.code(e.browser(), authParams())
		at := e.token(appID, appSecret, "basic", codeForm(code, appRedirect)).str("access_token")
		e.clock.advance(2 * defaultAccessTokenLifetime)
		if tr := e.userinfo(at); tr.status != http.StatusUnauthorized {
			t.Errorf("expired token: userinfo = %d, want 401", tr.status)
		}
	})
}

func TestRFC18_Revocation(t *testing.T) {
	e := newEnv(t)
	mint := func() tokenResponse {
		code := e.code(e.browser(), authParams("scope", "openid offline_access"))
		return e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	}
	post := func(path, clientID, secret string, v url.Values) tokenResponse {
		req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if clientID != "" {
			req.SetBasicAuth(clientID, secret)
		}
		return e.do(req)
	}
	revoke := func(clientID, secret, token, hint string) tokenResponse {
		v := url.Values{"token": {token}}
		if hint != "" {
			v.Set("token_type_hint", hint)
		}
		return post("/revoke", clientID, secret, v)
	}

	t.Run("own access token", func(t *testing.T) {
		tr := mint()
		if got := revoke(appID, appSecret, tr.str("access_token"), "access_token"); got.status != http.StatusOK {
			t.Fatalf("revoke = %d %v", got.status, got.body)
		}
		if got := e.userinfo(tr.str("access_token")); got.status != http.StatusUnauthorized {
			t.Errorf("revoked access token: userinfo = %d, want 401", got.status)
		}
	})
	t.Run("own refresh token ends the grant", func(t *testing.T) {
		tr := mint()
		if got := revoke(appID, appSecret, tr.str("refresh_token"), ""); got.status != http.StatusOK {
			t.Fatalf("revoke = %d %v", got.status, got.body)
		}
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}}
		wantOAuthError(t, e.token(appID, appSecret, "basic", v), http.StatusBadRequest, "invalid_grant")
		if got := e.userinfo(tr.str("access_token")); got.status != http.StatusUnauthorized {
			t.Errorf("access token after its refresh token was revoked: userinfo = %d, want 401", got.status)
		}
	})
	t.Run("BAD-49 another client's token is left alone", func(t *testing.T) {
		tr := mint()
		for _, tok := range []string{tr.str("access_token"), tr.str("refresh_token")} {
			if got := revoke(otherID, otherSecret, tok, ""); got.status != http.StatusOK {
				t.Errorf("revoke other client's token = %d, want 200", got.status)
			}
		}
		if got := e.userinfo(tr.str("access_token")); got.status != http.StatusOK {
			t.Errorf("access token after another client tried to revoke it: userinfo = %d, want 200", got.status)
		}
	})
	t.Run("BAD-49 unknown token", func(t *testing.T) {
		if got := revoke(appID, appSecret, "garbage", ""); got.status != http.StatusOK {
			t.Errorf("= %d, want 200", got.status)
		}
	})
	t.Run("RFC-19 unknown hint", func(t *testing.T) {
		if got := revoke(appID, appSecret, "garbage", "foo"); got.status >= 500 {
			t.Errorf("= %d, want no server error", got.status)
		}
	})
	t.Run("BAD-49 no client authentication", func(t *testing.T) {
		if got := revoke("", "", mint().str("access_token"), ""); got.status != http.StatusUnauthorized {
			t.Errorf("= %d, want 401", got.status)
		}
	})

	t.Run("RFC-20 introspection", func(t *testing.T) {
		tr := mint()
		at := tr.str("access_token")
		if got := post("/oauth/introspect", "", "", url.Values{"token": {at}}); got.status != http.StatusUnauthorized {
			t.Errorf("without client auth = %d, want 401", got.status)
		}
		own := post("/oauth/introspect", appID, appSecret, url.Values{"token": {at}})
		if own.status != http.StatusOK || own.body["active"] != true || own.str("sub") != userAlice || own.str("client_id") != appID {
			t.Errorf("own token = %d %v, want active with sub and client_id", own.status, own.body)
		}
		for name, got := range map[string]tokenResponse{
			"garbage":              post("/oauth/introspect", appID, appSecret, url.Values{"token": {"garbage"}}),
			"other client's token": post("/oauth/introspect", otherID, otherSecret, url.Values{"token": {at}}),
		} {
			if got.status != http.StatusOK || got.body["active"] != false || len(got.body) != 1 {
				t.Errorf("%s = %d %v, want exactly {\"active\":false}", name, got.status, got.body)
			}
		}
		revoke(appID, appSecret, at, "access_token")
		if got := post("/oauth/introspect", appID, appSecret, url.Values{"token": {at}}); got.body["active"] != false {
			t.Errorf("revoked token = %v, want inactive", got.body)
		}
	})
}

func TestOP27_Discovery(t *testing.T) {
	e := newEnv(t)
	get := func(host string, headers map[string]string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/openid-configuration", nil)
		if host != "" {
			req.Host = host
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := get("", nil)
	if d["issuer"] != e.issuer {
		t.Errorf("issuer = %v, want %q", d["issuer"], e.issuer)
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		if s, _ := d[k].(string); !strings.HasPrefix(s, e.issuer+"/") {
			t.Errorf("%s = %v, want a URL under the issuer", k, d[k])
		}
	}
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	checks := []struct {
		key  string
		want []string
	}{
		{"response_types_supported", []string{"code"}},
		{"response_modes_supported", []string{"query"}},
		{"code_challenge_methods_supported", []string{"S256"}},
		{"grant_types_supported", []string{"authorization_code", "refresh_token"}},
		{"subject_types_supported", []string{"public"}},
		{"id_token_signing_alg_values_supported", []string{"RS256", "ES256"}},
	}
	for _, c := range checks {
		if got := list(c.key); !slices.Equal(got, c.want) {
			t.Errorf("%s = %v, want exactly %v", c.key, got, c.want)
		}
	}
	if !slices.Contains(list("scopes_supported"), "openid") {
		t.Error("scopes_supported lacks openid")
	}
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Error("RFC-17: authorization_response_iss_parameter_supported is not true")
	}
	if d["request_parameter_supported"] != false {
		t.Errorf("request_parameter_supported = %v, want false", d["request_parameter_supported"])
	}
	for _, absent := range []string{"request_object_signing_alg_values_supported", "device_authorization_endpoint", "backchannel_logout_supported"} {
		if _, ok := d[absent]; ok {
			t.Errorf("%s is advertised but not implemented", absent)
		}
	}
	// RFC-23/BAD-55: headers never change the issuer.
	for name, got := range map[string]map[string]any{
		"Host":             get("evil.example", nil),
		"X-Forwarded-Host": get("", map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}),
		"Forwarded":        get("", map[string]string{"Forwarded": "host=evil.example;proto=https"}),
	} {
		if got["issuer"] != e.issuer || !strings.HasPrefix(got["token_endpoint"].(string), e.issuer) {
			t.Errorf("%s header changed the issuer to %v", name, got["issuer"])
		}
	}
}

func TestOP04_SEC03_JWKS(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("JWKS Cache-Control = %q, want a max-age", cc)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	algs := map[string]bool{}
	for _, k := range set.Keys {
		kid, _ := k["kid"].(string)
		if kid == "" || kids[kid] {
			t.Errorf("key without kid or with a duplicate kid: %v", k)
		}
		kids[kid] = true
		algs[k["alg"].(string)] = true
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %s publishes private member %q", kid, private)
			}
		}
	}
	// next and current per algorithm.
	if len(set.Keys) < 4 || !algs["RS256"] || !algs["ES256"] {
		t.Errorf("JWKS has %d keys with algs %v, want current and next for RS256 and ES256", len(set.Keys), algs)
	}
}

func TestRFC14_BAD78_SecurityHeaders(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/authorize?client_id=nope", "/end_session", "/logged_out", "/nowhere"} {
		resp, err := http.Get(e.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP = %q", path, csp)
		}
		for k, want := range map[string]string{
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
	}
	// HSTS: headers_test.go.
}

func TestRFC15_NoCORSOnAuthorize(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodOptions, e.issuer+"/authorize", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("Access-Control-Allow-Origin on /authorize = %q, want none", got)
	}
}

func TestBAD45_FailedClientAuthIsRateLimited(t *testing.T) {
	e := newEnv(t)
	code := func() url.Values { return codeForm("garbage", appRedirect) }
	for i := range maxAuthFailures {
		if tr := e.token(appID, "wrong", "basic", code()); tr.status != http.StatusUnauthorized {
			t.Fatalf("failure %d = %d, want 401", i, tr.status)
		}
	}
	tr := e.token(appID, "wrong", "basic", code())
	if tr.status != http.StatusTooManyRequests {
		t.Fatalf("after %d failures = %d %v, want 429", maxAuthFailures, tr.status, tr.body)
	}
	// Even the right secret waits: the limit is on the (address, client) pair.
	if tr := e.token(appID, appSecret, "basic", code()); tr.status != http.StatusTooManyRequests {
		t.Errorf("right secret while limited = %d, want 429", tr.status)
	}
	// Another client from the same address is not affected.
	if tr := e.token(otherID, otherSecret, "basic", codeForm("garbage", otherRedir)); tr.status != http.StatusBadRequest {
		t.Errorf("other client = %d %v, want its normal 400", tr.status, tr.body)
	}
	e.clock.advance(failureWindow)
	if tr := e.token(appID, appSecret, "basic", code()); tr.status != http.StatusBadRequest {
		t.Errorf("after the window = %d %v, want the normal 400 invalid_grant", tr.status, tr.body)
	}
}

func TestBAD77_HugeBody(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/oauth/token", strings.NewReader(strings.Repeat("a=b&", 3<<20)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("12 MB token request = %d, want 413", resp.StatusCode)
	}
}

func TestOP24_ClaimsParameterIsAccepted(t *testing.T) {
	e := newEnv(t)
	v := authParams("claims", `{"userinfo":{"name":{"essential":true}}}`)
	if code := e.code(e.browser(), v); code == "" {
		t.Error("no code for a request with a claims parameter")
	}
}

func TestRFC22_IDTokenHashesAndAZP(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	idt, tok := e.signIn(e.browser(), r, authParams())
	c := claimsOf(t, idt)
	if c["at_hash"] == nil || c["c_hash"] == nil {
		t.Errorf("ID token lacks at_hash or c_hash: %v", c)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash does not match the access token: %v", err)
	}
	if c["azp"] != nil && c["azp"] != appID {
		t.Errorf("azp = %v, want %q", c["azp"], appID)
	}
}

func TestOP31_OP40_RotationKeepsTokensVerifiable(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	_, before := e.signIn(e.browser(), r, authParams())
	kidsBefore := publishedKIDs(t, e)
	e.clock.advance(2 * time.Minute) // past the rotation guard of a freshly made key
	if err := e.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Minute) // past every replica's key cache
	kidsAfter := publishedKIDs(t, e)
	for kid := range kidsBefore {
		if !kidsAfter[kid] {
			t.Errorf("kid %s vanished from the JWKS at rotation", kid)
		}
	}
	if len(kidsAfter) <= len(kidsBefore) {
		t.Errorf("JWKS has %d keys after rotation, %d before: want a new next key", len(kidsAfter), len(kidsBefore))
	}
	// A fresh verifier (new JWKS fetch) still accepts the old token.
	fresh := e.rp(appID, appSecret, appRedirect)
	if _, err := fresh.verifier.Verify(t.Context(), before.Extra("id_token").(string)); err != nil {
		t.Errorf("ID token signed before rotation fails verification: %v", err)
	}
	after, _ := e.signIn(e.browser(), fresh, authParams())
	if after.Subject != userAlice {
		t.Errorf("sub after rotation = %q", after.Subject)
	}
}

func publishedKIDs(t *testing.T, e *env) map[string]bool {
	t.Helper()
	resp, err := http.Get(e.issuer + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		out[k.KID] = true
	}
	return out
}

func TestNoAuthenticatorSaysSignInIsUnavailable(t *testing.T) {
	e := newEnv(t)
	p, err := New(Config{Issuer: e.issuer, Clients: testClients(), Store: e.store, Keys: e.keys, Accounts: e.accounts,
		CryptoKey: testCrypto, CookieHashKey: testCookieHash[:], CookieBlockKey: testCookieBlock[:], Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler()
	e.handler.Store(&h)
	resp := e.authorize(e.browser(), authParams())
	if body := page(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "暂时无法登录") {
		t.Errorf("= %d, want 503 with the sign-in unavailable page; body:\n%.300s", resp.StatusCode, body)
	}
}

func TestClientCorpAllowlist(t *testing.T) {
	e := newEnv(t) // the stand-in signs people in through dingcorp1
	b := e.browser()
	e.code(b, authParams()) // an SSO session from dingcorp1

	// The session's corp is not admitted, so it is not reused: a fresh
	// sign-in runs, through dingcorp1 again, and is refused with a page.
	v := authParams("client_id", corp2ID, "redirect_uri", corp2Redirect)
	resp := e.authorize(b, v)
	if body := page(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "无权登录此应用") {
		t.Errorf("= %d, want 403 'may not sign in' page; body:\n%.300s", resp.StatusCode, body)
	}
	if e.logins.Load() != 2 {
		t.Errorf("authenticator asked %d times, want 2 (the dingcorp1 session must not satisfy a dingcorp2-only client)", e.logins.Load())
	}
}

func TestRFC01_RepeatedTokenParameter(t *testing.T) {
	e := newEnv(t)
	code := e.code(e.browser(), authParams())
	form := codeForm(code, appRedirect)
	form.Add("code", "another")
	wantOAuthError(t, e.token(appID, appSecret, "basic", form), http.StatusBadRequest, "invalid_request")
}
