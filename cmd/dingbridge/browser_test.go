package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// Browser tests drive Debian's chromium (installed by .ci/run) through the
// DevTools protocol. Each test gets its own browser with a fresh profile;
// each step has browserStepTimeout.

const (
	chromiumPath       = "/usr/bin/chromium"
	browserStepTimeout = 30 * time.Second

	// dingTalkUA is the User-Agent of the DingTalk Android client's
	// in-app browser: what dingbridge sees when a page opens inside DingTalk.
	dingTalkUA = "Mozilla/5.0 (Linux; Android 12; SM-G9910 Build/SP1A.210812.016; wv) AppleWebKit/537.36 " +
		"(KHTML, like Gecko) Version/4.0 Chrome/97.0.4692.98 Mobile Safari/537.36 AliApp(DingTalk/7.0.50) " +
		"com.alibaba.android.rimet/38327645 Channel/700159 language/zh-CN abi/64 UT4Aplus/0.2.25 colorScheme/light"
)

// findChromium returns the browser's path, or "" when it is not installed.
// DINGBRIDGE_CHROMIUM overrides the path.
func findChromium() string {
	for _, p := range []string{os.Getenv("DINGBRIDGE_CHROMIUM"), chromiumPath} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	return ""
}

// newBrowser starts a headless Chromium for this test and returns the
// context of its first tab; the browser stops at the end of the test. Without
// Chromium the test is skipped, loudly, or fails when CI is set.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		const msg = "chromium not found at " + chromiumPath + " (apt-get install chromium, as .ci/run does)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so browser tests must run")
		}
		t.Skip("SKIPPING BROWSER TEST: " + msg)
	}
	profile, err := os.MkdirTemp("", "dingbridge-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // required as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine has no network beyond loopback: without these,
		// Chromium stalls on background fetches.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1280, 900),
	}
	// The browser must outlive t.Context(), which ends before cleanups
	// run: it is stopped, and waited for, by the cleanup below.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(quietErrorf(t)))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to exit
		os.RemoveAll(profile)
	})
	started := time.Now()
	sctx, stop := context.WithTimeout(context.Background(), browserStepTimeout)
	defer stop()
	go func() {
		<-sctx.Done()
		if sctx.Err() == context.DeadlineExceeded {
			cancelAlloc()
		}
	}()
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("chromium started in %v", time.Since(started).Round(time.Millisecond))
	return ctx
}

// quietErrorf passes chromedp's errors to the test log while the test
// runs. Chromium is newer than the protocol tables chromedp was built with,
// so events it cannot decode are expected and dropped.
func quietErrorf(t *testing.T) func(string, ...any) {
	var done atomic.Bool
	t.Cleanup(func() { done.Store(true) })
	return func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if done.Load() || strings.Contains(msg, "could not unmarshal event") {
			return
		}
		t.Logf("chromedp: %s", msg)
	}
}

// newTab opens another tab of the browser behind ctx; it closes at the end
// of the test.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Run(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return tab
}

// browse runs browser actions with a timeout, failing the test on error.
func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Run(sctx, actions...); err != nil {
		var loc string
		_ = chromedp.Run(ctx, chromedp.Location(&loc))
		screenshot(t, ctx, "failed-"+what)
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

// setUserAgent makes the tab present itself as ua, to the server (the
// User-Agent header) and to scripts (navigator.userAgent).
func setUserAgent(t *testing.T, ctx context.Context, ua string) {
	t.Helper()
	browse(t, ctx, "set user agent", emulation.SetUserAgentOverride(ua).WithAcceptLanguage("zh-CN,zh;q=0.9,en;q=0.8"))
}

// setPhone gives the tab a phone-sized, touch-enabled viewport.
func setPhone(t *testing.T, ctx context.Context) {
	t.Helper()
	browse(t, ctx, "emulate a phone", chromedp.EmulateViewport(412, 915, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
}

var (
	artifactDirs sync.Map // test name → its directory, cleared once per run
	artifactSeq  sync.Map // test name → *atomic.Int32, for file order
	unsafeName   = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// artifactDir is where this test's screenshots go:
// $DINGBRIDGE_ARTIFACTS/<test>, else <os temp dir>/dingbridge-artifacts/<test>.
// It is emptied at its first use in a run and outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("DINGBRIDGE_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "dingbridge-artifacts")
	}
	dir := filepath.Join(root, unsafeName.ReplaceAllString(t.Name(), "_"))
	if _, loaded := artifactDirs.LoadOrStore(t.Name(), dir); !loaded {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshots: %s", dir)
	}
	return dir
}

// screenshot saves a full-page PNG of the tab as NN-name.png in the test's
// artifact directory. A failed screenshot is logged, not fatal: it must not
// hide the failure that asked for it.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := artifactDir(t)
	seq, _ := artifactSeq.LoadOrStore(t.Name(), new(atomic.Int32))
	n := seq.(*atomic.Int32).Add(1)
	var png []byte
	sctx, cancel := context.WithTimeout(ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("%02d-%s.png", n, unsafeName.ReplaceAllString(name, "_")))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("write screenshot: %v", err)
		return
	}
	t.Logf("screenshot %s", path)
}

