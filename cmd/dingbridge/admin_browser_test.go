package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// setLanguage makes the tab ask for lang (Accept-Language) on every request.
func setLanguage(t *testing.T, ctx context.Context, lang string) {
	t.Helper()
	browse(t, ctx, "set Accept-Language", network.Enable(),
		network.SetExtraHTTPHeaders(network.Headers{"Accept-Language": lang}))
}

// adminBrowserSignIn opens the console signed out, goes through
// dingbridge's own sign-in as userID and lands on the overview.
func (w *signinWorld) adminBrowserSignIn(t *testing.T, ctx context.Context, userID string) {
	t.Helper()
	browse(t, ctx, "open the console", chromedp.Navigate(w.bridgeURL+"/admin/"),
		chromedp.WaitVisible(selCorp(fake.DemoCorpID), chromedp.ByQuery))
	screenshot(t, ctx, "admin-corp-picker")
	browse(t, ctx, "pick the corp", chromedp.Click(selCorp(fake.DemoCorpID), chromedp.ByQuery))
	w.webLinkSignIn(t, ctx, userID)
	browse(t, ctx, "overview", chromedp.WaitVisible("#count-accounts", chromedp.ByQuery))
	if u := location(t, ctx); u.Path != "/admin/" {
		t.Errorf("after sign-in at %s, want /admin/", u)
	}
}

// walkConsole visits overview, accounts search, an account and the
// identities page, with screenshots named by lang.
func walkConsole(t *testing.T, ctx context.Context, lang, h1Overview string) {
	t.Helper()
	var h1 string
	browse(t, ctx, "overview title", chromedp.Text("main h1", &h1, chromedp.ByQuery))
	if h1 != h1Overview {
		t.Errorf("overview title %q, want %q", h1, h1Overview)
	}
	screenshot(t, ctx, lang+"-overview")

	browse(t, ctx, "accounts", chromedp.Click(`header nav a[href$="/admin/accounts"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#q", chromedp.ByQuery))
	screenshot(t, ctx, lang+"-accounts")
	browse(t, ctx, "search wangwu", chromedp.SendKeys("#q", "wangwu", chromedp.ByQuery),
		chromedp.Submit("#q", chromedp.ByQuery),
		// wangwu's row is on the unfiltered page too: wait for the results
		// page itself, whose search box the server filled in (typing sets
		// the box's value, not its value attribute).
		chromedp.WaitVisible(`#q[value="wangwu"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#accounts tr[data-username="wangwu"] a`, chromedp.ByQuery))
	var rows int
	browse(t, ctx, "count rows", chromedp.Evaluate(`document.querySelectorAll("#accounts tbody tr").length`, &rows))
	if rows != 1 {
		t.Errorf("search for wangwu shows %d rows, want 1", rows)
	}
	screenshot(t, ctx, lang+"-accounts-search")
	browse(t, ctx, "account detail", chromedp.Click(`#accounts tr[data-username="wangwu"] a`, chromedp.ByQuery),
		chromedp.WaitVisible(`#identities tr[data-user-id="wangwu"]`, chromedp.ByQuery))
	screenshot(t, ctx, lang+"-account")
	browse(t, ctx, "open disable confirmation", chromedp.Click(`details.confirm summary`, chromedp.ByQuery),
		chromedp.WaitVisible("#toggle-disabled", chromedp.ByQuery))
	screenshot(t, ctx, lang+"-account-disable-confirm")

	browse(t, ctx, "identities", chromedp.Click(`header nav a[href$="/admin/identities"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#identities", chromedp.ByQuery))
	screenshot(t, ctx, lang+"-identities")
}

// TestBrowserAdminConsole: 张三 signs in to the console (Chinese), walks its
// pages, approves 陈静's pending request with a new account, and 陈静 then
// signs in to the sample app; the same pages are captured in English.
func TestBrowserAdminConsole(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)

	// 陈静 tries first and is left waiting (over HTTP: not what this test is about).
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "manager4927"); !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("陈静 is not waiting:\n%s", body)
	}

	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")
	walkConsole(t, ctx, "zh", "概览")

	req := `section.request[data-user-id="manager4927"]`
	browse(t, ctx, "pending", chromedp.Click(`header nav a[href$="/admin/pending"]`, chromedp.ByQuery),
		chromedp.WaitVisible(req, chromedp.ByQuery))
	screenshot(t, ctx, "zh-pending")
	browse(t, ctx, "open approve-new", chromedp.Click(req+` details:not(.confirm) summary`, chromedp.ByQuery),
		chromedp.WaitVisible(req+` button.approve-new`, chromedp.ByQuery),
		chromedp.SetValue(req+` details:not(.confirm) input[name="username"]`, "chenjing", chromedp.ByQuery))
	screenshot(t, ctx, "zh-pending-approve-new")
	browse(t, ctx, "approve", chromedp.Click(req+` button.approve-new`, chromedp.ByQuery),
		chromedp.WaitVisible("#no-pending", chromedp.ByQuery))
	var flash string
	browse(t, ctx, "flash", chromedp.Text("p.flash", &flash, chromedp.ByQuery))
	if !strings.Contains(flash, "已批准") {
		t.Errorf("after approval the page says %q, want 已批准…", flash)
	}
	screenshot(t, ctx, "zh-pending-approved")

	setLanguage(t, ctx, "en-US,en;q=0.9")
	browse(t, ctx, "overview in English", chromedp.Navigate(w.bridgeURL+"/admin/"), chromedp.WaitVisible("#count-accounts", chromedp.ByQuery))
	walkConsole(t, ctx, "en", "Overview")
	browse(t, ctx, "pending in English", chromedp.Click(`header nav a[href$="/admin/pending"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#no-pending", chromedp.ByQuery))
	screenshot(t, ctx, "en-pending-empty")
	setPhone(t, ctx)
	browse(t, ctx, "overview on a phone", chromedp.Navigate(w.bridgeURL+"/admin/"), chromedp.WaitVisible("#count-accounts", chromedp.ByQuery))
	screenshot(t, ctx, "en-overview-phone")

	// The console refuses to be framed (ADM-05, BAD-73).
	var xfo string
	resp, err := http.Get(w.bridgeURL + "/admin/login")
	if err == nil {
		xfo = resp.Header.Get("X-Frame-Options")
		resp.Body.Close()
	}
	if xfo != "DENY" {
		t.Errorf("X-Frame-Options = %q, want DENY", xfo)
	}

	// 陈静 signs in to the sample app now, in another browser.
	chen := newBrowser(t)
	w.startSignIn(t, chen, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, chen, "manager4927")
	wantClaims(t, chen, w.wikiURL, "陈静")
}
