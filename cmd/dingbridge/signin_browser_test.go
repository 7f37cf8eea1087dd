package main

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// These tests drive the demo's real wiring (newDemo: the DingTalk
// simulator, dingbridge with in-memory stores, the two sample apps) in
// Chromium, through every DingTalk entry mode and the pages a person can
// meet on the way.

// signinWorld is a running demo and the addresses a test needs.
type signinWorld struct {
	*demoWorld
	bridgeURL, simURL, wikiURL, oaURL string
	log                               *lockedBuffer // what logger wrote
	logger                            *slog.Logger
	output                            *lockedBuffer // what the demo printed
}

// readyWriter closes ready once the demo has printed its last line.
type readyWriter struct {
	once  sync.Once
	ready chan struct{}
	buf   lockedBuffer
}

func (r *readyWriter) Write(p []byte) (int, error) {
	r.buf.Write(p)
	if strings.Contains(r.buf.String(), "Press Ctrl-C to stop.") {
		r.once.Do(func() { close(r.ready) })
	}
	return len(p), nil
}

// startSigninDemo runs the demo on loopback ports until the end of the
// test. Its log is shown when the test fails.
func startSigninDemo(t *testing.T) *signinWorld {
	t.Helper()
	return startDemoWorld(t, demoOptions{})
}

// startSigninDemoOn is startSigninDemo keeping everything in the Postgres
// database at databaseURL (memory when empty), as serve does.
func startSigninDemoOn(t *testing.T, databaseURL string) *signinWorld {
	t.Helper()
	return startDemoWorld(t, demoOptions{dbURL: databaseURL})
}

// demoOptions vary the demo a test runs.
type demoOptions struct {
	dbURL       string       // Postgres; memory when empty
	metricsAddr string       // the metrics listener; none when empty
	logger      *slog.Logger // the test's own; a text log shown on failure when nil
}

// startDemoWorld runs the demo as o says on loopback ports until the end
// of the test, once it has printed that it is ready. Its log is shown when
// the test fails.
func startDemoWorld(t *testing.T, o demoOptions) *signinWorld {
	t.Helper()
	logs := &lockedBuffer{}
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	any0 := "127.0.0.1:0"
	w, err := newDemo(context.Background(), demoAddrs{bridge: any0, dingtalk: any0, app1: any0, app2: any0, metrics: o.metricsAddr}, o.dbURL, logger)
	if err != nil {
		t.Fatalf("newDemo: %v", err)
	}
	out := &readyWriter{ready: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- w.serve(out) }()
	t.Cleanup(func() {
		w.cancel() // serve returns; then close frees the rest
		defer w.close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("demo did not stop within 20s")
		}
		if t.Failed() && o.logger == nil {
			t.Logf("demo log:\n%s", logs)
		}
	})
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("demo stopped before it was ready: %v; output:\n%s", err, out.buf.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("demo not ready in 30s; output:\n%s", out.buf.String())
	}
	return &signinWorld{
		demoWorld: w,
		bridgeURL: w.cfg.Issuer,
		simURL:    w.cfg.DingTalk.APIBaseURL,
		wikiURL:   "http://" + w.apps[0].ln.Addr().String(),
		oaURL:     "http://" + w.apps[1].ln.Addr().String(),
		log:       logs,
		logger:    logger,
		output:    &out.buf,
	}
}

// dingTalkAPIEndpoints are the simulator's server-to-server endpoints:
// the calls dingbridge makes to DingTalk.
var dingTalkAPIEndpoints = []string{
	fake.EndpointAppToken, fake.EndpointCorpToken, fake.EndpointUserToken, fake.EndpointContactUser,
	fake.EndpointGetToken, fake.EndpointUserByUnionID, fake.EndpointUser, fake.EndpointUserInfoByCode,
	fake.EndpointLegacyUserInfo, fake.EndpointSNSUserInfo, fake.EndpointDepartmentSub,
	fake.EndpointDepartmentSubIDs, fake.EndpointDepartment, fake.EndpointUserIDs, fake.EndpointUserList,
}

