package fake_test

// The contract test runs the real DingTalk client (package dingtalk) against
// the simulator for every endpoint the client uses, successes and errors,
// so that both provably speak the protocol of dingtalk-api.md the same way.
// When they disagree, the side the protocol description contradicts is
// fixed; assertions here are never relaxed to make them agree.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// redirectURI is the relying party's registered login callback.
const redirectURI = "https://idp.example.com/cb/dingtalk"

// clock is a settable time source shared by the client and the fake.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a bytes.Buffer safe for the client's concurrent logging
// (app tokens are fetched on a background goroutine).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// secretSet collects every secret value of the run: app secrets, and every
// token and code the fake handed out.
type secretSet struct {
	mu   sync.Mutex
	vals map[string]bool
}

func (s *secretSet) add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		// Very short values would match by accident; none of DingTalk's are.
		if len(v) >= 6 {
			s.vals[v] = true
		}
	}
}

func (s *secretSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.vals))
	for v := range s.vals {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// found returns the secrets that occur in text.
func (s *secretSet) found(text string) []string {
	var out []string
	for _, v := range s.list() {
		if strings.Contains(text, v) {
			out = append(out, v)
		}
	}
	return out
}

// contract is what all subtests share: the client's log and the secrets
// that must never appear in it.
type contract struct {
	log       *syncBuffer
	logger    *slog.Logger
	secrets   *secretSet
	succeeded *endpointSet
}

// endpointSet records which endpoints answered successfully during the run.
type endpointSet struct {
	mu sync.Mutex
	ok map[string]bool
}

func (e *endpointSet) add(endpoint string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ok[endpoint] = true
}

func (e *endpointSet) has(endpoint string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ok[endpoint]
}

// spy sits between the client and the fake. It records every token and
// code the fake issues, so that the log check knows all of them, and which
// endpoints (method and path) succeeded.
type spy struct {
	next      http.Handler
	secrets   *secretSet
	succeeded *endpointSet
}

// spyWriter keeps the status and the first part of a response body.
type spyWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

const spyLimit = 64 << 10

func (w *spyWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *spyWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if room := spyLimit - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return w.ResponseWriter.Write(p)
}

func (s spy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &spyWriter{ResponseWriter: w}
	s.next.ServeHTTP(sw, r)
	var body map[string]any
	isJSON := json.Unmarshal(sw.body.Bytes(), &body) == nil
	if isJSON {
		for _, k := range []string{"accessToken", "access_token", "refreshToken"} {
			if v, ok := body[k].(string); ok {
				s.secrets.add(v)
			}
		}
	}
	loc, err := url.Parse(w.Header().Get("Location"))
	if err == nil {
		q := loc.Query()
		s.secrets.add(q.Get("code"), q.Get("authCode"))
	}
	switch {
	case sw.status == http.StatusFound && err == nil && dingtalk.CodeFromCallback(loc.Query()) != "":
		s.succeeded.add(r.Method + " " + r.URL.Path)
	case sw.status == http.StatusOK && isJSON && body["code"] == nil && body["punish"] == nil &&
		(body["errcode"] == nil || body["errcode"] == float64(0)):
		s.succeeded.add(r.Method + " " + r.URL.Path)
	}
}

// harness is one fresh fake behind an httptest server, with its own clock.
type harness struct {
	*contract
	sim   *fake.Server
	srv   *httptest.Server
	clock *clock
	// sleep is the client's Sleep: it advances clock instead of waiting.
	sleep *sleeper
	// browser does not follow redirects, so that tests can read Location.
	browser *http.Client
}

func (c *contract) newHarness(t *testing.T, opts fake.Options) *harness {
	t.Helper()
	clk := &clock{now: time.Date(2025, time.March, 14, 10, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	sim := fake.New(opts)
	srv := httptest.NewServer(spy{next: sim, secrets: c.secrets, succeeded: c.succeeded})
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	return &harness{
		contract: c, sim: sim, srv: srv, clock: clk, sleep: &sleeper{clock: clk},
		browser: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// config is a client configuration for the default fixture's first app,
// with all three base URLs pointing at the fake.
func (h *harness) config() dingtalk.Config {
	return dingtalk.Config{
		APIBaseURL:   h.srv.URL,
		OAPIBaseURL:  h.srv.URL,
		LoginBaseURL: h.srv.URL,
		CorpID:       fake.DemoCorpID,
		AppKey:       fake.DemoAppKey,
		AppSecret:    fake.DemoAppSecret,
		SNSAppID:     fake.DemoSNSAppID,
		SNSAppSecret: fake.DemoSNSAppSecret,
		HTTPClient:   h.srv.Client(),
		Logger:       h.logger,
		Now:          h.clock.Now,
		Sleep:        h.sleep.Sleep,
	}
}

// client returns a client for config() changed by edit (may be nil).
func (h *harness) client(t *testing.T, edit func(*dingtalk.Config)) *dingtalk.Client {
	t.Helper()
	cfg := h.config()
	if edit != nil {
		edit(&cfg)
	}
	h.secrets.add(cfg.AppSecret, cfg.SNSAppSecret)
	c, err := dingtalk.New(cfg)
	if err != nil {
		t.Fatalf("dingtalk.New: %v", err)
	}
	return c
}

// get performs a browser GET without following redirects.
func (h *harness) get(t *testing.T, rawURL string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h.send(t, req)
}

// postForm performs a browser form POST without following redirects.
func (h *harness) postForm(t *testing.T, rawURL string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.send(t, req)
}

func (h *harness) send(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := h.browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return resp, string(b)
}

// followLogin GETs a login URL and returns the query of the redirect to
// redirectURI, failing unless the fake answered with exactly that.
func (h *harness) followLogin(t *testing.T, loginURL string) url.Values {
	t.Helper()
	resp, body := h.get(t, loginURL)
	return redirectQuery(t, resp, body)
}

func redirectQuery(t *testing.T, resp *http.Response, body string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login status = %d, want %d; body %.300s", resp.StatusCode, http.StatusFound, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location %q: %v", resp.Header.Get("Location"), err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirect target = %q, want %q", got, redirectURI)
	}
	return loc.Query()
}

// webLoginCode drives AuthCodeURL with auto-approve as corpID/userID and
// returns the code from the redirect.
func (h *harness) webLoginCode(t *testing.T, c *dingtalk.Client, corpID, userID string) string {
	t.Helper()
	h.sim.SetAutoApprove(corpID, userID)
	t.Cleanup(h.sim.ClearAutoApprove)
	q := h.followLogin(t, c.AuthCodeURL(dingtalk.AuthCodeParams{RedirectURI: redirectURI, State: "st-" + userID}))
	if got, want := q.Get("state"), "st-"+userID; got != want {
		t.Errorf("state = %q, want %q", got, want)
	}
	code := dingtalk.CodeFromCallback(q)
	if code == "" {
		t.Fatalf("redirect query %v has no code", q)
	}
	return code
}

func (h *harness) loginCode(t *testing.T, clientID, corpID, userID string) string {
	t.Helper()
	code, err := h.sim.IssueLoginCode(clientID, corpID, userID, true)
	if err != nil {
		t.Fatalf("IssueLoginCode(%s, %s): %v", corpID, userID, err)
	}
	h.secrets.add(code)
	return code
}

func (h *harness) jsapiCode(t *testing.T, corpID, clientID, userID string) string {
	t.Helper()
	code, err := h.sim.IssueJSAPICode(corpID, clientID, userID)
	if err != nil {
		t.Fatalf("IssueJSAPICode(%s, %s): %v", corpID, userID, err)
	}
	h.secrets.add(code)
	return code
}

func (h *harness) snsCode(t *testing.T, appID, userID string) string {
	t.Helper()
	code, err := h.sim.IssueSNSCode(appID, userID)
	if err != nil {
		t.Fatalf("IssueSNSCode(%s, %s): %v", appID, userID, err)
	}
	h.secrets.add(code)
	return code
}

// wantErr fails unless err matches want; it also checks that the error text
// carries none of the run's secrets.
func (h *harness) wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want errors.Is %v", what, err, want)
	}
	h.noSecrets(t, what, err)
}

// noSecrets fails if the text of err carries one of the run's secrets.
func (h *harness) noSecrets(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if leaked := h.secrets.found(err.Error()); len(leaked) > 0 {
		t.Errorf("%s: error text %q contains secrets %q", what, err, leaked)
	}
}

// wantCode fails unless err is a DingTalk *APIError with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	apiErr, ok := errors.AsType[*dingtalk.APIError](err)
	if !ok {
		t.Errorf("%s: err = %v, want *dingtalk.APIError", what, err)
		return
	}
	if apiErr.Code != code {
		t.Errorf("%s: APIError.Code = %q, want %q", what, apiErr.Code, code)
	}
	if apiErr.RequestID == "" {
		t.Errorf("%s: APIError.RequestID is empty, want the fake's request id", what)
	}
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// employee returns the fixture's record of userID in corpID.
func employee(t *testing.T, fx fake.Fixture, corpID, userID string) fake.Employee {
	t.Helper()
	for _, c := range fx.Corps {
		if c.ID != corpID {
			continue
		}
		for _, e := range c.Employees {
			if e.UserID == userID {
				return e
			}
		}
	}
	t.Fatalf("fixture has no employee %s in %s", userID, corpID)
	return fake.Employee{}
}

func corpOf(t *testing.T, fx fake.Fixture, corpID string) fake.Corp {
	t.Helper()
	for _, c := range fx.Corps {
		if c.ID == corpID {
			return c
		}
	}
	t.Fatalf("fixture has no corp %s", corpID)
	return fake.Corp{}
}

// members returns the sorted userids of corp's current members, of dept
// only when dept is not 0.
func members(corp fake.Corp, dept int64) []string {
	var out []string
	for _, e := range corp.Employees {
		if !e.Left && (dept == 0 || slices.Contains(e.DeptIDs, dept)) {
			out = append(out, e.UserID)
		}
	}
	slices.Sort(out)
	return out
}

// checkUser compares a directory record (U2) with the fixture.
func checkUser(t *testing.T, got *dingtalk.User, want fake.Employee) {
	t.Helper()
	checkListUser(t, got, want)
	if got != nil && got.ManagerUserID != want.ManagerUserID {
		t.Errorf("user %s: manager_userid = %q, want %q", want.UserID, got.ManagerUserID, want.ManagerUserID)
	}
}

// checkListUser compares a D5 list item with the fixture: the fields D5
// shares with U2 (§8 lists them; manager_userid is not among them).
func checkListUser(t *testing.T, got *dingtalk.User, want fake.Employee) {
	t.Helper()
	if got == nil {
		t.Fatalf("user %s: nil record", want.UserID)
	}
	for _, f := range []struct{ name, got, want string }{
		{"userid", got.UserID, want.UserID},
		{"unionid", got.UnionID, want.UnionID},
		{"name", got.Name, want.Name},
		{"mobile", got.Mobile, want.Mobile},
		{"email", got.Email, want.Email},
		{"org_email", got.OrgEmail, want.OrgEmail},
		{"job_number", got.JobNumber, want.JobNumber},
		{"title", got.Title, want.Title},
		{"avatar", got.Avatar, want.Avatar},
	} {
		if f.got != f.want {
			t.Errorf("user %s: %s = %q, want %q", want.UserID, f.name, f.got, f.want)
		}
	}
	if !slices.Equal(got.DeptIDList, want.DeptIDs) {
		t.Errorf("user %s: dept_id_list = %v, want %v", want.UserID, got.DeptIDList, want.DeptIDs)
	}
	var hired int64
	if !want.HiredDate.IsZero() {
		hired = want.HiredDate.UnixMilli()
	}
	if got.HiredDate != hired {
		t.Errorf("user %s: hired_date = %d, want %d", want.UserID, got.HiredDate, hired)
	}
	if got.Admin != want.Admin || got.Boss != want.Boss || got.Active != want.Active {
		t.Errorf("user %s: admin/boss/active = %v/%v/%v, want %v/%v/%v", want.UserID,
			got.Admin, got.Boss, got.Active, want.Admin, want.Boss, want.Active)
	}
}

// TestContract runs the real client against the fake, flow by flow, and
// finally checks that the client's debug log of the whole run holds no
// secret.
func TestContract(t *testing.T) {
	log := &syncBuffer{}
	c := &contract{
		log:       log,
		logger:    slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		secrets:   &secretSet{vals: map[string]bool{}},
		succeeded: &endpointSet{ok: map[string]bool{}},
	}
	t.Run("AppToken", c.testAppToken)
	t.Run("WebLogin", c.testWebLogin)
	t.Run("Membership", c.testMembership)
	t.Run("JSAPI", c.testJSAPI)
	t.Run("SNS", c.testSNS)
	t.Run("Directory", c.testDirectory)
	t.Run("Faults", c.testFaults)
	t.Run("Events", c.testEvents)

	t.Run("EveryEndpointSucceeded", func(t *testing.T) {
		// Every endpoint the client uses answered the client successfully
		// at least once (errors are covered case by case above).
		for _, ep := range []string{
			fake.EndpointAppToken, fake.EndpointGetToken, fake.EndpointLogin, fake.EndpointUserToken,
			strings.Replace(fake.EndpointContactUser, "{unionId}", "me", 1),
			fake.EndpointUserByUnionID, fake.EndpointUser, fake.EndpointUserInfoByCode, fake.EndpointLegacyUserInfo,
			fake.EndpointQRConnect, fake.EndpointSNSAuthorize, fake.EndpointSNSUserInfo,
			fake.EndpointDepartmentSub, fake.EndpointDepartmentSubIDs, fake.EndpointDepartment,
			fake.EndpointUserIDs, fake.EndpointUserList,
		} {
			if !c.succeeded.has(ep) {
				t.Errorf("no successful call of %s in the run", ep)
			}
		}
	})

	t.Run("NoSecretsInLog", func(t *testing.T) {
		text := log.String()
		if calls := strings.Count(text, "dingtalk call"); calls < 20 {
			t.Fatalf("client logged %d calls at debug level, want the whole run (at least 20)", calls)
		}
		if n := len(c.secrets.list()); n < 20 {
			t.Fatalf("collected %d secrets, want every secret, token and code of the run (at least 20)", n)
		}
		t.Logf("checked %d logged calls against %d secrets", strings.Count(text, "dingtalk call"), len(c.secrets.list()))
		if leaked := c.secrets.found(text); len(leaked) > 0 {
			t.Errorf("client log contains secrets %q", leaked)
		}
	})
}

func (c *contract) testAppToken(t *testing.T) {
	endpoints := []struct {
		name     string
		legacy   bool
		endpoint string // the one the client must call
		other    string // the one it must not
		badCode  string // DingTalk's answer to a wrong secret
	}{
		{"A1 new", false, fake.EndpointAppToken, fake.EndpointGetToken, "invalidClientIdOrSecret"},
		{"A2 legacy", true, fake.EndpointGetToken, fake.EndpointAppToken, "40096"},
	}
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			t.Run("fetch and cache", func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) { cfg.LegacyTokenEndpoint = ep.legacy })
				tok := must[string](t, "AppToken")(cl.AppToken(t.Context()))
				if tok == "" {
					t.Fatal("AppToken = \"\", want a token")
				}
				again := must[string](t, "second AppToken")(cl.AppToken(t.Context()))
				if again != tok {
					t.Errorf("second AppToken = %q, want the cached %q", again, tok)
				}
				if got := h.sim.Calls(ep.endpoint); got != 1 {
					t.Errorf("Calls(%s) = %d, want 1", ep.endpoint, got)
				}
				if got := h.sim.Calls(ep.other); got != 0 {
					t.Errorf("Calls(%s) = %d, want 0", ep.other, got)
				}
				// The token works on the old API.
				u := must[*dingtalk.User](t, "User")(cl.User(t.Context(), "zhangsan"))
				checkUser(t, u, employee(t, fake.DefaultFixture(), fake.DemoCorpID, "zhangsan"))
				if got := h.sim.Calls(ep.endpoint); got != 1 {
					t.Errorf("after User: Calls(%s) = %d, want 1", ep.endpoint, got)
				}
			})

			t.Run("concurrent callers share one fetch", func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) { cfg.LegacyTokenEndpoint = ep.legacy })
				var wg sync.WaitGroup
				toks := make([]string, 8)
				errs := make([]error, len(toks))
				for i := range toks {
					wg.Go(func() { toks[i], errs[i] = cl.AppToken(t.Context()) })
				}
				wg.Wait()
				for i := range toks {
					if errs[i] != nil || toks[i] != toks[0] {
						t.Errorf("caller %d: AppToken = %q, %v; want %q, nil", i, toks[i], errs[i], toks[0])
					}
				}
				if got := h.sim.Calls(ep.endpoint); got != 1 {
					t.Errorf("Calls(%s) = %d, want 1", ep.endpoint, got)
				}
			})

			t.Run("ExpireAppTokens then refresh and retry", func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) { cfg.LegacyTokenEndpoint = ep.legacy })
				old := must[string](t, "AppToken")(cl.AppToken(t.Context()))
				h.sim.ExpireAppTokens()
				u := must[*dingtalk.User](t, "User after ExpireAppTokens")(cl.User(t.Context(), "wangwu"))
				if u.UserID != "wangwu" {
					t.Errorf("User.UserID = %q, want wangwu", u.UserID)
				}
				if got := h.sim.Calls(ep.endpoint); got != 2 {
					t.Errorf("Calls(%s) = %d, want 2 (a second token fetch)", ep.endpoint, got)
				}
				if got := h.sim.Calls(fake.EndpointUser); got != 2 {
					t.Errorf("Calls(U2) = %d, want 2 (rejected, then retried)", got)
				}
				if tok := must[string](t, "AppToken")(cl.AppToken(t.Context())); tok == old {
					t.Errorf("AppToken after refresh = the revoked token, want a new one")
				}
			})

			t.Run("wrong secret", func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) {
					cfg.LegacyTokenEndpoint = ep.legacy
					cfg.AppSecret = "wrong-secret-value"
				})
				_, err := cl.AppToken(t.Context())
				h.wantErr(t, "AppToken", err, dingtalk.ErrBadCredentials)
				wantCode(t, "AppToken", err, ep.badCode)
				_, err = cl.User(t.Context(), "zhangsan")
				h.wantErr(t, "User", err, dingtalk.ErrBadCredentials)
			})
		})
	}

	t.Run("clock", func(t *testing.T) {
		// Defaults on both sides: DingTalk's 7200 s, the client's 10 min
		// refresh margin.
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		first := must[string](t, "AppToken")(cl.AppToken(t.Context()))

		h.clock.Advance(7200*time.Second - 10*time.Minute - time.Second)
		if tok := must[string](t, "AppToken")(cl.AppToken(t.Context())); tok != first {
			t.Errorf("AppToken before the refresh margin = %q, want cached %q", tok, first)
		}
		if got := h.sim.Calls(fake.EndpointAppToken); got != 1 {
			t.Errorf("before the margin: Calls(A1) = %d, want 1", got)
		}

		// Inside the margin the client fetches again; DingTalk renews the
		// still-valid token instead of issuing a new one (§2.1).
		h.clock.Advance(2 * time.Second)
		if tok := must[string](t, "AppToken")(cl.AppToken(t.Context())); tok != first {
			t.Errorf("AppToken inside the margin = %q, want DingTalk's renewed %q", tok, first)
		}
		if got := h.sim.Calls(fake.EndpointAppToken); got != 2 {
			t.Errorf("inside the margin: Calls(A1) = %d, want 2", got)
		}

		// Past the renewed expiry both sides agree the token is dead.
		h.clock.Advance(7201 * time.Second)
		next := must[string](t, "AppToken")(cl.AppToken(t.Context()))
		if next == first {
			t.Errorf("AppToken after expiry = the expired token, want a new one")
		}
		if got := h.sim.Calls(fake.EndpointAppToken); got != 3 {
			t.Errorf("after expiry: Calls(A1) = %d, want 3", got)
		}
		must[*dingtalk.User](t, "User with the new token")(cl.User(t.Context(), "zhangsan"))
		if got := h.sim.Calls(fake.EndpointUser); got != 1 {
			t.Errorf("Calls(U2) = %d, want 1 (no rejection)", got)
		}
	})

	t.Run("clock: DingTalk expires the token first", func(t *testing.T) {
		// The fake's tokens live 30 s; the client keeps any token at least
		// MinTokenLifetime (60 s), so at 45 s it sends an expired token,
		// gets 88/42001 and must refresh and retry.
		h := c.newHarness(t, fake.Options{AppTokenTTL: 30 * time.Second})
		cl := h.client(t, nil)
		first := must[string](t, "AppToken")(cl.AppToken(t.Context()))
		h.clock.Advance(45 * time.Second)
		must[*dingtalk.User](t, "User with an expired token")(cl.User(t.Context(), "zhangsan"))
		if got := h.sim.Calls(fake.EndpointAppToken); got != 2 {
			t.Errorf("Calls(A1) = %d, want 2", got)
		}
		if got := h.sim.Calls(fake.EndpointUser); got != 2 {
			t.Errorf("Calls(U2) = %d, want 2 (42001, then retried)", got)
		}
		if tok := must[string](t, "AppToken")(cl.AppToken(t.Context())); tok == first {
			t.Error("AppToken after 42001 = the expired token, want a new one")
		}
	})
}

