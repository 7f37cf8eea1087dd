package dingtalk

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestAuthCodeURL(t *testing.T) {
	const base = "https://login.dingtalk.com/oauth2/auth?redirect_uri=https%3A%2F%2Fidp.example.com%2Fcb%2Fdingtalk" +
		"&response_type=code&client_id=" + testAppKey + "&scope=openid%20corpid&prompt=consent"
	tests := []struct {
		name string
		p    AuthCodeParams
		want string
	}{
		{
			name: "minimal",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk"},
			want: base,
		},
		{
			name: "state",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", State: "Zx81k"},
			want: base + "&state=Zx81k",
		},
		{
			name: "state needing escapes",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", State: "a b+c&d=e/f"},
			want: base + "&state=a%20b%2Bc%26d%3De%2Ff",
		},
		{
			name: "corp and org type",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", State: "s", CorpID: testCorpID, OrgType: "management"},
			want: base + "&state=s&org_type=management&corpId=" + testCorpID,
		},
		{
			name: "exclusive login",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", State: "s", ExclusiveLogin: true, ExclusiveCorpID: "dingexcl"},
			want: base + "&state=s&exclusiveLogin=true&exclusiveCorpId=dingexcl",
		},
		{
			name: "exclusive corp without exclusive login is dropped",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", ExclusiveCorpID: "dingexcl"},
			want: base,
		},
		{
			name: "extra scopes",
			p:    AuthCodeParams{RedirectURI: "https://idp.example.com/cb/dingtalk", ExtraScopes: []string{"Contact.User.Read", "Contact.User.mobile"}},
			want: "https://login.dingtalk.com/oauth2/auth?redirect_uri=https%3A%2F%2Fidp.example.com%2Fcb%2Fdingtalk" +
				"&response_type=code&client_id=" + testAppKey +
				"&scope=openid%20corpid%20Contact.User.Read%20Contact.User.mobile&prompt=consent",
		},
	}
	c, err := New(Config{AppKey: testAppKey, AppSecret: testAppSecret})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.AuthCodeURL(tt.p); got != tt.want {
				t.Errorf("AuthCodeURL =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestCodeFromCallback(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{"authCode", "authCode=ac1&state=s", "ac1"},
		{"code only", "code=c1&state=s", "c1"},
		{"both prefer authCode", "code=c1&authCode=ac1", "ac1"},
		{"empty authCode falls back", "authCode=&code=c1", "c1"},
		{"none", "error=denied&state=s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := CodeFromCallback(q); got != tt.want {
				t.Errorf("CodeFromCallback(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestUserTokenExchange(t *testing.T) {
	tests := []struct {
		name string
		call func(*Client) (*UserToken, error)
		body string
	}{
		{
			name: "authorization code",
			call: func(c *Client) (*UserToken, error) { return c.UserToken(t.Context(), testCode) },
			body: `{"clientId":"` + testAppKey + `","clientSecret":"` + testAppSecret + `","code":"` + testCode + `","grantType":"authorization_code"}`,
		},
		{
			name: "refresh token",
			call: func(c *Client) (*UserToken, error) { return c.RefreshUserToken(t.Context(), testRefreshToken) },
			body: `{"clientId":"` + testAppKey + `","clientSecret":"` + testAppSecret + `","refreshToken":"` + testRefreshToken + `","grantType":"refresh_token"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle("/v1.0/oauth2/userAccessToken", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, wantRequest{
					method: http.MethodPost, path: "/v1.0/oauth2/userAccessToken",
					header: map[string]string{headerUserToken: ""},
					body:   tt.body,
				})
				serveFile(t, "user_token.json", http.StatusOK)(w, r)
			})
			c, _ := newTestClient(t, srv)
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			want := &UserToken{
				AccessToken: testUserToken, RefreshToken: testRefreshToken,
				ExpiresAt: testNow.Add(7200 * time.Second), CorpID: testCorpID,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("UserToken = %#v, want %#v", got, want)
			}
			if n := srv.count("/v1.0/oauth2/accessToken"); n != 0 {
				t.Errorf("app token calls = %d, want 0: the exchange needs none", n)
			}
		})
	}
}

func TestUserTokenInvalidCodeNotRetried(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/v1.0/oauth2/userAccessToken", serveFile(t, "error_invalid_code.json", http.StatusBadRequest))
	c, _ := newTestClient(t, srv)
	_, err := c.UserToken(t.Context(), testCode)
	checkIs(t, err, ErrInvalidCode)
	checkAPIError(t, err, APIError{Endpoint: "/v1.0/oauth2/userAccessToken", HTTPStatus: 400, Code: "invalidCode",
		Message: "无效的授权码", RequestID: "2C5E4C1B-5B3A-7A0D-9F1E-8A7B6C5D4E3F"})
	if n := srv.count("/v1.0/oauth2/userAccessToken"); n != 1 {
		t.Errorf("exchange calls = %d, want 1", n)
	}
}

func TestEmptyInputsFailWithoutACall(t *testing.T) {
	srv := newTestServer(t)
	c, _ := newTestClient(t, srv, withSNS)
	tests := []struct {
		name   string
		call   func() error
		target error
	}{
		{"UserToken", func() error { _, err := c.UserToken(t.Context(), ""); return err }, ErrInvalidCode},
		{"RefreshUserToken", func() error { _, err := c.RefreshUserToken(t.Context(), ""); return err }, ErrTokenInvalid},
		{"Me", func() error { _, err := c.Me(t.Context(), ""); return err }, ErrTokenInvalid},
		{"UserInfoByAuthCode", func() error { _, err := c.UserInfoByAuthCode(t.Context(), ""); return err }, ErrInvalidCode},
		{"UserInfoByAuthCodeLegacy", func() error { _, err := c.UserInfoByAuthCodeLegacy(t.Context(), ""); return err }, ErrInvalidCode},
		{"SNSUserInfoByCode", func() error { _, err := c.SNSUserInfoByCode(t.Context(), ""); return err }, ErrInvalidCode},
		{"UserIDByUnionID", func() error { _, _, err := c.UserIDByUnionID(t.Context(), ""); return err }, nil},
		{"User", func() error { _, err := c.User(t.Context(), ""); return err }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			if tt.target != nil {
				checkIs(t, err, tt.target)
			}
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.hits) != 0 {
		t.Errorf("requests = %v, want none", srv.hits)
	}
}

func TestUserTokenHidesTokens(t *testing.T) {
	tok := &UserToken{AccessToken: testUserToken, RefreshToken: testRefreshToken, ExpiresAt: testNow, CorpID: testCorpID}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("login", "token", tok, "value", *tok)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("login", "token", tok, "value", *tok)
	for name, text := range map[string]string{
		"slog text":     text.String(),
		"slog json":     js.String(),
		"fmt %v":        fmt.Sprintf("%v", tok),
		"fmt %+v value": fmt.Sprintf("%+v", *tok),
		"fmt %s":        fmt.Sprintf("%s", tok),
	} {
		checkNoSecrets(t, text)
		if !bytes.Contains([]byte(text), []byte(testCorpID)) {
			t.Errorf("%s output %q, want the corp id", name, text)
		}
	}
}

func TestMe(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/v1.0/contact/users/me", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodGet, path: "/v1.0/contact/users/me",
			header: map[string]string{headerUserToken: testUserToken, "Authorization": ""},
		})
		serveFile(t, "users_me.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)
	got, err := c.Me(t.Context(), testUserToken)
	if err != nil {
		t.Fatalf("Me: %v", err)
	}
	want := &Profile{
		Nick: "zhangsan", AvatarURL: "https://xxx", Mobile: "150xxxx9144", StateCode: "86",
		OpenID: "123", UnionID: testUnionID, Email: "zhangsan@example.com",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Profile = %+v, want %+v", got, want)
	}
}

func TestMeWithoutUnionID(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/v1.0/contact/users/me", serveBytes("application/json", http.StatusOK, []byte(`{"nick":"x"}`)))
	c, _ := newTestClient(t, srv)
	_, err := c.Me(t.Context(), testUserToken)
	checkIs(t, err, ErrBadResponse)
}

// loginServer serves a whole web login: user token, profile, unionId lookup
// and user details; getbyunionid answers with unionFile.
func loginServer(t *testing.T, tokenBody, unionFile string) *testServer {
	t.Helper()
	srv := newTestServer(t)
	srv.handle("/v1.0/oauth2/userAccessToken", serveBytes("application/json", http.StatusOK, []byte(tokenBody)))
	srv.handle("/v1.0/contact/users/me", serveFile(t, "users_me.json", http.StatusOK))
	srv.handle("/topapi/user/getbyunionid", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/user/getbyunionid", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"unionid":"` + testUnionID + `"}`,
		})
		serveFile(t, unionFile, http.StatusOK)(w, r)
	})
	srv.handle("/topapi/v2/user/get", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":0,"result":{"userid":"zhangsan","unionid":"`+testUnionID+`","name":"张三","active":true}}`)))
	return srv
}

func TestUserByOAuthCode(t *testing.T) {
	srv := loginServer(t, string(readTestdata(t, "user_token.json")), "getbyunionid.json")
	c, _ := newTestClient(t, srv)
	got, err := c.UserByOAuthCode(t.Context(), testCode)
	if err != nil {
		t.Fatalf("UserByOAuthCode: %v", err)
	}
	if got.CorpID != testCorpID || got.UserID != "zhangsan" || got.UnionID != testUnionID || got.OpenID != "123" {
		t.Errorf("Identity = %+v, want corp %s, user zhangsan, union %s, open 123", got, testCorpID, testUnionID)
	}
	if got.Profile == nil || got.Profile.Nick != "zhangsan" {
		t.Errorf("Profile = %+v, want nick zhangsan", got.Profile)
	}
	if got.User == nil || got.User.Name != "张三" || !got.User.Active {
		t.Errorf("User = %+v, want active 张三", got.User)
	}
}

func TestUserByOAuthCodeRefusals(t *testing.T) {
	tests := []struct {
		name      string
		tokenBody string
		unionFile string
		target    error
	}{
		{"other corp", `{"accessToken":"` + testUserToken + `","expireIn":7200,"corpId":"dingother"}`, "getbyunionid.json", ErrCorpMismatch},
		{"no corp in token", `{"accessToken":"` + testUserToken + `","expireIn":7200}`, "getbyunionid.json", ErrCorpMismatch},
		{"not in the corp", string(readTestdata(t, "user_token.json")), "error_not_member.json", ErrNotMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := loginServer(t, tt.tokenBody, tt.unionFile)
			c, _ := newTestClient(t, srv)
			_, err := c.UserByOAuthCode(t.Context(), testCode)
			checkIs(t, err, tt.target)
			if n := srv.count("/topapi/v2/user/get"); n != 0 {
				t.Errorf("user detail calls = %d, want 0", n)
			}
		})
	}
}

func TestUserByOAuthCodeExternalContact(t *testing.T) {
	srv := loginServer(t, string(readTestdata(t, "user_token.json")), "getbyunionid.json")
	srv.handle("/topapi/user/getbyunionid", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":0,"errmsg":"ok","result":{"contact_type":1,"userid":"ext01"}}`)))
	c, _ := newTestClient(t, srv)
	_, err := c.UserByOAuthCode(t.Context(), testCode)
	checkIs(t, err, ErrNotMember)
}
