package idp

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/mapping"
)

// User-Agents of the three kinds of browser the login tells apart.
const (
	uaDingTalk = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 AliApp(DingTalk/7.6.0) com.alibaba.android.rimet/7.6.0"
	uaPhone    = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
	uaPC       = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)

// initiateLoginURI is appID's third-party-initiated login URI in these tests.
const initiateLoginURI = "https://app.example.com/start?from=wb"

// apiEndpoints are the DingTalk APIs the bridge itself calls (not the pages
// a browser visits): what "DingTalk calls per sign-in" counts.
var apiEndpoints = []string{
	fake.EndpointAppToken, fake.EndpointCorpToken, fake.EndpointUserToken, fake.EndpointContactUser,
	fake.EndpointGetToken, fake.EndpointUserByUnionID, fake.EndpointUser, fake.EndpointUserInfoByCode,
	fake.EndpointLegacyUserInfo, fake.EndpointSNSUserInfo,
}

// dtEnv is a provider signing people in with DingTalk against the
// simulator, with the mapping in memory.
type dtEnv struct {
	*env
	sim      *fake.Server
	simURL   string
	maps     mapping.Store
	accounts map[string]string // DingTalk userid → account id of the linked employees
}

// dtOptions vary a dtEnv.
type dtOptions struct {
	timeout time.Duration // DingTalk client timeout (default 5s)
	verify  bool          // VerifyMembership
	logger  *slog.Logger
	// pool, when set, keeps the provider's state and the mapping in this
	// Postgres database instead of memory.
	pool     *pgxpool.Pool
	observer Observer
}

// mappingAccounts adapts the mapping to AccountSource, as cmd does.
type mappingAccounts struct{ s mapping.Store }

func (m mappingAccounts) Account(ctx context.Context, id string) (Account, error) {
	a, err := m.s.AccountByID(ctx, id)
	if err != nil {
		return Account{}, err
	}
	return Account{ID: a.ID, Username: a.Username, DisplayName: a.DisplayName, Email: a.Email,
		EmailVerified: a.EmailVerified, Phone: a.Phone, Groups: a.Groups, Disabled: a.Disabled}, nil
}

var testMeta = mapping.Meta{Actor: "test-admin"}

