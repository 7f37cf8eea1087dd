package main

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// hrefs returns the page's links that start with prefix, unescaped.
func hrefs(body, prefix string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if h := html.UnescapeString(m[1]); strings.HasPrefix(h, prefix) {
			out = append(out, h)
		}
	}
	return out
}

// signInThrough starts at start (a page that sends the browser to
// dingbridge's login) and signs in as userID of corp 1 through the
// simulator's auto-approve: corp picker, then the "cannot scan" link.
func (w *signinWorld) signInThrough(t *testing.T, c *http.Client, start, userID string) (int, *url.URL, string) {
	t.Helper()
	return w.signInThroughCorp(t, c, start, fake.DemoCorpID, userID)
}

// signInThroughCorp is signInThrough as userID of corpID.
func (w *signinWorld) signInThroughCorp(t *testing.T, c *http.Client, start, corpID, userID string) (int, *url.URL, string) {
	t.Helper()
	w.sim.SetAutoApprove(corpID, userID)
	defer w.sim.ClearAutoApprove()
	status, u, body := fetch(t, c, http.MethodGet, start)
	for range 3 {
		if u.Host != strings.TrimPrefix(w.bridgeURL, "http://") || !strings.HasPrefix(u.Path, "/login") || strings.HasPrefix(u.Path, "/login/callback") {
			break
		}
		if links := hrefs(body, w.simURL+"/oauth2/auth"); len(links) > 0 {
			status, u, body = fetch(t, c, http.MethodGet, links[0])
			continue
		}
		var picked string
		for _, h := range hrefs(body, "") {
			if strings.Contains(h, "corp="+corpID) {
				picked = h
			}
		}
		if picked == "" {
			t.Fatalf("login page %s has neither a corp link nor a DingTalk link:\n%s", u, body)
		}
		ref, _ := u.Parse(picked)
		status, u, body = fetch(t, c, http.MethodGet, ref.String())
	}
	return status, u, body
}

// adminClientFor is a browser stand-in signed in to the console as userID.
func (w *signinWorld) adminSignIn(t *testing.T, userID string) *http.Client {
	t.Helper()
	c := jarClient(t)
	status, u, body := w.signInThrough(t, c, w.bridgeURL+"/admin/", userID)
	if status != http.StatusOK || u.Path != "/admin/callback" {
		t.Fatalf("sign-in ended at %s with %d, want the callback's signed-in page:\n%s", u, status, body)
	}
	return c
}

const userLisi = "184919295227658120" // 李四: staff, not in admins

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfFrom returns the CSRF token of a console page.
func csrfFrom(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	return m[1]
}

// post sends a form, optionally with an Origin header, following redirects.
func post(t *testing.T, c *http.Client, u string, form url.Values, origin string) (int, *url.URL, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Request.URL, string(b)
}