// appTokenEndpoints are the endpoints of app (not user) tokens, which the
// client caches.
var appTokenEndpoints = map[string]bool{
	fake.EndpointAppToken: true, fake.EndpointCorpToken: true, fake.EndpointGetToken: true,
}

// allEndpoints are every endpoint the simulator counts, pages included.
var allEndpoints = append([]string{
	fake.EndpointQRConnect, fake.EndpointSNSAuthorize, fake.EndpointLogin, fake.EndpointLoginApprove,
	fake.EndpointSNSApprove, fake.EndpointJSAPIScript, fake.EndpointJSAPIAuthCode, fake.EndpointJSAPIEmployees,
	fake.EndpointFrameLogin,
}, dingTalkAPIEndpoints...)

// calls sums the simulator's counters of endpoints; byName lists the
// non-zero ones, for messages.
func (w *signinWorld) calls(endpoints []string, skip map[string]bool) (total int, byName string) {
	var parts []string
	for _, e := range endpoints {
		if skip[e] {
			continue
		}
		if n := w.sim.Calls(e); n > 0 {
			total += n
			parts = append(parts, e+"="+strconv.Itoa(n))
		}
	}
	return total, strings.Join(parts, ", ")
}

// Selectors of the pages the flows pass through.
const (
	selSignIn    = "#sign-in"
	selSignOut   = "#sign-out"
	selClaimName = `#userinfo-claims tr[data-claim="name"] td`
	selPageTitle = "section.card h1"
	selQRFrame   = "#dt-qr iframe"
)

func selCorp(corpID string) string        { return `a[href*="corp=` + corpID + `"]` }
func selPerson(userID string) string      { return `#picker button[data-user-id="` + userID + `"]` }
func (w *signinWorld) selWebLink() string { return `a.button[href^="` + w.simURL + `/oauth2/auth"]` }
func (w *signinWorld) selSNSLink() string {
	return `a.button[href^="` + w.simURL + `/connect/qrconnect"]`
}

// startSignIn opens app's home page and presses its sign-in button, then
// picks corp in dingbridge's corp picker.
func (w *signinWorld) startSignIn(t *testing.T, ctx context.Context, app, corpID string) {
	t.Helper()
	browse(t, ctx, "open the sample app", chromedp.Navigate(app+"/"), chromedp.WaitVisible(selSignIn, chromedp.ByQuery))
	screenshot(t, ctx, "app-signed-out")
	browse(t, ctx, "press sign in", chromedp.Click(selSignIn, chromedp.ByQuery), chromedp.WaitVisible(selCorp(corpID), chromedp.ByQuery))
	screenshot(t, ctx, "corp-picker")
	browse(t, ctx, "pick the corp", chromedp.Click(selCorp(corpID), chromedp.ByQuery))
}

// webLinkSignIn goes from the QR page through its "cannot scan" link to the
// simulator's login page and picks userID there.
func (w *signinWorld) webLinkSignIn(t *testing.T, ctx context.Context, userID string) {
	t.Helper()
	browse(t, ctx, "QR page", chromedp.WaitVisible(w.selWebLink(), chromedp.ByQuery))
	screenshot(t, ctx, "qr-page")
	browse(t, ctx, "follow the cannot-scan link", chromedp.Click(w.selWebLink(), chromedp.ByQuery),
		chromedp.WaitVisible(selPerson(userID), chromedp.ByQuery))
	screenshot(t, ctx, "dingtalk-login-page")
	browse(t, ctx, "pick "+userID, chromedp.Click(selPerson(userID), chromedp.ByQuery))
}

