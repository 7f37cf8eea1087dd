package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// startReplicas runs the demo on Postgres (replica A, at the issuer's
// address) and a second bridge built the same way on the same database and
// configuration (replica B, at its own address), as two replicas behind a
// load balancer would be.
func startReplicas(t *testing.T) (w *signinWorld, replicaB string) {
	t.Helper()
	dbURL := pgtest.NewDatabaseURL(t)
	w = startSigninDemoOn(t, dbURL)
	dw, logger := w.demoWorld, w.logger
	if _, ok := dw.accounts.(*mapping.Postgres); !ok {
		t.Fatalf("the demo's accounts are in %T, want Postgres", dw.accounts)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildBridge(dw.ctx, dw.cfg, idp.NewPostgresStore(pool), mapping.NewPostgres(pool, mapping.Options{}), nil, logger)
	if err != nil {
		t.Fatalf("replica B: %v", err)
	}
	srv := httptest.NewServer(b.router)
	t.Cleanup(func() { srv.Close(); pool.Close() }) // runs before the demo's cleanup
	return w, srv.URL
}

// consoleAt GETs the console's overview at base (a replica) with the
// console cookies the client holds for the issuer, following no redirect.
func consoleAt(t *testing.T, w *signinWorld, c *http.Client, base string) (int, string) {
	t.Helper()
	issuer, _ := url.Parse(w.bridgeURL)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/admin/", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(issuer) {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusFound {
		return resp.StatusCode, resp.Header.Get("Location")
	}
	return resp.StatusCode, string(b)
}

// TestAdminSessionsAcrossReplicas: two bridges on one Postgres. A console
// session started on A works on B; signed out on A, it is refused on B; an
// administrator who loses the role on one replica loses every session on
// all of them, also once the role is back (ADM-04, REL-04).
func TestAdminSessionsAcrossReplicas(t *testing.T) {
	w, b := startReplicas(t)
	a := w.bridgeURL

	c := w.adminSignIn(t, "zhangsan") // through replica A
	if status, body := consoleAt(t, w, c, b); status != http.StatusOK || !strings.Contains(body, `id="count-accounts"`) {
		t.Fatalf("A's session on B: %d, want the overview:\n%.400s", status, body)
	}
	_, _, page := fetch(t, c, http.MethodGet, a+"/admin/")
	captured := jarClient(t) // a copy of the signed-in cookies, made before sign-out
	issuer, _ := url.Parse(a)
	captured.Jar.SetCookies(issuer, c.Jar.Cookies(issuer))
	if status, _, body := post(t, c, a+"/admin/logout", url.Values{"csrf": {csrfFrom(t, page)}}, ""); status != http.StatusOK {
		t.Fatalf("sign out on A: %d:\n%s", status, body)
	}
	for name, base := range map[string]string{"A": a, "B": b} {
		if status, loc := consoleAt(t, w, captured, base); status != http.StatusFound || loc != "/admin/login" {
			t.Errorf("signed-out cookie on %s: %d %q, want a redirect to /admin/login", name, status, loc)
		}
	}

	// A new sign-in is a new session; the old copy stays refused.
	c = w.adminSignIn(t, "zhangsan")
	if status, _ := consoleAt(t, w, c, b); status != http.StatusOK {
		t.Fatalf("new session on B: %d, want 200", status)
	}
	if status, _ := consoleAt(t, w, captured, b); status == http.StatusOK {
		t.Errorf("the cookie captured before the new sign-in works on B")
	}

	// 张三 leaves the admins group; B sees it first.
	acct, err := w.accounts.AccountByUsername(t.Context(), "zhangsan")
	if err != nil {
		t.Fatal(err)
	}
	groups := acct.Groups
	acct.Groups = []string{"staff"}
	if acct, err = w.accounts.UpdateAccount(t.Context(), mapping.Meta{Actor: "test"}, acct); err != nil {
		t.Fatal(err)
	}
	if status, _ := consoleAt(t, w, c, b); status != http.StatusForbidden {
		t.Errorf("after leaving the group, on B: %d, want 403", status)
	}
	acct.Groups = groups
	if _, err := w.accounts.UpdateAccount(t.Context(), mapping.Meta{Actor: "test"}, acct); err != nil {
		t.Fatal(err)
	}
	if status, loc := consoleAt(t, w, c, a); status != http.StatusFound || loc != "/admin/login" {
		t.Errorf("session from before the role change, back in the group, on A: %d %q, want a redirect to sign in", status, loc)
	}
}

// TestAdminDeniedSignInsLimited: 李四, not an administrator, is refused
// five times with 403 and audit rows, then with a 429 page that says when
// to try again, without more audit rows (SEC-06).
func TestAdminDeniedSignInsLimited(t *testing.T) {
	w := startSigninDemo(t)
	for i := range 5 {
		if status, u, body := w.signInThrough(t, jarClient(t), w.bridgeURL+"/admin/", userLisi); status != http.StatusForbidden {
			t.Fatalf("attempt %d at %s: %d, want 403:\n%s", i+1, u, status, body)
		}
	}
	c := jarClient(t)
	status, u, body := w.signInThrough(t, c, w.bridgeURL+"/admin/", userLisi)
	if status != http.StatusTooManyRequests || u.Path != "/admin/callback" || !strings.Contains(body, "分钟后重试") {
		t.Fatalf("attempt 6 at %s: %d, want 429 with the Chinese page:\n%s", u, status, body)
	}
	if n := len(w.audit(t, "admin.denied")); n != 5 {
		t.Errorf("admin.denied rows = %d, want 5", n)
	}
	if n := len(w.audit(t, "admin.rate_limited")); n != 1 {
		t.Errorf("admin.rate_limited rows = %d, want 1", n)
	}
	// 张三, at the same address, still gets in.
	w.adminSignIn(t, "zhangsan")
}