// newDingTalkEnv starts the simulator and a provider using it. zhangsan,
// 李四 (184919295227658120) and 陈静 (manager4927) of DemoCorpID, and liuyang
// of DemoCorp2ID, are linked; wangwu is not.
func newDingTalkEnv(t *testing.T, o dtOptions) *dtEnv {
	t.Helper()
	ctx := t.Context()
	setDefault(&o.timeout, 5*time.Second)
	sim := fake.New(fake.Options{})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	sim.SetBaseURL(simSrv.URL)

	e := &env{t: t, store: NewMemoryStore(), accounts: newAccounts(), clock: &clock{t: time.Now().Truncate(time.Second)}}
	var maps mapping.Store = mapping.NewMemory(mapping.Options{Now: e.clock.now})
	if o.pool != nil {
		e.store = NewPostgresStore(o.pool)
		maps = mapping.NewPostgres(o.pool, mapping.Options{Now: e.clock.now})
	}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.issuer = e.srv.URL
	keys, err := NewKeyManager(KeyConfig{Store: e.store, KEK: providerKEK[:], Now: e.clock.now, RSABits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.keys = keys

	d := &dtEnv{env: e, sim: sim, simURL: simSrv.URL, maps: maps, accounts: map[string]string{}}
	link := func(corpID, appKey, userID, unionID, username, name string) {
		a, err := maps.CreateAccount(ctx, testMeta, mapping.Account{Username: username, DisplayName: name, Email: username + "@corp.example.com", EmailVerified: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = maps.CreateBinding(ctx, testMeta, mapping.Binding{
			Identity:  mapping.Identity{CorpID: corpID, UserID: userID, UnionID: unionID, AppKey: appKey},
			AccountID: a.ID, Source: mapping.SourceAdmin,
		})
		if err != nil {
			t.Fatal(err)
		}
		d.accounts[userID] = a.ID
	}
	fx := fake.DefaultFixture()
	for _, c := range fx.Corps {
		for _, emp := range c.Employees {
			switch emp.UserID {
			case "zhangsan", "184919295227658120", "manager4927", "liuyang":
				link(c.ID, c.Apps[0].AppKey, emp.UserID, emp.UnionID, strings.ToLower(emp.UserID[:min(len(emp.UserID), 12)]), emp.Name)
			}
		}
	}
	resolver, err := mapping.NewResolver(mapping.ResolverConfig{Store: maps, Logger: o.logger,
		Corps: []mapping.Corp{{ID: fake.DemoCorpID}, {ID: fake.DemoCorp2ID}}})
	if err != nil {
		t.Fatal(err)
	}
	client := func(corpID, key, secret, snsID, snsSecret string) *dingtalk.Client {
		c, err := dingtalk.New(dingtalk.Config{
			APIBaseURL: simSrv.URL, OAPIBaseURL: simSrv.URL, LoginBaseURL: simSrv.URL,
			CorpID: corpID, AppKey: key, AppSecret: secret, SNSAppID: snsID, SNSAppSecret: snsSecret,
			Timeout: o.timeout, Logger: o.logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clients := testClients()
	clients[0].InitiateLoginURI = initiateLoginURI
	clients[0].Corps = []string{fake.DemoCorpID}
	p, err := New(Config{
		Issuer: e.issuer, Clients: clients, Store: e.store, Keys: keys, Accounts: mappingAccounts{maps},
		DingTalk: &DingTalkConfig{
			Corps: []DingTalkCorp{
				{ID: fake.DemoCorpID, Name: "示例科技有限公司", SNS: true,
					Client: client(fake.DemoCorpID, fake.DemoAppKey, fake.DemoAppSecret, fake.DemoSNSAppID, fake.DemoSNSAppSecret)},
				{ID: fake.DemoCorp2ID, Name: "星河制造集团", Client: client(fake.DemoCorp2ID, fake.DemoApp2Key, fake.DemoApp2Secret, "", "")},
			},
			Resolver:         resolver,
			LoginBaseURL:     simSrv.URL,
			QRScriptURL:      simSrv.URL + "/fake/ddlogin.js",
			JSAPIScriptURL:   simSrv.URL + "/fake/jsapi.js",
			VerifyMembership: o.verify,
		},
		CryptoKey: testCrypto, CookieHashKey: testCookieHash[:], CookieBlockKey: testCookieBlock[:],
		Now: e.clock.now, Logger: o.logger, Observer: o.observer,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	h := p.Handler()
	e.handler.Store(&h)
	return d
}

// dtBrowser is a browser with a User-Agent that follows redirects within
// the provider and the simulator (or, with stopAtDingTalk, only within the
// provider), and remembers every URL it requested.
type dtBrowser struct {
	*browser
	mu      sync.Mutex
	visited []string
}

type uaTransport struct {
	ua string
	b  *dtBrowser
}

func (t *uaTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", t.ua)
	req.Header.Set("Accept-Language", "en")
	t.b.mu.Lock()
	t.b.visited = append(t.b.visited, req.URL.String())
	t.b.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (d *dtEnv) browser(ua string, stopAtDingTalk bool) *dtBrowser {
	jar, _ := cookiejar.New(nil)
	issuer, _ := url.Parse(d.issuer)
	sim, _ := url.Parse(d.simURL)
	b := &dtBrowser{}
	b.browser = &browser{&http.Client{
		Jar:       jar,
		Transport: &uaTransport{ua: ua, b: b},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == issuer.Host || (req.URL.Host == sim.Host && !stopAtDingTalk) {
				return nil
			}
			return http.ErrUseLastResponse
		},
	}}
	return b
}

// visitedPath returns the last URL the browser requested whose path is path.
func (b *dtBrowser) visitedPath(t *testing.T, path string) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.visited) - 1; i >= 0; i-- {
		if u, _ := url.Parse(b.visited[i]); u != nil && u.Path == path {
			return b.visited[i]
		}
	}
	t.Fatalf("the browser never requested %s; it requested %v", path, b.visited)
	return ""
}

func (d *dtEnv) get(b *dtBrowser, u string) (*http.Response, string) {
	d.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		d.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// apiCalls sums the simulator's counts of the DingTalk APIs.
func (d *dtEnv) apiCalls() int {
	n := 0
	for _, ep := range apiEndpoints {
		n += d.sim.Calls(ep)
	}
	return n
}

// signInAs runs a whole sign-in of appID through DingTalk as userID of
// corpID (the simulator approves at once) and returns the claims.
func (d *dtEnv) signInAs(b *dtBrowser, corpID, userID string) map[string]any {
	d.t.Helper()
	d.sim.SetAutoApprove(corpID, userID)
	idt, _ := d.signIn(b.browser, d.rp(appID, appSecret, appRedirect), authParams())
	return claimsOf(d.t, idt)
}

// wantPage checks a page's status and that it says what it should.
func wantPage(t *testing.T, resp *http.Response, body string, status int, says ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; Location %q; body:\n%.600s", resp.StatusCode, status, resp.Header.Get("Location"), body)
	}
	for _, s := range says {
		if !strings.Contains(body, s) {
			t.Errorf("page does not say %q; body:\n%.800s", s, body)
		}
	}
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") {
		t.Errorf("redirected with a code to %s", loc)
	}
}

func wantAMR(t *testing.T, claims map[string]any, want ...string) {
	t.Helper()
	var got []string
	for _, v := range claims["amr"].([]any) {
		got = append(got, v.(string))
	}
	if !slices.Equal(got, want) {
		t.Errorf("amr = %v, want %v", got, want)
	}
}

// TestDingTalkInClientFlow: inside DingTalk, /login 302s to DingTalk's
// OAuth2 page, which comes back to /login/callback/web; the ID token's sub
// is the linked account.
func TestDingTalkInClientFlow(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaDingTalk, false)
	claims := d.signInAs(b, fake.DemoCorpID, "zhangsan")
	if got, want := claims["sub"], d.accounts["zhangsan"]; got != want {
		t.Errorf("sub = %v, want %v", got, want)
	}
	wantAMR(t, claims, "dingtalk", "web")
	authURL, _ := url.Parse(b.visitedPath(t, "/oauth2/auth"))
	q := authURL.Query()
	if q.Get("redirect_uri") != d.issuer+"/login/callback/web" || q.Get("corpId") != fake.DemoCorpID ||
		q.Get("scope") != "openid corpid" || len(q.Get("state")) < 43 {
		t.Errorf("DingTalk authorize URL = %s, want our web callback, the corp, openid corpid and a 256-bit state", authURL)
	}
}

var dataAttr = regexp.MustCompile(`data-([a-z-]+)="([^"]*)"`)

// attrs returns the data-* attributes of a page.
func attrs(body string) map[string]string {
	out := map[string]string{}
	for _, m := range dataAttr.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

var hrefAttr = regexp.MustCompile(`href="([^"]*)"`)

// links returns the page's links that start with prefix.
func links(body, prefix string) []string {
	var out []string
	for _, m := range hrefAttr.FindAllStringSubmatch(body, -1) {
		if h := html.UnescapeString(m[1]); strings.HasPrefix(h, prefix) {
			out = append(out, h)
		}
	}
	return out
}

// TestDingTalkQRFlow: a PC browser gets the QR page (embedded DTFrameLogin,
// no inline script, CSP for DingTalk's origin); the scan's redirect lands on
// /login/callback/qr and signs in.
func TestDingTalkQRFlow(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaPC, false)
	v := authParams()
	resp := d.authorize(b.browser, v)
	body := page(t, resp)
	wantPage(t, resp, body, http.StatusOK, "Scan the QR code", d.simURL+"/fake/ddlogin.js", "/static/login.js", "Cannot scan?", "Legacy scan login")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' " + d.simURL, "frame-src " + d.simURL, "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || regexp.MustCompile(`<script(?:[^>]*)>[^<]`).MatchString(body) || strings.Contains(body, "<script>") {
		t.Errorf("QR page has inline script or allows it; CSP %q", csp)
	}
	a := attrs(body)
	if a["login-origin"] != d.simURL || a["redirect-uri"] != d.issuer+"/login/callback/qr" || a["client-id"] != fake.DemoAppKey || a["corp-id"] != fake.DemoCorpID || a["state"] == "" {
		t.Fatalf("QR frame attributes = %v", a)
	}
	if got := links(body, d.simURL+"/oauth2/auth"); len(got) != 1 {
		t.Errorf("links to DingTalk's login page = %v, want one (the plain link)", got)
	}

	// What DTFrameLogin's frame does after the scan, minus the frame.
	d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
	q := url.Values{"redirect_uri": {a["redirect-uri"]}, "response_type": {"code"}, "client_id": {a["client-id"]},
		"scope": {"openid corpid"}, "prompt": {"consent"}, "state": {a["state"]}, "corpId": {a["corp-id"]}}
	resp, err := b.Get(d.simURL + "/oauth2/auth?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cb := d.redirectParams(resp, appRedirect)
	b.visitedPath(t, "/login/callback/qr")
	tok, err := d.rp(appID, appSecret, appRedirect).oauth.Exchange(t.Context(), cb.Get("code"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idt, err := d.rp(appID, appSecret, appRedirect).verifier.Verify(t.Context(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	wantAMR(t, claimsOf(t, idt), "dingtalk", "qr")

	t.Run("static script", func(t *testing.T) {
		resp, body := d.get(d.browser(uaPC, false), d.issuer+"/static/login.js")
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") ||
			!strings.Contains(body, "ev.origin !== d.loginOrigin") {
			t.Errorf("GET /static/login.js = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// TestDingTalkPhoneBrowser: a phone outside DingTalk gets the link and the
// open-in-DingTalk hint.
func TestDingTalkPhoneBrowser(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaPhone, false)
	resp := d.authorize(b.browser, authParams())
	body := page(t, resp)
	wantPage(t, resp, body, http.StatusOK, "Sign in with DingTalk", "open this page in the DingTalk app")
	ls := links(body, d.simURL+"/oauth2/auth")
	if len(ls) != 1 || strings.Contains(body, "dt-qr") {
		t.Fatalf("links = %v, want one link and no QR frame", ls)
	}
	d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
	resp, err := b.Get(ls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d.redirectParams(resp, appRedirect)
}

// TestDingTalkCorpPicker: a client admitting both configured corps gets
// the picker; a choice continues in that corp.
func TestDingTalkCorpPicker(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaDingTalk, false)
	v := authParams("client_id", otherID, "redirect_uri", otherRedir)
	resp := d.authorize(b.browser, v)
	body := page(t, resp)
	wantPage(t, resp, body, http.StatusOK, "Choose your organisation", "示例科技有限公司", "星河制造集团")
	ls := links(body, d.issuer+"/login/corp?")
	if len(ls) != 2 {
		t.Fatalf("picker links = %v, want 2", ls)
	}
	d.sim.SetAutoApprove(fake.DemoCorp2ID, "liuyang")
	resp, err := b.Get(ls[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	d.redirectParams(resp, "https://other.example.com/cb")

	t.Run("corp not admitted", func(t *testing.T) {
		b := d.browser(uaDingTalk, false)
		resp := d.authorize(b.browser, authParams()) // appID admits DemoCorpID only
		resp.Body.Close()
		u, _ := url.Parse(b.visitedPath(t, "/login"))
		resp, body := d.get(b, d.issuer+"/login/corp?"+url.Values{"authRequestID": {u.Query().Get("authRequestID")}, "corp": {fake.DemoCorp2ID}}.Encode())
		wantPage(t, resp, body, http.StatusForbidden, "may not sign in")
	})
}

// TestDingTalkCallsPerSignIn counts the DingTalk API calls the simulator
// sees: a linked person's first web sign-in (app token warm) ≤ 3, with a
// fresh snapshot 2, JSAPI ≤ 1, a second app with the SSO session 0.
func TestDingTalkCallsPerSignIn(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	d.signInAs(d.browser(uaDingTalk, false), fake.DemoCorpID, "184919295227658120") // warms the app token

	d.sim.ResetCalls()
	b := d.browser(uaDingTalk, false)
	d.signInAs(b, fake.DemoCorpID, "zhangsan")
	first := d.apiCalls()
	t.Logf("DingTalk calls, first web sign-in of a linked person: %d (user token %d, me %d, getbyunionid %d, user get %d, app token %d)",
		first, d.sim.Calls(fake.EndpointUserToken), d.sim.Calls(fake.EndpointContactUser), d.sim.Calls(fake.EndpointUserByUnionID),
		d.sim.Calls(fake.EndpointUser), d.sim.Calls(fake.EndpointAppToken))
	if first > 3 {
		t.Errorf("first web sign-in made %d DingTalk calls, want ≤ 3", first)
	}
	if n := d.sim.Calls(fake.EndpointUserByUnionID); n != 0 {
		t.Errorf("getbyunionid called %d times for a known identity, want 0", n)
	}

	d.sim.ResetCalls()
	d.signIn(b.browser, d.rp(otherID, otherSecret, otherRedir), authParams("client_id", otherID, "redirect_uri", otherRedir))
	if n := d.apiCalls(); n != 0 {
		t.Errorf("second app with an SSO session made %d DingTalk calls, want 0", n)
	}

	d.sim.ResetCalls()
	d.signInAs(d.browser(uaDingTalk, false), fake.DemoCorpID, "zhangsan")
	fresh := d.apiCalls()
	t.Logf("DingTalk calls, web sign-in with a fresh snapshot: %d", fresh)
	if fresh > 2 {
		t.Errorf("web sign-in with a fresh snapshot made %d DingTalk calls, want ≤ 2", fresh)
	}

	d.sim.ResetCalls()
	wb := d.browser(uaDingTalk, false)
	resp, _ := d.workbenchPost(wb, "zhangsan")
	resp.Body.Close()
	jsapi := d.apiCalls()
	t.Logf("DingTalk calls, workbench JSAPI sign-in with a fresh snapshot: %d", jsapi)
	if jsapi > 1 {
		t.Errorf("JSAPI sign-in made %d DingTalk calls, want ≤ 1", jsapi)
	}
}

// TestDingTalkVerifyMembership: with VerifyMembership every sign-in asks the
// directory, and a person who left is refused though known and fresh.
func TestDingTalkVerifyMembership(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{verify: true})
	d.signInAs(d.browser(uaDingTalk, false), fake.DemoCorpID, "zhangsan")
	if n := d.sim.Calls(fake.EndpointUserByUnionID); n != 1 {
		t.Errorf("getbyunionid called %d times, want 1", n)
	}
	d.sim.SetLeft(fake.DemoCorpID, "zhangsan", true)
	b := d.browser(uaDingTalk, false)
	resp := d.authorize(b.browser, authParams())
	wantPage(t, resp, page(t, resp), http.StatusForbidden, "Not a member of 示例科技有限公司")
}

// TestDingTalkNotLinkedThenApproved: an unlinked employee sees "not linked
// yet" with a pending request recorded; once an administrator approves it,
// the next sign-in works.
func TestDingTalkNotLinkedThenApproved(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	ctx := t.Context()
	d.sim.SetAutoApprove(fake.DemoCorpID, "wangwu")
	resp := d.authorize(d.browser(uaDingTalk, false).browser, authParams())
	wantPage(t, resp, page(t, resp), http.StatusOK, "Not linked yet", "sent to the administrators")

	reqs, err := d.maps.PendingRequests(ctx, mapping.RequestQuery{})
	if err != nil || len(reqs.Requests) != 1 || reqs.Requests[0].Key.UserID != "wangwu" {
		t.Fatalf("pending requests = %+v, %v; want one for wangwu", reqs.Requests, err)
	}
	a, err := d.maps.CreateAccount(ctx, testMeta, mapping.Account{Username: "wangwu", DisplayName: "王五"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.maps.Approve(ctx, testMeta, reqs.Requests[0].ID, a.ID); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	claims := d.signInAs(d.browser(uaDingTalk, false), fake.DemoCorpID, "wangwu")
	if claims["sub"] != a.ID {
		t.Errorf("sub = %v, want %v", claims["sub"], a.ID)
	}
}

// TestDingTalkRefusals: people who may not sign in see why, and no code.
func TestDingTalkRefusals(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(d *dtEnv)
		corp   string
		user   string
		status int
		says   string
	}{
		{name: "left the corp (60121)", setup: func(d *dtEnv) { d.sim.SetLeft(fake.DemoCorpID, "184919295227658120", true) },
			corp: fake.DemoCorpID, user: "184919295227658120", status: http.StatusForbidden, says: "Not a member of 示例科技有限公司"},
		{name: "left, never linked", corp: fake.DemoCorpID, user: "zhaoliu", status: http.StatusForbidden, says: "Not a member of 示例科技有限公司"},
		{name: "account disabled", setup: func(d *dtEnv) {
			if _, err := d.maps.SetAccountDisabled(d.t.Context(), testMeta, d.accounts["manager4927"], true); err != nil {
				d.t.Fatal(err)
			}
		}, corp: fake.DemoCorpID, user: "manager4927", status: http.StatusForbidden, says: "Your account cannot sign in"},
		{name: "BAD-62 user of the other corp", corp: fake.DemoCorp2ID, user: "liuyang", status: http.StatusForbidden, says: "Not a member of 示例科技有限公司"},
		{name: "app lacks a permission", setup: func(d *dtEnv) { d.sim.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 60011}) },
			corp: fake.DemoCorpID, user: "zhangsan", status: http.StatusBadGateway, says: "lacks a permission"},
		{name: "app lacks Contact.User.Read: the page names it", setup: func(d *dtEnv) { d.sim.SetDeniedScopes(fake.DemoAppKey, "Contact.User.Read") },
			corp: fake.DemoCorpID, user: "zhangsan", status: http.StatusBadGateway, says: "Contact.User.Read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDingTalkEnv(t, dtOptions{})
			if tt.setup != nil {
				tt.setup(d)
			}
			d.sim.SetAutoApprove(tt.corp, tt.user)
			resp := d.authorize(d.browser(uaDingTalk, false).browser, authParams())
			wantPage(t, resp, page(t, resp), tt.status, tt.says)
		})
	}
}

// startWeb begins a sign-in in a DingTalk browser and stops at DingTalk:
// it returns the state our /login sent along.
func (d *dtEnv) startWeb(b *dtBrowser) string {
	d.t.Helper()
	resp := d.authorize(b.browser, authParams())
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc, d.simURL+"/oauth2/auth") {
		d.t.Fatalf("/login answered %d %q, want a redirect to DingTalk", resp.StatusCode, loc)
	}
	return u.Query().Get("state")
}

// TestBR01_BadCallbacks: replayed, unknown, expired, other-browser and
// wrong-mode callbacks end on the start-again page before any DingTalk call.
func TestBR01_BadCallbacks(t *testing.T) {
	code := func(d *dtEnv) string {
		c, err := d.sim.IssueLoginCode(fake.DemoAppKey, fake.DemoCorpID, "zhangsan", true)
		if err != nil {
			d.t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name string
		// callback returns the browser and callback URL to try.
		callback func(d *dtEnv) (*dtBrowser, string)
	}{
		{name: "BAD-57 replayed", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, false)
			d.signInAs(b, fake.DemoCorpID, "zhangsan")
			d.sim.ResetCalls()
			return b, b.visitedPath(d.t, "/login/callback/web")
		}},
		{name: "BAD-58 unknown state", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, true)
			d.startWeb(b)
			return b, d.issuer + "/login/callback/web?" + url.Values{"authCode": {code(d)}, "state": {randomSecret()}}.Encode()
		}},
		{name: "BAD-59 expired", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, true)
			state := d.startWeb(b)
			d.clock.advance(upstreamLifetime)
			return b, d.issuer + "/login/callback/web?" + url.Values{"authCode": {code(d)}, "state": {state}}.Encode()
		}},
		{name: "other browser", callback: func(d *dtEnv) (*dtBrowser, string) {
			state := d.startWeb(d.browser(uaDingTalk, true))
			b := d.browser(uaDingTalk, true)
			d.authorize(b.browser, authParams()) // a browser with a cookie of its own
			return b, d.issuer + "/login/callback/web?" + url.Values{"authCode": {code(d)}, "state": {state}}.Encode()
		}},
		{name: "BR-05 wrong mode", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, true)
			state := d.startWeb(b)
			return b, d.issuer + "/login/callback/qr?" + url.Values{"authCode": {code(d)}, "state": {state}}.Encode()
		}},
		{name: "BR-15 request done through its other state", callback: func(d *dtEnv) (*dtBrowser, string) {
			// The QR page holds two states of one request: signing in with
			// the plain link's leaves the QR state unused but its request done.
			b := d.browser(uaPC, false)
			body := page(d.t, d.authorize(b.browser, authParams()))
			qrState, web := attrs(body)["state"], links(body, d.simURL+"/oauth2/auth")
			if qrState == "" || len(web) != 1 {
				d.t.Fatalf("QR page: state %q, links to DingTalk %v", qrState, web)
			}
			d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
			resp, err := b.Get(web[0])
			if err != nil {
				d.t.Fatal(err)
			}
			resp.Body.Close()
			d.redirectParams(resp, appRedirect)
			d.sim.ResetCalls()
			return b, d.issuer + "/login/callback/qr?" + url.Values{"authCode": {code(d)}, "state": {qrState}}.Encode()
		}},
		{name: "BR-15 request expired, state live", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, true)
			d.startWeb(b)
			login := b.visitedPath(d.t, "/login")
			d.clock.advance(authRequestLifetime - time.Minute)
			resp, _ := d.get(b, login) // a second try, as the cancelled page offers: a new state
			u, err := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || err != nil {
				d.t.Fatalf("/login answered %d %q, want a redirect to DingTalk", resp.StatusCode, resp.Header.Get("Location"))
			}
			d.clock.advance(time.Minute)
			return b, d.issuer + "/login/callback/web?" + url.Values{"authCode": {code(d)}, "state": {u.Query().Get("state")}}.Encode()
		}},
		{name: "no state", callback: func(d *dtEnv) (*dtBrowser, string) {
			b := d.browser(uaDingTalk, true)
			d.startWeb(b)
			return b, d.issuer + "/login/callback/web?" + url.Values{"authCode": {code(d)}}.Encode()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDingTalkEnv(t, dtOptions{})
			b, u := tt.callback(d)
			resp, body := d.get(b, u)
			wantPage(t, resp, body, http.StatusBadRequest, "This sign-in link has expired")
			if n := d.apiCalls(); n != 0 {
				t.Errorf("DingTalk saw %d API calls (user token: %d), want 0", n, d.sim.Calls(fake.EndpointUserToken))
			}
		})
	}
}

// TestBR14_Cancelled: error=access_denied ends on "you cancelled" with a
// link that restarts the same request, which then succeeds.
func TestBR14_Cancelled(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaDingTalk, true)
	v := authParams()
	resp := d.authorize(b.browser, v)
	state, _ := url.Parse(resp.Header.Get("Location"))
	resp, body := d.get(b, d.issuer+"/login/callback/web?"+url.Values{"error": {"access_denied"}, "state": {state.Query().Get("state")}}.Encode())
	wantPage(t, resp, body, http.StatusOK, "You cancelled")
	retry := links(body, d.issuer+"/login?authRequestID=")
	if len(retry) != 1 || d.apiCalls() != 0 {
		t.Fatalf("retry links = %v, DingTalk calls %d; want one link and no call", retry, d.apiCalls())
	}
	d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
	b2 := d.browser(uaDingTalk, false)
	b2.Jar = b.Jar
	resp, err := b2.Get(retry[0])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := d.redirectParams(resp, appRedirect); got.Get("state") != v.Get("state") || got.Get("code") == "" {
		t.Errorf("retry ended with %v, want a code and the client's state", got)
	}
}

// TestBAD64_65_DingTalkFailures: timeouts, 500s, the punish page and
// truncated answers end on "DingTalk is busy" with a retry link; never a code.
func TestBAD64_65_DingTalkFailures(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		fault    fake.Fault
	}{
		{name: "BAD-64 latency beyond the timeout", endpoint: fake.EndpointUserToken, fault: fake.Fault{Latency: 5 * time.Second}},
		{name: "BAD-65 HTTP 500", endpoint: fake.EndpointUserToken, fault: fake.Fault{HTTPStatus: http.StatusInternalServerError}},
		{name: "BAD-65 punish page", endpoint: fake.EndpointContactUser, fault: fake.Fault{PunishPage: true}},
		{name: "BAD-65 truncated", endpoint: fake.EndpointUserToken, fault: fake.Fault{Truncated: true}},
		{name: "BAD-65 directory 500", endpoint: fake.EndpointUser, fault: fake.Fault{HTTPStatus: http.StatusBadGateway}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDingTalkEnv(t, dtOptions{timeout: 300 * time.Millisecond})
			d.sim.InjectFault(tt.endpoint, tt.fault)
			d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
			b := d.browser(uaDingTalk, false)
			resp := d.authorize(b.browser, authParams())
			body := page(t, resp)
			wantPage(t, resp, body, http.StatusServiceUnavailable, "DingTalk is busy")
			if got := links(body, d.issuer+"/login?authRequestID="); len(got) != 1 {
				t.Errorf("retry links = %v, want one", got)
			}
		})
	}
}

