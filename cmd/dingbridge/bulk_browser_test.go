package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// bulkPick ticks the pending requests of these userIds, and the mode.
func bulkPick(t *testing.T, ctx context.Context, mode string, userIDs ...string) {
	t.Helper()
	for _, u := range userIDs {
		sel := `section.request[data-user-id="` + u + `"] input.pick`
		browse(t, ctx, "select "+u, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Click(sel, chromedp.ByQuery))
	}
	browse(t, ctx, "mode "+mode, chromedp.Click(`#bulk input[name="mode"][value="`+mode+`"]`, chromedp.ByQuery))
	var checked int
	browse(t, ctx, "count selected", chromedp.Evaluate(`document.querySelectorAll('input.pick:checked').length`, &checked))
	if checked != len(userIDs) {
		t.Fatalf("%d requests selected, want %d", checked, len(userIDs))
	}
}

// bulkRows reads the bulk page's table: userId → outcome.
func bulkRows(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	var rows map[string]string
	browse(t, ctx, "read outcomes", chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll('#bulk-items tbody tr')].map(r => [r.dataset.userId, r.dataset.outcome + ' ' + r.cells[2].textContent.trim()]))`, &rows))
	return rows
}

func wantRows(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: rows %q, want %q", what, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
}

// TestBrowserBulkApprove: 陈静 (corp 1) and 陈晨 (corp 2) try to sign in
// and wait; 张三 selects both on the pending page and approves them at once
// with new accounts, in Chinese; 陈静 then signs in to the sample app. In
// English, 李四, unlinked by mistake, is linked back to the one account
// suggested for him. Then the accounts list is filtered to disabled ones.
func TestBrowserBulkApprove(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	bg := t.Context()
	m := mapping.Meta{Actor: "browser-test"}

	w.leaveWaiting(t)

	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")
	browse(t, ctx, "pending", chromedp.Click(`header nav a[href$="/admin/pending"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#bulk-review", chromedp.ByQuery))
	bulkPick(t, ctx, "new", "manager4927", "chenchen")
	screenshot(t, ctx, "zh-bulk-pending-selected")

	browse(t, ctx, "review", chromedp.Click("#bulk-review", chromedp.ByQuery), chromedp.WaitVisible("#bulk-approve", chromedp.ByQuery))
	var summary, button string
	browse(t, ctx, "confirmation texts", chromedp.Text("#bulk-summary", &summary, chromedp.ByQuery), chromedp.Text("#bulk-approve", &button, chromedp.ByQuery))
	if !strings.Contains(summary, "确认后将批准 2 人") || button != "确定批准 2 人" {
		t.Errorf("confirmation says %q with button %q, want 2 people named", summary, button)
	}
	wantRows(t, "confirmation", bulkRows(t, ctx), map[string]string{"manager4927": "approve manager4927", "chenchen": "approve chenchen"})
	screenshot(t, ctx, "zh-bulk-confirm")
	if page, err := w.accounts.PendingRequests(bg, mapping.RequestQuery{}); err != nil || len(page.Requests) != 2 {
		t.Fatalf("after the confirmation, %d open requests (%v), want still 2", len(page.Requests), err)
	}

	browse(t, ctx, "approve", chromedp.Click("#bulk-approve", chromedp.ByQuery), chromedp.WaitVisible("p.flash#bulk-summary", chromedp.ByQuery),
		chromedp.Text("#bulk-summary", &summary, chromedp.ByQuery))
	if summary != "已批准 2 人，跳过 0 人，失败 0 人。" {
		t.Errorf("result says %q, want 2 approved", summary)
	}
	wantRows(t, "result", bulkRows(t, ctx), map[string]string{"manager4927": "approved manager4927", "chenchen": "approved chenchen"})
	screenshot(t, ctx, "zh-bulk-result")
	for _, k := range []mapping.Key{{CorpID: fake.DemoCorpID, UserID: "manager4927"}, {CorpID: fake.DemoCorp2ID, UserID: "chenchen"}} {
		if b, err := w.accounts.Binding(bg, k); err != nil || !b.Linked() {
			t.Errorf("%s after the bulk approval: linked %v (%v), want linked", k, b.Linked(), err)
		}
	}

	// 陈静 signs in to the sample app, in another browser.
	chen := newBrowser(t)
	w.startSignIn(t, chen, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, chen, "manager4927")
	wantClaims(t, chen, w.wikiURL, "陈静")

	// 李四's identity is unlinked by mistake; he tries, and waits with one
	// suggested account: his own.
	lisiKey := mapping.Key{CorpID: fake.DemoCorpID, UserID: userLisi}
	b, err := w.accounts.Binding(bg, lisiKey)
	if err != nil {
		t.Fatal(err)
	}
	lisi := b.AccountID
	if _, err := w.accounts.Unlink(bg, m, lisiKey, b.Version); err != nil {
		t.Fatal(err)
	}
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", userLisi); !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("李四 is not waiting:\n%s", body)
	}
	lisiAcct, err := w.accounts.AccountByID(bg, lisi)
	if err != nil {
		t.Fatal(err)
	}

	setLanguage(t, ctx, "en-US,en;q=0.9")
	browse(t, ctx, "pending in English", chromedp.Navigate(w.bridgeURL+"/admin/pending"), chromedp.WaitVisible("#bulk-review", chromedp.ByQuery))
	bulkPick(t, ctx, "suggested", userLisi)
	screenshot(t, ctx, "en-bulk-pending-selected")
	browse(t, ctx, "review in English", chromedp.Click("#bulk-review", chromedp.ByQuery), chromedp.WaitVisible("#bulk-approve", chromedp.ByQuery),
		chromedp.Text("#bulk-approve", &button, chromedp.ByQuery))
	if button != "Approve 1 selected" {
		t.Errorf("confirmation button %q, want Approve 1 selected", button)
	}
	wantRows(t, "English confirmation", bulkRows(t, ctx), map[string]string{userLisi: "approve " + lisiAcct.Username})
	screenshot(t, ctx, "en-bulk-confirm")
	browse(t, ctx, "approve in English", chromedp.Click("#bulk-approve", chromedp.ByQuery), chromedp.WaitVisible("p.flash#bulk-summary", chromedp.ByQuery),
		chromedp.Text("#bulk-summary", &summary, chromedp.ByQuery))
	if summary != "Approved 1, skipped 0, failed 0." {
		t.Errorf("English result says %q, want 1 approved", summary)
	}
	wantRows(t, "English result", bulkRows(t, ctx), map[string]string{userLisi: "approved " + lisiAcct.Username})
	screenshot(t, ctx, "en-bulk-result")
	if b, err := w.accounts.Binding(bg, lisiKey); err != nil || b.AccountID != lisi {
		t.Errorf("李四 linked to %q (%v), want back to %q", b.AccountID, err, lisi)
	}

	// The accounts list, filtered to disabled accounts: wangwu, disabled first.
	ww, err := w.accounts.AccountByUsername(bg, "wangwu")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.accounts.SetAccountDisabled(bg, m, ww.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []struct{ name, accept string }{{"zh", "zh-CN,zh;q=0.9"}, {"en", "en-US,en;q=0.9"}} {
		setLanguage(t, ctx, lang.accept)
		browse(t, ctx, "accounts", chromedp.Navigate(w.bridgeURL+"/admin/accounts"), chromedp.WaitVisible("#filter-status", chromedp.ByQuery),
			chromedp.SetValue("#filter-status", "disabled", chromedp.ByQuery), chromedp.Click("#filter-apply", chromedp.ByQuery),
			chromedp.WaitVisible("#clear-filters", chromedp.ByQuery))
		var rows, off int
		browse(t, ctx, "count disabled rows", chromedp.Evaluate(`document.querySelectorAll('#accounts tbody tr').length`, &rows),
			chromedp.Evaluate(`document.querySelectorAll('#accounts tbody tr .tag.off').length`, &off))
		if rows == 0 || rows != off {
			t.Errorf("%s: filtered list has %d rows, %d disabled; want only disabled ones", lang.name, rows, off)
		}
		var hasWangwu bool
		browse(t, ctx, "wangwu listed", chromedp.Evaluate(`!!document.querySelector('#accounts tr[data-username="wangwu"]')`, &hasWangwu))
		if !hasWangwu {
			t.Errorf("%s: disabled wangwu is not listed", lang.name)
		}
		screenshot(t, ctx, lang.name+"-accounts-disabled")
	}
	// A search keeps the filter.
	browse(t, ctx, "search within disabled", chromedp.SendKeys("#q", "zhang", chromedp.ByQuery), chromedp.Submit("#q", chromedp.ByQuery),
		chromedp.WaitVisible(`#q[value="zhang"]`, chromedp.ByQuery))
	if u := location(t, ctx); u.Query().Get("status") != "disabled" {
		t.Errorf("search from the filtered list went to %s, want status=disabled kept", u)
	}
	var n int
	browse(t, ctx, "count rows", chromedp.Evaluate(`document.querySelectorAll('#accounts tbody tr').length`, &n))
	if n != 0 {
		t.Errorf("disabled accounts matching zhang: %d rows, want none (zhangsan is enabled)", n)
	}
}

// leaveWaiting has 陈静 (corp 1) and 陈晨 (corp 2) try to sign in, which
// leaves each with a pending request.
func (w *signinWorld) leaveWaiting(t *testing.T) {
	t.Helper()
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "manager4927"); !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("陈静 is not waiting:\n%s", body)
	}
	if _, _, body := w.signInThroughCorp(t, jarClient(t), w.wikiURL+"/login", fake.DemoCorp2ID, "chenchen"); !strings.Contains(body, "账号尚未开通") {
		t.Fatalf("陈晨 is not waiting:\n%s", body)
	}
}
