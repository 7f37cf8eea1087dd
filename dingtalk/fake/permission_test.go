package fake_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// The simulator's permission error carries requiredScopes as DingTalk's
// does, and the real client reads it.
func TestContractPermissionDenied(t *testing.T) {
	sim := fake.New(fake.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := dingtalk.New(dingtalk.Config{APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL,
		CorpID: fake.DemoCorpID, AppKey: fake.DemoAppKey, AppSecret: fake.DemoAppSecret})
	if err != nil {
		t.Fatal(err)
	}
	code, err := sim.IssueLoginCode(fake.DemoAppKey, fake.DemoCorpID, "zhangsan", true)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.UserToken(t.Context(), code)
	if err != nil {
		t.Fatal(err)
	}
	sim.SetDeniedScopes(fake.DemoAppKey, "Contact.User.Read")
	_, err = c.Me(t.Context(), tok.AccessToken)
	var apiErr *dingtalk.APIError
	if !errors.As(err, &apiErr) || !errors.Is(err, dingtalk.ErrPermissionDenied) ||
		!slices.Equal(apiErr.RequiredScopes, []string{"Contact.User.Read"}) || apiErr.HTTPStatus != http.StatusForbidden {
		t.Errorf("Me without Contact.User.Read = %v, want a 403 permission error requiring Contact.User.Read", err)
	}
	sim.SetDeniedScopes(fake.DemoAppKey)
	if _, err := c.Me(t.Context(), tok.AccessToken); err != nil {
		t.Errorf("Me after the permission is granted again = %v", err)
	}
}

// Without the member permission the old API's getbyunionid and
// v2/user/get answer errcode 60011 (HTTP 200), which names no permission;
// the real client reads it as a permission error.
func TestContractMemberPermissionDenied(t *testing.T) {
	sim := fake.New(fake.Options{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := dingtalk.New(dingtalk.Config{APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL,
		CorpID: fake.DemoCorpID, AppKey: fake.DemoAppKey, AppSecret: fake.DemoAppSecret})
	if err != nil {
		t.Fatal(err)
	}
	const unionID = "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ" // zhangsan
	sim.SetDeniedScopes(fake.DemoAppKey, "qyapi_get_member")
	for name, call := range map[string]func() error{
		"UserIDByUnionID": func() error { _, _, err := c.UserIDByUnionID(t.Context(), unionID); return err },
		"User":            func() error { _, err := c.User(t.Context(), "zhangsan"); return err },
	} {
		err := call()
		var apiErr *dingtalk.APIError
		if !errors.As(err, &apiErr) || !errors.Is(err, dingtalk.ErrPermissionDenied) ||
			apiErr.Code != "60011" || apiErr.HTTPStatus != http.StatusOK || len(apiErr.RequiredScopes) != 0 {
			t.Errorf("%s without qyapi_get_member = %v, want errcode 60011 (HTTP 200) matching ErrPermissionDenied", name, err)
		}
	}
	// Another app of another corp keeps its permission.
	c2, err := dingtalk.New(dingtalk.Config{APIBaseURL: srv.URL, OAPIBaseURL: srv.URL, LoginBaseURL: srv.URL,
		CorpID: fake.DemoCorp2ID, AppKey: fake.DemoApp2Key, AppSecret: fake.DemoApp2Secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.User(t.Context(), "liuyang"); err != nil {
		t.Errorf("User with another app = %v", err)
	}
	sim.SetDeniedScopes(fake.DemoAppKey)
	if _, err := c.User(t.Context(), "zhangsan"); err != nil {
		t.Errorf("User after the permission is granted again = %v", err)
	}
}