func (c *contract) testWebLogin(t *testing.T) {
	fx := fake.DefaultFixture()

	t.Run("authorize, token, me, unionid, user", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		want := employee(t, fx, fake.DemoCorpID, "zhangsan")
		h.sim.SetAutoApprove(fake.DemoCorpID, want.UserID)

		authURL := cl.AuthCodeURL(dingtalk.AuthCodeParams{RedirectURI: redirectURI, State: "Zx81k"})
		if !strings.HasPrefix(authURL, h.srv.URL+"/oauth2/auth?") {
			t.Fatalf("AuthCodeURL = %q, want it on the login host", authURL)
		}
		q := h.followLogin(t, authURL)
		if got := q.Get("state"); got != "Zx81k" {
			t.Errorf("state = %q, want Zx81k", got)
		}
		code := dingtalk.CodeFromCallback(q)
		if code == "" {
			t.Fatalf("CodeFromCallback(%v) = \"\"", q)
		}

		tok := must[*dingtalk.UserToken](t, "UserToken")(cl.UserToken(t.Context(), code))
		if tok.CorpID != fake.DemoCorpID {
			t.Errorf("UserToken.CorpID = %q, want %q (scope has corpid)", tok.CorpID, fake.DemoCorpID)
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Errorf("UserToken has access %t, refresh %t; want both", tok.AccessToken != "", tok.RefreshToken != "")
		}
		if want := h.clock.Now().Add(7200 * time.Second); !tok.ExpiresAt.Equal(want) {
			t.Errorf("UserToken.ExpiresAt = %v, want %v", tok.ExpiresAt, want)
		}

		p := must[*dingtalk.Profile](t, "Me")(cl.Me(t.Context(), tok.AccessToken))
		if p.UnionID != want.UnionID || p.OpenID != want.OpenID || p.Nick != want.Nick {
			t.Errorf("Me = unionId %q openId %q nick %q, want %q %q %q",
				p.UnionID, p.OpenID, p.Nick, want.UnionID, want.OpenID, want.Nick)
		}
		if p.Email != want.Email || p.Mobile != want.Mobile || p.AvatarURL != want.Avatar {
			t.Errorf("Me = email %q mobile %q avatar %q, want %q %q %q",
				p.Email, p.Mobile, p.AvatarURL, want.Email, want.Mobile, want.Avatar)
		}

		userID, contactType, err := cl.UserIDByUnionID(t.Context(), p.UnionID)
		if err != nil {
			t.Fatalf("UserIDByUnionID: %v", err)
		}
		if userID != want.UserID || contactType != dingtalk.ContactTypeEmployee {
			t.Errorf("UserIDByUnionID = %q, %d; want %q, %d", userID, contactType, want.UserID, dingtalk.ContactTypeEmployee)
		}
		checkUser(t, must[*dingtalk.User](t, "User")(cl.User(t.Context(), userID)), want)

		t.Run("code reuse", func(t *testing.T) {
			_, err := cl.UserToken(t.Context(), code)
			h.wantErr(t, "UserToken with a used code", err, dingtalk.ErrInvalidCode)
			wantCode(t, "UserToken with a used code", err, "invalidCode")
		})

		t.Run("refresh", func(t *testing.T) {
			h.clock.Advance(time.Hour)
			next := must[*dingtalk.UserToken](t, "RefreshUserToken")(cl.RefreshUserToken(t.Context(), tok.RefreshToken))
			if next.AccessToken == "" || next.AccessToken == tok.AccessToken {
				t.Errorf("RefreshUserToken gave access token equal %t, empty %t; want a new one",
					next.AccessToken == tok.AccessToken, next.AccessToken == "")
			}
			if next.CorpID != fake.DemoCorpID {
				t.Errorf("refreshed CorpID = %q, want %q", next.CorpID, fake.DemoCorpID)
			}
			if want := h.clock.Now().Add(7200 * time.Second); !next.ExpiresAt.Equal(want) {
				t.Errorf("refreshed ExpiresAt = %v, want %v", next.ExpiresAt, want)
			}
			p := must[*dingtalk.Profile](t, "Me with refreshed token")(cl.Me(t.Context(), next.AccessToken))
			if p.UnionID != want.UnionID {
				t.Errorf("Me.UnionID = %q, want %q", p.UnionID, want.UnionID)
			}
		})

		t.Run("user token expires", func(t *testing.T) {
			h.clock.Advance(7200 * time.Second)
			_, err := cl.Me(t.Context(), tok.AccessToken)
			h.wantErr(t, "Me with an expired user token", err, dingtalk.ErrTokenInvalid)
		})

		t.Run("unknown refresh token", func(t *testing.T) {
			// DingTalk's code for a bad refresh token is not documented;
			// it must at least come back as a DingTalk error.
			_, err := cl.RefreshUserToken(t.Context(), "0123456789abcdef0123456789abcdef")
			if apiErr, ok := errors.AsType[*dingtalk.APIError](err); !ok || apiErr.HTTPStatus != http.StatusBadRequest {
				t.Errorf("RefreshUserToken(unknown) err = %v, want a *dingtalk.APIError with HTTP 400", err)
			}
			h.noSecrets(t, "RefreshUserToken(unknown)", err)
		})

		t.Run("app token is not a user token", func(t *testing.T) {
			appTok := must[string](t, "AppToken")(cl.AppToken(t.Context()))
			_, err := cl.Me(t.Context(), appTok)
			h.wantErr(t, "Me with an app token", err, dingtalk.ErrPermissionDenied)
		})
	})

	t.Run("UserByOAuthCode", func(t *testing.T) {
		for _, userID := range []string{"zhangsan", "184919295227658120", "wangwu", "zhoujiu"} {
			t.Run(userID, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, nil)
				want := employee(t, fx, fake.DemoCorpID, userID)
				code := h.webLoginCode(t, cl, fake.DemoCorpID, userID)
				id := must[*dingtalk.Identity](t, "UserByOAuthCode")(cl.UserByOAuthCode(t.Context(), code))
				if id.CorpID != fake.DemoCorpID || id.UserID != want.UserID || id.UnionID != want.UnionID {
					t.Errorf("identity = corp %q user %q union %q, want %q %q %q",
						id.CorpID, id.UserID, id.UnionID, fake.DemoCorpID, want.UserID, want.UnionID)
				}
				if id.OpenID != want.OpenID {
					t.Errorf("identity OpenID = %q, want %q", id.OpenID, want.OpenID)
				}
				if id.Profile == nil || id.Profile.UnionID != want.UnionID {
					t.Errorf("identity Profile = %+v, want unionId %q", id.Profile, want.UnionID)
				}
				checkUser(t, id.User, want)
				for _, ep := range []string{fake.EndpointUserToken, fake.EndpointContactUser, fake.EndpointUserByUnionID, fake.EndpointUser} {
					if got := h.sim.Calls(ep); got != 1 {
						t.Errorf("Calls(%s) = %d, want 1", ep, got)
					}
				}
			})
		}
	})

	t.Run("code of another app", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		code := h.loginCode(t, fake.DemoApp2Key, fake.DemoCorp2ID, "liuyang")
		_, err := cl.UserToken(t.Context(), code)
		h.wantErr(t, "UserToken with app 2's code", err, dingtalk.ErrInvalidCode)
		_, err = cl.UserByOAuthCode(t.Context(), code)
		h.wantErr(t, "UserByOAuthCode with app 2's code", err, dingtalk.ErrInvalidCode)

		// The code was good, just not for app 1.
		cl2 := h.client(t, func(cfg *dingtalk.Config) {
			cfg.CorpID, cfg.AppKey, cfg.AppSecret = fake.DemoCorp2ID, fake.DemoApp2Key, fake.DemoApp2Secret
			cfg.SNSAppID, cfg.SNSAppSecret = "", ""
		})
		id := must[*dingtalk.Identity](t, "app 2 UserByOAuthCode")(cl2.UserByOAuthCode(t.Context(), code))
		if id.CorpID != fake.DemoCorp2ID || id.UserID != "liuyang" {
			t.Errorf("app 2 identity = %q/%q, want %q/liuyang", id.CorpID, id.UserID, fake.DemoCorp2ID)
		}
	})

	t.Run("wrong client secret", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		bad := h.client(t, func(cfg *dingtalk.Config) { cfg.AppSecret = "wrong-secret-value" })
		code := h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, "zhangsan")
		_, err := bad.UserToken(t.Context(), code)
		h.wantErr(t, "UserToken with a wrong secret", err, dingtalk.ErrBadCredentials)
	})

	t.Run("interactive page", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		authURL := cl.AuthCodeURL(dingtalk.AuthCodeParams{RedirectURI: redirectURI, State: "s p&c"})

		// pickerForm loads the login page and returns its form fields.
		pickerForm := func(t *testing.T) url.Values {
			t.Helper()
			resp, body := h.get(t, authURL)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login page status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("login page Content-Type = %q, want text/html", ct)
			}
			form := hiddenFields(body)
			for _, name := range []string{"redirect_uri", "client_id", "scope", "prompt", "state"} {
				if !form.Has(name) {
					t.Errorf("login page form lacks %s; fields %v", name, form)
				}
			}
			if !strings.Contains(body, `value="`+fake.DemoCorpID+`|zhangsan"`) {
				t.Errorf("login page does not offer zhangsan of %s", fake.DemoCorpID)
			}
			return form
		}

		t.Run("corpId and org_type", func(t *testing.T) {
			// The page honours the client's spelling of the optional
			// parameters: corpId limits the organisations offered,
			// org_type=management limits them to administrators.
			for _, tt := range []struct {
				name   string
				params dingtalk.AuthCodeParams
				offer  []string // corpId|userid that must be offered
				hide   []string // and that must not
			}{
				{"none", dingtalk.AuthCodeParams{},
					[]string{fake.DemoCorpID + "|zhangsan", fake.DemoCorpID + "|wangwu", fake.DemoCorp2ID + "|liuyang"}, nil},
				{"corpId", dingtalk.AuthCodeParams{CorpID: fake.DemoCorpID},
					[]string{fake.DemoCorpID + "|zhangsan", fake.DemoCorpID + "|wangwu"}, []string{fake.DemoCorp2ID + "|liuyang"}},
				{"org_type management", dingtalk.AuthCodeParams{OrgType: "management"},
					[]string{fake.DemoCorpID + "|zhangsan", fake.DemoCorp2ID + "|liuyang"}, []string{fake.DemoCorpID + "|wangwu"}},
			} {
				t.Run(tt.name, func(t *testing.T) {
					p := tt.params
					p.RedirectURI, p.State = redirectURI, "s"
					resp, body := h.get(t, cl.AuthCodeURL(p))
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("login page status = %d, want 200; body %.300s", resp.StatusCode, body)
					}
					for _, v := range tt.offer {
						if !strings.Contains(body, `value="`+v+`"`) {
							t.Errorf("login page does not offer %s", v)
						}
					}
					for _, v := range tt.hide {
						if strings.Contains(body, `value="`+v+`"`) {
							t.Errorf("login page offers %s", v)
						}
					}
				})
			}
		})

		t.Run("deny", func(t *testing.T) {
			form := pickerForm(t)
			form.Set("deny", "1")
			resp, body := h.postForm(t, h.srv.URL+"/fake/oauth2/approve", form)
			q := redirectQuery(t, resp, body)
			if got := q.Get("error"); got != "access_denied" {
				t.Errorf("error = %q, want access_denied", got)
			}
			if got := q.Get("state"); got != "s p&c" {
				t.Errorf("state = %q, want %q", got, "s p&c")
			}
			if code := dingtalk.CodeFromCallback(q); code != "" {
				t.Errorf("denied login carries code %q", code)
			}
		})

		t.Run("pick", func(t *testing.T) {
			form := pickerForm(t)
			form.Set("pick", fake.DemoCorpID+"|wangwu")
			resp, body := h.postForm(t, h.srv.URL+"/fake/oauth2/approve", form)
			q := redirectQuery(t, resp, body)
			if got := q.Get("state"); got != "s p&c" {
				t.Errorf("state = %q, want %q", got, "s p&c")
			}
			id := must[*dingtalk.Identity](t, "UserByOAuthCode")(cl.UserByOAuthCode(t.Context(), dingtalk.CodeFromCallback(q)))
			if id.UserID != "wangwu" {
				t.Errorf("identity UserID = %q, want wangwu", id.UserID)
			}
		})
	})
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hiddenFields reads the hidden inputs of a page.
func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

