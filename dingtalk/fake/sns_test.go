package fake

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func snsQuery(path string, changes map[string]string) string {
	v := url.Values{
		"appid":         {DemoSNSAppID},
		"response_type": {"code"},
		"scope":         {"snsapi_login"},
		"state":         {"st8"},
		"redirect_uri":  {"https://app.example.com/sns/cb"},
	}
	for k, val := range changes {
		v.Set(k, val)
	}
	return path + "?" + v.Encode()
}

func TestSNSLoginPages(t *testing.T) {
	e := newEnv(t, Options{})
	for _, path := range []string{"/connect/qrconnect", "/connect/oauth2/sns_authorize"} {
		t.Run(path, func(t *testing.T) {
			r := e.get(snsQuery(path, nil))
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "王五") ||
				!strings.Contains(string(r.body), `action="/fake/sns/approve"`) {
				t.Fatalf("status %d; want the picker posting to /fake/sns/approve", r.status)
			}
			form, _ := url.ParseQuery(strings.TrimPrefix(snsQuery("", nil), "?"))
			form.Set("pick", DemoCorpID+"|wangwu")
			q := redirectQuery(t, e.postForm("/fake/sns/approve", form), "https://app.example.com/sns/cb?")
			if q.Get("code") == "" || q.Get("state") != "st8" || q.Has("authCode") {
				t.Errorf("query = %v, want code and state only", q)
			}
		})
	}
	t.Run("auto-approve, snsapi_auth", func(t *testing.T) {
		e.fake.SetAutoApprove(DemoCorpID, "zhangsan")
		defer e.fake.ClearAutoApprove()
		q := redirectQuery(t, e.get(snsQuery("/connect/oauth2/sns_authorize", map[string]string{"scope": "snsapi_auth"})), "https://app.example.com/sns/cb?")
		if q.Get("code") == "" || q.Get("state") != "st8" {
			t.Errorf("query = %v", q)
		}
	})
	t.Run("deny", func(t *testing.T) {
		form, _ := url.ParseQuery(strings.TrimPrefix(snsQuery("", nil), "?"))
		form.Set("deny", "1")
		if q := redirectQuery(t, e.postForm("/fake/sns/approve", form), "https://app.example.com/"); q.Get("error") != "access_denied" {
			t.Errorf("query = %v, want error=access_denied", q)
		}
	})
	for name, changes := range map[string]map[string]string{
		"unknown appid":   {"appid": "nope"},
		"internal appkey": {"appid": DemoAppKey},
		"scope":           {"scope": "openid"},
		"response_type":   {"response_type": "token"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := e.get(snsQuery("/connect/qrconnect", changes)); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
				t.Errorf("status %d, Location %q; want 400 without redirect", r.status, r.header.Get("Location"))
			}
		})
	}
}

func TestSNSUserInfo(t *testing.T) {
	e := newEnv(t, Options{})
	now := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
	signed := func(accessKey, timestamp, signature string) string {
		return "/sns/getuserinfo_bycode?accessKey=" + accessKey + "&timestamp=" + timestamp + "&signature=" + url.QueryEscape(signature)
	}
	good := signed(DemoSNSAppID, now, snsSignature(DemoSNSAppSecret, now))
	issue := func(userID string) string {
		code, err := e.fake.IssueSNSCode(DemoSNSAppID, userID)
		if err != nil {
			t.Fatalf("IssueSNSCode: %v", err)
		}
		return code
	}

	code := issue("184919295227658120")
	m := checkOldOK(t, e.postJSON(good, map[string]string{"tmp_auth_code": code}))
	checkShape(t, m, map[string]string{"errcode": "number", "errmsg": "string", "request_id": "string", "user_info": "object"})
	info := m["user_info"].(map[string]any)
	checkShape(t, info, map[string]string{"nick": "string", "unionid": "string", "openid": "string", "main_org_auth_high_level": "bool"})
	if info["nick"] != "小李" || info["unionid"] != "iPlY4kfMEnV8RkbOLeeiSI2wiEiE" {
		t.Errorf("user_info = %v, want 李四 (nick 小李)", info)
	}

	t.Run("employee of another corp", func(t *testing.T) {
		info := checkOldOK(t, e.postJSON(good, map[string]string{"tmp_auth_code": issue("liuyang")}))["user_info"].(map[string]any)
		if info["unionid"] != "XhLiuYang5pQw8eRt2yUi4oPaiEiE" {
			t.Errorf("unionid = %v, want 刘洋's", info["unionid"])
		}
	})

	skewed := strconv.FormatInt(e.clock.Now().Add(-61*time.Second).UnixMilli(), 10)
	ahead := strconv.FormatInt(e.clock.Now().Add(61*time.Second).UnixMilli(), 10)
	tests := []struct {
		name    string
		path    string
		body    map[string]string
		errcode int
	}{
		{"reused code", good, map[string]string{"tmp_auth_code": code}, 40078},
		{"unknown code", good, map[string]string{"tmp_auth_code": "nope"}, 40078},
		{"authCode field", good, map[string]string{"authCode": issue("zhangsan")}, 41026},
		{"timestamp in seconds is skew", signed(DemoSNSAppID, now[:10], snsSignature(DemoSNSAppSecret, now[:10])), map[string]string{"tmp_auth_code": issue("zhangsan")}, 853002},
		{"timestamp not a number", signed(DemoSNSAppID, "abc", snsSignature(DemoSNSAppSecret, "abc")), nil, 853001},
		{"no timestamp", "/sns/getuserinfo_bycode?accessKey=" + DemoSNSAppID, nil, 853001},
		{"61 s behind", signed(DemoSNSAppID, skewed, snsSignature(DemoSNSAppSecret, skewed)), nil, 853002},
		{"61 s ahead", signed(DemoSNSAppID, ahead, snsSignature(DemoSNSAppSecret, ahead)), nil, 853002},
		{"unknown accessKey", signed("nope", now, snsSignature(DemoSNSAppSecret, now)), nil, 853003},
		{"wrong secret", signed(DemoSNSAppID, now, snsSignature("other", now)), nil, 853004},
		{"signature not URL-encoded", "/sns/getuserinfo_bycode?accessKey=" + DemoSNSAppID + "&timestamp=" + now + "&signature=" + snsSignature(DemoSNSAppSecret, now), nil, 853004},
		{"signature encoded twice", signed(DemoSNSAppID, now, url.QueryEscape(snsSignature(DemoSNSAppSecret, now))), nil, 853004},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkOldError(t, e.postJSON(tt.path, tt.body), tt.errcode) })
	}

	t.Run("59 s off is fine", func(t *testing.T) {
		ts := strconv.FormatInt(e.clock.Now().Add(-59*time.Second).UnixMilli(), 10)
		checkOldOK(t, e.postJSON(signed(DemoSNSAppID, ts, snsSignature(DemoSNSAppSecret, ts)), map[string]string{"tmp_auth_code": issue("wangwu")}))
	})
	t.Run("expired code", func(t *testing.T) {
		code := issue("wangwu")
		e.clock.Advance(5*time.Minute + time.Second)
		ts := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
		checkOldError(t, e.postJSON(signed(DemoSNSAppID, ts, snsSignature(DemoSNSAppSecret, ts)), map[string]string{"tmp_auth_code": code}), 40078)
	})
}