// audit returns the audit rows with this action.
func (w *signinWorld) audit(t *testing.T, action string) []mapping.AuditEvent {
	t.Helper()
	es, err := w.accounts.AuditEvents(t.Context(), mapping.AuditQuery{Limit: mapping.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []mapping.AuditEvent
	for _, e := range es {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func (w *signinWorld) accountID(t *testing.T, username string) string {
	t.Helper()
	a, err := w.accounts.AccountByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// TestAdminSignIn: 张三 (group admins) signs in through dingbridge itself
// and sees the overview, with the console's security headers (ADM-01,
// ADM-03, ADM-05).
func TestAdminSignIn(t *testing.T) {
	w := startSigninDemo(t)
	c := w.adminSignIn(t, "zhangsan")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, w.bridgeURL+"/admin/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="count-accounts"`) || !strings.Contains(body, nameZhangsan) {
		t.Fatalf("overview: %d, want 200 with the counts and 张三:\n%s", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if rows := w.audit(t, "admin.signin"); len(rows) != 1 || rows[0].Actor != w.accountID(t, "zhangsan") {
		t.Errorf("admin.signin audit rows = %+v, want one by 张三", rows)
	}
}

// TestAdminNonAdminForbidden: 李四 is mapped but not an administrator: 403
// and an audit row (ADM-01, BAD-75).
func TestAdminNonAdminForbidden(t *testing.T) {
	w := startSigninDemo(t)
	c := jarClient(t)
	status, u, body := w.signInThrough(t, c, w.bridgeURL+"/admin/", userLisi)
	if status != http.StatusForbidden || !strings.Contains(body, "无权访问管理后台") {
		t.Fatalf("李四 at %s: %d, want 403 with the no-access page:\n%s", u, status, body)
	}
	rows := w.audit(t, "admin.denied")
	if len(rows) != 1 {
		t.Fatalf("admin.denied rows = %d, want 1", len(rows))
	}
	if e := rows[0]; e.TargetID != w.accountID(t, userLisi) || e.RequestID == "" || !e.ClientIP.IsValid() {
		t.Errorf("audit row = %+v, want 李四's account as target, a request id and the client IP", e)
	}
	if status, _, _ := fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/accounts"); status == http.StatusOK {
		t.Errorf("李四 reached the accounts page")
	}
}

// TestAdminCSRF: a change needs POST, the session's token and a same-origin
// request (ADM-02, BAD-71); a successful change is audited with actor,
// request id and IP (ADM-07).
func TestAdminCSRF(t *testing.T) {
	w := startSigninDemo(t)
	c := w.adminSignIn(t, "zhangsan")
	_, _, page := fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/accounts")
	token := csrfFrom(t, page)
	form := url.Values{"username": {"newperson"}, "display_name": {"新人"}}
	tests := []struct {
		name   string
		csrf   string
		origin string
		want   int
	}{
		{"no token", "", "", http.StatusForbidden},
		{"wrong token", token[:len(token)-2] + "xx", "", http.StatusForbidden},
		{"cross-origin", token, "https://evil.example", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if tt.csrf != "" {
				f.Set("csrf", tt.csrf)
			}
			status, _, _ := post(t, c, w.bridgeURL+"/admin/accounts", f, tt.origin)
			if status != tt.want {
				t.Errorf("status = %d, want %d", status, tt.want)
			}
			if _, err := w.accounts.AccountByUsername(t.Context(), "newperson"); err == nil {
				t.Fatalf("the account was created")
			}
		})
	}
	if status, _, _ := fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/accounts?username=newperson&csrf="+token); status != http.StatusOK {
		t.Errorf("GET accounts = %d", status)
	}
	if _, err := w.accounts.AccountByUsername(t.Context(), "newperson"); err == nil {
		t.Fatalf("a GET created the account")
	}

	form.Set("csrf", token)
	status, u, body := post(t, c, w.bridgeURL+"/admin/accounts", form, w.bridgeURL)
	if status != http.StatusOK || !strings.HasPrefix(u.Path, "/admin/accounts/") || !strings.Contains(body, "账号已创建") {
		t.Fatalf("create: %d at %s, want the new account's page:\n%s", status, u, body)
	}
	rows := w.audit(t, "account.create")
	var e *mapping.AuditEvent
	for i := range rows {
		if strings.Contains(string(rows[i].After), "newperson") {
			e = &rows[i]
		}
	}
	if e == nil || e.Actor != w.accountID(t, "zhangsan") || e.RequestID == "" || !e.ClientIP.IsValid() {
		t.Errorf("account.create audit = %+v, want actor 张三, a request id and an IP", e)
	}
}

// TestAdminCookieFixation: cookies a browser held before signing in give no
// access afterwards; a new sign-in gets a new session; a signed-out session
// cookie is refused even if replayed (ADM-04).
func TestAdminCookieFixation(t *testing.T) {
	w := startSigninDemo(t)
	bridge, _ := url.Parse(w.bridgeURL)
	c := jarClient(t)
	fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/login") // stops at dingbridge's login page
	before := c.Jar.Cookies(bridge)
	if len(before) == 0 {
		t.Fatal("no cookies before sign-in")
	}
	status, u, body := w.signInThrough(t, c, w.bridgeURL+"/admin/", "zhangsan")
	if status != http.StatusOK || u.Path != "/admin/callback" {
		t.Fatalf("sign-in: %d at %s:\n%s", status, u, body)
	}
	after := c.Jar.Cookies(bridge)

	replay := func(cookies []*http.Cookie) (int, *url.URL) {
		t.Helper()
		c2 := jarClient(t)
		c2.Jar.SetCookies(bridge, cookies)
		status, u, _ := fetch(t, c2, http.MethodGet, w.bridgeURL+"/admin/")
		return status, u
	}
	if _, u := replay(before); u.Path == "/admin/" {
		t.Errorf("the pre-sign-in cookies reached the overview")
	}
	if _, u := replay(after); u.Path != "/admin/" {
		t.Fatalf("the signed-in cookies ended at %s, want the overview", u)
	}

	_, _, page := fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/")
	if status, _, _ := post(t, c, w.bridgeURL+"/admin/logout", url.Values{"csrf": {csrfFrom(t, page)}}, ""); status != http.StatusOK {
		t.Fatalf("sign out: %d", status)
	}
	if _, u := replay(after); u.Path == "/admin/" {
		t.Errorf("a signed-out session cookie still reached the overview")
	}
}

// TestAdminApprovePendingThenSignIn: 陈静 is refused by the sample app and
// waits; 张三 approves her with a new account in the console; she signs in.
func TestAdminApprovePendingThenSignIn(t *testing.T) {
	w := startSigninDemo(t)
	chen := jarClient(t)
	status, u, body := w.signInThrough(t, chen, w.wikiURL+"/login", "manager4927")
	if !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("陈静's first sign-in: %d at %s, want the not-linked page:\n%s", status, u, body)
	}

	admin := w.adminSignIn(t, "zhangsan")
	_, _, page := fetch(t, admin, http.MethodGet, w.bridgeURL+"/admin/pending")
	m := regexp.MustCompile(`action="(/admin/pending/[^"/]+)/approve-new"`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "陈静") {
		t.Fatalf("pending page has no request of 陈静:\n%s", page)
	}
	status, u, body = post(t, admin, w.bridgeURL+m[1]+"/approve-new", url.Values{
		"csrf": {csrfFrom(t, page)}, "username": {"chenjing"}, "display_name": {"陈静"}, "groups": {"staff"},
	}, "")
	if status != http.StatusOK || u.Path != "/admin/pending" || !strings.Contains(body, "已批准") {
		t.Fatalf("approve: %d at %s:\n%s", status, u, body)
	}

	status, u, body = w.signInThrough(t, chen, w.wikiURL+"/login", "manager4927")
	if status != http.StatusOK || "http://"+u.Host != w.wikiURL || !strings.Contains(body, "陈静") || !strings.Contains(body, `id="sign-out"`) {
		t.Fatalf("陈静 after approval: %d at %s, want the sample app's signed-in page:\n%s", status, u, body)
	}
}

// TestAdminUnlinkStaleVersion: an unlink at an old version is refused with
// a "changed by someone else" message, never applied silently (ADM-06).
func TestAdminUnlinkStaleVersion(t *testing.T) {
	w := startSigninDemo(t)
	c := w.adminSignIn(t, "zhangsan")
	id := w.accountID(t, "wangwu")
	_, _, page := fetch(t, c, http.MethodGet, w.bridgeURL+"/admin/accounts/"+id)
	key := mapping.Key{CorpID: fake.DemoCorpID, UserID: "wangwu"}
	b, err := w.accounts.Binding(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// Another administrator changes the identity meanwhile.
	if _, err := w.accounts.SetBindingDisabled(t.Context(), mapping.Meta{Actor: "other-admin"}, key, true); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"csrf": {csrfFrom(t, page)}, "corp_id": {key.CorpID}, "user_id": {key.UserID}, "version": {fmt.Sprint(b.Version)}}
	status, u, body := post(t, c, w.bridgeURL+"/admin/accounts/"+id+"/unlink", form, "")
	if status != http.StatusOK || !strings.Contains(body, "刚被其他人修改过") {
		t.Fatalf("stale unlink: %d at %s, want the changed-by-someone-else message:\n%s", status, u, body)
	}
	if b, _ := w.accounts.Binding(t.Context(), key); b.AccountID != id {
		t.Errorf("the identity was unlinked by a stale form")
	}
	b, _ = w.accounts.Binding(t.Context(), key)
	form.Set("version", fmt.Sprint(b.Version))
	if status, _, body := post(t, c, w.bridgeURL+"/admin/accounts/"+id+"/unlink", form, ""); status != http.StatusOK || !strings.Contains(body, "已解除关联") {
		t.Fatalf("current unlink: %d:\n%s", status, body)
	}
	if b, _ := w.accounts.Binding(t.Context(), key); b.AccountID != "" {
		t.Errorf("the identity is still linked to %q", b.AccountID)
	}
}