// workbenchPage loads the workbench page and returns its CSRF token.
func (d *dtEnv) workbenchPage(b *dtBrowser) string {
	d.t.Helper()
	resp, body := d.get(b, d.issuer+"/workbench/"+appID+"?corpId="+fake.DemoCorpID)
	if resp.StatusCode != http.StatusOK {
		d.t.Fatalf("workbench page = %d:\n%.500s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		d.t.Fatalf("workbench page has no CSRF token:\n%s", body)
	}
	return m[1]
}

// workbenchPost loads the workbench page and posts a JSAPI code for userID.
func (d *dtEnv) workbenchPost(b *dtBrowser, userID string) (*http.Response, string) {
	d.t.Helper()
	csrf := d.workbenchPage(b)
	code, err := d.sim.IssueJSAPICode(fake.DemoCorpID, fake.DemoAppKey, userID)
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := b.PostForm(d.issuer+"/workbench/"+appID+"/code", url.Values{"code": {code}, "csrf": {csrf}, "corpId": {fake.DemoCorpID}})
	if err != nil {
		d.t.Fatal(err)
	}
	return resp, code
}

// TestDingTalkWorkbench: the page loads the JSAPI script with a CSRF token;
// the posted code starts a session and goes to initiate_login_uri with iss,
// from where the app's own request completes silently.
func TestDingTalkWorkbench(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaDingTalk, false)
	resp, body := d.get(b, d.issuer+"/workbench/"+appID+"?corpId="+fake.DemoCorpID)
	wantPage(t, resp, body, http.StatusOK, d.simURL+"/fake/jsapi.js", "/static/workbench.js", `name="csrf"`,
		`data-client-id="`+fake.DemoAppKey+`"`, `data-corp-id="`+fake.DemoCorpID+`"`)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self' " + d.simURL, "connect-src " + d.simURL, "form-action 'self' https://app.example.com"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}

	resp, _ = d.workbenchPost(b, "zhangsan")
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "app.example.com" || loc.Path != "/start" ||
		loc.Query().Get("iss") != d.issuer || loc.Query().Get("from") != "wb" {
		t.Fatalf("workbench POST = %d %q, want a redirect to %s with iss", resp.StatusCode, resp.Header.Get("Location"), initiateLoginURI)
	}
	d.sim.ResetCalls()
	idt, _ := d.signIn(b.browser, d.rp(appID, appSecret, appRedirect), authParams())
	claims := claimsOf(t, idt)
	if claims["sub"] != d.accounts["zhangsan"] {
		t.Errorf("sub = %v, want %v", claims["sub"], d.accounts["zhangsan"])
	}
	wantAMR(t, claims, "dingtalk", "jsapi")
	if n := d.apiCalls(); n != 0 {
		t.Errorf("the app's request after the workbench made %d DingTalk calls, want 0", n)
	}

	t.Run("client without initiate_login_uri", func(t *testing.T) {
		b := d.browser(uaDingTalk, false)
		resp, body := d.get(b, d.issuer+"/workbench/"+otherID+"?corpId="+fake.DemoCorpID)
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
		if resp.StatusCode != http.StatusOK || csrf == nil {
			t.Fatalf("workbench page = %d", resp.StatusCode)
		}
		code, _ := d.sim.IssueJSAPICode(fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
		resp, err := b.PostForm(d.issuer+"/workbench/"+otherID+"/code", url.Values{"code": {code}, "csrf": {csrf[1]}, "corpId": {fake.DemoCorpID}})
		if err != nil {
			t.Fatal(err)
		}
		wantPage(t, resp, page(t, resp), http.StatusOK, "You are signed in")
	})
	t.Run("same code twice", func(t *testing.T) {
		b := d.browser(uaDingTalk, false)
		_, code := d.workbenchPost(b, "zhangsan")
		csrf := d.workbenchPage(b)
		resp, err := b.PostForm(d.issuer+"/workbench/"+appID+"/code", url.Values{"code": {code}, "csrf": {csrf}, "corpId": {fake.DemoCorpID}})
		if err != nil {
			t.Fatal(err)
		}
		wantPage(t, resp, page(t, resp), http.StatusBadRequest, "This sign-in link has expired")
	})
}

// TestBAD67_WorkbenchCSRF: the code endpoint wants the page's CSRF token,
// and POST.
func TestBAD67_WorkbenchCSRF(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	tests := []struct {
		name     string
		loadPage bool
		csrf     string
	}{
		{name: "no token, no page"},
		{name: "no token", loadPage: true},
		{name: "wrong token", loadPage: true, csrf: "wrong-token-wrong-token-wrong-token-wrong"},
		{name: "token without the page's cookie", csrf: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := d.browser(uaDingTalk, false)
			if tt.loadPage {
				d.workbenchPage(b)
			}
			code, _ := d.sim.IssueJSAPICode(fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
			d.sim.ResetCalls()
			form := url.Values{"code": {code}, "corpId": {fake.DemoCorpID}}
			if tt.csrf != "" {
				form.Set("csrf", tt.csrf)
			}
			resp, err := b.PostForm(d.issuer+"/workbench/"+appID+"/code", form)
			if err != nil {
				t.Fatal(err)
			}
			wantPage(t, resp, page(t, resp), http.StatusForbidden, "Request refused")
			if n := d.apiCalls(); n != 0 {
				t.Errorf("DingTalk saw %d calls, want 0", n)
			}
		})
	}
	t.Run("GET on the POST endpoint", func(t *testing.T) {
		resp, body := d.get(d.browser(uaDingTalk, false), d.issuer+"/workbench/"+appID+"/code")
		wantPage(t, resp, body, http.StatusMethodNotAllowed, "Method not allowed")
		if resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
		}
	})
	for _, u := range []string{
		"/workbench/nobody?corpId=" + fake.DemoCorpID,
		"/workbench/" + appID + "?corpId=dingunknowncorp",
		"/workbench/" + appID + "?corpId=" + fake.DemoCorp2ID, // configured, but appID admits DemoCorpID only
	} {
		t.Run("GET "+u, func(t *testing.T) {
			resp, body := d.get(d.browser(uaDingTalk, false), d.issuer+u)
			wantPage(t, resp, body, http.StatusNotFound, "cannot be opened here")
		})
	}
}