// wantClaims waits for the sample app's claims page and checks the name.
func wantClaims(t *testing.T, ctx context.Context, app, name string) {
	t.Helper()
	var got string
	browse(t, ctx, "claims page", chromedp.WaitVisible(selSignOut, chromedp.ByQuery), chromedp.Text(selClaimName, &got, chromedp.ByQuery))
	screenshot(t, ctx, "claims")
	if got != name {
		t.Errorf("signed in as %q, want %q", got, name)
	}
	if u := location(t, ctx); "http://"+u.Host != app || u.Path != "/" {
		t.Errorf("claims shown at %s, want %s/", u, app)
	}
}

// wantPage waits for a dingbridge page whose title is one of titles (its
// Chinese and English forms) and checks that it is on dingbridge.
func (w *signinWorld) wantPage(t *testing.T, ctx context.Context, name string, titles ...string) {
	t.Helper()
	var got string
	browse(t, ctx, name+" page", chromedp.WaitVisible(selPageTitle, chromedp.ByQuery), chromedp.Text(selPageTitle, &got, chromedp.ByQuery))
	screenshot(t, ctx, name)
	ok := false
	for _, title := range titles {
		ok = ok || strings.TrimSpace(got) == title
	}
	if !ok {
		t.Errorf("page title %q, want one of %q", got, titles)
	}
	if u := location(t, ctx); "http://"+u.Host != w.bridgeURL {
		t.Errorf("%s page at %s, want on dingbridge %s", name, u, w.bridgeURL)
	}
	var rid string
	browse(t, ctx, "request id", chromedp.Text("section.card p.meta code", &rid, chromedp.ByQuery))
	if rid == "" {
		t.Errorf("%s page shows no request id", name)
	}
}

// wantSignedOut checks that app has no session: no code reached it.
func wantSignedOut(t *testing.T, ctx context.Context, app string) {
	t.Helper()
	browse(t, ctx, "app still signed out", chromedp.Navigate(app+"/"), chromedp.WaitVisible(selSignIn, chromedp.ByQuery))
	var signedIn bool
	browse(t, ctx, "look for sign out", chromedp.Evaluate(`!!document.querySelector("#sign-out")`, &signedIn))
	screenshot(t, ctx, "app-still-signed-out")
	if signedIn {
		t.Errorf("the app shows a session after a failed sign-in")
	}
}

