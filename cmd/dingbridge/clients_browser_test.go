package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// selRun is the self-check button of a corp; selResult a part of the
// result shown in the corp's section.
func selRun(corpID string) string { return `section[data-corp-id="` + corpID + `"] button.run-check` }
func selResult(corpID, sel string) string {
	return `section[data-corp-id="` + corpID + `"] #result ` + sel
}

// problemRows counts the result rows of corp that report a problem.
func problemRows(t *testing.T, ctx context.Context, corpID string) int {
	t.Helper()
	var n int
	browse(t, ctx, "count problem rows", chromedp.Evaluate(`document.querySelectorAll('section[data-corp-id="`+corpID+
		`"] #result tr[data-status]:not([data-status="ok"]):not([data-status="at_sign_in"])').length`, &n))
	return n
}

// wantClientsPage checks the clients page: both sample apps with their
// redirect URIs, integration settings and one workbench URL per corp, and
// no secret anywhere in the page.
func (w *signinWorld) wantClientsPage(t *testing.T, ctx context.Context) {
	t.Helper()
	var page string
	browse(t, ctx, "clients page", chromedp.WaitVisible("#client-wiki", chromedp.ByQuery),
		chromedp.OuterHTML("html", &page, chromedp.ByQuery))
	for _, app := range w.apps {
		base := "http://" + app.ln.Addr().String()
		sec := "#client-" + app.clientID
		var text, snippet string
		var rows int
		browse(t, ctx, "client "+app.clientID,
			chromedp.Text(sec, &text, chromedp.ByQuery),
			chromedp.Text(sec+" pre.snippet", &snippet, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelectorAll('`+sec+` table.workbench tr[data-corp-id]').length`, &rows))
		workbench := w.bridgeURL + "/workbench/" + app.clientID + "?corpId=$CORPID$"
		for _, want := range []string{app.name, base + "/callback", base + "/", workbench, fake.DemoCorpID, fake.DemoCorp2ID} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the page lacks %q", app.clientID, want)
			}
		}
		for _, want := range []string{"issuer:                    " + w.bridgeURL + "\n", "client_id:                 " + app.clientID + "\n",
			"redirect_uri:              " + base + "/callback\n", w.bridgeURL + "/.well-known/openid-configuration"} {
			if !strings.Contains(snippet, want) {
				t.Errorf("%s: the integration settings lack %q:\n%s", app.clientID, want, snippet)
			}
		}
		// The URL is the provider's workbench page: DingTalk fills in the corp.
		if resp, err := http.Get(strings.Replace(workbench, "$CORPID$", fake.DemoCorpID, 1)); err != nil {
			t.Errorf("%s: workbench URL: %v", app.clientID, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: workbench URL answers %d, want 200", app.clientID, resp.StatusCode)
			}
		}
		if rows != 2 {
			t.Errorf("%s: %d workbench rows, want one per corp (2)", app.clientID, rows)
		}
		if strings.Contains(page, app.secret) {
			t.Errorf("the clients page shows %s's client secret", app.clientID)
		}
	}
	for _, secret := range []string{fake.DemoAppSecret, fake.DemoApp2Secret, fake.DemoSNSAppSecret, w.cfg.Secrets.KeyEncryptionKey} {
		if strings.Contains(page, secret) {
			t.Error("the clients page shows a DingTalk app secret or a key")
		}
	}
}

// TestBrowserClientsAndSelfCheck: 张三 opens the clients page and copies
// wiki's settings, runs the DingTalk self-check (all OK), then, with the
// member permission taken away from the first corp's app on the simulator,
// runs it again and is told in plain words what to grant; in Chinese and
// English.
func TestBrowserClientsAndSelfCheck(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")

	browse(t, ctx, "open clients", chromedp.Click(`header nav a[href$="/admin/clients"]`, chromedp.ByQuery))
	w.wantClientsPage(t, ctx)
	// The copy button appears only with its script, and answers a click.
	browse(t, ctx, "copy wiki's settings",
		chromedp.WaitVisible(`button[data-copy="snippet-wiki"]`, chromedp.ByQuery),
		chromedp.Click(`button[data-copy="snippet-wiki"]`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("snippet-wiki-status").textContent !== ""`, nil))
	screenshot(t, ctx, "zh-clients")

	before := w.sim.Calls(fake.EndpointUser)
	browse(t, ctx, "open the self-check", chromedp.Click(`header nav a[href$="/admin/dingtalk"]`, chromedp.ByQuery),
		chromedp.WaitVisible(selRun(fake.DemoCorpID), chromedp.ByQuery))
	if got := w.sim.Calls(fake.EndpointUser); got != before {
		t.Errorf("opening the self-check page called DingTalk (v2/user/get %d → %d)", before, got)
	}
	screenshot(t, ctx, "zh-dingtalk")

	var summary string
	browse(t, ctx, "run the check", chromedp.Click(selRun(fake.DemoCorpID), chromedp.ByQuery),
		chromedp.WaitVisible(selResult(fake.DemoCorpID, `tr[data-api="user"][data-status="ok"]`), chromedp.ByQuery),
		chromedp.Text(selResult(fake.DemoCorpID, "#result-summary"), &summary, chromedp.ByQuery))
	if n := problemRows(t, ctx, fake.DemoCorpID); n != 0 || !strings.Contains(summary, "全部正常") {
		t.Errorf("first run: %d problem rows, summary %q; want none, 全部正常", n, summary)
	}
	if got := w.sim.Calls(fake.EndpointUser); got != before+1 {
		t.Errorf("the check called v2/user/get %d times, want 1", got-before)
	}
	screenshot(t, ctx, "zh-dingtalk-ok")

	// An administrator of the corp takes the member permission away.
	w.sim.SetDeniedScopes(fake.DemoAppKey, "qyapi_get_member")
	var row string
	browse(t, ctx, "run the check again", chromedp.Click(selRun(fake.DemoCorpID), chromedp.ByQuery),
		chromedp.WaitVisible(selResult(fake.DemoCorpID, `tr[data-api="user_by_unionid"][data-status="missing_permission"]`), chromedp.ByQuery),
		chromedp.Text(selResult(fake.DemoCorpID, `tr[data-api="user_by_unionid"]`), &row, chromedp.ByQuery),
		chromedp.Text(selResult(fake.DemoCorpID, "#result-summary"), &summary, chromedp.ByQuery))
	for _, want := range []string{"缺少权限", "开发配置 › 权限管理", "成员信息读权限", "qyapi_get_member", "60011"} {
		if !strings.Contains(row, want) {
			t.Errorf("the failing row lacks %q: %q", want, row)
		}
	}
	if n := problemRows(t, ctx, fake.DemoCorpID); n != 2 || !strings.Contains(summary, "发现 2 个问题") {
		t.Errorf("second run: %d problem rows, summary %q; want 2 (getbyunionid, user get), 发现 2 个问题", n, summary)
	}
	screenshot(t, ctx, "zh-dingtalk-missing-permission")

	setLanguage(t, ctx, "en-US,en;q=0.9")
	browse(t, ctx, "clients in English", chromedp.Navigate(w.bridgeURL+"/admin/clients"))
	w.wantClientsPage(t, ctx)
	screenshot(t, ctx, "en-clients")
	browse(t, ctx, "self-check in English", chromedp.Navigate(w.bridgeURL+"/admin/dingtalk"),
		chromedp.WaitVisible(selRun(fake.DemoCorp2ID), chromedp.ByQuery))
	screenshot(t, ctx, "en-dingtalk")
	// The second corp's app keeps its permissions.
	browse(t, ctx, "run the second corp's check", chromedp.Click(selRun(fake.DemoCorp2ID), chromedp.ByQuery),
		chromedp.WaitVisible(selResult(fake.DemoCorp2ID, `tr[data-api="user"][data-status="ok"]`), chromedp.ByQuery),
		chromedp.Text(selResult(fake.DemoCorp2ID, "#result-summary"), &summary, chromedp.ByQuery))
	if n := problemRows(t, ctx, fake.DemoCorp2ID); n != 0 || !strings.HasPrefix(summary, "All OK") {
		t.Errorf("second corp: %d problem rows, summary %q; want none, All OK", n, summary)
	}
	screenshot(t, ctx, "en-dingtalk-ok")
	browse(t, ctx, "run the first corp's check in English", chromedp.Click(selRun(fake.DemoCorpID), chromedp.ByQuery),
		chromedp.WaitVisible(selResult(fake.DemoCorpID, `tr[data-api="user"][data-status="missing_permission"]`), chromedp.ByQuery),
		chromedp.Text(selResult(fake.DemoCorpID, `tr[data-api="user"]`), &row, chromedp.ByQuery))
	for _, want := range []string{"Missing permission", "Permission management", "Read member information", "qyapi_get_member"} {
		if !strings.Contains(row, want) {
			t.Errorf("the failing row (English) lacks %q: %q", want, row)
		}
	}
	screenshot(t, ctx, "en-dingtalk-missing-permission")

	setPhone(t, ctx)
	browse(t, ctx, "clients on a phone", chromedp.Navigate(w.bridgeURL+"/admin/clients"), chromedp.WaitVisible("#client-wiki", chromedp.ByQuery))
	screenshot(t, ctx, "en-clients-phone")

	// Every run is audited; nothing secret reached the log.
	if runs := w.audit(t, "dingtalk.selfcheck"); len(runs) != 4 {
		t.Errorf("%d dingtalk.selfcheck audit rows, want 4", len(runs))
	}
	for _, secret := range []string{fake.DemoAppSecret, fake.DemoApp2Secret} {
		if strings.Contains(w.log.String(), secret) {
			t.Error("the log contains a DingTalk app secret")
		}
	}
	if !strings.Contains(w.log.String(), "dingtalk self-check found a problem") {
		t.Error("the failing runs were not logged")
	}
}