func (c *contract) testMembership(t *testing.T) {
	fx := fake.DefaultFixture()

	t.Run("employee who left (fixture)", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		left := employee(t, fx, fake.DemoCorpID, "zhaoliu")
		if !left.Left {
			t.Fatal("fixture: zhaoliu has not left")
		}
		_, _, err := cl.UserIDByUnionID(t.Context(), left.UnionID)
		h.wantErr(t, "UserIDByUnionID", err, dingtalk.ErrNotMember)
		wantCode(t, "UserIDByUnionID", err, "60121")
		_, err = cl.User(t.Context(), left.UserID)
		h.wantErr(t, "User", err, dingtalk.ErrNotMember)

		// The account still signs in to DingTalk; the corp refuses it.
		code := h.webLoginCode(t, cl, fake.DemoCorpID, left.UserID)
		_, err = cl.UserByOAuthCode(t.Context(), code)
		h.wantErr(t, "UserByOAuthCode", err, dingtalk.ErrNotMember)
		_, err = cl.UserBySNSCode(t.Context(), h.snsCode(t, fake.DemoSNSAppID, left.UserID))
		h.wantErr(t, "UserBySNSCode", err, dingtalk.ErrNotMember)
	})

	t.Run("SetLeft", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		e := employee(t, fx, fake.DemoCorpID, "wangwu")
		must[*dingtalk.User](t, "User before leaving")(cl.User(t.Context(), e.UserID))
		jsCode := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, e.UserID)
		webCode := h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, e.UserID)

		h.sim.SetLeft(fake.DemoCorpID, e.UserID, true)
		_, _, err := cl.UserIDByUnionID(t.Context(), e.UnionID)
		h.wantErr(t, "UserIDByUnionID", err, dingtalk.ErrNotMember)
		_, err = cl.User(t.Context(), e.UserID)
		h.wantErr(t, "User", err, dingtalk.ErrNotMember)
		_, err = cl.UserByOAuthCode(t.Context(), webCode)
		h.wantErr(t, "UserByOAuthCode", err, dingtalk.ErrNotMember)
		_, err = cl.UserByAuthCode(t.Context(), jsCode)
		h.wantErr(t, "UserByAuthCode with a code issued before leaving", err, dingtalk.ErrNotMember)

		h.sim.SetLeft(fake.DemoCorpID, e.UserID, false)
		checkUser(t, must[*dingtalk.User](t, "User after re-joining")(cl.User(t.Context(), e.UserID)), e)
	})

	t.Run("employee of another corp", func(t *testing.T) {
		// dingtalk.UserByOAuthCode documents ErrCorpMismatch when CorpID is
		// configured (the user token names the other corp), and ErrNotMember
		// otherwise (the unionId is not in this corp).
		for _, tt := range []struct {
			name   string
			corpID string
			want   error
		}{
			{"CorpID configured", fake.DemoCorpID, dingtalk.ErrCorpMismatch},
			{"CorpID not configured", "", dingtalk.ErrNotMember},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) { cfg.CorpID = tt.corpID })
				code := h.webLoginCode(t, cl, fake.DemoCorp2ID, "liuyang")
				id, err := cl.UserByOAuthCode(t.Context(), code)
				if id != nil {
					t.Errorf("UserByOAuthCode = %+v, want nil", id)
				}
				h.wantErr(t, "UserByOAuthCode", err, tt.want)
			})
		}
		t.Run("legacy SNS", func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, nil)
			_, err := cl.UserBySNSCode(t.Context(), h.snsCode(t, fake.DemoSNSAppID, "liuyang"))
			h.wantErr(t, "UserBySNSCode", err, dingtalk.ErrNotMember)
		})
	})
}

