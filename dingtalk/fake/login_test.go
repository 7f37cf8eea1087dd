package fake

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// loginQuery is a valid login.dingtalk.com/oauth2/auth query for the demo app.
func loginQuery(changes map[string]string) string {
	v := url.Values{
		"redirect_uri":  {"https://idp.example.com/cb/dingtalk?x=1"},
		"response_type": {"code"},
		"client_id":     {DemoAppKey},
		"scope":         {"openid corpid"},
		"prompt":        {"consent"},
		"state":         {"Zx81k"},
	}
	for k, val := range changes {
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	return "/oauth2/auth?" + v.Encode()
}

// redirectQuery checks a 302 and returns the query of its Location.
func redirectQuery(t *testing.T, r response, wantPrefix string) url.Values {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("status = %d, want 302 (body %.300s)", r.status, r.body)
	}
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, wantPrefix) {
		t.Fatalf("Location = %s, want prefix %s", loc, wantPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return u.Query()
}

func TestLoginRejects(t *testing.T) {
	restricted := DefaultFixture()
	restricted.Corps[0].Apps[0].RedirectHosts = []string{"idp.example.com"}
	e := newEnv(t, Options{Fixture: &restricted})
	e.fake.SetAutoApprove(DemoCorpID, "zhangsan") // errors come before any approval
	tests := []struct {
		name    string
		changes map[string]string
	}{
		{"unknown client_id", map[string]string{"client_id": "dingnope"}},
		{"no prompt", map[string]string{"prompt": ""}},
		{"prompt none", map[string]string{"prompt": "none"}},
		{"response_type token", map[string]string{"response_type": "token"}},
		{"no scope", map[string]string{"scope": ""}},
		{"scope without openid", map[string]string{"scope": "corpid"}},
		{"no redirect_uri", map[string]string{"redirect_uri": ""}},
		{"redirect host not allowed", map[string]string{"redirect_uri": "https://evil.example/cb"}},
		{"relative redirect_uri", map[string]string{"redirect_uri": "/cb"}},
		{"unknown corpId", map[string]string{"corpId": "dingnope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(loginQuery(tt.changes))
			if r.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", r.status)
			}
			if loc := r.header.Get("Location"); loc != "" {
				t.Errorf("Location = %q, want no redirect", loc)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want HTML", ct)
			}
			if !strings.Contains(string(r.body), `id="error"`) {
				t.Errorf("body is not the error page: %.200s", r.body)
			}
		})
	}
	t.Run("allowed host on another port", func(t *testing.T) {
		redirectQuery(t, e.get(loginQuery(map[string]string{"redirect_uri": "https://idp.example.com:8443/cb"})), "https://idp.example.com:8443/cb?")
	})
}

func TestLoginAutoApprove(t *testing.T) {
	e := newEnv(t, Options{})
	e.fake.SetAutoApprove(DemoCorpID, "184919295227658120")
	q := redirectQuery(t, e.get(loginQuery(nil)), "https://idp.example.com/cb/dingtalk?x=1&")
	code := q.Get("authCode")
	if code == "" || q.Get("code") != code || q.Get("state") != "Zx81k" || q.Get("x") != "1" {
		t.Fatalf("redirect query = %v, want code = authCode, state Zx81k, x 1", q)
	}
	tok := e.userToken(DemoAppKey, DemoAppSecret, code)
	if tok["corpId"] != DemoCorpID {
		t.Errorf("corpId = %v, want %s", tok["corpId"], DemoCorpID)
	}
	me := e.do(http.MethodGet, "/v1.0/contact/users/me", http.Header{"X-Acs-Dingtalk-Access-Token": {tok["accessToken"].(string)}}, nil)
	if got := me.json(t)["unionId"]; got != "iPlY4kfMEnV8RkbOLeeiSI2wiEiE" {
		t.Errorf("unionId = %v, want 李四's", got)
	}

	t.Run("no state", func(t *testing.T) {
		q := redirectQuery(t, e.get(loginQuery(map[string]string{"state": "", "scope": "openid"})), "https://idp.example.com/")
		if q.Has("state") {
			t.Errorf("state = %q, want none", q.Get("state"))
		}
		if tok := e.userToken(DemoAppKey, DemoAppSecret, q.Get("code")); tok["corpId"] != nil {
			t.Errorf("corpId = %v without the corpid scope", tok["corpId"])
		}
	})
	t.Run("cleared", func(t *testing.T) {
		e.fake.ClearAutoApprove()
		if r := e.get(loginQuery(nil)); r.status != http.StatusOK {
			t.Errorf("status = %d, want the 200 picker page", r.status)
		}
	})
	t.Run("unknown identity", func(t *testing.T) {
		e.fake.SetAutoApprove(DemoCorpID, "nobody")
		if r := e.get(loginQuery(nil)); r.status != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", r.status)
		}
	})
}

