package fake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const zhangsanUnionID = "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ"

func TestGetToken(t *testing.T) {
	e := newEnv(t, Options{})
	m := checkOldOK(t, e.get("/gettoken?appkey="+DemoAppKey+"&appsecret="+DemoAppSecret))
	checkShape(t, m, map[string]string{
		"errcode": "number", "errmsg": "string", "request_id": "string", "access_token": "string", "expires_in": "number",
	})
	if m["expires_in"] != json.Number("7200") {
		t.Errorf("expires_in = %v, want 7200", m["expires_in"])
	}
	if got := e.appToken(DemoAppKey, DemoAppSecret); got != m["access_token"] {
		t.Errorf("A1 token = %s, want the gettoken token %v", got, m["access_token"])
	}

	t.Run("missing", func(t *testing.T) {
		m := checkOldError(t, e.get("/gettoken?appkey="+DemoAppKey), 40035)
		if m["errmsg"] != "缺少参数 corpid or appkey" {
			t.Errorf("errmsg = %v", m["errmsg"])
		}
	})
	t.Run("params in a GET body", func(t *testing.T) {
		body := strings.NewReader("appkey=" + DemoAppKey + "&appsecret=" + DemoAppSecret)
		checkOldError(t, e.do(http.MethodGet, "/gettoken", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body), 40035)
	})
	t.Run("bad secret", func(t *testing.T) {
		checkOldError(t, e.get("/gettoken?appkey="+DemoAppKey+"&appsecret=nope"), 40096)
	})
}

func TestTopAPIGateway(t *testing.T) {
	e := newEnv(t, Options{})
	body := map[string]string{"unionid": zhangsanUnionID}
	checkGateway := func(t *testing.T, r response, sub string) {
		t.Helper()
		m := checkOldError(t, r, 88)
		checkShape(t, m, map[string]string{
			"errcode": "number", "sub_code": "string", "sub_msg": "string", "errmsg": "string", "request_id": "string",
		})
		if m["sub_code"] != sub {
			t.Errorf("sub_code = %v, want %s", m["sub_code"], sub)
		}
		if want := "ding talk error[subcode=" + sub + ",submsg=" + m["sub_msg"].(string) + "]"; m["errmsg"] != want {
			t.Errorf("errmsg = %v, want %s", m["errmsg"], want)
		}
	}

	code, _ := e.fake.IssueLoginCode(DemoAppKey, DemoCorpID, "zhangsan", false)
	userToken := e.userToken(DemoAppKey, DemoAppSecret, code)["accessToken"].(string)
	t.Run("no token", func(t *testing.T) { checkGateway(t, e.postJSON("/topapi/user/getbyunionid", body), "40014") })
	t.Run("bad token", func(t *testing.T) {
		checkGateway(t, e.postJSON("/topapi/user/getbyunionid?access_token=nope", body), "40014")
	})
	t.Run("user token", func(t *testing.T) {
		checkGateway(t, e.postJSON("/topapi/user/getbyunionid?access_token="+userToken, body), "40014")
	})
	t.Run("token in a JSON body is not read", func(t *testing.T) {
		tok := e.appToken(DemoAppKey, DemoAppSecret)
		checkGateway(t, e.postJSON("/topapi/user/getbyunionid", map[string]string{"unionid": zhangsanUnionID, "access_token": tok}), "40014")
	})
	t.Run("token in a form body", func(t *testing.T) {
		tok := e.appToken(DemoAppKey, DemoAppSecret)
		checkOldOK(t, e.postForm("/topapi/user/getbyunionid", url.Values{"unionid": {zhangsanUnionID}, "access_token": {tok}}))
	})
	t.Run("expired token", func(t *testing.T) {
		tok := e.appToken(DemoAppKey, DemoAppSecret)
		e.clock.Advance(7200 * time.Second)
		checkGateway(t, e.postJSON("/topapi/user/getbyunionid?access_token="+tok, body), "42001")
	})
	t.Run("ExpireAppTokens", func(t *testing.T) {
		tok := e.appToken(DemoAppKey, DemoAppSecret)
		e.fake.ExpireAppTokens()
		checkGateway(t, e.postJSON("/topapi/user/getbyunionid?access_token="+tok, body), "40014")
		if fresh := e.appToken(DemoAppKey, DemoAppSecret); fresh == tok {
			t.Error("A1 returned the invalidated token")
		}
	})
}

