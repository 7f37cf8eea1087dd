package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// testConsole is the console on a Memory store with an injected clock, and
// a way to mint sessions without a provider.
type testConsole struct {
	s     *Server
	h     http.Handler
	store *mapping.Memory
	now   time.Time
	admin mapping.Account
	staff mapping.Account
}

func newTestConsole(t *testing.T) *testConsole {
	t.Helper()
	tc := &testConsole{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	tc.store = mapping.NewMemory(mapping.Options{Now: func() time.Time { return tc.now }})
	m := mapping.Meta{Actor: "test"}
	var err error
	if tc.admin, err = tc.store.CreateAccount(t.Context(), m, mapping.Account{Username: "zhangsan", DisplayName: "张三", Groups: []string{"admins"}}); err != nil {
		t.Fatal(err)
	}
	if tc.staff, err = tc.store.CreateAccount(t.Context(), m, mapping.Account{Username: "lisi", DisplayName: "李四", Groups: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}
	tc.s, err = New(Config{
		Issuer: "https://sso.example.com", ClientID: "dingbridge-admin", ClientSecret: "secret",
		BaseURL: "https://sso.example.com/admin", Store: tc.store, AdminGroups: []string{"admins"},
		CookieHashKey: make([]byte, 32), CookieBlockKey: make([]byte, 32), Secure: true,
		IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 8 * time.Hour,
		Now: func() time.Time { return tc.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/admin", tc.s.Routes())
	tc.h = r
	return tc
}

// signIn starts a session for acct as the callback would, and returns its
// cookie.
func (tc *testConsole) signIn(t *testing.T, acct mapping.Account) (*http.Cookie, session) {
	t.Helper()
	sess, err := tc.s.startSession(t.Context(), acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := tc.s.cookies.writeSession(rec, sess); err != nil {
		t.Fatal(err)
	}
	cs := rec.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("cookies = %d, want 1", len(cs))
	}
	return cs[0], sess
}

func (tc *testConsole) do(t *testing.T, method, target string, ck *http.Cookie, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequestWithContext(t.Context(), method, "https://sso.example.com"+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequestWithContext(t.Context(), method, "https://sso.example.com"+target, nil)
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	tc.h.ServeHTTP(rec, req)
	return rec
}

func TestSessionCookieAttributes(t *testing.T) {
	tc := newTestConsole(t)
	ck, _ := tc.signIn(t, tc.admin)
	if ck.Name != "__Host-dingbridge-admin" || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.Domain != "" {
		t.Errorf("cookie = %+v, want __Host-dingbridge-admin, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", ck)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	tc := newTestConsole(t)
	ck, _ := tc.signIn(t, tc.admin)
	for _, target := range []string{"/admin/", "/admin/nowhere", "/admin/static/admin.css", "/admin/accounts"} {
		rec := tc.do(t, http.MethodGet, target, ck, nil, nil)
		h := rec.Header()
		if got := h.Get("Content-Security-Policy"); got != csp {
			t.Errorf("%s: CSP = %q, want %q", target, got, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := h.Get(k); got != want && !(k == "Cache-Control" && strings.HasSuffix(target, ".css")) {
				t.Errorf("%s: %s = %q, want %q", target, k, got, want)
			}
		}
	}
}

func TestCSRF(t *testing.T) {
	tc := newTestConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	tests := []struct {
		name string
		csrf string
		hdr  map[string]string
		want int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"other token", randomToken(), nil, http.StatusForbidden},
		{"cross-origin", sess.CSRF, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", sess.CSRF, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same origin", sess.CSRF, map[string]string{"Origin": "https://sso.example.com", "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			username := "new" + string(rune('a'+i))
			form := url.Values{"username": {username}}
			if tt.csrf != "" {
				form.Set("csrf", tt.csrf)
			}
			rec := tc.do(t, http.MethodPost, "/admin/accounts", ck, form, tt.hdr)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d:\n%s", rec.Code, tt.want, rec.Body)
			}
			_, err := tc.store.AccountByUsername(t.Context(), username)
			if created := err == nil; created != (tt.want == http.StatusSeeOther) {
				t.Errorf("created = %v, want %v", created, tt.want == http.StatusSeeOther)
			}
		})
	}
	// A token of another session does not work in this one.
	_, other := tc.signIn(t, tc.admin)
	if rec := tc.do(t, http.MethodPost, "/admin/accounts", ck, url.Values{"username": {"x1"}, "csrf": {other.CSRF}}, nil); rec.Code != http.StatusForbidden {
		t.Errorf("another session's token: status = %d, want 403", rec.Code)
	}
	// No state change on GET.
	if rec := tc.do(t, http.MethodGet, "/admin/accounts?username=x2&csrf="+sess.CSRF, ck, nil, nil); rec.Code != http.StatusOK {
		t.Errorf("GET accounts: %d", rec.Code)
	}
	if _, err := tc.store.AccountByUsername(t.Context(), "x2"); err == nil {
		t.Errorf("a GET created an account")
	}
}

func TestRenderingEscapesData(t *testing.T) {
	tc := newTestConsole(t)
	const evil = `<img src=x onerror=alert(1)>`
	m := mapping.Meta{Actor: "test"}
	a, err := tc.store.CreateAccount(t.Context(), m, mapping.Account{Username: "evil", DisplayName: evil, Groups: []string{evil}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.store.CreateBinding(t.Context(), m, mapping.Binding{
		Identity:  mapping.Identity{CorpID: "dingcorp1", UserID: "evil1", Name: evil, JobNumber: evil},
		AccountID: a.ID, Source: mapping.SourceAdmin,
	}); err != nil {
		t.Fatal(err)
	}
	ck, _ := tc.signIn(t, tc.admin)
	for _, target := range []string{"/admin/accounts/" + a.ID, "/admin/accounts?q=evil", "/admin/identities?q=evil1", "/admin/accounts?q=" + url.QueryEscape(evil)} {
		rec := tc.do(t, http.MethodGet, target, ck, nil, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", target, rec.Code)
		}
		if strings.Contains(body, "<img") {
			t.Errorf("%s: the nick is rendered as HTML", target)
		}
		if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s: the nick is not shown as text", target)
		}
	}
}

func TestSessionExpiry(t *testing.T) {
	tc := newTestConsole(t)
	tests := []struct {
		name    string
		steps   []time.Duration // requests after these pauses, all but the last allowed
		wantOut bool
	}{
		{"active within idle", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, false},
		{"idle too long", []time.Duration{31 * time.Minute}, true},
		{"absolute timeout despite activity", func() []time.Duration {
			var d []time.Duration
			for range 17 {
				d = append(d, 29*time.Minute)
			}
			return d // 17 × 29m > 8h
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc.now = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			ck, _ := tc.signIn(t, tc.admin)
			var rec *httptest.ResponseRecorder
			for _, d := range tt.steps {
				tc.now = tc.now.Add(d)
				rec = tc.do(t, http.MethodGet, "/admin/", ck, nil, nil)
				if cs := rec.Result().Cookies(); len(cs) == 1 && cs[0].MaxAge >= 0 {
					ck = cs[0] // the renewed cookie (idle timeout restarts)
				}
			}
			out := rec.Code == http.StatusFound && rec.Header().Get("Location") == "/admin/login"
			if out != tt.wantOut {
				t.Errorf("signed out = %v (status %d), want %v", out, rec.Code, tt.wantOut)
			}
		})
	}
}

func TestSignOutRevokesSession(t *testing.T) {
	tc := newTestConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	if rec := tc.do(t, http.MethodPost, "/admin/logout", ck, url.Values{}, nil); rec.Code != http.StatusForbidden {
		t.Errorf("sign-out without token: %d, want 403", rec.Code)
	}
	if rec := tc.do(t, http.MethodPost, "/admin/logout", ck, url.Values{"csrf": {sess.CSRF}}, nil); rec.Code != http.StatusOK {
		t.Fatalf("sign out: %d", rec.Code)
	}
	if rec := tc.do(t, http.MethodGet, "/admin/", ck, nil, nil); rec.Code != http.StatusFound {
		t.Errorf("replayed cookie after sign-out: %d, want 302 to sign-in", rec.Code)
	}
}

func TestNonAdminSessionIsDeniedAndAudited(t *testing.T) {
	tc := newTestConsole(t)
	ck, _ := tc.signIn(t, tc.staff) // e.g. removed from the admins group after signing in
	rec := tc.do(t, http.MethodGet, "/admin/accounts", ck, nil, map[string]string{"Accept-Language": "en"})
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "No access to the admin console") {
		t.Fatalf("status = %d, want 403 with the English no-access page:\n%s", rec.Code, rec.Body)
	}
	es, err := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{Actor: tc.staff.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Action != "admin.denied" || !es[0].ClientIP.IsValid() || es[0].RequestID == "" {
		t.Errorf("audit = %+v, want one admin.denied row with IP and request id", es)
	}
	// Disabling an administrator ends their console access at once.
	if _, err := tc.store.SetAccountDisabled(t.Context(), mapping.Meta{Actor: "test"}, tc.admin.ID, true); err != nil {
		t.Fatal(err)
	}
	ck, _ = tc.signIn(t, tc.admin)
	if rec := tc.do(t, http.MethodGet, "/admin/", ck, nil, nil); rec.Code != http.StatusForbidden {
		t.Errorf("disabled admin: %d, want 403", rec.Code)
	}
}

func TestLanguage(t *testing.T) {
	tc := newTestConsole(t)
	ck, _ := tc.signIn(t, tc.admin)
	for _, tt := range []struct{ accept, want string }{
		{"", "概览"}, {"zh-CN,zh;q=0.9", "概览"}, {"en-US,en;q=0.9", "Overview"},
	} {
		rec := tc.do(t, http.MethodGet, "/admin/", ck, nil, map[string]string{"Accept-Language": tt.accept})
		if !strings.Contains(rec.Body.String(), "<h1>"+tt.want+"</h1>") {
			t.Errorf("Accept-Language %q: no <h1>%s</h1>", tt.accept, tt.want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{Issuer: "ftp://x", BaseURL: "nope"})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"issuer", "base URL", "client id", "store", "admin", "hash key", "block key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