func TestLoginPicker(t *testing.T) {
	f := DefaultFixture()
	f.Corps[1].Employees[1].Name = `<script>alert(1)</script>`
	e := newEnv(t, Options{Fixture: &f})
	r := e.get(loginQuery(nil))
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.status)
	}
	page := string(r.body)
	for _, want := range []string{
		"张三", "184919295227658120", "示例统一登录", "星河制造集团", "其他组织", "已离职", "拒绝 / Deny",
		`action="/fake/oauth2/approve"`, `name="client_id" value="dingdemoapp1"`, `name="state" value="Zx81k"`,
		`name="scope" value="openid corpid"`, "&lt;script&gt;alert(1)&lt;/script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Error("employee name rendered unescaped")
	}
	for _, external := range []string{"src=", "<link", "url(", "@import"} {
		if strings.Contains(page, external) {
			t.Errorf("page loads an asset (%q)", external)
		}
	}

	t.Run("corpId limits the list", func(t *testing.T) {
		page := string(e.get(loginQuery(map[string]string{"corpId": DemoCorp2ID})).body)
		if strings.Contains(page, "张三") || !strings.Contains(page, "刘洋") {
			t.Error("with corpId=星河, want only 星河 employees")
		}
	})
	t.Run("org_type management lists admins", func(t *testing.T) {
		page := string(e.get(loginQuery(map[string]string{"org_type": "management"})).body)
		if strings.Contains(page, "王五") || !strings.Contains(page, "张三") || !strings.Contains(page, "刘洋") {
			t.Error("with org_type=management, want only admins")
		}
	})
}

// approveForm is what the picker posts for the default login query.
func approveForm(changes map[string]string, extra url.Values) url.Values {
	q, _ := url.ParseQuery(strings.TrimPrefix(loginQuery(changes), "/oauth2/auth?"))
	for k, v := range extra {
		q[k] = v
	}
	return q
}

func TestLoginApprove(t *testing.T) {
	e := newEnv(t, Options{})
	t.Run("pick a foreign employee", func(t *testing.T) {
		r := e.postForm("/fake/oauth2/approve", approveForm(nil, url.Values{"pick": {DemoCorp2ID + "|liuyang"}}))
		q := redirectQuery(t, r, "https://idp.example.com/cb/dingtalk?x=1&")
		if q.Get("code") == "" || q.Get("code") != q.Get("authCode") || q.Get("state") != "Zx81k" {
			t.Fatalf("query = %v", q)
		}
		if tok := e.userToken(DemoAppKey, DemoAppSecret, q.Get("code")); tok["corpId"] != DemoCorp2ID {
			t.Errorf("corpId = %v, want %s", tok["corpId"], DemoCorp2ID)
		}
	})
	t.Run("deny", func(t *testing.T) {
		q := redirectQuery(t, e.postForm("/fake/oauth2/approve", approveForm(nil, url.Values{"deny": {"1"}})), "https://idp.example.com/cb/dingtalk?x=1&")
		if q.Get("error") != "access_denied" || q.Get("state") != "Zx81k" || q.Has("code") {
			t.Errorf("query = %v, want error=access_denied&state=Zx81k", q)
		}
	})
	t.Run("unknown pick", func(t *testing.T) {
		r := e.postForm("/fake/oauth2/approve", approveForm(nil, url.Values{"pick": {DemoCorpID + "|nobody"}}))
		if r.status != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", r.status)
		}
	})
	t.Run("tampered parameters", func(t *testing.T) {
		r := e.postForm("/fake/oauth2/approve", approveForm(map[string]string{"client_id": "dingnope"}, url.Values{"pick": {DemoCorpID + "|zhangsan"}}))
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Errorf("status = %d, Location %q; want 400 and no redirect", r.status, r.header.Get("Location"))
		}
	})
}

func TestLoginIframe(t *testing.T) {
	e := newEnv(t, Options{})
	frame := map[string]string{"iframe": "true"}

	page := string(e.get(loginQuery(frame)).body)
	if !strings.Contains(page, `name="iframe" value="true"`) {
		t.Error("picker does not carry iframe=true")
	}

	r := e.postForm("/fake/oauth2/approve", approveForm(frame, url.Values{"pick": {DemoCorpID + "|zhangsan"}}))
	if r.status != http.StatusOK || r.header.Get("Location") != "" {
		t.Fatalf("status = %d, Location %q; want 200 and no navigation", r.status, r.header.Get("Location"))
	}
	body := string(r.body)
	for _, want := range []string{"window.parent.postMessage(", `"success":true`, `"redirectUrl":"https://idp.example.com/cb/dingtalk?x=1\u0026authCode=`} {
		if !strings.Contains(body, want) {
			t.Errorf("frame result lacks %q:\n%s", want, body)
		}
	}

	t.Run("auto-approve", func(t *testing.T) {
		e.fake.SetAutoApprove(DemoCorpID, "zhangsan")
		defer e.fake.ClearAutoApprove()
		r := e.get(loginQuery(frame))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"success":true`) {
			t.Errorf("status %d, body %.300s; want a postMessage page", r.status, r.body)
		}
	})
	t.Run("deny", func(t *testing.T) {
		r := e.postForm("/fake/oauth2/approve", approveForm(frame, url.Values{"deny": {"1"}}))
		if !strings.Contains(string(r.body), `"errorMsg":"access_denied"`) {
			t.Errorf("body %.300s lacks errorMsg", r.body)
		}
	})
	t.Run("error", func(t *testing.T) {
		r := e.get(loginQuery(map[string]string{"iframe": "true", "prompt": ""}))
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"errorMsg":`) {
			t.Errorf("status %d, body %.300s; want 400 posting errorMsg", r.status, r.body)
		}
	})
}

func TestFrameLoginScript(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.get("/fake/ddlogin.js")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{"window.DTFrameLogin", `"` + e.url + `"`, "/oauth2/auth?", "iframe=true"} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("script lacks %q", want)
		}
	}
}