func TestUserByUnionID(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.appToken(DemoAppKey, DemoAppSecret)
	path := "/topapi/user/getbyunionid?access_token=" + tok

	m := checkOldOK(t, e.postJSON(path, map[string]string{"unionid": "iPlY4kfMEnV8RkbOLeeiSI2wiEiE"}))
	checkShape(t, m, map[string]string{"errcode": "number", "errmsg": "string", "request_id": "string", "result": "object"})
	result := m["result"].(map[string]any)
	checkShape(t, result, map[string]string{"contact_type": "number", "userid": "string"})
	if result["userid"] != "184919295227658120" {
		t.Errorf("userid = %v, want the string 184919295227658120", result["userid"])
	}

	tests := []struct {
		name    string
		body    map[string]string
		errcode int
	}{
		{"left the corp", map[string]string{"unionid": "LeftZhaoLiu9xKq2wPz7Rb1vEiE"}, 60121},
		{"member of another corp", map[string]string{"unionid": "XhLiuYang5pQw8eRt2yUi4oPaiEiE"}, 60121},
		{"unknown", map[string]string{"unionid": "nobody"}, 60121},
		{"missing", map[string]string{"unionId": zhangsanUnionID}, 400002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOldError(t, e.postJSON(path, tt.body), tt.errcode) })
	}
	t.Run("SetLeft", func(t *testing.T) {
		e.fake.SetLeft(DemoCorpID, "zhangsan", true)
		checkOldError(t, e.postJSON(path, map[string]string{"unionid": zhangsanUnionID}), 60121)
		e.fake.SetLeft(DemoCorpID, "zhangsan", false)
		checkOldOK(t, e.postJSON(path, map[string]string{"unionid": zhangsanUnionID}))
	})
}

// userDetailShape is every field of a fully populated U2 result.
var userDetailShape = map[string]string{
	"userid": "string", "unionid": "string", "name": "string", "avatar": "string", "state_code": "string",
	"manager_userid": "string", "mobile": "string", "hide_mobile": "bool", "telephone": "string",
	"job_number": "string", "title": "string", "email": "string", "work_place": "string", "remark": "string",
	"org_email": "string", "dept_id_list": "array", "dept_order_list": "array", "extension": "string",
	"hired_date": "number", "active": "bool", "real_authed": "bool", "senior": "bool", "admin": "bool",
	"boss": "bool", "exclusive_account": "bool", "leader_in_dept": "array", "role_list": "array",
}

func TestUser(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.appToken(DemoAppKey, DemoAppSecret)
	path := "/topapi/v2/user/get?access_token=" + tok

	m := checkOldOK(t, e.postJSON(path, map[string]string{"userid": "zhangsan", "language": "zh_CN"}))
	result := m["result"].(map[string]any)
	checkShape(t, result, userDetailShape)
	if result["name"] != "张三" || result["admin"] != true || result["dept_id_list"].([]any)[0] != json.Number("581208264") {
		t.Errorf("result = %v, want 张三, admin, dept 581208264", result)
	}
	if result["hired_date"] != json.Number("1519866000000") {
		t.Errorf("hired_date = %v, want 1519866000000 (ms)", result["hired_date"])
	}
	order := result["dept_order_list"].([]any)[0].(map[string]any)
	checkShape(t, order, map[string]string{"dept_id": "number", "order": "number"})
	leader := result["leader_in_dept"].([]any)[0].(map[string]any)
	checkShape(t, leader, map[string]string{"dept_id": "number", "leader": "bool"})
	role := result["role_list"].([]any)[0].(map[string]any)
	checkShape(t, role, map[string]string{"id": "number", "name": "string", "group_name": "string"})

	t.Run("numeric-looking userid, form body", func(t *testing.T) {
		m := checkOldOK(t, e.postForm(path, url.Values{"userid": {"184919295227658120"}}))
		if got := m["result"].(map[string]any)["userid"]; got != "184919295227658120" {
			t.Errorf("userid = %#v, want the string", got)
		}
	})
	tests := []struct {
		name    string
		userID  string
		errcode int
	}{
		{"left", "zhaoliu", 60121},
		{"other corp", "liuyang", 60121},
		{"unknown", "nobody", 60121},
		{"empty", "", 33012},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOldError(t, e.postJSON(path, map[string]string{"userid": tt.userID}), tt.errcode)
		})
	}
}

