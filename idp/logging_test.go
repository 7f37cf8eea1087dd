package idp

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// logFormats are the log formats dingbridge offers (log.format): the
// SEC-04 tests run with each.
var logFormats = []string{"text", "json"}

// debugLogger logs everything to w in format.
func debugLogger(w *syncBuffer, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// wantJSONLines checks that JSON output is one object per line, as log
// shippers expect.
func wantJSONLines(t *testing.T, format, out string) {
	t.Helper()
	if format != "json" {
		return
	}
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not a JSON object: %.200s", line)
		}
	}
}

// TestSEC04_LogsHoldNoSecrets runs sign-ins, refreshes, replays and errors
// with every log at debug level, ours and the library's (slog's default),
// and looks for every code, token, state and secret in what was logged, in
// every log format.
func TestSEC04_LogsHoldNoSecrets(t *testing.T) {
	for _, format := range logFormats {
		t.Run(format, func(t *testing.T) { testLogsHoldNoSecrets(t, format) })
	}
}

func testLogsHoldNoSecrets(t *testing.T, format string) {
	var logs syncBuffer
	logger := debugLogger(&logs, format)
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	e := newEnv(t)
	p, err := New(Config{Issuer: e.issuer, Clients: testClients(), Store: e.store, Keys: e.keys, Accounts: e.accounts,
		Authenticator: AuthenticatorFunc(func(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
			e.p.Finish(w, r, ar.ID, Login{Subject: userAlice, AMR: []string{"dingtalk"}})
		}),
		CryptoKey: testCrypto, CookieHashKey: testCookieHash[:], CookieBlockKey: testCookieBlock[:], Now: e.clock.now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	h := p.Handler()
	e.handler.Store(&h)

	var secrets []string
	b := e.browser()
	v := authParams("scope", "openid offline_access profile")
	secrets = append(secrets, v.Get("state"), v.Get("nonce"), appSecret)
	code := e.code(b, v)
	tr := e.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	secrets = append(secrets, code, tr.str("access_token"), tr.str("refresh_token"), tr.str("id_token"))
	e.token(appID, appSecret, "basic", codeForm(code, appRedirect)) // replay
	e.token(appID, "wrong-secret-value-123", "basic", codeForm("garbage-code-value", appRedirect))
	secrets = append(secrets, "wrong-secret-value-123", "garbage-code-value")
	e.userinfo(tr.str("access_token"))
	e.token(appID, appSecret, "basic", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.str("refresh_token")}})
	e.authorize(e.browser(), authParams("prompt", "none", "state", "state-secret-xyz"))
	secrets = append(secrets, "state-secret-xyz")

	out := logs.String()
	if !strings.Contains(out, "sign-in complete") {
		t.Fatalf("captured no provider logs; got:\n%s", out)
	}
	wantJSONLines(t, format, out)
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log contains a secret value %.12s…", s)
		}
	}
}

// TestSEC04_DingTalkLogsHoldNoSecrets runs DingTalk sign-ins (in-client,
// workbench, a replayed callback, a cancelled one) with every log at debug
// level, ours, the DingTalk clients' and the mapping's, and looks for the
// states, DingTalk codes, our codes and the CSRF token in what was logged,
// in every log format.
func TestSEC04_DingTalkLogsHoldNoSecrets(t *testing.T) {
	for _, format := range logFormats {
		t.Run(format, func(t *testing.T) { testDingTalkLogsHoldNoSecrets(t, format) })
	}
}

func testDingTalkLogsHoldNoSecrets(t *testing.T, format string) {
	var logs syncBuffer
	logger := debugLogger(&logs, format)
	old := slog.Default()
	slog.SetDefault(logger)
	t.Cleanup(func() { slog.SetDefault(old) })

	d := newDingTalkEnv(t, dtOptions{logger: logger})
	var secrets []string
	b := d.browser(uaDingTalk, false)
	d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
	v := authParams()
	code := d.code(b.browser, v)
	cb, err := url.Parse(b.visitedPath(t, "/login/callback/web"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, code, v.Get("state"), v.Get("nonce"), cb.Query().Get("state"), cb.Query().Get("authCode"))
	tr := d.token(appID, appSecret, "basic", codeForm(code, appRedirect))
	secrets = append(secrets, tr.str("access_token"), tr.str("id_token"))
	resp, _ := d.get(b, cb.String()) // replay
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback = %d, want 400", resp.StatusCode)
	}

	wb := d.browser(uaDingTalk, false)
	csrf := d.workbenchPage(wb)
	jsapiCode, err := d.sim.IssueJSAPICode(fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
	if err != nil {
		t.Fatal(err)
	}
	resp, err = wb.PostForm(d.issuer+"/workbench/"+appID+"/code", url.Values{"code": {jsapiCode}, "csrf": {csrf}, "corpId": {fake.DemoCorpID}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	secrets = append(secrets, csrf, jsapiCode)

	cancel := d.browser(uaDingTalk, true)
	state := d.startWeb(cancel)
	d.get(cancel, d.issuer+"/login/callback/web?"+url.Values{"error": {"access_denied"}, "state": {state}}.Encode())
	secrets = append(secrets, state)

	out := logs.String()
	wantJSONLines(t, format, out)
	for _, want := range []string{"dingtalk sign-in started", "sign-in complete", "workbench sign-in complete", "dingtalk call"} {
		if !strings.Contains(out, want) {
			t.Errorf("captured no %q log; got:\n%s", want, out)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log contains a secret value %.12s…", s)
		}
	}
}