// clickInQRFrame waits for sel inside the QR iframe (the simulator's
// origin) and clicks it.
func clickInQRFrame(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	for {
		var frames []*cdp.Node
		err := chromedp.Run(sctx, chromedp.Nodes(selQRFrame, &frames, chromedp.ByQuery))
		if err == nil && len(frames) == 1 && frames[0].ContentDocument != nil {
			qctx, qcancel := context.WithTimeout(sctx, 2*time.Second)
			err = chromedp.Run(qctx, chromedp.WaitVisible(sel, chromedp.ByQuery, chromedp.FromNode(frames[0])))
			qcancel()
			if err == nil {
				screenshot(t, ctx, "qr-frame-picker")
				browse(t, ctx, "click in the QR frame", chromedp.Click(sel, chromedp.ByQuery, chromedp.FromNode(frames[0])))
				return
			}
		}
		if sctx.Err() != nil {
			screenshot(t, ctx, "failed-qr-frame")
			t.Fatalf("%s not found in the QR frame: %v", sel, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const nameZhangsan = "张三"

// TestBrowserSignInPCQRThenSecondApp: PC QR flow, then the second app
// signs in from the SSO session with no DingTalk call.
func TestBrowserSignInPCQRThenSecondApp(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	browse(t, ctx, "QR page", chromedp.WaitVisible(selQRFrame, chromedp.ByQuery))
	clickInQRFrame(t, ctx, selPerson("zhangsan"))
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)
	var amr string
	browse(t, ctx, "amr", chromedp.Text(`#id-token-claims tr[data-claim="amr"] td`, &amr, chromedp.ByQuery))
	if !strings.Contains(amr, "qr") {
		t.Errorf("amr %q, want the QR mode", amr)
	}

	before, _ := w.calls(allEndpoints, nil)
	browse(t, ctx, "open the second app", chromedp.Navigate(w.oaURL+"/"), chromedp.WaitVisible(selSignIn, chromedp.ByQuery))
	screenshot(t, ctx, "second-app-signed-out")
	browse(t, ctx, "sign in to the second app", chromedp.Click(selSignIn, chromedp.ByQuery))
	wantClaims(t, ctx, w.oaURL, nameZhangsan)
	if after, which := w.calls(allEndpoints, nil); after != before {
		t.Errorf("second app's sign-in made %d DingTalk calls (now %s), want 0", after-before, which)
	}
}

// TestBrowserSignInCannotScanLink: the QR page's plain link to DingTalk's
// login page; also counts the DingTalk calls of a first web sign-in.
func TestBrowserSignInCannotScanLink(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	w.sim.ResetCalls()

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "zhangsan")
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)

	n, which := w.calls(dingTalkAPIEndpoints, appTokenEndpoints)
	all, allWhich := w.calls(dingTalkAPIEndpoints, nil)
	t.Logf("first web sign-in: %d DingTalk calls besides the app token (%d with it: %s)", n, all, allWhich)
	// The demo's start-up check fetched the app token through the very
	// clients the sign-in uses, so it is cached: ≤ 3 calls in all.
	if all > 3 {
		t.Errorf("first web sign-in of a linked person made %d DingTalk calls (%s), want ≤ 3 with the app token cached (%d besides it: %s)", all, allWhich, n, which)
	}
}

// TestBrowserSignInInDingTalk: inside DingTalk (its User-Agent) there is no
// QR page: dingbridge redirects straight to DingTalk's OAuth2 page.
func TestBrowserSignInInDingTalk(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setPhone(t, ctx)
	setUserAgent(t, ctx, dingTalkUA)

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	browse(t, ctx, "DingTalk login page", chromedp.WaitVisible(selPerson("zhangsan"), chromedp.ByQuery))
	screenshot(t, ctx, "dingtalk-login-page")
	if u := location(t, ctx); "http://"+u.Host != w.simURL || u.Path != "/oauth2/auth" {
		t.Errorf("after the corp picker at %s, want DingTalk's /oauth2/auth (a 302, no QR page)", u)
	}
	browse(t, ctx, "pick zhangsan", chromedp.Click(selPerson("zhangsan"), chromedp.ByQuery))
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)
}

// TestBrowserSignInWorkbench: the simulated DingTalk workbench opens the
// wiki through dingbridge's JSAPI page; one tap, then the app's own OIDC
// sign-in completes from the new session.
func TestBrowserSignInWorkbench(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	setPhone(t, ctx)
	setUserAgent(t, ctx, dingTalkUA)

	tile := `#workbench a.tile[data-app-name="` + w.apps[0].name + `"]`
	browse(t, ctx, "open the workbench", chromedp.Navigate(w.simURL+"/fake/workbench?corpId="+fake.DemoCorpID),
		chromedp.WaitVisible(tile, chromedp.ByQuery))
	screenshot(t, ctx, "workbench")
	w.sim.ResetCalls()

	pick := `#dd-fake-picker button.dd-fake-pick[data-user-id="zhangsan"]`
	browse(t, ctx, "tap the wiki", chromedp.Click(tile, chromedp.ByQuery), chromedp.WaitVisible(pick, chromedp.ByQuery))
	screenshot(t, ctx, "jsapi-picker")
	if u := location(t, ctx); "http://"+u.Host != w.bridgeURL || u.Path != "/workbench/wiki" || u.Query().Get("corpId") != fake.DemoCorpID {
		t.Errorf("tile opened %s, want dingbridge's /workbench/wiki?corpId=%s", u, fake.DemoCorpID)
	}
	// The shim's overlay must survive the page's CSP (style-src 'self').
	var position string
	browse(t, ctx, "overlay style", chromedp.Evaluate(`getComputedStyle(document.getElementById("dd-fake-picker")).position`, &position))
	if position != "fixed" {
		t.Errorf("JSAPI picker overlay has position %q, want fixed (its styles were blocked?)", position)
	}
	browse(t, ctx, "pick zhangsan in DingTalk", chromedp.Click(pick, chromedp.ByQuery))
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)

	n, which := w.calls(dingTalkAPIEndpoints, appTokenEndpoints)
	t.Logf("first workbench sign-in: %d DingTalk calls besides the app token (%s)", n, which)
	if got := w.sim.Calls(fake.EndpointUserInfoByCode); got != 1 {
		t.Errorf("getuserinfo called %d times, want 1", got)
	}

	// The next tap (the other app, profile now fresh, app token cached)
	// costs DingTalk one call: getuserinfo.
	tile2 := `#workbench a.tile[data-app-name="` + w.apps[1].name + `"]`
	browse(t, ctx, "back to the workbench", chromedp.Navigate(w.simURL+"/fake/workbench?corpId="+fake.DemoCorpID),
		chromedp.WaitVisible(tile2, chromedp.ByQuery))
	screenshot(t, ctx, "workbench-again")
	w.sim.ResetCalls()
	browse(t, ctx, "tap the OA app", chromedp.Click(tile2, chromedp.ByQuery), chromedp.WaitVisible(pick, chromedp.ByQuery))
	screenshot(t, ctx, "jsapi-picker-again")
	browse(t, ctx, "pick zhangsan in DingTalk again", chromedp.Click(pick, chromedp.ByQuery))
	wantClaims(t, ctx, w.oaURL, nameZhangsan)
	if n, which := w.calls(dingTalkAPIEndpoints, nil); n > 1 {
		t.Errorf("workbench sign-in with a warm cache made %d DingTalk calls (%s), want ≤ 1", n, which)
	}
}

