package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserAuditLog: 张三 disables 王五's account in the console; 王五's
// sign-in is then refused, and the overview counts it by reason; 张三
// re-enables the account, finds the change in the audit log by actor and
// action, and opens its before/after; the identities page's "not linked"
// filter shows exactly the demo's unlinked people. Pages are captured in
// Chinese and English.
func TestBrowserAuditLog(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")

	toggle := func(what, flash string) {
		t.Helper()
		browse(t, ctx, "open wangwu", chromedp.Navigate(w.bridgeURL+"/admin/accounts?q=wangwu"),
			chromedp.WaitVisible(`#q[value="wangwu"]`, chromedp.ByQuery),
			chromedp.Click(`#accounts tr[data-username="wangwu"] a`, chromedp.ByQuery),
			chromedp.WaitVisible(`#account-fields`, chromedp.ByQuery))
		browse(t, ctx, what, chromedp.Click(`details.confirm summary`, chromedp.ByQuery),
			chromedp.WaitVisible("#toggle-disabled", chromedp.ByQuery),
			chromedp.Click("#toggle-disabled", chromedp.ByQuery),
			chromedp.WaitVisible("p.flash", chromedp.ByQuery))
		var got string
		browse(t, ctx, "flash", chromedp.Text("p.flash", &got, chromedp.ByQuery))
		if !strings.Contains(got, flash) {
			t.Errorf("after %s the page says %q, want %q", what, got, flash)
		}
	}
	toggle("disable wangwu", "账号已停用")
	// 王五 is refused (over HTTP: not what this test is about).
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "wangwu"); !strings.Contains(body, "账号无法登录") {
		t.Fatalf("王五's sign-in was not refused:\n%s", body)
	}
	toggle("enable wangwu", "账号已启用")

	for _, lang := range []struct{ code, accept, reason, changed string }{
		{"zh", "zh-CN,zh;q=0.9", "企业账号已停用", "已更改"},
		{"en", "en-US,en;q=0.9", "Account disabled", "changed"},
	} {
		setLanguage(t, ctx, lang.accept)

		// The overview counts the refusal by its reason, in words.
		var reason, signIns string
		browse(t, ctx, "overview", chromedp.Navigate(w.bridgeURL+"/admin/"),
			chromedp.WaitVisible(`#failures li[data-reason="account_disabled"]`, chromedp.ByQuery),
			chromedp.Text(`#failures li[data-reason="account_disabled"]`, &reason, chromedp.ByQuery),
			chromedp.Text(`#count-signins .n`, &signIns, chromedp.ByQuery))
		if !strings.Contains(reason, lang.reason) || !strings.HasSuffix(strings.TrimSpace(reason), "1") {
			t.Errorf("%s: failure row %q, want %q counted once", lang.code, reason, lang.reason)
		}
		if signIns != "1" { // 张三, signing in to the console
			t.Errorf("%s: sign-ins today %q, want 1", lang.code, signIns)
		}
		screenshot(t, ctx, lang.code+"-overview")

		// The identities page, not linked only.
		var users []string
		browse(t, ctx, "identities", chromedp.Click(`header nav a[href$="/admin/identities"]`, chromedp.ByQuery),
			chromedp.WaitVisible("#filter-unlinked", chromedp.ByQuery),
			chromedp.Click("#filter-unlinked", chromedp.ByQuery),
			chromedp.WaitVisible(`#filter-unlinked[aria-current]`, chromedp.ByQuery),
			chromedp.Evaluate(`[...document.querySelectorAll("#identities tbody tr")].map(r => r.dataset.userId)`, &users))
		var want []string
		for u := range demoUnlinked {
			want = append(want, u)
		}
		slices.Sort(users)
		slices.Sort(want)
		if !slices.Equal(users, want) {
			t.Errorf("%s: not linked only shows %q, want the demo's unlinked %q", lang.code, users, want)
		}
		screenshot(t, ctx, lang.code+"-identities-unlinked")

		// The audit log, by actor and action.
		browse(t, ctx, "audit log", chromedp.Click(`header nav a[href$="/admin/audit"]`, chromedp.ByQuery),
			chromedp.WaitVisible("#audit-filters", chromedp.ByQuery))
		screenshot(t, ctx, lang.code+"-audit")
		browse(t, ctx, "filter", chromedp.SendKeys("#f-actor", "zhangsan", chromedp.ByQuery),
			chromedp.SendKeys("#f-action", "account.disable", chromedp.ByQuery),
			chromedp.Submit("#f-actor", chromedp.ByQuery),
			chromedp.WaitVisible(`#f-action[value="account.disable"]`, chromedp.ByQuery))
		var actions []string
		browse(t, ctx, "events", chromedp.Evaluate(`[...document.querySelectorAll("#events li.event")].map(e => e.dataset.action)`, &actions))
		if !slices.Equal(actions, []string{"account.disable"}) {
			t.Errorf("%s: filtered events %q, want one account.disable", lang.code, actions)
		}
		screenshot(t, ctx, lang.code+"-audit-filtered")
		var before, after, marker string
		row := `#events li.event tr.changed[data-field="disabled"]`
		browse(t, ctx, "open the diff", chromedp.Click(`#events li.event summary`, chromedp.ByQuery),
			chromedp.WaitVisible(row, chromedp.ByQuery),
			chromedp.Text(row+" td.before", &before, chromedp.ByQuery),
			chromedp.Text(row+" td.after", &after, chromedp.ByQuery),
			chromedp.Text(row+" .tag.changed", &marker, chromedp.ByQuery))
		if before != "false" || after != "true" || marker != lang.changed {
			t.Errorf("%s: disabled before %q after %q marked %q, want false, true, %q", lang.code, before, after, marker, lang.changed)
		}
		screenshot(t, ctx, lang.code+"-audit-diff")
	}
	setPhone(t, ctx)
	browse(t, ctx, "audit on a phone", chromedp.Reload(), chromedp.WaitVisible("#events", chromedp.ByQuery))
	screenshot(t, ctx, "en-audit-phone")
}
