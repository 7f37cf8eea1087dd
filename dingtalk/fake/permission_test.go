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
