package fake

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestWorkbenchListsAppsWithCorpIDSubstituted(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.AddWorkbenchApp(DemoCorpID, "示例应用 Sample", "http://127.0.0.1:9/workbench/sample?corpId=$CORPID$")
	e.fake.AddWorkbenchApp(DemoCorpID, "报销 Expenses", "https://expenses.example.com/$CORPID$/home?c=$CORPID$")
	e.fake.AddWorkbenchApp(DemoCorp2ID, "星河门户", "https://portal.example.com/?corp=$CORPID$")

	tests := []struct {
		name     string
		corpID   string
		wantCode int
		want     []string
		notWant  []string
	}{
		{"first corp", DemoCorpID, http.StatusOK, []string{
			"示例科技有限公司", "示例应用 Sample", "报销 Expenses",
			`href="http://127.0.0.1:9/workbench/sample?corpId=` + DemoCorpID + `"`,
			`href="https://expenses.example.com/` + DemoCorpID + `/home?c=` + DemoCorpID + `"`,
		}, []string{"$CORPID$", "星河门户"}},
		{"second corp", DemoCorp2ID, http.StatusOK, []string{`href="https://portal.example.com/?corp=` + DemoCorp2ID + `"`}, []string{"Expenses"}},
		{"unknown corp", "dingnope", http.StatusNotFound, []string{`id="error"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get("/fake/workbench?corpId=" + url.QueryEscape(tt.corpID))
			if r.status != tt.wantCode {
				t.Errorf("status = %d, want %d", r.status, tt.wantCode)
			}
			body := html.UnescapeString(string(r.body))
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q; body:\n%s", s, body)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(body, s) {
					t.Errorf("page contains %q", s)
				}
			}
		})
	}
}

func TestWorkbenchEmptyAndMissingCorp(t *testing.T) {
	e := newEnv(t, Options{})
	if r := e.get("/fake/workbench?corpId=" + DemoCorp2ID); r.status != http.StatusOK || !strings.Contains(string(r.body), `id="no-apps"`) {
		t.Errorf("empty workbench = %d, want 200 saying there are no apps; body:\n%.400s", r.status, r.body)
	}
	r := e.get("/fake/workbench")
	if r.status != http.StatusFound || r.header.Get("Location") != "/fake/" {
		t.Errorf("workbench without corpId = %d Location %q, want 302 to /fake/", r.status, r.header.Get("Location"))
	}
}

func TestWorkbenchTileRejectsScriptURLs(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.AddWorkbenchApp(DemoCorpID, "bad", "javascript:alert($CORPID$)")
	if r := e.get("/fake/workbench?corpId=" + DemoCorpID); strings.Contains(string(r.body), "javascript:") {
		t.Errorf("workbench links to a javascript: URL; body:\n%s", r.body)
	}
}

func TestIndexLinksWorkbenchesAndLoginPage(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.AddWorkbenchApp(DemoCorpID, "示例应用", "http://127.0.0.1:9/?corpId=$CORPID$")
	r := e.get("/fake/")
	body := html.UnescapeString(string(r.body))
	if r.status != http.StatusOK {
		t.Fatalf("GET /fake/ = %d, want 200", r.status)
	}
	for _, s := range []string{
		`href="/fake/workbench?corpId=` + DemoCorpID + `"`, `href="/fake/workbench?corpId=` + DemoCorp2ID + `"`,
		"（1 个应用）", "（0 个应用）", "/oauth2/auth", e.url + "/oauth2/auth",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("index lacks %q; body:\n%s", s, body)
		}
	}

	// The try-it link is a valid login request that comes back to the
	// index, which shows the authCode.
	i := strings.Index(body, `class="go secondary try-login" href="`)
	if i < 0 {
		t.Fatalf("index has no try-login link; body:\n%s", body)
	}
	link := body[i+len(`class="go secondary try-login" href="`):]
	link = link[:strings.Index(link, `"`)]
	e.fake.SetAutoApprove(DemoCorpID, "zhangsan")
	q := redirectQuery(t, e.get(link), e.url+"/fake/?")
	back := e.get("/fake/?" + q.Encode())
	if !strings.Contains(string(back.body), `id="auth-code">`+q.Get("authCode")+`<`) {
		t.Errorf("index after login lacks authCode %q; body:\n%s", q.Get("authCode"), back.body)
	}
}

func TestSimulatorPagesAreNotCountedAsCalls(t *testing.T) {
	e := newEnv(t, Options{})
	e.get("/fake/")
	e.get("/fake/workbench?corpId=" + DemoCorpID)
	if n := e.fake.Calls(EndpointLogin) + e.fake.Calls(EndpointJSAPIScript); n != 0 {
		t.Errorf("calls after viewing simulator pages = %d, want 0", n)
	}
}
