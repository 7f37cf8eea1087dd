package web

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/mapping"
)

const (
	testCorp1 = "ding5f0c1a2b3c4d5e6f"
	testCorp2 = "dingc7c5220402493357"
	// consoleSecret is the console's own client secret in these tests.
	consoleSecret = "console-secret-Vh3kQ9zL"
)

// fakeChecker is a hand-written SelfChecker: it records its calls and
// answers with Fn.
type fakeChecker struct {
	mu     sync.Mutex
	probes []dingtalk.Probe
	Fn     func(p dingtalk.Probe) dingtalk.Report
}

func (f *fakeChecker) SelfCheck(ctx context.Context, p dingtalk.Probe) dingtalk.Report {
	f.mu.Lock()
	f.probes = append(f.probes, p)
	f.mu.Unlock()
	return f.Fn(p)
}

func (f *fakeChecker) calls() []dingtalk.Probe {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]dingtalk.Probe(nil), f.probes...)
}

// newConsoleWith is newTestConsole with edit applied to its configuration.
func newConsoleWith(t *testing.T, edit func(*Config)) *testConsole {
	t.Helper()
	tc := newTestConsole(t)
	cfg := tc.s.cfg
	cfg.ClientSecret = consoleSecret
	edit(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.s = s
	r := chi.NewRouter()
	r.Mount("/admin", s.Routes())
	tc.h = r
	return tc
}

var testClients = []ClientInfo{
	{
		ID: "wiki", Name: "内部知识库 Wiki", SecretSource: "clients[0].secret",
		RedirectURIs:           []string{"https://wiki.example.com/oauth2/callback"},
		PostLogoutRedirectURIs: []string{"https://wiki.example.com/"},
		InitiateLoginURI:       "https://wiki.example.com/oauth2/login",
		Scopes:                 []string{"openid", "profile", "email"},
		Corps:                  []string{testCorp1},
		IDTokenSigningAlg:      "RS256", AccessTokenFormat: "opaque",
		IDTokenLifetime: time.Hour, RefreshTokenLifetime: 720 * time.Hour,
		WorkbenchURL: "https://sso.example.com/workbench/wiki?corpId=$CORPID$",
	},
	{
		ID: "spa", Name: "Single page", Public: true,
		RedirectURIs: []string{"https://spa.example.com/cb"}, Scopes: []string{"openid"},
		WorkbenchURL: "https://sso.example.com/workbench/spa?corpId=$CORPID$",
	},
	{
		ID: "dingbridge-admin", Name: "Admin console", Internal: true, SecretSource: "secrets.key_encryption_key",
		RedirectURIs: []string{"https://sso.example.com/admin/callback"}, Scopes: []string{"openid"},
	},
}

var testCorps = []DingTalkCorp{
	{ID: testCorp1, Name: "示例科技", AppKey: "dingdemoapp1", AgentID: "3012345601"},
	{ID: testCorp2, Name: "星河制造", AppKey: "dingdemoapp2"},
}

var snippetRE = regexp.MustCompile(`(?s)<pre class="snippet" id="snippet-([a-z-]+)"[^>]*>(.*?)</pre>`)

// snippets returns the page's snippets by client id, unescaped.
func snippets(body string) map[string]string {
	out := map[string]string{}
	for _, m := range snippetRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// section returns the HTML of the element whose opening tag contains marker,
// up to the next </section>.
func section(t *testing.T, body, marker string) string {
	t.Helper()
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("page has no %s", marker)
	}
	j := strings.Index(body[i:], "</section>")
	return body[i : i+j]
}

func TestClientsPage(t *testing.T) {
	tc := newConsoleWith(t, func(c *Config) { c.Clients, c.DingTalkCorps = testClients, testCorps })
	ck, _ := tc.signIn(t, tc.admin)
	rec := tc.do(t, http.MethodGet, "/admin/clients", ck, nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200:\n%s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	if strings.Contains(body, consoleSecret) {
		t.Error("the page shows the console's client secret")
	}

	sn := snippets(body)
	wiki := sn["wiki"]
	for _, want := range []string{
		"issuer:                    https://sso.example.com\n",
		"discovery:                 https://sso.example.com/.well-known/openid-configuration\n",
		"client_id:                 wiki\n",
		"clients[0].secret",
		"token_endpoint_auth:       client_secret_basic\n",
		"scope:                     openid profile email\n",
		"redirect_uri:              https://wiki.example.com/oauth2/callback\n",
		"post_logout_redirect_uri:  https://wiki.example.com/\n",
		"initiate_login_uri:        https://wiki.example.com/oauth2/login\n",
		"pkce:                      S256 — 建议使用\n",
	} {
		if !strings.Contains(wiki, want) {
			t.Errorf("wiki's snippet lacks %q:\n%s", want, wiki)
		}
	}
	spa := sn["spa"]
	for _, want := range []string{"client_id:                 spa\n", "token_endpoint_auth:       none\n", "S256 — 必须使用"} {
		if !strings.Contains(spa, want) {
			t.Errorf("spa's snippet lacks %q:\n%s", want, spa)
		}
	}
	if _, ok := sn["dingbridge-admin"]; ok {
		t.Error("the console's own client has a snippet; nobody integrates it")
	}
	if len(sn) != 2 {
		t.Errorf("snippets of %d clients, want 2", len(sn))
	}

	// wiki may sign in employees of corp 1 only: one workbench row; spa of both.
	wikiSec := section(t, body, `data-client-id="wiki"`)
	if n := strings.Count(wikiSec, `<tr data-corp-id=`); n != 1 || !strings.Contains(wikiSec, `<tr data-corp-id="`+testCorp1+`"`) {
		t.Errorf("wiki's workbench rows = %d, want one for %s", n, testCorp1)
	}
	if !strings.Contains(wikiSec, "https://sso.example.com/workbench/wiki?corpId=$CORPID$") || !strings.Contains(wikiSec, "dingdemoapp1") {
		t.Error("wiki's workbench row lacks the URL or the app key")
	}
	if !strings.Contains(wikiSec, "720h") || !strings.Contains(wikiSec, "示例科技") {
		t.Error("wiki's details lack the refresh lifetime or the allowed corp's name")
	}
	if n := strings.Count(section(t, body, `data-client-id="spa"`), `<tr data-corp-id=`); n != 2 {
		t.Errorf("spa's workbench rows = %d, want 2 (all corps)", n)
	}
	internal := section(t, body, `data-client-id="dingbridge-admin"`)
	if !strings.Contains(internal, textZH["cl_internal"]) || strings.Contains(internal, "workbench") {
		t.Error("the console's client is not marked internal, or has workbench URLs")
	}
	// Listed last.
	if strings.Index(body, `data-client-id="dingbridge-admin"`) < strings.Index(body, `data-client-id="spa"`) {
		t.Error("the internal client is not listed last")
	}
	// The copy button is hidden until its script shows it; the script is
	// served from the console's origin (CSP script-src 'self').
	if !strings.Contains(body, `data-copy="snippet-wiki"`) || !strings.Contains(body, `<script src="/admin/static/clients.js" defer></script>`) {
		t.Error("no copy button or no script")
	}
	js := tc.do(t, http.MethodGet, "/admin/static/clients.js", nil, nil, nil)
	if js.Code != http.StatusOK || !strings.HasPrefix(js.Header().Get("Content-Type"), "text/javascript") {
		t.Errorf("clients.js: status %d, type %q", js.Code, js.Header().Get("Content-Type"))
	}

	// In English too.
	en := tc.do(t, http.MethodGet, "/admin/clients", ck, nil, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(en.Body.String(), "Applications (OIDC clients)") || !strings.Contains(snippets(en.Body.String())["wiki"], "S256 — recommended") {
		t.Error("English page lacks its title or the English PKCE note")
	}
}

func TestClientsPageNeedsAdmin(t *testing.T) {
	tc := newConsoleWith(t, func(c *Config) { c.Clients = testClients })
	if rec := tc.do(t, http.MethodGet, "/admin/clients", nil, nil, nil); rec.Code != http.StatusFound {
		t.Errorf("signed out: status %d, want 302 to sign-in", rec.Code)
	}
	ck, _ := tc.signIn(t, tc.staff)
	if rec := tc.do(t, http.MethodGet, "/admin/clients", ck, nil, nil); rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "wiki") {
		t.Errorf("non-admin: status %d, want 403 without the clients", rec.Code)
	}
}

// checkReport is what the fake checker answers: U2 lacks the member
// permission.
func checkReport(p dingtalk.Probe) dingtalk.Report {
	return dingtalk.Report{CorpID: testCorp1, AppKey: "dingdemoapp1", Probe: p, Started: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		Checks: []dingtalk.Check{
			{API: dingtalk.APIAppToken, Endpoint: "POST /v1.0/oauth2/accessToken", Status: dingtalk.CheckOK},
			{API: dingtalk.APIUserByUnionID, Endpoint: "POST /topapi/user/getbyunionid", Status: dingtalk.CheckOK},
			{API: dingtalk.APIUser, Endpoint: "POST /topapi/v2/user/get", Status: dingtalk.CheckMissingPermission,
				Scopes: []string{dingtalk.ScopeMember}, Code: "60011", RequestID: "req-60011"},
			{API: dingtalk.APIMe, Endpoint: "GET /v1.0/contact/users/me", Status: dingtalk.CheckAtSignIn,
				Scopes: []string{dingtalk.ScopeContactUserRead}, Reason: dingtalk.ReasonNeedsCode},
		}}
}

// selfCheckConsole has two corps with fake checkers and zhangsan (the
// admin) linked to an identity in corp 1.
func selfCheckConsole(t *testing.T) (*testConsole, *fakeChecker, *fakeChecker) {
	t.Helper()
	c1, c2 := &fakeChecker{Fn: checkReport}, &fakeChecker{Fn: checkReport}
	corps := []DingTalkCorp{testCorps[0], testCorps[1]}
	corps[0].Checker, corps[1].Checker = c1, c2
	tc := newConsoleWith(t, func(c *Config) { c.DingTalkCorps = corps })
	m := mapping.Meta{Actor: "test"}
	for _, b := range []mapping.Binding{
		{Identity: mapping.Identity{CorpID: testCorp1, UserID: "zhangsan", UnionID: "union-zhangsan", AppKey: "dingdemoapp1", Name: "张三"}, AccountID: tc.admin.ID},
		// Someone the mapping knows in corp 2, under another app key.
		{Identity: mapping.Identity{CorpID: testCorp2, UserID: "liuyang", UnionID: "union-liuyang", AppKey: "other-app", Name: "刘洋"}, AccountID: tc.staff.ID},
	} {
		if _, err := tc.store.CreateBinding(t.Context(), m, b); err != nil {
			t.Fatal(err)
		}
	}
	return tc, c1, c2
}

func TestSelfCheckGETDoesNotCallDingTalk(t *testing.T) {
	tc, c1, c2 := selfCheckConsole(t)
	ck, _ := tc.signIn(t, tc.admin)
	rec := tc.do(t, http.MethodGet, "/admin/dingtalk", ck, nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if n := len(c1.calls()) + len(c2.calls()); n != 0 {
		t.Errorf("GET ran %d self-checks, want 0", n)
	}
	body := rec.Body.String()
	for _, corp := range []string{testCorp1, testCorp2} {
		if !strings.Contains(body, `<input type="hidden" name="corp" value="`+corp+`">`) {
			t.Errorf("no run form for %s", corp)
		}
	}
	if strings.Contains(body, `id="result"`) {
		t.Error("GET shows a result")
	}
}

func TestSelfCheckPOSTNeedsCSRF(t *testing.T) {
	tc, c1, _ := selfCheckConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	tests := []struct {
		name string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{"corp": {testCorp1}}, nil},
		{"wrong token", url.Values{"corp": {testCorp1}, "csrf": {randomToken()}}, nil},
		{"cross-origin", url.Values{"corp": {testCorp1}, "csrf": {sess.CSRF}}, map[string]string{"Origin": "https://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := tc.do(t, http.MethodPost, "/admin/dingtalk", ck, tt.form, tt.hdr); rec.Code != http.StatusForbidden {
				t.Errorf("status = %d, want 403", rec.Code)
			}
		})
	}
	if n := len(c1.calls()); n != 0 {
		t.Errorf("refused POSTs ran %d self-checks, want 0", n)
	}
	if rec := tc.do(t, http.MethodPost, "/admin/dingtalk", ck, url.Values{"corp": {"dingnosuchcorp"}, "csrf": {sess.CSRF}}, nil); rec.Code != http.StatusNotFound {
		t.Errorf("unknown corp: status = %d, want 404", rec.Code)
	}
}

func TestSelfCheckRun(t *testing.T) {
	tc, c1, c2 := selfCheckConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	run := func(corp string, lang string) *http.Response {
		t.Helper()
		hdr := map[string]string{"Accept-Language": lang}
		return tc.do(t, http.MethodPost, "/admin/dingtalk", ck, url.Values{"corp": {corp}, "csrf": {sess.CSRF}}, hdr).Result()
	}

	rec := tc.do(t, http.MethodPost, "/admin/dingtalk", ck, url.Values{"corp": {testCorp1}, "csrf": {sess.CSRF}}, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200:\n%s", rec.Code, rec.Body)
	}
	// The administrator is the person looked up, with the unionId learnt
	// through this app.
	if got := c1.calls(); len(got) != 1 || got[0] != (dingtalk.Probe{UserID: "zhangsan", UnionID: "union-zhangsan"}) {
		t.Fatalf("checker calls = %+v, want one with zhangsan's ids", got)
	}
	body := rec.Body.String()
	result := section(t, body, `data-corp-id="`+testCorp1+`"`)
	for _, want := range []string{
		`id="result"`, `data-api="user" data-status="missing_permission"`, "发现 1 个问题",
		textZH["dt_fix_missing_permission"], "成员信息读权限", "<code>qyapi_get_member</code>",
		"<code>60011</code>", "<code>req-60011</code>", textZH["dt_scope_Contact.User.Read"], "张三 <code>zhangsan</code>",
	} {
		if !strings.Contains(result, html.EscapeString(want)) && !strings.Contains(result, want) {
			t.Errorf("result lacks %q", want)
		}
	}
	if strings.Contains(section(t, body, `data-corp-id="`+testCorp2+`"`), `id="result"`) {
		t.Error("corp 2 shows corp 1's result")
	}

	// Audited, with the administrator, IP and request id.
	evs, err := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range evs {
		if e.Action == "dingtalk.selfcheck" {
			found = true
			if e.Actor != tc.admin.ID || e.TargetID != testCorp1 || e.RequestID == "" || !e.ClientIP.IsValid() {
				t.Errorf("audit row %+v: want actor %s, target %s, a request id and an IP", e, tc.admin.ID, testCorp1)
			}
			if !strings.Contains(string(e.After), `"user":"missing_permission"`) {
				t.Errorf("audit detail %s lacks the outcome", e.After)
			}
		}
	}
	if !found {
		t.Error("no dingtalk.selfcheck audit row")
	}

	// A second run of corp 1 within the interval is refused without
	// calling DingTalk; corp 2 is not held up.
	again := run(testCorp1, "en")
	if again.StatusCode != http.StatusTooManyRequests || again.Header.Get("Retry-After") != "60" {
		t.Errorf("second run: status %d, Retry-After %q; want 429, 60", again.StatusCode, again.Header.Get("Retry-After"))
	}
	if n := len(c1.calls()); n != 1 {
		t.Errorf("checker calls after a refused run = %d, want 1", n)
	}
	tooSoon := tc.do(t, http.MethodPost, "/admin/dingtalk", ck, url.Values{"corp": {testCorp1}, "csrf": {sess.CSRF}}, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(tooSoon.Body.String(), "try again in 60 seconds") {
		t.Errorf("refused run does not say when to try again:\n%s", tooSoon.Body)
	}
	if r := run(testCorp2, "zh"); r.StatusCode != http.StatusOK {
		t.Errorf("corp 2: status %d, want 200", r.StatusCode)
	}
	// Corp 2: the admin is not there; someone the mapping knows is looked
	// up, by userid only (their unionId came through another app).
	if got := c2.calls(); len(got) != 1 || got[0] != (dingtalk.Probe{UserID: "liuyang"}) {
		t.Errorf("corp 2 checker calls = %+v, want one with liuyang's userid only", got)
	}
	tc.now = tc.now.Add(time.Minute)
	if r := run(testCorp1, "zh"); r.StatusCode != http.StatusOK || len(c1.calls()) != 2 {
		t.Errorf("after the interval: status %d, calls %d; want 200, 2", r.StatusCode, len(c1.calls()))
	}
}

// Every outcome, API, reason and permission the check reports has words in
// both languages (a missing key would render as nothing).
func TestSelfCheckTexts(t *testing.T) {
	var keys []string
	for _, s := range []dingtalk.CheckStatus{dingtalk.CheckOK, dingtalk.CheckMissingPermission, dingtalk.CheckOutsideRange,
		dingtalk.CheckIPNotAllowed, dingtalk.CheckBadCredentials, dingtalk.CheckThrottled, dingtalk.CheckUnreachable,
		dingtalk.CheckFailed, dingtalk.CheckSkipped, dingtalk.CheckAtSignIn} {
		keys = append(keys, "dt_status_"+string(s))
		if s.Problem() {
			keys = append(keys, "dt_fix_"+string(s))
		}
	}
	for _, a := range []dingtalk.API{dingtalk.APIAppToken, dingtalk.APIUserByUnionID, dingtalk.APIUser, dingtalk.APIUserToken,
		dingtalk.APIMe, dingtalk.APIUserByAuthCode, dingtalk.APISNSUser} {
		keys = append(keys, "dt_api_"+string(a), "dt_use_"+string(a))
	}
	keys = append(keys, "dt_skipped_"+dingtalk.ReasonNoAppToken, "dt_skipped_"+dingtalk.ReasonNoPerson, "dt_ok_"+dingtalk.ReasonNotMember,
		"dt_scope_"+dingtalk.ScopeMember, "dt_scope_"+dingtalk.ScopeBase, "dt_scope_"+dingtalk.ScopeContactUserRead)
	for _, k := range keys {
		if textZH[k] == "" || textEN[k] == "" {
			t.Errorf("text %q missing", k)
		}
	}
}
