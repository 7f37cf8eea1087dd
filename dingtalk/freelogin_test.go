package dingtalk

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestUserInfoByAuthCode(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/getuserinfo", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/v2/user/getuserinfo", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"code":"` + testCode + `"}`,
		})
		serveFile(t, "getuserinfo.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)
	got, err := c.UserInfoByAuthCode(t.Context(), testCode)
	if err != nil {
		t.Fatalf("UserInfoByAuthCode: %v", err)
	}
	want := &AuthCodeUser{
		UserID: "userid123", UnionID: "gliiW0piiii02zBUjUxxxx", AssociatedUnionID: "N2o5U3axxxx",
		Name: "张xx", DeviceID: "12drtfxxxxx", Sys: true, SysLevel: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AuthCodeUser = %+v, want %+v", got, want)
	}
}

func TestUserInfoByAuthCodeLegacy(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/user/getuserinfo", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodGet, path: "/user/getuserinfo",
			query:  url.Values{"access_token": {testAppToken}, "code": {testCode}},
			header: oldAPIHeaders,
		})
		serveFile(t, "getuserinfo_legacy.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)
	got, err := c.UserInfoByAuthCodeLegacy(t.Context(), testCode)
	if err != nil {
		t.Fatalf("UserInfoByAuthCodeLegacy: %v", err)
	}
	want := &AuthCodeUser{UserID: "user456", Name: "张xx", DeviceID: "12drtfxxxxx", Sys: true, SysLevel: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AuthCodeUser = %+v, want %+v", got, want)
	}
}

func TestUserInfoByAuthCodeInvalidCode(t *testing.T) {
	tests := []struct {
		name, path string
		call       func(*Client) error
	}{
		{"v2", "/topapi/v2/user/getuserinfo", func(c *Client) error { _, err := c.UserInfoByAuthCode(t.Context(), testCode); return err }},
		{"legacy", "/user/getuserinfo", func(c *Client) error { _, err := c.UserInfoByAuthCodeLegacy(t.Context(), testCode); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(tt.path, serveFile(t, "error_old.json", http.StatusOK))
			c, _ := newTestClient(t, srv)
			err := tt.call(c)
			checkIs(t, err, ErrInvalidCode)
			if n := srv.count(tt.path); n != 1 {
				t.Errorf("calls = %d, want 1", n)
			}
		})
	}
}

func TestUserByAuthCode(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/getuserinfo", serveFile(t, "getuserinfo.json", http.StatusOK))
	srv.handle("/topapi/v2/user/get", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/v2/user/get", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"userid":"userid123","language":"zh_CN"}`,
		})
		serveBytes("application/json", http.StatusOK,
			[]byte(`{"errcode":0,"result":{"userid":"userid123","unionid":"gliiW0piiii02zBUjUxxxx","name":"张xx"}}`))(w, r)
	})
	c, _ := newTestClient(t, srv)
	got, err := c.UserByAuthCode(t.Context(), testCode)
	if err != nil {
		t.Fatalf("UserByAuthCode: %v", err)
	}
	if got.CorpID != testCorpID || got.UserID != "userid123" || got.UnionID != "gliiW0piiii02zBUjUxxxx" || got.User == nil {
		t.Errorf("Identity = %+v, want corp %s, user userid123 with details", got, testCorpID)
	}
	if n := srv.count("/v1.0/oauth2/accessToken"); n != 1 {
		t.Errorf("app token calls = %d, want 1 (cached between the two calls)", n)
	}
}