func (c *contract) testJSAPI(t *testing.T) {
	fx := fake.DefaultFixture()

	t.Run("H1 UserInfoByAuthCode", func(t *testing.T) {
		for _, tt := range []struct {
			userID   string
			clientID string // "" = legacy dd.runtime.permission.requestAuthCode
			sysLevel int
		}{
			{"zhangsan", fake.DemoAppKey, 1},
			{"manager4927", fake.DemoAppKey, 100},
			{"184919295227658120", fake.DemoAppKey, 0},
			{"wangwu", "", 0},
		} {
			t.Run(tt.userID, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, nil)
				want := employee(t, fx, fake.DemoCorpID, tt.userID)
				code := h.jsapiCode(t, fake.DemoCorpID, tt.clientID, tt.userID)
				got := must[*dingtalk.AuthCodeUser](t, "UserInfoByAuthCode")(cl.UserInfoByAuthCode(t.Context(), code))
				if got.UserID != want.UserID || got.UnionID != want.UnionID || got.Name != want.Name {
					t.Errorf("UserInfoByAuthCode = %q/%q/%q, want %q/%q/%q",
						got.UserID, got.UnionID, got.Name, want.UserID, want.UnionID, want.Name)
				}
				if got.SysLevel != tt.sysLevel {
					t.Errorf("sys_level = %d, want %d", got.SysLevel, tt.sysLevel)
				}
				// sys means "is an admin"; whether a boss (level 100) counts
				// is not documented, so only the clear cases are checked.
				if tt.sysLevel != 100 && got.Sys != (tt.sysLevel != 0) {
					t.Errorf("sys = %v, want %v", got.Sys, tt.sysLevel != 0)
				}
				if got.DeviceID == "" {
					t.Error("DeviceID is empty")
				}
				_, err := cl.UserInfoByAuthCode(t.Context(), code)
				h.wantErr(t, "reused code", err, dingtalk.ErrInvalidCode)
				wantCode(t, "reused code", err, "40078")
			})
		}
	})

	t.Run("H1 after ExpireAppTokens keeps the code", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		must[string](t, "AppToken")(cl.AppToken(t.Context()))
		code := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
		h.sim.ExpireAppTokens()
		got := must[*dingtalk.AuthCodeUser](t, "UserInfoByAuthCode")(cl.UserInfoByAuthCode(t.Context(), code))
		if got.UserID != "zhangsan" {
			t.Errorf("UserID = %q, want zhangsan", got.UserID)
		}
		if got := h.sim.Calls(fake.EndpointUserInfoByCode); got != 2 {
			t.Errorf("Calls(H1) = %d, want 2", got)
		}
	})

	t.Run("H2 UserInfoByAuthCodeLegacy", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		want := employee(t, fx, fake.DemoCorpID, "zhangsan")
		code := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, want.UserID)
		got := must[*dingtalk.AuthCodeUser](t, "UserInfoByAuthCodeLegacy")(cl.UserInfoByAuthCodeLegacy(t.Context(), code))
		if got.UserID != want.UserID || got.Name != want.Name || got.UnionID != "" {
			t.Errorf("legacy = %q/%q/unionid %q, want %q/%q/\"\"", got.UserID, got.Name, got.UnionID, want.UserID, want.Name)
		}
		if !got.Sys || got.SysLevel != 1 || got.DeviceID == "" {
			t.Errorf("legacy sys %v level %d device %q, want true 1 non-empty", got.Sys, got.SysLevel, got.DeviceID)
		}
		_, err := cl.UserInfoByAuthCodeLegacy(t.Context(), code)
		h.wantErr(t, "reused code", err, dingtalk.ErrInvalidCode)

		h.sim.ExpireAppTokens()
		code = h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, want.UserID)
		must[*dingtalk.AuthCodeUser](t, "legacy after ExpireAppTokens")(cl.UserInfoByAuthCodeLegacy(t.Context(), code))
	})

	t.Run("UserByAuthCode", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		want := employee(t, fx, fake.DemoCorpID, "184919295227658120")
		code := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, want.UserID)
		id := must[*dingtalk.Identity](t, "UserByAuthCode")(cl.UserByAuthCode(t.Context(), code))
		if id.CorpID != fake.DemoCorpID || id.UserID != want.UserID || id.UnionID != want.UnionID {
			t.Errorf("identity = %q/%q/%q, want %q/%q/%q", id.CorpID, id.UserID, id.UnionID,
				fake.DemoCorpID, want.UserID, want.UnionID)
		}
		checkUser(t, id.User, want)
	})

	t.Run("code of another corp", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		code := h.jsapiCode(t, fake.DemoCorp2ID, fake.DemoApp2Key, "liuyang")
		_, err := cl.UserByAuthCode(t.Context(), code)
		h.wantErr(t, "UserByAuthCode", err, dingtalk.ErrInvalidCode)
	})
}

