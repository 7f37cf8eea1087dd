package fake

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func TestAppToken(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.postJSON("/v1.0/oauth2/accessToken", map[string]string{"appKey": DemoAppKey, "appSecret": DemoAppSecret})
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.status)
	}
	m := r.json(t)
	checkShape(t, m, map[string]string{"accessToken": "string", "expireIn": "number"})
	if m["expireIn"] != json.Number("7200") {
		t.Errorf("expireIn = %v, want 7200", m["expireIn"])
	}
	if r.header.Get("x-acs-request-id") == "" {
		t.Error("x-acs-request-id missing on success")
	}
	first := m["accessToken"].(string)

	// Within validity the same token comes back, and its life is extended.
	e.clock.Advance(7000 * time.Second)
	if got := e.appToken(DemoAppKey, DemoAppSecret); got != first {
		t.Errorf("second token = %q, want the first %q", got, first)
	}
	if got := e.appToken(DemoApp2Key, DemoApp2Secret); got == first {
		t.Error("another app got the same token")
	}
	e.clock.Advance(7000 * time.Second)
	checkOldOK(t, e.postJSON("/topapi/user/getbyunionid?access_token="+first,
		map[string]string{"unionid": "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ"}))

	// After expiry a new token is issued.
	e.clock.Advance(7201 * time.Second)
	if got := e.appToken(DemoAppKey, DemoAppSecret); got == first {
		t.Error("token after expiry is the expired one")
	}

	for _, body := range []map[string]string{
		{"appKey": DemoAppKey, "appSecret": "wrong"},
		{"appKey": "nope", "appSecret": DemoAppSecret},
		{"appkey": DemoAppKey, "appsecret": DemoAppSecret},
		{},
	} {
		checkNewError(t, e.postJSON("/v1.0/oauth2/accessToken", body), http.StatusBadRequest, "invalidClientIdOrSecret")
	}
}

func TestCorpToken(t *testing.T) {
	e := newEnv(t, Options{AppTokenTTL: time.Hour})
	good := map[string]string{"client_id": DemoAppKey, "client_secret": DemoAppSecret, "grant_type": "client_credentials"}
	r := e.postJSON("/v1.0/oauth2/"+DemoCorpID+"/token", good)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", r.status, r.body)
	}
	m := r.json(t)
	checkShape(t, m, map[string]string{"access_token": "string", "expires_in": "number"})
	if m["expires_in"] != json.Number("3600") {
		t.Errorf("expires_in = %v, want 3600 (AppTokenTTL)", m["expires_in"])
	}
	if got := e.appToken(DemoAppKey, DemoAppSecret); got != m["access_token"] {
		t.Errorf("A1 token = %q, want the A3 token %v", got, m["access_token"])
	}

	tests := []struct {
		name   string
		corpID string
		body   map[string]string
		status int
		code   string
	}{
		{"unknown corp", "dingnope", good, http.StatusInternalServerError, "unknownError"},
		{"grant type", DemoCorpID, map[string]string{"client_id": DemoAppKey, "client_secret": DemoAppSecret, "grant_type": "password"}, http.StatusBadRequest, "unsupported.grant.type"},
		{"bad secret", DemoCorpID, map[string]string{"client_id": DemoAppKey, "client_secret": "x", "grant_type": "client_credentials"}, http.StatusBadRequest, "invalid.client"},
		{"app of another corp", DemoCorp2ID, good, http.StatusUnauthorized, "unauthorized.client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNewError(t, e.postJSON("/v1.0/oauth2/"+tt.corpID+"/token", tt.body), tt.status, tt.code)
		})
	}
}