// TestBrowserSignInNotLinkedThenApproved: 陈静 is not linked; her request
// is approved in the mapping store and her next sign-in works.
func TestBrowserSignInNotLinkedThenApproved(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "manager4927")
	w.wantPage(t, ctx, "not-linked", msgTitles("账号尚未开通", "Not linked yet")...)

	page, err := w.accounts.PendingRequests(t.Context(), mapping.RequestQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var reqID string
	for _, r := range page.Requests {
		if r.Key == (mapping.Key{CorpID: fake.DemoCorpID, UserID: "manager4927"}) {
			reqID = r.ID
		}
	}
	if reqID == "" {
		t.Fatalf("no pending request for manager4927 among %d", len(page.Requests))
	}
	if _, _, err := w.accounts.ApproveNewAccount(t.Context(), mapping.Meta{Actor: "browser-test"}, reqID,
		mapping.Account{Username: "chenjing", DisplayName: "陈静", Groups: []string{"staff"}}); err != nil {
		t.Fatalf("approve: %v", err)
	}

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "manager4927")
	wantClaims(t, ctx, w.wikiURL, "陈静")
}

// TestBrowserSignInRefused: a person who left the corp, a person whose
// identity an administrator disabled, and a person of another corp
// signing in through corp 1.
func TestBrowserSignInRefused(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)

	// 赵六 left the corp: DingTalk's directory no longer knows him.
	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "zhaoliu")
	w.wantPage(t, ctx, "left-the-corp", msgTitles("不是该组织的成员", "Not a member of 示例科技有限公司")...)

	// 王五 is still employed, but an administrator disabled his identity.
	if _, err := w.accounts.SetBindingDisabled(t.Context(), mapping.Meta{Actor: "browser-test"},
		mapping.Key{CorpID: fake.DemoCorpID, UserID: "wangwu"}, true); err != nil {
		t.Fatal(err)
	}
	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "wangwu")
	w.wantPage(t, ctx, "disabled", msgTitles("账号无法登录", "Your account cannot sign in")...)

	// The login link names corp 1; a person who removes corpId from it
	// may pick anyone, here an employee of 星河制造集团.
	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	var href string
	var ok bool
	browse(t, ctx, "QR page", chromedp.WaitVisible(w.selWebLink(), chromedp.ByQuery),
		chromedp.AttributeValue(w.selWebLink(), "href", &href, &ok, chromedp.ByQuery))
	screenshot(t, ctx, "qr-page")
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("corpId")
	u.RawQuery = q.Encode()
	browse(t, ctx, "DingTalk login page without corpId", chromedp.Navigate(u.String()),
		chromedp.WaitVisible(selPerson("liuyang"), chromedp.ByQuery))
	screenshot(t, ctx, "dingtalk-login-page-all-corps")
	browse(t, ctx, "pick liuyang", chromedp.Click(selPerson("liuyang"), chromedp.ByQuery))
	w.wantPage(t, ctx, "not-a-member", msgTitles("不是该组织的成员", "Not a member of 示例科技有限公司")...)
	wantSignedOut(t, ctx, w.wikiURL)
}