func (c *contract) testSNS(t *testing.T) {
	fx := fake.DefaultFixture()
	want := employee(t, fx, fake.DemoCorpID, "zhangsan")

	for _, tt := range []struct {
		name     string
		inClient bool
		path     string
	}{
		{"qrconnect", false, "/connect/qrconnect"},
		{"sns_authorize in client", true, "/connect/oauth2/sns_authorize"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, nil)
			h.sim.SetAutoApprove(fake.DemoCorpID, want.UserID)
			authURL := cl.SNSAuthURL(redirectURI, "sns-state", tt.inClient)
			if !strings.HasPrefix(authURL, h.srv.URL+tt.path+"?") {
				t.Fatalf("SNSAuthURL = %q, want path %s", authURL, tt.path)
			}
			q := h.followLogin(t, authURL)
			if got := q.Get("state"); got != "sns-state" {
				t.Errorf("state = %q, want sns-state", got)
			}
			code := dingtalk.CodeFromCallback(q)
			su := must[*dingtalk.SNSUser](t, "SNSUserInfoByCode")(cl.SNSUserInfoByCode(t.Context(), code))
			if su.UnionID != want.UnionID || su.OpenID != want.OpenID || su.Nick != want.Nick {
				t.Errorf("SNS user = %q/%q/%q, want %q/%q/%q", su.UnionID, su.OpenID, su.Nick, want.UnionID, want.OpenID, want.Nick)
			}
			_, err := cl.SNSUserInfoByCode(t.Context(), code)
			h.wantErr(t, "reused code", err, dingtalk.ErrInvalidCode)

			id := must[*dingtalk.Identity](t, "UserBySNSCode")(cl.UserBySNSCode(t.Context(), dingtalk.CodeFromCallback(h.followLogin(t, authURL))))
			if id.CorpID != fake.DemoCorpID || id.UserID != want.UserID || id.UnionID != want.UnionID || id.OpenID != want.OpenID {
				t.Errorf("identity = %q/%q/%q/%q, want %q/%q/%q/%q", id.CorpID, id.UserID, id.UnionID, id.OpenID,
					fake.DemoCorpID, want.UserID, want.UnionID, want.OpenID)
			}
			checkUser(t, id.User, want)
		})
	}

	t.Run("signature", func(t *testing.T) {
		// The fake checks timestamp, accessKey and signature before the
		// code, so a good code is refused when any of them is wrong.
		for _, tt := range []struct {
			name string
			edit func(h *harness, cfg *dingtalk.Config)
			code string
			want error
		}{
			{"wrong secret", func(_ *harness, cfg *dingtalk.Config) { cfg.SNSAppSecret = "wrong-sns-secret" }, "853004", nil},
			{"clock 2 min ahead", func(h *harness, cfg *dingtalk.Config) {
				cfg.Now = func() time.Time { return h.clock.Now().Add(2 * time.Minute) }
			}, "853002", nil},
			{"clock 2 min behind", func(h *harness, cfg *dingtalk.Config) {
				cfg.Now = func() time.Time { return h.clock.Now().Add(-2 * time.Minute) }
			}, "853002", nil},
			{"unknown app id", func(_ *harness, cfg *dingtalk.Config) { cfg.SNSAppID = "dingoaunknown" }, "853003", dingtalk.ErrBadCredentials},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, func(cfg *dingtalk.Config) { tt.edit(h, cfg) })
				code := h.snsCode(t, fake.DemoSNSAppID, want.UserID)
				_, err := cl.SNSUserInfoByCode(t.Context(), code)
				wantCode(t, "SNSUserInfoByCode", err, tt.code)
				if tt.want != nil {
					h.wantErr(t, "SNSUserInfoByCode", err, tt.want)
				}
				h.noSecrets(t, "SNSUserInfoByCode", err)
				// The refused code is still good with a correct signature.
				good := h.client(t, nil)
				must[*dingtalk.SNSUser](t, "SNSUserInfoByCode with a good signature")(good.SNSUserInfoByCode(t.Context(), code))
			})
		}
		t.Run("within the minute", func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, func(cfg *dingtalk.Config) {
				cfg.Now = func() time.Time { return h.clock.Now().Add(50 * time.Second) }
			})
			must[*dingtalk.SNSUser](t, "SNSUserInfoByCode 50 s ahead")(cl.SNSUserInfoByCode(t.Context(), h.snsCode(t, fake.DemoSNSAppID, want.UserID)))
		})
	})

	t.Run("not configured", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, func(cfg *dingtalk.Config) { cfg.SNSAppID, cfg.SNSAppSecret = "", "" })
		if u := cl.SNSAuthURL(redirectURI, "s", false); u != "" {
			t.Errorf("SNSAuthURL = %q, want \"\"", u)
		}
		_, err := cl.SNSUserInfoByCode(t.Context(), "somecode")
		h.wantErr(t, "SNSUserInfoByCode", err, dingtalk.ErrSNSNotConfigured)
		if got := h.sim.Calls(fake.EndpointSNSUserInfo); got != 0 {
			t.Errorf("Calls(S3) = %d, want 0", got)
		}
	})
}

