package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// openAccount opens an account page afresh (no message left over from the
// last change) and waits for its edit form.
func (w *signinWorld) openAccount(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	browse(t, ctx, "open account "+id, chromedp.Navigate(w.bridgeURL+"/admin/accounts/"+id), chromedp.WaitVisible("#edit-form", chromedp.ByQuery))
}

// flash waits for the page's success message and returns it.
func flash(t *testing.T, ctx context.Context) string {
	t.Helper()
	var s string
	browse(t, ctx, "success message", chromedp.WaitVisible("p.flash", chromedp.ByQuery), chromedp.Text("p.flash", &s, chromedp.ByQuery))
	return s
}

// staleEdit has two tabs of one console edit wangwu's display name from
// the same version: the first saves, the second is told and changes
// nothing. It returns the second tab, showing the message.
func (w *signinWorld) staleEdit(t *testing.T, ctx context.Context, id, lang, first, second string) context.Context {
	t.Helper()
	other := newTab(t, ctx)
	setLanguage(t, other, lang)
	w.openAccount(t, ctx, id)
	w.openAccount(t, other, id)
	browse(t, ctx, "first edit", chromedp.SetValue(`#edit-form input[name="display_name"]`, first, chromedp.ByQuery),
		chromedp.Click("#save-account", chromedp.ByQuery))
	flash(t, ctx)
	browse(t, other, "second edit, from the older version", chromedp.SetValue(`#edit-form input[name="display_name"]`, second, chromedp.ByQuery),
		chromedp.Click("#save-account", chromedp.ByQuery), chromedp.WaitVisible("#stale", chromedp.ByQuery))
	var current, yours string
	browse(t, other, "stale values", chromedp.Text("#stale-fields td.current", &current, chromedp.ByQuery),
		chromedp.Text("#stale-fields td.yours", &yours, chromedp.ByQuery))
	if current != first || yours != second {
		t.Errorf("stale message shows current %q and yours %q, want %q and %q", current, yours, first, second)
	}
	if a, err := w.accounts.AccountByID(t.Context(), id); err != nil || a.DisplayName != first {
		t.Errorf("stored display name %q (%v), want the first edit's %q", a.DisplayName, err, first)
	}
	return other
}