// TestDingTalkLegacySNS: a corp with a legacy scan-login app offers it;
// its callback signs in through unionId → userid.
func TestDingTalkLegacySNS(t *testing.T) {
	d := newDingTalkEnv(t, dtOptions{})
	b := d.browser(uaPC, false)
	resp := d.authorize(b.browser, authParams())
	body := page(t, resp)
	ls := links(body, d.simURL+"/connect/qrconnect")
	if len(ls) != 1 {
		t.Fatalf("legacy links = %v, want one", ls)
	}
	d.sim.SetAutoApprove(fake.DemoCorpID, "184919295227658120")
	resp, err := b.Get(ls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cb := d.redirectParams(resp, appRedirect)
	b.visitedPath(t, "/login/callback/sns")
	tok, err := d.rp(appID, appSecret, appRedirect).oauth.Exchange(t.Context(), cb.Get("code"))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	idt, err := d.rp(appID, appSecret, appRedirect).verifier.Verify(t.Context(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	claims := claimsOf(t, idt)
	wantAMR(t, claims, "dingtalk", "sns")
	if claims["sub"] != d.accounts["184919295227658120"] {
		t.Errorf("sub = %v, want %v", claims["sub"], d.accounts["184919295227658120"])
	}
}

// TestDingTalkConfigErrors: New refuses a DingTalk login it cannot run.
func TestDingTalkConfigErrors(t *testing.T) {
	e := newEnv(t)
	base := func() Config {
		return Config{Issuer: e.issuer, Clients: testClients(), Store: e.store, Keys: e.keys, Accounts: e.accounts,
			CryptoKey: testCrypto, CookieHashKey: testCookieHash[:], CookieBlockKey: testCookieBlock[:]}
	}
	c, err := dingtalk.New(dingtalk.Config{AppKey: "k", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	resolver, _ := mapping.NewResolver(mapping.ResolverConfig{Store: mapping.NewMemory(mapping.Options{})})
	good := DingTalkConfig{Corps: []DingTalkCorp{{ID: "dingc1", Client: c}}, Resolver: resolver,
		LoginBaseURL: "https://login.dingtalk.com", QRScriptURL: "https://g.alicdn.com/x/ddlogin.js", JSAPIScriptURL: "https://g.alicdn.com/x/dingtalk.open.js"}
	tests := []struct {
		name   string
		change func(c *Config)
	}{
		{name: "with an authenticator", change: func(c *Config) {
			c.Authenticator = AuthenticatorFunc(func(http.ResponseWriter, *http.Request, *AuthRequest) {})
		}},
		{name: "no corps", change: func(c *Config) { c.DingTalk.Corps = nil }},
		{name: "no resolver", change: func(c *Config) { c.DingTalk.Resolver = nil }},
		{name: "corp twice", change: func(c *Config) { c.DingTalk.Corps = append(c.DingTalk.Corps, c.DingTalk.Corps[0]) }},
		{name: "relative QR script", change: func(c *Config) { c.DingTalk.QRScriptURL = "/ddlogin.js" }},
		{name: "no login base", change: func(c *Config) { c.DingTalk.LoginBaseURL = "" }},
	}
	cfg := base()
	dt := good
	cfg.DingTalk = &dt
	if _, err := New(cfg); err != nil {
		t.Fatalf("New with a good DingTalk config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			dt := good
			dt.Corps = slices.Clone(good.Corps)
			cfg.DingTalk = &dt
			tt.change(&cfg)
			if _, err := New(cfg); err == nil {
				t.Error("New succeeded, want an error")
			}
		})
	}
}