func (c *contract) testDirectory(t *testing.T) {
	fx := fake.DefaultFixture()
	corp := corpOf(t, fx, fake.DemoCorpID)
	children := func(parent int64) []int64 {
		var out []int64
		for _, d := range corp.Departments {
			if d.ParentID == parent && d.ID != parent {
				out = append(out, d.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	dept := func(id int64) fake.Department {
		for _, d := range corp.Departments {
			if d.ID == id {
				return d
			}
		}
		t.Fatalf("fixture has no department %d", id)
		return fake.Department{}
	}

	h := c.newHarness(t, fake.Options{})
	cl := h.client(t, nil)

	t.Run("SubDepartmentIDs", func(t *testing.T) {
		for _, id := range []int64{dingtalk.RootDeptID, 581208264, 432825033} {
			got := must[[]int64](t, "SubDepartmentIDs")(cl.SubDepartmentIDs(t.Context(), id))
			slices.Sort(got)
			if want := children(id); !slices.Equal(got, want) {
				t.Errorf("SubDepartmentIDs(%d) = %v, want %v", id, got, want)
			}
		}
		_, err := cl.SubDepartmentIDs(t.Context(), 999)
		h.wantErr(t, "SubDepartmentIDs(999)", err, dingtalk.ErrNotFound)
	})

	t.Run("SubDepartments", func(t *testing.T) {
		got := must[[]dingtalk.Department](t, "SubDepartments")(cl.SubDepartments(t.Context(), dingtalk.RootDeptID))
		var ids []int64
		for _, d := range got {
			ids = append(ids, d.DeptID)
			want := dept(d.DeptID)
			if d.Name != want.Name || d.ParentID != want.ParentID {
				t.Errorf("department %d = %q parent %d, want %q parent %d", d.DeptID, d.Name, d.ParentID, want.Name, want.ParentID)
			}
		}
		slices.Sort(ids)
		if want := children(dingtalk.RootDeptID); !slices.Equal(ids, want) {
			t.Errorf("SubDepartments(1) ids = %v, want %v", ids, want)
		}
	})

	t.Run("Department", func(t *testing.T) {
		for _, tt := range []struct {
			id       int64
			managers []string
		}{
			{432825033, nil},
			{581208264, []string{"zhangsan"}},
			{581208265, []string{"wangwu"}},
		} {
			got := must[*dingtalk.Department](t, "Department")(cl.Department(t.Context(), tt.id))
			want := dept(tt.id)
			if got.DeptID != want.ID || got.Name != want.Name || got.ParentID != want.ParentID {
				t.Errorf("Department(%d) = %d %q parent %d, want %d %q parent %d",
					tt.id, got.DeptID, got.Name, got.ParentID, want.ID, want.Name, want.ParentID)
			}
			if !slices.Equal(got.DeptManagerUserIDList, tt.managers) {
				t.Errorf("Department(%d) managers = %v, want %v", tt.id, got.DeptManagerUserIDList, tt.managers)
			}
		}
		root := must[*dingtalk.Department](t, "Department(1)")(cl.Department(t.Context(), dingtalk.RootDeptID))
		if root.Name != corp.Name || root.ParentID != 0 {
			t.Errorf("root department = %q parent %d, want %q parent 0", root.Name, root.ParentID, corp.Name)
		}
		_, err := cl.Department(t.Context(), 999)
		h.wantErr(t, "Department(999)", err, dingtalk.ErrNotFound)
		wantCode(t, "Department(999)", err, "60003")
	})

	t.Run("DepartmentUserIDs", func(t *testing.T) {
		for _, d := range corp.Departments {
			got := must[[]string](t, "DepartmentUserIDs")(cl.DepartmentUserIDs(t.Context(), d.ID))
			slices.Sort(got)
			if want := members(corp, d.ID); !slices.Equal(got, want) {
				t.Errorf("DepartmentUserIDs(%d) = %v, want %v", d.ID, got, want)
			}
		}
	})

	t.Run("DepartmentUsers paging", func(t *testing.T) {
		// Three more members in 研发部 make five: pages of 2, 2 and 1.
		big := fake.DefaultFixture()
		for i := range big.Corps {
			if big.Corps[i].ID != fake.DemoCorpID {
				continue
			}
			for _, id := range []string{"dev1", "dev2", "dev3"} {
				big.Corps[i].Employees = append(big.Corps[i].Employees, fake.Employee{
					UserID: id, UnionID: "union-" + id + "-xxxxxxxx", OpenID: "open-" + id, Name: "开发 " + id,
					DeptIDs: []int64{581208264}, Active: true,
				})
			}
		}
		const deptID = 581208264
		want := members(corpOf(t, big, fake.DemoCorpID), deptID)
		if len(want) != 5 {
			t.Fatalf("fixture: department %d has %d members, want 5", deptID, len(want))
		}
		h := c.newHarness(t, fake.Options{Fixture: &big})
		cl := h.client(t, nil)

		var got, pages []string
		var sizes []int
		var cursor int64
		for page := 0; ; page++ {
			if page > 5 {
				t.Fatal("paging did not end")
			}
			users, next, more, err := cl.DepartmentUsers(t.Context(), deptID, cursor, 2)
			if err != nil {
				t.Fatalf("DepartmentUsers(cursor %d): %v", cursor, err)
			}
			sizes = append(sizes, len(users))
			for _, u := range users {
				got = append(got, u.UserID)
				if u.UserID == "zhangsan" && !u.Leader {
					t.Error("zhangsan: leader = false, want true in 研发部")
				}
			}
			pages = append(pages, strings.Join(got, ","))
			if !more {
				break
			}
			if next <= cursor {
				t.Fatalf("next_cursor %d does not advance from %d", next, cursor)
			}
			cursor = next
		}
		if !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("page sizes = %v, want [2 2 1] (pages %q)", sizes, pages)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("paged members = %v, want %v", got, want)
		}

		// size 0 means the maximum page, 100, which DingTalk accepts.
		all, _, more, err := cl.DepartmentUsers(t.Context(), deptID, 0, 0)
		if err != nil || more || len(all) != len(want) {
			t.Errorf("DepartmentUsers(size 0) = %d users, more %v, %v; want %d, false, nil", len(all), more, err, len(want))
		}

		_, _, _, err = cl.DepartmentUsers(t.Context(), 999, 0, 2)
		h.wantErr(t, "DepartmentUsers(999)", err, dingtalk.ErrNotFound)
	})

	t.Run("AllUsers", func(t *testing.T) {
		for _, tt := range []struct {
			corpID, appKey, secret string
		}{
			{fake.DemoCorpID, fake.DemoAppKey, fake.DemoAppSecret},
			{fake.DemoCorp2ID, fake.DemoApp2Key, fake.DemoApp2Secret},
		} {
			t.Run(tt.corpID, func(t *testing.T) {
				cl := h.client(t, func(cfg *dingtalk.Config) {
					cfg.CorpID, cfg.AppKey, cfg.AppSecret = tt.corpID, tt.appKey, tt.secret
				})
				corp := corpOf(t, fx, tt.corpID)
				seen := map[string]int{}
				err := cl.AllUsers(t.Context(), func(u dingtalk.User) error {
					seen[u.UserID]++
					checkListUser(t, &u, employee(t, fx, tt.corpID, u.UserID))
					return nil
				})
				if err != nil {
					t.Fatalf("AllUsers: %v", err)
				}
				var got []string
				for id, n := range seen {
					got = append(got, id)
					if n != 1 {
						t.Errorf("AllUsers reported %s %d times, want once", id, n)
					}
				}
				slices.Sort(got)
				if want := members(corp, 0); !slices.Equal(got, want) {
					t.Errorf("AllUsers = %v, want %v", got, want)
				}
			})
		}
		if seenWangwu := len(employee(t, fx, fake.DemoCorpID, "wangwu").DeptIDs); seenWangwu < 2 {
			t.Errorf("fixture: wangwu is in %d departments, want several (de-duplication case)", seenWangwu)
		}
	})
}

func (c *contract) testFaults(t *testing.T) {
	fx := fake.DefaultFixture()
	zhangsan := employee(t, fx, fake.DemoCorpID, "zhangsan")

	type call func(t *testing.T, h *harness, cl *dingtalk.Client) error
	appToken := func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
		_, err := cl.AppToken(t.Context())
		return err
	}
	user := func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
		_, err := cl.User(t.Context(), zhangsan.UserID)
		return err
	}
	me := func(t *testing.T, h *harness, cl *dingtalk.Client) error {
		tok, err := cl.UserToken(t.Context(), h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, zhangsan.UserID))
		if err != nil {
			t.Fatalf("UserToken: %v", err)
		}
		_, err = cl.Me(t.Context(), tok.AccessToken)
		return err
	}
	userToken := func(t *testing.T, h *harness, cl *dingtalk.Client) error {
		_, err := cl.UserToken(t.Context(), h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, zhangsan.UserID))
		return err
	}
	userList := func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
		_, _, _, err := cl.DepartmentUsers(t.Context(), 581208264, 0, 2)
		return err
	}
	snsInfo := func(t *testing.T, h *harness, cl *dingtalk.Client) error {
		_, err := cl.SNSUserInfoByCode(t.Context(), h.snsCode(t, fake.DemoSNSAppID, zhangsan.UserID))
		return err
	}

	for _, tt := range []struct {
		name     string
		endpoint string
		fault    fake.Fault
		legacy   bool // fetch app tokens with A2
		call     call
		want     error
		notWant  error
		// retried: throttling that waiting cures, on an idempotent call,
		// is retried (see dingtalk.Config.ThrottleBudget), so one faulty
		// answer is followed by a successful retry; the fault must persist
		// for the call to fail with want.
		retried bool
	}{
		{"90018 on U2", fake.EndpointUser, fake.Fault{Errcode: 90018}, false, user, dingtalk.ErrThrottled, nil, true},
		{"90018 on D5", fake.EndpointUserList, fake.Fault{Errcode: 90018}, false, userList, dingtalk.ErrThrottled, nil, true},
		{"90002 on U2", fake.EndpointUser, fake.Fault{Errcode: 90002}, false, user, dingtalk.ErrThrottled, nil, true},
		{"90018 on A2", fake.EndpointGetToken, fake.Fault{Errcode: 90018}, true, appToken, dingtalk.ErrThrottled, nil, true},
		{"QPS throttle on A1", fake.EndpointAppToken, fake.Fault{Errcode: 90018}, false, appToken, dingtalk.ErrThrottled, nil, true},
		{"monthly quota on A1", fake.EndpointAppToken, fake.Fault{Errcode: 90020}, false, appToken, dingtalk.ErrThrottled, nil, false},
		{"QPS throttle on L3", fake.EndpointContactUser, fake.Fault{Errcode: 90018}, false, me, dingtalk.ErrThrottled, nil, true},
		{"QPS throttle on L2", fake.EndpointUserToken, fake.Fault{Errcode: 90018}, false, userToken, dingtalk.ErrThrottled, nil, false},
		{"IP allow-list on U2", fake.EndpointUser, fake.Fault{Errcode: 60020}, false, user, dingtalk.ErrPermissionDenied, dingtalk.ErrThrottled, false},
		{"IP allow-list on L3", fake.EndpointContactUser, fake.Fault{Errcode: 60020}, false, me, dingtalk.ErrPermissionDenied, dingtalk.ErrThrottled, false},
		{"punish page on U2", fake.EndpointUser, fake.Fault{PunishPage: true}, false, user, dingtalk.ErrThrottled, nil, true},
		{"punish page on A2", fake.EndpointGetToken, fake.Fault{PunishPage: true}, true, appToken, dingtalk.ErrThrottled, nil, true},
		{"punish page on A1", fake.EndpointAppToken, fake.Fault{PunishPage: true}, false, appToken, dingtalk.ErrThrottled, nil, true},
		{"punish page on L3", fake.EndpointContactUser, fake.Fault{PunishPage: true}, false, me, dingtalk.ErrThrottled, nil, true},
		{"HTTP 500 on U2", fake.EndpointUser, fake.Fault{HTTPStatus: 500}, false, user, dingtalk.ErrBadResponse, dingtalk.ErrThrottled, false},
		{"HTTP 502 on A1", fake.EndpointAppToken, fake.Fault{HTTPStatus: 502}, false, appToken, dingtalk.ErrBadResponse, dingtalk.ErrThrottled, false},
		{"HTTP 500 on S3", fake.EndpointSNSUserInfo, fake.Fault{HTTPStatus: 500}, false, snsInfo, dingtalk.ErrBadResponse, dingtalk.ErrThrottled, false},
		{"truncated U2", fake.EndpointUser, fake.Fault{Truncated: true}, false, user, dingtalk.ErrBadResponse, nil, false},
		{"truncated A1", fake.EndpointAppToken, fake.Fault{Truncated: true}, false, appToken, dingtalk.ErrBadResponse, nil, false},
		{"truncated L3", fake.EndpointContactUser, fake.Fault{Truncated: true}, false, me, dingtalk.ErrBadResponse, nil, false},
		{"truncated error on U2", fake.EndpointUser, fake.Fault{Errcode: 90018, Truncated: true}, false, user, dingtalk.ErrBadResponse, dingtalk.ErrThrottled, false},
		{"oversize U2", fake.EndpointUser, fake.Fault{Oversize: true}, false, user, dingtalk.ErrBadResponse, nil, false},
		{"oversize A2", fake.EndpointGetToken, fake.Fault{Oversize: true}, true, appToken, dingtalk.ErrBadResponse, nil, false},
		{"oversize D5", fake.EndpointUserList, fake.Fault{Oversize: true}, false, userList, dingtalk.ErrBadResponse, nil, false},
		{"latency on U2", fake.EndpointUser, fake.Fault{Latency: 2 * time.Second}, false, user, context.DeadlineExceeded, nil, false},
		{"latency on A1", fake.EndpointAppToken, fake.Fault{Latency: 2 * time.Second}, false, appToken, context.DeadlineExceeded, nil, false},
		{"latency on L2", fake.EndpointUserToken, fake.Fault{Latency: 2 * time.Second}, false, userToken, context.DeadlineExceeded, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			edit := func(cfg *dingtalk.Config) {
				cfg.LegacyTokenEndpoint = tt.legacy
				if tt.fault.Latency > 0 {
					cfg.Timeout = 100 * time.Millisecond
				}
			}
			cl := h.client(t, edit)
			f := tt.fault
			f.Times = 1
			h.sim.InjectFault(tt.endpoint, f)
			start := time.Now()
			err := tt.call(t, h, cl)
			if tt.retried {
				if err != nil {
					t.Errorf("call throttled once: %v, want success after one retry", err)
				}
				if got := h.sim.Calls(tt.endpoint); got != 2 {
					t.Errorf("Calls(%s) = %d, want 2 (throttled, then retried)", tt.endpoint, got)
				}
				if got := h.sleep.Waits(); len(got) != 1 {
					t.Errorf("waits = %v, want one before the retry", got)
				}
				// The same fault, persistent, fails the call with want once
				// the budget is spent. A fresh client: the first cached the
				// app token.
				h.sim.InjectFault(tt.endpoint, tt.fault)
				err := tt.call(t, h, h.client(t, edit))
				h.wantErr(t, "persistently faulty call", err, tt.want)
				if got := h.sim.Calls(tt.endpoint); got < 4 {
					t.Errorf("Calls(%s) = %d, want at least 2 more (retried until the budget is spent)", tt.endpoint, got)
				}
				h.sim.ClearFaults()
				if err := tt.call(t, h, cl); err != nil {
					t.Errorf("call after the fault: %v", err)
				}
				return
			}
			h.wantErr(t, "faulty call", err, tt.want)
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Errorf("faulty call: err = %v, want it not to match %v", err, tt.notWant)
			}
			if tt.fault.Latency > 0 {
				if d := time.Since(start); d >= tt.fault.Latency {
					t.Errorf("faulty call took %v, want it cut short by the 100ms timeout", d)
				}
			}
			if got := h.sim.Calls(tt.endpoint); got != 1 {
				t.Errorf("Calls(%s) = %d, want 1 (no retry of a fault)", tt.endpoint, got)
			}
			if got := h.sleep.Waits(); len(got) != 0 {
				t.Errorf("waits = %v, want none", got)
			}
			// Times: 1 — the fault is spent and the next call succeeds.
			if err := tt.call(t, h, cl); err != nil {
				t.Errorf("call after the fault: %v", err)
			}
		})
	}

	t.Run("persistent fault until ClearFaults", func(t *testing.T) {
		h := c.newHarness(t, fake.Options{})
		cl := h.client(t, nil)
		h.sim.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 90018})
		for i := range 3 {
			h.wantErr(t, fmt.Sprintf("call %d", i+1), user(t, h, cl), dingtalk.ErrThrottled)
		}
		h.sim.ClearFaults()
		if err := user(t, h, cl); err != nil {
			t.Errorf("after ClearFaults: %v", err)
		}
	})
}