// location returns the tab's current URL.
func location(t *testing.T, ctx context.Context) *url.URL {
	t.Helper()
	var loc string
	browse(t, ctx, "read location", chromedp.Location(&loc))
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestBrowserSampleAppSignInAndOut(t *testing.T) {
	w := newSampleWorld(t, true)
	ctx := newBrowser(t)

	browse(t, ctx, "open the sample app", chromedp.Navigate(w.appURL+"/"), chromedp.WaitVisible("#sign-in", chromedp.ByID))
	screenshot(t, ctx, "signed-out")

	var sub, name string
	browse(t, ctx, "sign in",
		chromedp.Click("#sign-in", chromedp.ByID),
		chromedp.WaitVisible("#sign-out", chromedp.ByID),
		chromedp.Text(`#id-token-claims tr[data-claim="sub"] td`, &sub, chromedp.ByQuery),
		chromedp.Text(`#userinfo-claims tr[data-claim="name"] td`, &name, chromedp.ByQuery),
	)
	screenshot(t, ctx, "claims")
	if sub != sampleAlice || name != sampleAliceName {
		t.Errorf("claims page: sub %q name %q, want %q %q", sub, name, sampleAlice, sampleAliceName)
	}
	if u := location(t, ctx); u.String() != w.appURL+"/" {
		t.Errorf("after sign-in at %s, want %s/", u, w.appURL)
	}

	browse(t, ctx, "sign out",
		chromedp.Click("#sign-out", chromedp.ByID),
		chromedp.WaitVisible("#signed-out", chromedp.ByID),
		chromedp.WaitVisible("#sign-in", chromedp.ByID),
	)
	screenshot(t, ctx, "after-sign-out")
	if u := location(t, ctx); u.Host != strings.TrimPrefix(w.appURL, "http://") || u.Path != "/" || u.Query().Get("state") == "" {
		t.Errorf("after sign-out at %s, want the app's / with the logout state", u)
	}
	if n := w.provider.logins.Load(); n != 1 {
		t.Errorf("authenticator asked %d times, want 1", n)
	}
}

// startSimulator serves a DingTalk simulator on loopback.
func startSimulator(t *testing.T) (*fake.Server, string) {
	t.Helper()
	sim := fake.New(fake.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	return sim, srv.URL
}

func TestBrowserSimulatorLoginPage(t *testing.T) {
	sim, simURL := startSimulator(t)
	ctx := newBrowser(t)
	setPhone(t, ctx)

	// The simulator's own index is a valid redirect_uri and shows the code.
	redirect := simURL + "/fake/"
	q := url.Values{
		"client_id": {fake.DemoAppKey}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid corpid"}, "prompt": {"consent"}, "state": {"browser-test"},
	}
	browse(t, ctx, "open the login page",
		chromedp.Navigate(simURL+"/oauth2/auth?"+q.Encode()),
		chromedp.WaitVisible(`#picker button[data-user-id="zhangsan"]`, chromedp.ByQuery))
	screenshot(t, ctx, "picker")

	browse(t, ctx, "choose an employee",
		chromedp.Click(`#picker button[data-user-id="zhangsan"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#auth-code", chromedp.ByID))
	screenshot(t, ctx, "redirected")

	u := location(t, ctx)
	got := u.Query()
	if !strings.HasPrefix(u.String(), redirect+"?") || got.Get("authCode") == "" || got.Get("state") != "browser-test" {
		t.Errorf("landed on %s, want %s with authCode and state=browser-test", u, redirect)
	}
	if n := sim.Calls(fake.EndpointLoginApprove); n != 1 {
		t.Errorf("simulator saw %d picker submissions, want 1", n)
	}
}

func TestBrowserSimulatorWorkbench(t *testing.T) {
	sim, simURL := startSimulator(t)
	// The "app" records what the browser sent it.
	var gotUA atomic.Value
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.UserAgent())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><meta charset="utf-8"><title>app</title><h1 id="app-home">应用首页 App home</h1>`)
	}))
	t.Cleanup(app.Close)
	sim.AddWorkbenchApp(fake.DemoCorpID, "示例应用 Sample", app.URL+"/home?corpId=$CORPID$")
	sim.AddWorkbenchApp(fake.DemoCorpID, "报销 Expenses", app.URL+"/expenses?corpId=$CORPID$")

	ctx := newBrowser(t)
	setPhone(t, ctx)
	setUserAgent(t, ctx, dingTalkUA)

	browse(t, ctx, "open the simulator index",
		chromedp.Navigate(simURL+"/fake/"),
		chromedp.WaitVisible(`section[data-corp-id="`+fake.DemoCorpID+`"] a.workbench`, chromedp.ByQuery))
	screenshot(t, ctx, "index")

	var tiles []string
	browse(t, ctx, "open the workbench",
		chromedp.Click(`section[data-corp-id="`+fake.DemoCorpID+`"] a.workbench`, chromedp.ByQuery),
		chromedp.WaitVisible(`#workbench a.tile`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("#workbench a.tile")].map(a => a.dataset.appName)`, &tiles))
	screenshot(t, ctx, "workbench")
	if want := []string{"示例应用 Sample", "报销 Expenses"}; strings.Join(tiles, "|") != strings.Join(want, "|") {
		t.Errorf("workbench tiles = %q, want %q", tiles, want)
	}

	browse(t, ctx, "open an app",
		chromedp.Click(`#workbench a.tile[data-app-name="示例应用 Sample"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#app-home", chromedp.ByID))
	screenshot(t, ctx, "app")
	if u, want := location(t, ctx).String(), app.URL+"/home?corpId="+fake.DemoCorpID; u != want {
		t.Errorf("tile opened %s, want %s", u, want)
	}
	if ua, _ := gotUA.Load().(string); !strings.Contains(ua, "DingTalk/7.0.50") {
		t.Errorf("app saw User-Agent %q, want the DingTalk client's", ua)
	}
}

// TestBrowserWorkbenchIntoSampleApp opens the sample app from the simulated
// workbench inside "DingTalk" (its User-Agent) through the app's
// initiate_login_uri, as the provider's workbench path will once it sends
// the browser there; the stand-in authenticator signs the person in.
func TestBrowserWorkbenchIntoSampleApp(t *testing.T) {
	w := newSampleWorld(t, true)
	sim, simURL := startSimulator(t)
	q := url.Values{"iss": {w.provider.issuer}, "target_link_uri": {w.appURL + "/?corpId=$CORPID$"}}
	sim.AddWorkbenchApp(fake.DemoCorpID, "示例应用 Sample", w.appURL+"/login?"+strings.ReplaceAll(q.Encode(), "%24CORPID%24", "$CORPID$"))

	ctx := newBrowser(t)
	setPhone(t, ctx)
	setUserAgent(t, ctx, dingTalkUA)
	browse(t, ctx, "open the workbench",
		chromedp.Navigate(simURL+"/fake/workbench?corpId="+fake.DemoCorpID),
		chromedp.WaitVisible(`#workbench a.tile`, chromedp.ByQuery))
	screenshot(t, ctx, "workbench")

	var sub string
	browse(t, ctx, "tap the sample app",
		chromedp.Click(`#workbench a.tile[data-app-name="示例应用 Sample"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#sign-out", chromedp.ByID),
		chromedp.Text(`#id-token-claims tr[data-claim="sub"] td`, &sub, chromedp.ByQuery))
	screenshot(t, ctx, "signed-in")
	if sub != sampleAlice {
		t.Errorf("signed in as %q, want %q", sub, sampleAlice)
	}
	if u, want := location(t, ctx).String(), w.appURL+"/?corpId="+fake.DemoCorpID; u != want {
		t.Errorf("landed on %s, want the target_link_uri %s", u, want)
	}
}