// msgTitles returns a page title in both languages.
func msgTitles(zh, en string) []string { return []string{zh, en} }

// TestBrowserSignInDingTalkFailures: a timeout, a 500 (HTML body), the
// punish page and throttling beyond the retry budget end on "DingTalk is
// busy" with nothing issued; one throttled call is retried and the sign-in
// succeeds.
func TestBrowserSignInDingTalkFailures(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	busy := msgTitles("钉钉暂时繁忙", "DingTalk is busy")

	for _, c := range []struct {
		name     string
		endpoint string
		fault    fake.Fault
	}{
		{"timeout", fake.EndpointUserToken, fake.Fault{Latency: w.cfg.DingTalk.Timeout + 2*time.Second}},
		{"http-500", fake.EndpointUserToken, fake.Fault{HTTPStatus: 500}},
		{"punish-page", fake.EndpointContactUser, fake.Fault{PunishPage: true}},
		// Throttled on every try: the retries give up after ThrottleBudget.
		{"throttled-beyond-budget", fake.EndpointContactUser, fake.Fault{Errcode: 90018}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w.sim.InjectFault(c.endpoint, c.fault)
			defer w.sim.ClearFaults()
			w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
			w.webLinkSignIn(t, ctx, "zhangsan")
			w.wantPage(t, ctx, "busy", busy...)
			if n := w.sim.Calls(c.endpoint); n == 0 {
				t.Errorf("the faulty endpoint %s was not called", c.endpoint)
			}
			wantSignedOut(t, ctx, w.wikiURL)
		})
	}

	t.Run("throttled-once", func(t *testing.T) {
		w.sim.InjectFault(fake.EndpointContactUser, fake.Fault{Errcode: 90018, Times: 1})
		defer w.sim.ClearFaults()
		w.sim.ResetCalls()
		w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
		w.webLinkSignIn(t, ctx, "zhangsan")
		wantClaims(t, ctx, w.wikiURL, nameZhangsan)
		if n := w.sim.Calls(fake.EndpointContactUser); n != 2 {
			t.Errorf("users/me called %d times, want 2 (throttled, then retried)", n)
		}
	})
}