func (c *contract) testEvents(t *testing.T) {
	fx := fake.DefaultFixture()
	app := func(corpID string) fake.App {
		apps := corpOf(t, fx, corpID).Apps
		if len(apps) == 0 {
			t.Fatalf("fixture: corp %s has no app", corpID)
		}
		return apps[0]
	}
	app1 := app(fake.DemoCorpID)
	c.secrets.add(app1.CallbackAESKey, app(fake.DemoCorp2ID).CallbackAESKey)

	// receiver is a subscriber: the client's callback handler behind an
	// httptest server, recording the events it is handed.
	type receiver struct {
		mu     sync.Mutex
		events []dingtalk.Event
		url    string
	}
	newReceiver := func(t *testing.T, token, aesKey, ownerKey string, fail bool) *receiver {
		t.Helper()
		crypto, err := dingtalk.NewCallbackCrypto(token, aesKey, ownerKey)
		if err != nil {
			t.Fatalf("NewCallbackCrypto: %v", err)
		}
		rc := &receiver{}
		handler := dingtalk.NewCallbackHandler(crypto, func(_ context.Context, ev dingtalk.Event) error {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			rc.events = append(rc.events, ev)
			if fail {
				return errors.New("store unavailable")
			}
			return nil
		}, c.logger)
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		rc.url = srv.URL + "/dt/events"
		return rc
	}
	received := func(rc *receiver) []dingtalk.Event {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return slices.Clone(rc.events)
	}

	t.Run("delivered", func(t *testing.T) {
		for _, tt := range []struct {
			name      string
			corpID    string
			eventType string
			userIDs   []string
			handled   bool
		}{
			{"user_leave_org", fake.DemoCorpID, "user_leave_org", []string{"zhaoliu"}, true},
			{"user_add_org, numeric-looking userid", fake.DemoCorpID, "user_add_org", []string{"184919295227658120", "wangwu"}, true},
			{"check_url", fake.DemoCorpID, dingtalk.EventCheckURL, nil, false},
			{"corp 2 user_modify_org", fake.DemoCorp2ID, "user_modify_org", []string{"liuyang"}, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				a := app(tt.corpID)
				rc := newReceiver(t, a.CallbackToken, a.CallbackAESKey, a.AppKey, false)
				if err := h.sim.PushEvent(t.Context(), rc.url, tt.corpID, tt.eventType, tt.userIDs); err != nil {
					t.Fatalf("PushEvent: %v", err)
				}
				got := received(rc)
				if !tt.handled {
					if len(got) != 0 {
						t.Errorf("handler got %d events for %s, want none (answered by the handler itself)", len(got), tt.eventType)
					}
					return
				}
				if len(got) != 1 {
					t.Fatalf("handler got %d events, want 1", len(got))
				}
				ev := got[0]
				if ev.Type != tt.eventType || ev.CorpID != tt.corpID || !slices.Equal(ev.UserIDs, tt.userIDs) {
					t.Errorf("event = %s/%s/%v, want %s/%s/%v", ev.Type, ev.CorpID, ev.UserIDs, tt.eventType, tt.corpID, tt.userIDs)
				}
				if ev.EventID == "" {
					t.Error("event has no EventID")
				}
				if want := h.clock.Now().Truncate(time.Millisecond); !ev.Time.Equal(want) {
					t.Errorf("event Time = %v, want %v", ev.Time, want)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name                    string
			token, aesKey, ownerKey string
			fail                    bool
			wantHandled             int
		}{
			{"wrong token", "wrongtoken1", app1.CallbackAESKey, app1.AppKey, false, 0},
			{"wrong aes key", app1.CallbackToken, app(fake.DemoCorp2ID).CallbackAESKey, app1.AppKey, false, 0},
			{"corpId as owner key", app1.CallbackToken, app1.CallbackAESKey, fake.DemoCorpID, false, 0},
			{"handler error", app1.CallbackToken, app1.CallbackAESKey, app1.AppKey, true, 1},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				rc := newReceiver(t, tt.token, tt.aesKey, tt.ownerKey, tt.fail)
				err := h.sim.PushEvent(t.Context(), rc.url, fake.DemoCorpID, "user_leave_org", []string{"zhaoliu"})
				if err == nil {
					t.Error("PushEvent succeeded, want an error")
				}
				if got := len(received(rc)); got != tt.wantHandled {
					t.Errorf("handler got %d events, want %d", got, tt.wantHandled)
				}
			})
		}
	})
}
