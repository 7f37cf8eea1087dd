package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// request sends one request to h from the client address ip.
func request(t *testing.T, h http.Handler, method, target, ip string, ck *http.Cookie, form url.Values, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequestWithContext(t.Context(), method, "https://sso.example.com"+target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequestWithContext(t.Context(), method, "https://sso.example.com"+target, nil)
	}
	req.RemoteAddr = ip + ":40000"
	if strings.Contains(ip, ":") {
		req.RemoteAddr = "[" + ip + "]:40000"
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// mount serves s at /admin, as cmd does.
func mount(s *Server) http.Handler {
	r := chi.NewRouter()
	r.Mount("/admin", s.Routes())
	return r
}

// signedIn reports whether a GET of the overview with ck shows it.
func signedIn(t *testing.T, h http.Handler, ck *http.Cookie) bool {
	t.Helper()
	rec := request(t, h, http.MethodGet, "/admin/", "192.0.2.1", ck, nil, nil)
	switch {
	case rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), `id="admin-name"`):
		return true
	case rec.Code == http.StatusFound && rec.Header().Get("Location") == "/admin/login":
		return false
	}
	t.Fatalf("overview: status %d, want 200 or a redirect to sign-in:\n%s", rec.Code, rec.Body)
	return false
}

// TestSessionsAcrossConsoles: two consoles (replicas) on one Postgres share
// sessions: a cookie from A works on B, and once signed out on A it is
// refused on B (ADM-04).
func TestSessionsAcrossConsoles(t *testing.T) {
	pool := pgtest.NewDatabase(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	accounts := mapping.NewPostgres(pool, mapping.Options{Now: clock})
	admin, err := accounts.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: "zhangsan", Groups: []string{"admins"}})
	if err != nil {
		t.Fatal(err)
	}
	replica := func() (*Server, http.Handler) {
		s, err := New(Config{
			Issuer: "https://sso.example.com", ClientID: "dingbridge-admin", ClientSecret: "secret",
			BaseURL: "https://sso.example.com/admin", Store: accounts, AdminGroups: []string{"admins"},
			CookieHashKey: make([]byte, 32), CookieBlockKey: make([]byte, 32), Secure: true,
			Now: clock, Sessions: NewPostgresSessions(pool),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, mount(s)
	}
	a, ha := replica()
	_, hb := replica()

	ck, sess := signInTo(t, a, admin)

	if !signedIn(t, hb, ck) {
		t.Fatal("A's session is not valid on B")
	}
	now = now.Add(10 * time.Minute)
	if rec := request(t, ha, http.MethodPost, "/admin/logout", "192.0.2.1", ck, url.Values{"csrf": {sess.CSRF}}, nil); rec.Code != http.StatusOK {
		t.Fatalf("sign out on A: %d", rec.Code)
	}
	if signedIn(t, hb, ck) {
		t.Error("B still accepts a cookie signed out on A")
	}
	if signedIn(t, ha, ck) {
		t.Error("A still accepts its signed-out cookie")
	}
	es, err := accounts.AuditEvents(t.Context(), mapping.AuditQuery{Actor: admin.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Action != "admin.signout" || !es[0].ClientIP.IsValid() || es[0].RequestID == "" {
		t.Errorf("audit = %+v, want one admin.signout with IP and request id", es)
	}
}

// TestRoleChangeRevokesSessions: an administrator who loses the role is
// refused at once, and every session of theirs ends: getting the role back
// takes a new sign-in (ADM-04).
func TestRoleChangeRevokesSessions(t *testing.T) {
	tests := []struct {
		name          string
		demote, again func(t *testing.T, tc *testConsole)
	}{
		{"left the admin group", func(t *testing.T, tc *testConsole) { setGroups(t, tc, "staff") },
			func(t *testing.T, tc *testConsole) { setGroups(t, tc, "admins") }},
		{"disabled", func(t *testing.T, tc *testConsole) { setDisabled(t, tc, true) },
			func(t *testing.T, tc *testConsole) { setDisabled(t, tc, false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := newTestConsole(t)
			ck1, _ := tc.signIn(t, tc.admin)
			ck2, _ := tc.signIn(t, tc.admin) // another device
			other, _ := tc.signIn(t, mustCreateAdmin(t, tc, "wangwu"))
			if !signedIn(t, tc.h, ck1) || !signedIn(t, tc.h, ck2) {
				t.Fatal("fresh sessions refused")
			}
			tt.demote(t, tc)
			if rec := request(t, tc.h, http.MethodGet, "/admin/", "192.0.2.1", ck1, nil, nil); rec.Code != http.StatusForbidden {
				t.Fatalf("after losing the role: %d, want 403", rec.Code)
			}
			tt.again(t, tc)
			if signedIn(t, tc.h, ck1) || signedIn(t, tc.h, ck2) {
				t.Error("a session from before the role change works again after it came back")
			}
			if !signedIn(t, tc.h, other) {
				t.Error("another administrator's session was ended too")
			}
			fresh, _ := tc.signIn(t, tc.admin)
			if !signedIn(t, tc.h, fresh) {
				t.Error("a new sign-in after the role came back is refused")
			}
		})
	}
}

func mustCreateAdmin(t *testing.T, tc *testConsole, username string) mapping.Account {
	t.Helper()
	a, err := tc.store.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: username, Groups: []string{"admins"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func setGroups(t *testing.T, tc *testConsole, groups ...string) {
	t.Helper()
	a, err := tc.store.AccountByID(t.Context(), tc.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.Groups = groups
	if _, err := tc.store.UpdateAccount(t.Context(), mapping.Meta{Actor: "test"}, a); err != nil {
		t.Fatal(err)
	}
}

func setDisabled(t *testing.T, tc *testConsole, disabled bool) {
	t.Helper()
	if _, err := tc.store.SetAccountDisabled(t.Context(), mapping.Meta{Actor: "test"}, tc.admin.ID, disabled); err != nil {
		t.Fatal(err)
	}
}

// countingSessions counts the writes that a request makes to the store.
type countingSessions struct {
	SessionStore
	touches int
}

func (c *countingSessions) Touch(ctx context.Context, h [32]byte, at time.Time) error {
	c.touches++
	return c.SessionStore.Touch(ctx, h, at)
}

// TestIdleTimeoutServerSide: the idle timeout is kept by the server, not
// the cookie (which carries no time and is never rewritten), and use is
// written at most once a minute.
func TestIdleTimeoutServerSide(t *testing.T) {
	tc := newTestConsole(t)
	store := &countingSessions{SessionStore: NewMemorySessions()}
	tc.s.sessions = store
	start := tc.now
	ck, _ := tc.signIn(t, tc.admin)
	steps := []struct {
		after   time.Duration // since sign-in
		ok      bool
		touches int // so far
	}{
		{10 * time.Second, true, 0},
		{59 * time.Second, true, 0},
		{61 * time.Second, true, 1},
		{90 * time.Second, true, 1}, // 29 s after the last write
		{2*time.Minute + 2*time.Second, true, 2},
		{31 * time.Minute, true, 3}, // 29 min idle: still in
		{61*time.Minute + time.Second, false, 3},
	}
	for _, st := range steps {
		tc.now = start.Add(st.after)
		rec := request(t, tc.h, http.MethodGet, "/admin/", "192.0.2.1", ck, nil, nil)
		if ok := rec.Code == http.StatusOK; ok != st.ok {
			t.Errorf("at +%v: status %d, want signed in = %v", st.after, rec.Code, st.ok)
		}
		if cs := rec.Result().Cookies(); len(cs) != 0 {
			t.Errorf("at +%v: response sets cookies %v, want none", st.after, cs)
		}
		if store.touches != st.touches {
			t.Errorf("at +%v: %d writes of last use, want %d", st.after, store.touches, st.touches)
		}
	}
}

// failingSessions fails the methods whose Fn is set.
type failingSessions struct {
	SessionStore
	SessionFn func() error
	RevokeFn  func() error
}

func (f *failingSessions) Session(ctx context.Context, h [32]byte) (SessionRecord, error) {
	if f.SessionFn != nil {
		return SessionRecord{}, f.SessionFn()
	}
	return f.SessionStore.Session(ctx, h)
}

func (f *failingSessions) Revoke(ctx context.Context, h [32]byte, at time.Time) error {
	if f.RevokeFn != nil {
		return f.RevokeFn()
	}
	return f.SessionStore.Revoke(ctx, h, at)
}

// TestSessionStoreDown: when the store cannot answer, the console refuses
// (fails closed), and a sign-out that could not be recorded says so and
// keeps the cookie, so that the person can sign out again.
func TestSessionStoreDown(t *testing.T) {
	tc := newTestConsole(t)
	store := &failingSessions{SessionStore: NewMemorySessions()}
	tc.s.sessions = store
	ck, sess := tc.signIn(t, tc.admin)
	down := func() error { return errors.New("connection refused") }

	store.SessionFn = down
	if rec := request(t, tc.h, http.MethodGet, "/admin/", "192.0.2.1", ck, nil, nil); rec.Code != http.StatusInternalServerError {
		t.Errorf("overview with the store down: %d, want 500", rec.Code)
	}
	store.SessionFn = nil

	store.RevokeFn = down
	rec := request(t, tc.h, http.MethodPost, "/admin/logout", "192.0.2.1", ck, url.Values{"csrf": {sess.CSRF}}, map[string]string{"Accept-Language": "en"})
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "you are still signed in") {
		t.Errorf("sign-out with the store down: %d, want 503 saying so:\n%s", rec.Code, rec.Body)
	}
	if cs := rec.Result().Cookies(); len(cs) != 0 {
		t.Errorf("sign-out that failed sets cookies %v, want the cookie kept", cs)
	}
	store.RevokeFn = nil
	if rec := request(t, tc.h, http.MethodPost, "/admin/logout", "192.0.2.1", ck, url.Values{"csrf": {sess.CSRF}}, nil); rec.Code != http.StatusOK {
		t.Fatalf("second sign-out: %d", rec.Code)
	}
	if signedIn(t, tc.h, ck) {
		t.Error("signed in after the second sign-out")
	}
}

// TestSignInRateLimits: starting and completing sign-ins is bounded per
// client address, with a 429 page in the browser's language that says when
// to try again, and Retry-After.
func TestSignInRateLimits(t *testing.T) {
	for _, tt := range []struct {
		path string
		max  int
	}{{"/admin/login", maxSignInStarts}, {"/admin/callback?state=x&code=y", maxSignInCompletions}} {
		t.Run(tt.path, func(t *testing.T) {
			tc := newTestConsole(t)
			tc.s.cfg.HTTPClient = offline() // discovery fails at once
			for i := range tt.max {
				if rec := request(t, tc.h, http.MethodGet, tt.path, "192.0.2.1", nil, nil, nil); rec.Code == http.StatusTooManyRequests {
					t.Fatalf("request %d refused with 429; the limit is %d", i+1, tt.max)
				}
			}
			tc.now = tc.now.Add(time.Minute)
			rec := request(t, tc.h, http.MethodGet, tt.path, "192.0.2.1", nil, nil, map[string]string{"Accept-Language": "en"})
			if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "540" ||
				!strings.Contains(rec.Body.String(), "Please try again in 9 min.") {
				t.Fatalf("request %d: %d, Retry-After %q, want 429, 540 and the English page:\n%s",
					tt.max+1, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}
			rec = request(t, tc.h, http.MethodGet, tt.path, "192.0.2.1", nil, nil, nil)
			if rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "请在 9 分钟后重试") {
				t.Errorf("Chinese 429 page: %d:\n%s", rec.Code, rec.Body)
			}
			if rec := request(t, tc.h, http.MethodGet, tt.path, "198.51.100.7", nil, nil, nil); rec.Code == http.StatusTooManyRequests {
				t.Errorf("another address is refused too")
			}
			tc.now = tc.now.Add(9 * time.Minute)
			if rec := request(t, tc.h, http.MethodGet, tt.path, "192.0.2.1", nil, nil, nil); rec.Code == http.StatusTooManyRequests {
				t.Errorf("still refused after the window")
			}
		})
	}
}

// offline is an HTTP client that reaches nothing.
func offline() *http.Client {
	return &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("offline")
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestDeniedSignInLimits: sign-ins of people who are not administrators are
// bounded per client address and per account; past the limit they get a
// 429 without another audit row, and reaching it is audited once. An
// administrator at the same address is not locked out (SEC-06, BAD-45).
func TestDeniedSignInLimits(t *testing.T) {
	tc := newTestConsole(t)
	other, err := tc.store.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: "zhaoliu", Groups: []string{"staff"}})
	if err != nil {
		t.Fatal(err)
	}
	finish := func(sub, ip string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://sso.example.com/admin/callback", nil)
		req.RemoteAddr = ip + ":40000"
		req.Header.Set("Accept-Language", "en")
		rec := httptest.NewRecorder()
		tc.s.finishSignIn(rec, req, sub)
		return rec
	}
	audit := func(action string) int {
		t.Helper()
		es, err := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{Limit: mapping.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range es {
			if e.Action == action {
				n++
			}
		}
		return n
	}

	const ip1, ip2, ip3 = "192.0.2.1", "198.51.100.7", "203.0.113.9"
	for i := range maxDenials {
		if rec := finish(tc.staff.ID, ip1); rec.Code != http.StatusForbidden {
			t.Fatalf("denial %d: %d, want 403", i+1, rec.Code)
		}
	}
	if n := audit("admin.denied"); n != maxDenials {
		t.Errorf("admin.denied rows = %d, want %d", n, maxDenials)
	}
	if n := audit("admin.rate_limited"); n != 1 {
		t.Errorf("admin.rate_limited rows = %d, want 1", n)
	}
	tc.now = tc.now.Add(5 * time.Minute)
	for _, tt := range []struct {
		name, sub, ip string
	}{
		{"same account, same address", tc.staff.ID, ip1},
		{"same account, another address", tc.staff.ID, ip2},
		{"another account, same address", other.ID, ip1},
	} {
		rec := finish(tt.sub, tt.ip)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "600" || !strings.Contains(rec.Body.String(), "try again in 10 min") {
			t.Errorf("%s: %d, Retry-After %q, want 429 and 600:\n%s", tt.name, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
	if n := audit("admin.denied"); n != maxDenials {
		t.Errorf("admin.denied rows after the limit = %d, want still %d", n, maxDenials)
	}
	if rec := finish(other.ID, ip3); rec.Code != http.StatusForbidden {
		t.Errorf("another account at another address: %d, want 403", rec.Code)
	}
	rec := finish(tc.admin.ID, ip1)
	if rec.Code != http.StatusOK || len(rec.Result().Cookies()) != 1 {
		t.Errorf("the administrator at the limited address: %d, want 200 with a session cookie", rec.Code)
	}
	tc.now = tc.now.Add(10 * time.Minute)
	if rec := finish(tc.staff.ID, ip1); rec.Code != http.StatusForbidden {
		t.Errorf("after the window: %d, want 403 again", rec.Code)
	}
}

// TestNewSignInEndsPresentedSession: a sign-in gets a new session id, and a
// session the browser still presents ends (ADM-04).
func TestNewSignInEndsPresentedSession(t *testing.T) {
	tc := newTestConsole(t)
	old, oldSess := tc.signIn(t, tc.admin)
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "https://sso.example.com/admin/callback", nil)
	req.AddCookie(old)
	rec := httptest.NewRecorder()
	tc.s.finishSignIn(rec, req, tc.admin.ID)
	cs := rec.Result().Cookies()
	if rec.Code != http.StatusOK || len(cs) != 1 {
		t.Fatalf("sign-in: %d with %d cookies, want 200 and one", rec.Code, len(cs))
	}
	var fresh session
	if err := tc.s.cookies.sc.Decode(cs[0].Name, cs[0].Value, &fresh); err != nil || fresh.ID == oldSess.ID || fresh.CSRF == oldSess.CSRF {
		t.Errorf("new session = %+v (%v), want a new id and CSRF token", fresh, err)
	}
	if signedIn(t, tc.h, old) {
		t.Error("the session presented at sign-in still works")
	}
	if !signedIn(t, tc.h, cs[0]) {
		t.Error("the new session does not work")
	}
}

// TestHSTS: every console response carries HSTS (without preload) when the
// console is served over https, and none on plain http (BAD-78).
func TestHSTS(t *testing.T) {
	tc := newTestConsole(t)
	tc.s.cfg.HTTPClient = offline()
	cfg := tc.s.cfg
	cfg.Secure = false
	plain, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain.cfg.HTTPClient = offline()
	for _, tt := range []struct {
		name string
		s    *Server
		want string
	}{{"https", tc.s, "max-age=31536000"}, {"http", plain, ""}} {
		t.Run(tt.name, func(t *testing.T) {
			h := mount(tt.s)
			ck, sess := signInTo(t, tt.s, tc.admin)
			for _, r := range []struct {
				method, target string
				form           url.Values
			}{
				{http.MethodGet, "/admin/", nil}, {http.MethodGet, "/admin/accounts", nil},
				{http.MethodGet, "/admin/nowhere", nil}, {http.MethodGet, "/admin/static/admin.css", nil},
				{http.MethodGet, "/admin/login", nil}, {http.MethodGet, "/admin/callback", nil},
				{http.MethodPost, "/admin/accounts", url.Values{}}, // no token: 403
				{http.MethodPost, "/admin/logout", url.Values{"csrf": {sess.CSRF}}},
				{http.MethodGet, "/admin/", nil}, // signed out: redirect
			} {
				rec := request(t, h, r.method, r.target, "192.0.2.1", ck, r.form, nil)
				if got := rec.Header().Get("Strict-Transport-Security"); got != tt.want {
					t.Errorf("%s %s (%d): Strict-Transport-Security = %q, want %q", r.method, r.target, rec.Code, got, tt.want)
				}
			}
		})
	}
}

// signInTo starts a session on s and returns its cookie.
func signInTo(t *testing.T, s *Server, acct mapping.Account) (*http.Cookie, session) {
	t.Helper()
	sess, err := s.startSession(t.Context(), acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	if err := s.cookies.writeSession(w, sess); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0], sess
}