func TestUserInfoByCode(t *testing.T) {
	twoApps := DefaultFixture()
	twoApps.Corps[0].Apps = append(twoApps.Corps[0].Apps, App{Name: "第二应用", AppKey: "dingsecondapp", AppSecret: "second-secret"})
	e := newEnv(t, Options{Fixture: &twoApps})
	tok := e.appToken(DemoAppKey, DemoAppSecret)
	path := "/topapi/v2/user/getuserinfo?access_token=" + tok

	code, err := e.fake.IssueJSAPICode(DemoCorpID, DemoAppKey, "zhangsan")
	if err != nil {
		t.Fatalf("IssueJSAPICode: %v", err)
	}
	m := checkOldOK(t, e.postJSON(path, map[string]string{"code": code}))
	result := m["result"].(map[string]any)
	checkShape(t, result, map[string]string{
		"userid": "string", "unionid": "string", "associated_unionid": "string", "name": "string",
		"device_id": "string", "sys": "bool", "sys_level": "number",
	})
	if result["userid"] != "zhangsan" || result["sys"] != true || result["sys_level"] != json.Number("1") {
		t.Errorf("result = %v, want zhangsan, sys, sys_level 1", result)
	}
	checkOldError(t, e.postJSON(path, map[string]string{"code": code}), 40078)

	t.Run("boss", func(t *testing.T) {
		code, _ := e.fake.IssueJSAPICode(DemoCorpID, DemoAppKey, "manager4927")
		result := checkOldOK(t, e.postJSON(path, map[string]string{"code": code}))["result"].(map[string]any)
		if result["sys_level"] != json.Number("100") {
			t.Errorf("sys_level = %v, want 100", result["sys_level"])
		}
	})
	t.Run("legacy code, any app of the corp", func(t *testing.T) {
		code, _ := e.fake.IssueJSAPICode(DemoCorpID, "", "wangwu")
		other := e.appToken("dingsecondapp", "second-secret")
		checkOldOK(t, e.postJSON("/topapi/v2/user/getuserinfo?access_token="+other, map[string]string{"code": code}))
	})

	issue := func() string {
		code, _ := e.fake.IssueJSAPICode(DemoCorpID, DemoAppKey, "wangwu")
		return code
	}
	loginCode, _ := e.fake.IssueLoginCode(DemoAppKey, DemoCorpID, "wangwu", false)
	token := func(key, secret string) func() string {
		return func() string { return e.appToken(key, secret) }
	}
	own := token(DemoAppKey, DemoAppSecret)
	tests := []struct {
		name    string
		code    string
		token   func() string
		advance time.Duration
	}{
		{"empty", "", own, 0},
		{"unknown", "nope", own, 0},
		{"login code", loginCode, own, 0},
		{"another corp's app", issue(), token(DemoApp2Key, DemoApp2Secret), 0},
		{"another app of the corp", issue(), token("dingsecondapp", "second-secret"), 0},
		{"expired", issue(), own, 5*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			path := "/topapi/v2/user/getuserinfo?access_token=" + tt.token()
			checkOldError(t, e.postJSON(path, map[string]string{"code": tt.code}), 40078)
		})
	}
	t.Run("IssueJSAPICode refuses", func(t *testing.T) {
		for _, args := range [][3]string{
			{DemoCorpID, DemoAppKey, "zhaoliu"},   // left
			{"dingnope", DemoAppKey, "zhangsan"},  // unknown corp
			{DemoCorpID, DemoApp2Key, "zhangsan"}, // app of another corp
		} {
			if _, err := e.fake.IssueJSAPICode(args[0], args[1], args[2]); err == nil {
				t.Errorf("IssueJSAPICode%v: err = nil, want an error", args)
			}
		}
	})
}

func TestLegacyUserInfo(t *testing.T) {
	e := newEnv(t, Options{})
	tok := e.appToken(DemoAppKey, DemoAppSecret)
	code, _ := e.fake.IssueJSAPICode(DemoCorpID, DemoAppKey, "184919295227658120")
	m := checkOldOK(t, e.get("/user/getuserinfo?access_token="+tok+"&code="+code))
	checkShape(t, m, map[string]string{
		"errcode": "number", "errmsg": "string", "request_id": "string",
		"userid": "string", "name": "string", "deviceId": "string", "is_sys": "bool", "sys_level": "number",
	})
	if m["userid"] != "184919295227658120" || m["is_sys"] != false {
		t.Errorf("body = %v, want 李四, not sys", m)
	}
	checkOldError(t, e.get("/user/getuserinfo?access_token="+tok+"&code="+code), 40078)

	bad := checkOldError(t, e.get("/user/getuserinfo?access_token=nope&code=x"), 40014)
	if _, ok := bad["sub_code"]; ok {
		t.Errorf("legacy endpoint used the 88 wrapper: %v", bad)
	}
	e.clock.Advance(7200 * time.Second)
	checkOldError(t, e.get("/user/getuserinfo?access_token="+tok+"&code=x"), 42001)
}
