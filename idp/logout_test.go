package idp

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// signedIn returns a browser with an SSO session and the ID token it got.
func (e *env) signedIn() (*browser, string) {
	e.t.Helper()
	b := e.browser()
	code := e.code(b, authParams())
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	return b, tr.str("id_token")
}

// stillSignedIn reports whether prompt=none succeeds for this browser.
func (e *env) stillSignedIn(b *browser) bool {
	e.t.Helper()
	q := e.redirectParams(e.authorize(b, authParams("prompt", "none")), appRedirect)
	return q.Get("code") != ""
}

func (e *env) endSession(b *browser, v url.Values) *http.Response {
	e.t.Helper()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { b.CheckRedirect = e.browser().CheckRedirect }()
	resp, err := b.Get(e.issuer + "/end_session?" + v.Encode())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestOP32_DiscoveryHasEndSession(t *testing.T) {
	e := newEnv(t)
	r := e.rp(appID, appSecret, appRedirect)
	var d struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.provider.Claims(&d); err != nil || d.EndSession != e.issuer+"/end_session" {
		t.Errorf("end_session_endpoint = %q (%v)", d.EndSession, err)
	}
}

func TestOP33_LogoutWithHintRedirectsAndEndsSession(t *testing.T) {
	e := newEnv(t)
	b, idToken := e.signedIn()
	resp := e.endSession(b, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}, "state": {"bye-1"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != appLogout+"?state=bye-1" {
		t.Fatalf("end_session = %d Location %q, want 302 to %s?state=bye-1", resp.StatusCode, loc, appLogout)
	}
	if e.stillSignedIn(b) {
		t.Error("prompt=none still succeeds after logout, want login_required")
	}
}

func TestOP37_LogoutWithHintWithoutStateOrURI(t *testing.T) {
	e := newEnv(t)
	b, idToken := e.signedIn()
	resp := e.endSession(b, url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout}})
	if loc := resp.Header.Get("Location"); loc != appLogout {
		t.Errorf("no state: Location %q, want %q exactly", loc, appLogout)
	}
	b2, idToken2 := e.signedIn()
	resp = e.endSession(b2, url.Values{"id_token_hint": {idToken2}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page(t, resp), "您已退出登录") {
		t.Errorf("no post_logout_redirect_uri: %d, want the signed-out page", resp.StatusCode)
	}
	if e.stillSignedIn(b2) {
		t.Error("session survived logout")
	}
}

// Without proof from the client, nobody is redirected and nothing ends
// until the person confirms.
func TestOP34_OP35_OP36_LogoutWithoutProofAsks(t *testing.T) {
	e := newEnv(t)
	_, idToken := e.signedIn()
	forged := forgeUnsigned(t, idToken)
	tests := []struct {
		name string
		v    url.Values
	}{
		{"OP-34 unregistered URI", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}},
		{"OP-34 query added to the URI", url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appLogout + "?foo=bar"}}},
		{"OP-35 alg none hint", url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {appLogout}}},
		{"OP-35 hint signed by someone else", url.Values{"id_token_hint": {foreignToken(t, e.issuer)}, "post_logout_redirect_uri": {appLogout}}},
		{"OP-36 no hint", url.Values{"post_logout_redirect_uri": {appLogout}, "state": {"x"}}},
		{"OP-37 no parameters", url.Values{}},
		{"OP-37 only state", url.Values{"state": {"x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := e.signedIn()
			resp := e.endSession(b, tt.v)
			body := page(t, resp)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(body, "退出登录？") {
				t.Fatalf("= %d Location %q, want the confirmation page and no redirect", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !e.stillSignedIn(b) {
				t.Fatal("the session ended before the person confirmed")
			}
			// Confirming signs out and stays at the provider.
			token := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(body)
			if token == nil {
				t.Fatalf("confirmation page has no confirm token:\n%s", body)
			}
			b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp2, err := b.PostForm(e.issuer+"/end_session", url.Values{"confirm": {token[1]}})
			if err != nil {
				t.Fatal(err)
			}
			resp2.Body.Close()
			b.CheckRedirect = e.browser().CheckRedirect
			if loc := resp2.Header.Get("Location"); resp2.StatusCode != http.StatusSeeOther || loc != e.issuer+"/logged_out" {
				t.Errorf("confirm = %d Location %q, want 303 to /logged_out", resp2.StatusCode, loc)
			}
			if e.stillSignedIn(b) {
				t.Error("session survived a confirmed logout")
			}
		})
	}
}

func TestBAD51_LogoutConfirmationNeedsItsToken(t *testing.T) {
	e := newEnv(t)
	b, _ := e.signedIn()
	e.endSession(b, url.Values{}) // sets this browser's token
	resp, err := b.PostForm(e.issuer+"/end_session", url.Values{"confirm": {"forged"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a forged token = %d, want 403", resp.StatusCode)
	}
	if !e.stillSignedIn(b) {
		t.Error("a forged confirmation ended the session")
	}
}

func TestBAD54_LogoutClientIDMustMatchHint(t *testing.T) {
	e := newEnv(t)
	b, idToken := e.signedIn()
	resp := e.endSession(b, url.Values{"id_token_hint": {idToken}, "client_id": {otherID}, "post_logout_redirect_uri": {appLogout}})
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("= %d Location %q, want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// forgeUnsigned turns a token into an alg=none token with the same claims.
func forgeUnsigned(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	return "eyJhbGciOiJub25lIn0." + parts[1] + "."
}

// foreignToken is a token with plausible claims signed by a key the
// provider never published.
func foreignToken(t *testing.T, issuer string) string {
	t.Helper()
	km, err := NewKeyManager(KeyConfig{Store: NewMemoryStore(), KEK: providerKEK[:], Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	k, err := km.SigningKey(t.Context(), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Key()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"iss":"` + issuer + `","sub":"acct-alice","aud":["app"],"exp":9999999999,"iat":1}`))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := obj.CompactSerialize()
	return s
}

func TestRFC24_ExpiredHintIsAccepted(t *testing.T) {
	e := newEnv(t)
	b, _ := e.signedIn()
	k, err := e.keys.SigningKey(t.Context(), "RS256")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.Key()}, (&jose.SignerOptions{}).WithHeader("kid", k.ID()))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"iss":"` + e.issuer + `","sub":"acct-alice","aud":["app"],"azp":"app","exp":1000,"iat":900}`))
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := obj.CompactSerialize()
	resp := e.endSession(b, url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {appLogout}})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appLogout {
		t.Errorf("expired but valid hint = %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), appLogout)
	}
}