func TestUserToken(t *testing.T) {
	e := newEnv(t, Options{})
	exchange := func(clientID, secret, code string) response {
		return e.postJSON("/v1.0/oauth2/userAccessToken", map[string]string{
			"clientId": clientID, "clientSecret": secret, "code": code, "grantType": "authorization_code",
		})
	}
	issue := func(withCorp bool) string {
		code, err := e.fake.IssueLoginCode(DemoAppKey, DemoCorpID, "zhangsan", withCorp)
		if err != nil {
			t.Fatalf("IssueLoginCode: %v", err)
		}
		return code
	}

	t.Run("scope openid corpid", func(t *testing.T) {
		m := e.userToken(DemoAppKey, DemoAppSecret, issue(true))
		checkShape(t, m, map[string]string{"accessToken": "string", "refreshToken": "string", "expireIn": "number", "corpId": "string"})
		if m["corpId"] != DemoCorpID || m["expireIn"] != json.Number("7200") {
			t.Errorf("corpId, expireIn = %v, %v, want %s, 7200", m["corpId"], m["expireIn"], DemoCorpID)
		}
	})
	t.Run("scope openid", func(t *testing.T) {
		m := e.userToken(DemoAppKey, DemoAppSecret, issue(false))
		checkShape(t, m, map[string]string{"accessToken": "string", "refreshToken": "string", "expireIn": "number"})
	})
	t.Run("foreign corp employee", func(t *testing.T) {
		code, _ := e.fake.IssueLoginCode(DemoAppKey, DemoCorp2ID, "liuyang", true)
		if m := e.userToken(DemoAppKey, DemoAppSecret, code); m["corpId"] != DemoCorp2ID {
			t.Errorf("corpId = %v, want %s", m["corpId"], DemoCorp2ID)
		}
	})
	t.Run("reused code", func(t *testing.T) {
		code := issue(false)
		e.userToken(DemoAppKey, DemoAppSecret, code)
		checkNewError(t, exchange(DemoAppKey, DemoAppSecret, code), http.StatusBadRequest, "invalidCode")
	})
	t.Run("expired code", func(t *testing.T) {
		code := issue(false)
		e.clock.Advance(5*time.Minute + time.Second)
		checkNewError(t, exchange(DemoAppKey, DemoAppSecret, code), http.StatusBadRequest, "invalidCode")
	})
	t.Run("code of another client", func(t *testing.T) {
		code := issue(false)
		checkNewError(t, exchange(DemoApp2Key, DemoApp2Secret, code), http.StatusBadRequest, "invalidCode")
		e.userToken(DemoAppKey, DemoAppSecret, code) // still good for its own client
	})
	t.Run("JSAPI code", func(t *testing.T) {
		code, _ := e.fake.IssueJSAPICode(DemoCorpID, DemoAppKey, "zhangsan")
		checkNewError(t, exchange(DemoAppKey, DemoAppSecret, code), http.StatusBadRequest, "invalidCode")
	})
	t.Run("bad secret", func(t *testing.T) {
		checkNewError(t, exchange(DemoAppKey, "wrong", issue(false)), http.StatusBadRequest, "invalidClientIdOrSecret")
	})
	t.Run("refresh", func(t *testing.T) {
		m := e.userToken(DemoAppKey, DemoAppSecret, issue(true))
		r := e.postJSON("/v1.0/oauth2/userAccessToken", map[string]string{
			"clientId": DemoAppKey, "clientSecret": DemoAppSecret, "refreshToken": m["refreshToken"].(string), "grantType": "refresh_token",
		})
		if r.status != http.StatusOK {
			t.Fatalf("refresh: status %d: %s", r.status, r.body)
		}
		got := r.json(t)
		checkShape(t, got, map[string]string{"accessToken": "string", "refreshToken": "string", "expireIn": "number", "corpId": "string"})
		if got["accessToken"] == m["accessToken"] {
			t.Error("refresh returned the old access token")
		}
		bad := e.postJSON("/v1.0/oauth2/userAccessToken", map[string]string{
			"clientId": DemoAppKey, "clientSecret": DemoAppSecret, "refreshToken": "nope", "grantType": "refresh_token",
		})
		checkNewError(t, bad, http.StatusBadRequest, "invalidRefreshToken")
	})
	t.Run("grant type", func(t *testing.T) {
		r := e.postJSON("/v1.0/oauth2/userAccessToken", map[string]string{
			"clientId": DemoAppKey, "clientSecret": DemoAppSecret, "code": issue(false), "grantType": "client_credentials",
		})
		checkNewError(t, r, http.StatusBadRequest, "unsupported.grant.type")
	})
}

func TestContactUser(t *testing.T) {
	e := newEnv(t, Options{})
	login := func(corpID, userID string) string {
		code, err := e.fake.IssueLoginCode(DemoAppKey, corpID, userID, false)
		if err != nil {
			t.Fatalf("IssueLoginCode: %v", err)
		}
		return e.userToken(DemoAppKey, DemoAppSecret, code)["accessToken"].(string)
	}
	token := login(DemoCorpID, "zhangsan")
	withToken := func(tok string) http.Header { return http.Header{"X-Acs-Dingtalk-Access-Token": {tok}} }

	r := e.do(http.MethodGet, "/v1.0/contact/users/me", withToken(token), nil)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	m := r.json(t)
	checkShape(t, m, map[string]string{
		"nick": "string", "avatarUrl": "string", "mobile": "string", "openId": "string",
		"unionId": "string", "email": "string", "stateCode": "string",
	})
	if m["unionId"] != "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ" || m["nick"] != "张三" || m["email"] != "zhangsan@example.com" {
		t.Errorf("profile = %v, want 张三's", m)
	}

	t.Run("by unionId", func(t *testing.T) {
		r := e.do(http.MethodGet, "/v1.0/contact/users/XhLiuYang5pQw8eRt2yUi4oPaiEiE", withToken(token), nil)
		if got := r.json(t)["nick"]; got != "刘洋" {
			t.Errorf("nick = %v, want 刘洋", got)
		}
	})
	t.Run("left the corp", func(t *testing.T) {
		r := e.do(http.MethodGet, "/v1.0/contact/users/me", withToken(login(DemoCorpID, "zhaoliu")), nil)
		if r.status != http.StatusOK || r.json(t)["nick"] != "赵六" {
			t.Errorf("status %d, body %s; want 赵六's profile", r.status, r.body)
		}
	})

	appToken := e.appToken(DemoAppKey, DemoAppSecret)
	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
		code   string
	}{
		{"no token", "/v1.0/contact/users/me", nil, http.StatusBadRequest, "AuthenticationFailed.MissingParameter"},
		{"bearer", "/v1.0/contact/users/me", http.Header{"Authorization": {"Bearer " + token}}, http.StatusBadRequest, "AuthenticationFailed.MissingParameter"},
		{"query", "/v1.0/contact/users/me?access_token=" + token, nil, http.StatusBadRequest, "AuthenticationFailed.MissingParameter"},
		{"bad token", "/v1.0/contact/users/me", withToken("garbage"), http.StatusBadRequest, "InvalidAuthentication"},
		{"app token", "/v1.0/contact/users/me", withToken(appToken), http.StatusForbidden, "Forbidden.AccessDenied.AccessTokenPermissionDenied"},
		{"unknown unionId", "/v1.0/contact/users/nobody", withToken(token), http.StatusNotFound, "invalidParameter.user.notFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNewError(t, e.do(http.MethodGet, tt.path, tt.header, nil), tt.status, tt.code)
		})
	}

	t.Run("expired token", func(t *testing.T) {
		e.clock.Advance(7200 * time.Second)
		checkNewError(t, e.do(http.MethodGet, "/v1.0/contact/users/me", withToken(token), nil),
			http.StatusBadRequest, "InvalidAuthentication")
	})
}