// TestBrowserAccountEditLinkRelink: 张三 edits an account in the console,
// links 陈晨 (not linked in the demo) to it, creates an account for 陈晨
// and moves the identity there, unlinks 王五; then 陈晨 signs in to the
// sample app as the new account and 王五 is left waiting. The account page
// is captured in Chinese and English: edit form, stale edit, link
// conflict, relink confirmation and history.
func TestBrowserAccountEditLinkRelink(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")
	wangwu := w.accountID(t, "wangwu")

	// Edit the display name.
	w.openAccount(t, ctx, wangwu)
	screenshot(t, ctx, "zh-account")
	browse(t, ctx, "edit the display name", chromedp.SetValue(`#edit-form input[name="display_name"]`, "王五（市场部）", chromedp.ByQuery),
		chromedp.Click("#save-account", chromedp.ByQuery))
	if got := flash(t, ctx); got != "修改已保存。" {
		t.Errorf("after saving the page says %q", got)
	}
	var fields string
	browse(t, ctx, "account fields", chromedp.Text("#account-fields", &fields, chromedp.ByQuery))
	if !strings.Contains(fields, "王五（市场部）") {
		t.Errorf("account fields after the edit: %q", fields)
	}

	// Two edits from one version: the second is refused, visibly.
	stale := w.staleEdit(t, ctx, wangwu, "zh-CN,zh;q=0.9", "王五（销售部）", "王五（财务部）")
	screenshot(t, stale, "zh-account-stale")

	// Link 陈晨 of the second corp to wangwu's account.
	w.openAccount(t, ctx, wangwu)
	browse(t, ctx, "link chenchen", chromedp.SetValue(`#link-form select[name="corp_id"]`, fake.DemoCorp2ID, chromedp.ByQuery),
		chromedp.SetValue(`#link-form input[name="user_id"]`, "chenchen", chromedp.ByQuery),
		chromedp.Click("#link-button", chromedp.ByQuery),
		chromedp.WaitVisible(`#identities tr[data-user-id="chenchen"]`, chromedp.ByQuery))
	if got := flash(t, ctx); !strings.Contains(got, "已关联") {
		t.Errorf("after linking the page says %q", got)
	}
	screenshot(t, ctx, "zh-account-linked")

	// An account of 陈晨's own; linking 陈晨 to it is refused while
	// wangwu has the identity, and names wangwu.
	browse(t, ctx, "accounts", chromedp.Navigate(w.bridgeURL+"/admin/accounts"), chromedp.WaitVisible("#create", chromedp.ByQuery),
		chromedp.SetValue(`input[name="username"]`, "chen.chen", chromedp.ByQuery),
		chromedp.SetValue(`input[name="display_name"]`, "陈晨（新账号）", chromedp.ByQuery),
		chromedp.Submit(`input[name="username"]`, chromedp.ByQuery))
	flash(t, ctx)
	chen := w.accountID(t, "chen.chen")
	w.openAccount(t, ctx, chen)
	var owner string
	browse(t, ctx, "link chenchen again", chromedp.SetValue(`#link-form select[name="corp_id"]`, fake.DemoCorp2ID, chromedp.ByQuery),
		chromedp.SetValue(`#link-form input[name="user_id"]`, "chenchen", chromedp.ByQuery),
		chromedp.Click("#link-button", chromedp.ByQuery),
		chromedp.WaitVisible("#link-conflict", chromedp.ByQuery),
		chromedp.Text("#conflict-account", &owner, chromedp.ByQuery),
		chromedp.Click("#link-conflict details.confirm summary", chromedp.ByQuery),
		chromedp.WaitVisible("#relink-button", chromedp.ByQuery))
	if owner != "wangwu" {
		t.Errorf("conflict names %q, want wangwu", owner)
	}
	screenshot(t, ctx, "zh-account-link-conflict")

	// Move 陈晨 from wangwu's account to chen.chen, from wangwu's page.
	row := `#identities tr[data-user-id="chenchen"]`
	w.openAccount(t, ctx, wangwu)
	browse(t, ctx, "ask to move chenchen", chromedp.Click(row+" details.relink summary", chromedp.ByQuery),
		chromedp.SetValue(row+` details.relink input[name="to"]`, "chen.chen", chromedp.ByQuery),
		chromedp.Click(row+" details.relink button", chromedp.ByQuery),
		chromedp.WaitVisible("#relink-confirm", chromedp.ByQuery))
	var from, to string
	browse(t, ctx, "confirmation", chromedp.Text("#relink-confirm .relink-from", &from, chromedp.ByQuery),
		chromedp.Text("#relink-confirm .relink-to", &to, chromedp.ByQuery))
	if from != "wangwu" || to != "chen.chen" {
		t.Errorf("confirmation names %q → %q, want wangwu → chen.chen", from, to)
	}
	screenshot(t, ctx, "zh-account-relink-confirm")
	browse(t, ctx, "move chenchen", chromedp.Click("#relink-button", chromedp.ByQuery),
		chromedp.WaitVisible("p.flash", chromedp.ByQuery), chromedp.WaitNotPresent(row, chromedp.ByQuery))
	if b, err := w.accounts.Binding(t.Context(), mapping.Key{CorpID: fake.DemoCorp2ID, UserID: "chenchen"}); err != nil || b.AccountID != chen {
		t.Errorf("chenchen is linked to %q (%v), want chen.chen's %q", b.AccountID, err, chen)
	}

	// Unlink wangwu's own identity.
	row = `#identities tr[data-user-id="wangwu"]`
	browse(t, ctx, "unlink wangwu", chromedp.Click(row+" details.unlink summary", chromedp.ByQuery),
		chromedp.Click(row+" details.unlink button.danger", chromedp.ByQuery),
		chromedp.WaitNotPresent(row, chromedp.ByQuery))
	if got := flash(t, ctx); got != "已解除关联。" {
		t.Errorf("after unlinking the page says %q", got)
	}

	// chen.chen's page: the identity and its history.
	w.openAccount(t, ctx, chen)
	var history string
	browse(t, ctx, "history", chromedp.WaitVisible(`#identities tr[data-user-id="chenchen"]`, chromedp.ByQuery),
		chromedp.Text("#history-events", &history, chromedp.ByQuery))
	if !strings.Contains(history, "转移") || !strings.Contains(history, "wangwu → chen.chen") {
		t.Errorf("history lacks the move wangwu → chen.chen:\n%s", history)
	}
	screenshot(t, ctx, "zh-account-history")

	// English: the same pages.
	setLanguage(t, ctx, "en-US,en;q=0.9")
	w.openAccount(t, ctx, chen)
	screenshot(t, ctx, "en-account-history")
	stale = w.staleEdit(t, ctx, wangwu, "en-US,en;q=0.9", "Wang Wu (sales)", "Wang Wu (finance)")
	screenshot(t, stale, "en-account-stale")
	w.openAccount(t, ctx, wangwu)
	browse(t, ctx, "link chenchen to wangwu", chromedp.SetValue(`#link-form select[name="corp_id"]`, fake.DemoCorp2ID, chromedp.ByQuery),
		chromedp.SetValue(`#link-form input[name="user_id"]`, "chenchen", chromedp.ByQuery),
		chromedp.Click("#link-button", chromedp.ByQuery),
		chromedp.WaitVisible("#link-conflict", chromedp.ByQuery),
		chromedp.Click("#link-conflict details.confirm summary", chromedp.ByQuery),
		chromedp.WaitVisible("#relink-button", chromedp.ByQuery))
	screenshot(t, ctx, "en-account-link-conflict")
	browse(t, ctx, "relink confirmation", chromedp.Navigate(w.bridgeURL+"/admin/accounts/"+chen+"?relink_corp="+fake.DemoCorp2ID+"&relink_user=chenchen&to=wangwu"),
		chromedp.WaitVisible("#relink-confirm", chromedp.ByQuery))
	screenshot(t, ctx, "en-account-relink-confirm")
	setPhone(t, ctx)
	w.openAccount(t, ctx, chen)
	screenshot(t, ctx, "en-account-phone")

	// 陈晨 signs in to the sample app, as chen.chen now.
	person := newBrowser(t)
	w.startSignIn(t, person, w.wikiURL, fake.DemoCorp2ID)
	w.webLinkSignIn(t, person, "chenchen")
	wantClaims(t, person, w.wikiURL, "陈晨（新账号）")
	var sub string
	browse(t, person, "sub", chromedp.Text(`#id-token-claims tr[data-claim="sub"] td`, &sub, chromedp.ByQuery))
	if sub != chen {
		t.Errorf("sub = %q, want chen.chen's %q", sub, chen)
	}

	// 王五, unlinked, is left waiting for an administrator.
	if _, _, body := w.signInThrough(t, jarClient(t), w.wikiURL+"/login", "wangwu"); !strings.Contains(body, "账号尚未开通") {
		t.Errorf("王五 signs in after the unlink:\n%s", body)
	}
}
