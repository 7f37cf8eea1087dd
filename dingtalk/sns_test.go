package dingtalk

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSNSSignature(t *testing.T) {
	// Test vector from the protocol notes (§6.3).
	const want = "HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE="
	got := SNSSignature("testappSecret", "1546084445901")
	if got != want {
		t.Errorf("SNSSignature = %q, want %q", got, want)
	}
	if enc, want := url.QueryEscape(got), "HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D"; enc != want {
		t.Errorf("encoded = %q, want %q", enc, want)
	}
}

func TestSNSAuthURL(t *testing.T) {
	tests := []struct {
		name     string
		appID    string
		inClient bool
		want     string
	}{
		{"qr", testSNSAppID, false, "https://oapi.dingtalk.com/connect/qrconnect?appid=" + testSNSAppID +
			"&response_type=code&scope=snsapi_login&state=st%2B1&redirect_uri=https%3A%2F%2Fidp.example.com%2Fcb%2Fsns"},
		{"in client", testSNSAppID, true, "https://oapi.dingtalk.com/connect/oauth2/sns_authorize?appid=" + testSNSAppID +
			"&response_type=code&scope=snsapi_auth&state=st%2B1&redirect_uri=https%3A%2F%2Fidp.example.com%2Fcb%2Fsns"},
		{"not configured", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AppKey: testAppKey, AppSecret: testAppSecret}
			if tt.appID != "" {
				cfg.SNSAppID, cfg.SNSAppSecret = tt.appID, testSNSSecret
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SNSAuthURL("https://idp.example.com/cb/sns", "st+1", tt.inClient); got != tt.want {
				t.Errorf("SNSAuthURL =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestSNSUserInfoByCode(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/sns/getuserinfo_bycode", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/sns/getuserinfo_bycode",
			query: url.Values{
				"accessKey": {testSNSAppID},
				"timestamp": {"1546084445901"},
				"signature": {"HCbG3xNE3vzhO+u7qCUL1jS5hsu2n5r2cFhnTrtyDAE="},
			},
			header: oldAPIHeaders,
			body:   `{"tmp_auth_code":"` + testCode + `"}`,
		})
		// Encoded exactly once on the wire.
		if !strings.Contains(r.URL.RawQuery, "signature=HCbG3xNE3vzhO%2Bu7qCUL1jS5hsu2n5r2cFhnTrtyDAE%3D") {
			t.Errorf("raw query = %s, want the signature encoded once", r.URL.RawQuery)
		}
		serveFile(t, "sns_getuserinfo_bycode.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv, func(c *Config) {
		c.SNSAppID, c.SNSAppSecret = testSNSAppID, "testappSecret"
		c.Now = func() time.Time { return time.UnixMilli(1546084445901) }
	})
	got, err := c.SNSUserInfoByCode(t.Context(), testCode)
	if err != nil {
		t.Fatalf("SNSUserInfoByCode: %v", err)
	}
	want := SNSUser{Nick: "名字", UnionID: "dingdkjjojoixxxx", OpenID: "dingsdsqwlklklxxxx", MainOrgAuthHighLevel: true}
	if *got != want {
		t.Errorf("SNSUser = %+v, want %+v", *got, want)
	}
	if n := srv.count("/v1.0/oauth2/accessToken"); n != 0 {
		t.Errorf("app token calls = %d, want 0", n)
	}
}

func TestSNSNotConfigured(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv)
	_, err := c.SNSUserInfoByCode(t.Context(), testCode)
	checkIs(t, err, ErrSNSNotConfigured)
}

func TestSNSErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		target error
	}{
		{"bad access key", `{"errcode":853003,"errmsg":"accessKey不合法"}`, ErrBadCredentials},
		{"wrong field name", `{"errcode":41026,"errmsg":"缺少参数tmp_auth_code"}`, ErrInvalidCode},
		{"used code", `{"errcode":40078,"errmsg":"不存在的临时授权码"}`, ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle("/sns/getuserinfo_bycode", serveBytes("application/json", http.StatusOK, []byte(tt.body)))
			c, _ := newTestClient(t, srv, withSNS)
			_, err := c.SNSUserInfoByCode(t.Context(), testCode)
			checkIs(t, err, tt.target)
		})
	}
}

func TestUserBySNSCode(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/sns/getuserinfo_bycode", serveFile(t, "sns_getuserinfo_bycode.json", http.StatusOK))
	srv.handle("/topapi/user/getbyunionid", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/user/getbyunionid", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"unionid":"dingdkjjojoixxxx"}`,
		})
		serveFile(t, "getbyunionid.json", http.StatusOK)(w, r)
	})
	srv.handle("/topapi/v2/user/get", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":0,"result":{"userid":"zhangsan","name":"张三"}}`)))
	c, _ := newTestClient(t, srv, withSNS)
	got, err := c.UserBySNSCode(t.Context(), testCode)
	if err != nil {
		t.Fatalf("UserBySNSCode: %v", err)
	}
	if got.UserID != "zhangsan" || got.UnionID != "dingdkjjojoixxxx" || got.OpenID != "dingsdsqwlklklxxxx" || got.CorpID != testCorpID {
		t.Errorf("Identity = %+v, want zhangsan / dingdkjjojoixxxx / dingsdsqwlklklxxxx in %s", got, testCorpID)
	}
}