// TestBrowserSignInCallbackReplay: a used callback replayed in the same
// browser, and a sign-in started in one browser finished in another,
// both end on "start again".
func TestBrowserSignInCallbackReplay(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	startAgain := msgTitles("登录链接已失效", "This sign-in link has expired")

	var mu sync.Mutex
	var callback string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.HasPrefix(e.Request.URL, w.bridgeURL+"/login/callback/") {
			mu.Lock()
			callback = e.Request.URL
			mu.Unlock()
		}
	})
	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	w.webLinkSignIn(t, ctx, "zhangsan")
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)
	mu.Lock()
	used := callback
	mu.Unlock()
	if used == "" {
		t.Fatal("no callback request seen")
	}

	before, _ := w.calls(dingTalkAPIEndpoints, nil)
	browse(t, ctx, "replay the callback", chromedp.Navigate(used))
	w.wantPage(t, ctx, "replayed", startAgain...)

	// Another browser: a second Chromium with its own profile (a new
	// browser context of the same one cannot open a tab in new headless).
	other := newBrowser(t)
	browse(t, other, "replay in the other browser", chromedp.Navigate(used))
	w.wantPage(t, other, "replayed-other-browser", startAgain...)

	// A sign-in started in the other browser (signed out) and finished
	// here: the state is fresh, but not this browser's.
	w.startSignIn(t, other, w.wikiURL, fake.DemoCorpID)
	var href string
	var ok bool
	browse(t, other, "QR page", chromedp.WaitVisible(w.selWebLink(), chromedp.ByQuery),
		chromedp.AttributeValue(w.selWebLink(), "href", &href, &ok, chromedp.ByQuery))
	screenshot(t, other, "other-browser-qr-page")
	browse(t, ctx, "the other browser's login link here", chromedp.Navigate(href),
		chromedp.WaitVisible(selPerson("zhangsan"), chromedp.ByQuery))
	screenshot(t, ctx, "dingtalk-login-page")
	browse(t, ctx, "pick zhangsan", chromedp.Click(selPerson("zhangsan"), chromedp.ByQuery))
	w.wantPage(t, ctx, "finished-in-another-browser", startAgain...)
	if after, which := w.calls(dingTalkAPIEndpoints, nil); after != before {
		t.Errorf("refused callbacks made %d DingTalk calls (%s), want 0", after-before, which)
	}
}

// TestBrowserSignInLegacySNS: corp 1 has a legacy scan-login app; the QR
// page links to it.
func TestBrowserSignInLegacySNS(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)

	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	browse(t, ctx, "QR page", chromedp.WaitVisible(w.selSNSLink(), chromedp.ByQuery))
	screenshot(t, ctx, "qr-page")
	browse(t, ctx, "follow the legacy link", chromedp.Click(w.selSNSLink(), chromedp.ByQuery),
		chromedp.WaitVisible(`#picker button[data-user-id="zhangsan"]`, chromedp.ByQuery))
	screenshot(t, ctx, "sns-login-page")
	browse(t, ctx, "pick zhangsan", chromedp.Click(`#picker button[data-user-id="zhangsan"]`, chromedp.ByQuery))
	wantClaims(t, ctx, w.wikiURL, nameZhangsan)
	if n := w.sim.Calls(fake.EndpointSNSUserInfo); n != 1 {
		t.Errorf("sns/getuserinfo_bycode called %d times, want 1", n)
	}
}

// TestBrowserSignInExpiredCallback (BAD-59): a person who leaves the
// DingTalk page open past the upstream transaction's 10 minutes and then
// scans finds the state gone (the clean-up job, run here as if 11 minutes
// had passed, has removed it) and gets the start-again page, with no
// DingTalk call and no code for the app.
func TestBrowserSignInExpiredCallback(t *testing.T) {
	w := startSigninDemo(t)
	ctx := newBrowser(t)
	w.startSignIn(t, ctx, w.wikiURL, fake.DemoCorpID)
	var href string
	var ok bool
	browse(t, ctx, "QR page", chromedp.WaitVisible(w.selWebLink(), chromedp.ByQuery),
		chromedp.AttributeValue(w.selWebLink(), "href", &href, &ok, chromedp.ByQuery))
	if _, err := w.store.DeleteExpired(t.Context(), time.Now().Add(11*time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	before, _ := w.calls(dingTalkAPIEndpoints, nil)
	browse(t, ctx, "the DingTalk page, 11 minutes later", chromedp.Navigate(href),
		chromedp.WaitVisible(selPerson("zhangsan"), chromedp.ByQuery))
	browse(t, ctx, "pick zhangsan", chromedp.Click(selPerson("zhangsan"), chromedp.ByQuery))
	w.wantPage(t, ctx, "expired", msgTitles("登录链接已失效", "This sign-in link has expired")...)
	if after, which := w.calls(dingTalkAPIEndpoints, nil); after != before {
		t.Errorf("an expired callback made %d DingTalk calls (%s), want 0", after-before, which)
	}
}
