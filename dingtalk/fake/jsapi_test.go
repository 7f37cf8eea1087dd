package fake

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestJSAPIScript(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.get("/fake/jsapi.js")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/javascript") {
		t.Errorf("Content-Type = %q, want application/javascript", ct)
	}
	script := string(r.body)
	for _, want := range []string{
		`var BASE = "` + e.url + `"`, `var PLATFORM = "android"`, "dd.requestAuthCode", "dd.runtime.permission.requestAuthCode",
		"dd.ready", "dd.error", "/fake/jsapi/authcode", "/fake/jsapi/employees",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if got := string(e.get("/fake/jsapi.js?platform=notInDingTalk").body); !strings.Contains(got, `var PLATFORM = "notInDingTalk"`) {
		t.Error("platform=notInDingTalk not applied")
	}
	if got := string(e.get("/fake/jsapi.js?platform=%22;alert(1)//").body); !strings.Contains(got, `var PLATFORM = "android"`) {
		t.Error("an unknown platform is not replaced by android")
	}

	t.Run("base URL from the request when unset", func(t *testing.T) {
		e.fake.SetBaseURL("")
		r := e.do(http.MethodGet, "/fake/jsapi.js", nil, nil)
		if !strings.Contains(string(r.body), `var BASE = "`+e.url+`"`) {
			t.Errorf("script does not use the request host %s", e.url)
		}
	})
}

func TestJSAPIAuthCode(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.appToken(DemoAppKey, DemoAppSecret)
	getUserInfo := func(code string) response {
		return e.postJSON("/topapi/v2/user/getuserinfo?access_token="+tok, map[string]string{"code": code})
	}

	t.Run("picker needed", func(t *testing.T) {
		r := e.postJSON("/fake/jsapi/authcode", map[string]string{"corpId": DemoCorpID, "clientId": DemoAppKey})
		if got := r.json(t); got["pick"] != true {
			t.Errorf("body = %v, want pick", got)
		}
	})
	t.Run("picked user", func(t *testing.T) {
		r := e.do(http.MethodPost, "/fake/jsapi/authcode", http.Header{"Content-Type": {"text/plain;charset=UTF-8"}},
			strings.NewReader(`{"corpId":"`+DemoCorpID+`","clientId":"`+DemoAppKey+`","userId":"wangwu"}`))
		code, _ := r.json(t)["code"].(string)
		if got := checkOldOK(t, getUserInfo(code))["result"].(map[string]any)["userid"]; got != "wangwu" {
			t.Errorf("userid = %v, want wangwu", got)
		}
		checkOldError(t, getUserInfo(code), 40078)
	})
	t.Run("auto-approve", func(t *testing.T) {
		e.fake.SetAutoApprove(DemoCorpID, "zhangsan")
		defer e.fake.ClearAutoApprove()
		r := e.postJSON("/fake/jsapi/authcode", map[string]string{"corpId": DemoCorpID, "clientId": DemoAppKey})
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Error("no Access-Control-Allow-Origin: *")
		}
		code, _ := r.json(t)["code"].(string)
		if got := checkOldOK(t, getUserInfo(code))["result"].(map[string]any)["userid"]; got != "zhangsan" {
			t.Errorf("userid = %v, want zhangsan", got)
		}
		// Auto-approve is per corp: another corp still gets the picker.
		other := e.postJSON("/fake/jsapi/authcode", map[string]string{"corpId": DemoCorp2ID, "clientId": DemoApp2Key})
		if other.json(t)["pick"] != true {
			t.Error("another corp was auto-approved")
		}
	})

	errs := []struct {
		name string
		body map[string]string
	}{
		{"unknown corp", map[string]string{"corpId": "dingnope", "clientId": DemoAppKey}},
		{"app of another corp", map[string]string{"corpId": DemoCorp2ID, "clientId": DemoAppKey}},
		{"left employee", map[string]string{"corpId": DemoCorpID, "clientId": DemoAppKey, "userId": "zhaoliu"}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			m := e.postJSON("/fake/jsapi/authcode", tt.body).json(t)
			checkShape(t, m, map[string]string{"errorCode": "number", "errorMessage": "string"})
			if m["errorCode"] != json.Number("3") {
				t.Errorf("errorCode = %v, want 3", m["errorCode"])
			}
		})
	}
	t.Run("corpId message", func(t *testing.T) {
		m := e.postJSON("/fake/jsapi/authcode", map[string]string{"corpId": "dingnope"}).json(t)
		if m["errorMessage"] != "1002,corpId不合法" {
			t.Errorf("errorMessage = %v", m["errorMessage"])
		}
	})
	t.Run("preflight", func(t *testing.T) {
		r := e.do(http.MethodOptions, "/fake/jsapi/authcode", http.Header{
			"Origin": {"https://idp.example.com"}, "Access-Control-Request-Method": {"POST"},
		}, nil)
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("status %d, headers %v", r.status, r.header)
		}
	})
}

func TestJSAPIEmployees(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.get("/fake/jsapi/employees?corpId=" + DemoCorpID)
	m := r.json(t)
	checkShape(t, m, map[string]string{"corpId": "string", "corpName": "string", "employees": "array"})
	var names []string
	for _, p := range m["employees"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	if got := strings.Join(names, ","); got != "张三,李四,王五,陈静,周九" {
		t.Errorf("employees = %s, want current members only", got)
	}
	if r := e.get("/fake/jsapi/employees?corpId=nope"); r.status != http.StatusNotFound {
		t.Errorf("unknown corp: status %d, want 404", r.status)
	}
}
