package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestLeavingEndsSignIns: once DingTalk says a person left the corp
// (user_leave_org), the bridge's session they signed in with no longer
// signs them in to another app (single sign-on), and signing in again is
// refused. Before the fix the identity was disabled but the session went on
// until it expired. On Postgres, as in production.
func TestLeavingEndsSignIns(t *testing.T) {
	w := startSigninDemoOn(t, pgtest.NewEmptyDatabaseURL(t))
	onOA := func(c *http.Client) bool {
		t.Helper()
		status, u, _ := fetch(t, c, http.MethodGet, w.oaURL+"/login")
		return status == http.StatusOK && "http://"+u.Host == w.oaURL
	}
	signIn := func(userID string) *http.Client {
		t.Helper()
		c := jarClient(t)
		if status, u, body := w.signInThrough(t, c, w.wikiURL+"/login", userID); status != http.StatusOK || "http://"+u.Host != w.wikiURL {
			t.Fatalf("%s's sign-in: %d at %s:\n%.400s", userID, status, u, body)
		}
		return c
	}
	// Single sign-on works in this world: 李四 opens the second app without
	// DingTalk.
	if lisi := signIn("184919295227658120"); !onOA(lisi) {
		t.Fatal("single sign-on to the second app did not work; the test below would prove nothing")
	}

	zhangsan := signIn("zhangsan")
	if err := w.sim.PushEvent(t.Context(), w.bridgeURL+"/dingtalk/events/"+fake.DemoCorpID, fake.DemoCorpID, "user_leave_org", []string{"zhangsan"}); err != nil {
		t.Fatalf("user_leave_org: %v", err)
	}
	if onOA(zhangsan) {
		t.Error("after leaving the corp, the bridge session still signs 张三 in to another app")
	}
	if status, u, body := w.signInThrough(t, zhangsan, w.oaURL+"/login", "zhangsan"); "http://"+u.Host == w.oaURL || !strings.Contains(body, "账号无法登录") {
		t.Errorf("signing in again after leaving: %d at %s, want the refusal page:\n%.400s", status, u, body)
	}
	if !onOA(signIn("wangwu")) {
		t.Error("another person's single sign-on stopped working")
	}
}
