package main

import (
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// TestBrowserIdentitySearchEachIdentifier: on the identities page an
// administrator finds 王五 by each identifier a person might be known by:
// DingTalk name, userId, unionId, mobile, job number and org email, each
// typed into the search box as a person would.
func TestBrowserIdentitySearchEachIdentifier(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")

	var wangwu fake.Employee
	for _, e := range w.fixture.Corps[0].Employees {
		if e.UserID == "wangwu" {
			wangwu = e
		}
	}
	if wangwu.UnionID == "" {
		t.Fatal("the demo has no wangwu")
	}
	var all int
	browse(t, ctx, "identities", chromedp.Navigate(w.bridgeURL+"/admin/identities"),
		chromedp.WaitVisible("#identities", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#identities tbody tr").length`, &all))
	row := `#identities tr[data-user-id="wangwu"]`
	for _, tt := range []struct{ what, q string }{
		{"DingTalk name", wangwu.Name}, {"userId", wangwu.UserID}, {"unionId", wangwu.UnionID},
		{"mobile", wangwu.Mobile}, {"job number", wangwu.JobNumber}, {"org email", wangwu.OrgEmail},
	} {
		var rows int
		browse(t, ctx, "search by "+tt.what, chromedp.Navigate(w.bridgeURL+"/admin/identities"),
			chromedp.WaitVisible("#q", chromedp.ByQuery),
			chromedp.SendKeys("#q", tt.q, chromedp.ByQuery), chromedp.Submit("#q", chromedp.ByQuery),
			// The results page, not the page typed on: the server fills the box.
			chromedp.WaitVisible(`#q[value="`+tt.q+`"]`, chromedp.ByQuery),
			chromedp.WaitVisible(row, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll("#identities tbody tr").length`, &rows))
		if u := location(t, ctx); u.Query().Get("q") != tt.q {
			t.Errorf("search by %s: page %s, want q=%s", tt.what, u, url.QueryEscape(tt.q))
		}
		if rows < 1 || rows >= all {
			t.Errorf("search by %s (%q): %d rows of %d, want wangwu's among fewer than all", tt.what, tt.q, rows, all)
		}
	}
	screenshot(t, ctx, "zh-identities-search-org-email")
}
