package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Values the tests send or receive that must never show up in errors or logs.
const (
	testAppKey       = "dingappkey0001"
	testAppSecret    = "appsecret-Zq9xW2-never-log"
	testSNSAppID     = "dingoasnsapp0001"
	testSNSSecret    = "snssecret-Pq7r-never-log"
	testCorpID       = "ding9f50b15bxxxx16741"   // testdata/user_token.json corpId
	testAppToken     = "fw8ef8we8f76e6f7s8dxxxx" // testdata/app_token.json
	testLegacyToken  = "96fc7a7axxx"             // testdata/gettoken.json
	testCode         = "authcode-3bd3c4c1f1a5-never-log"
	testUserToken    = "abcd1234usertoken"    // testdata/user_token.json
	testRefreshToken = "efgh5678refreshtoken" // testdata/user_token.json
	testUnionID      = "z21HjQliSzpw0Yxxxx"   // testdata/users_me.json
	testUserID       = "184919295227658120"   // testdata/user_get.json
)

var testSecrets = []string{
	testAppSecret, testSNSSecret, testAppToken, testLegacyToken, testCode, testUserToken, testRefreshToken,
}

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testServer is an httptest server with one handler per path; it counts
// requests per path and fails the test on unexpected paths.
type testServer struct {
	*httptest.Server
	t      *testing.T
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	// stop is closed when the test ends, releasing handlers that block.
	stop chan struct{}
}

// newTestServer starts a server whose token endpoints answer with
// testdata/app_token.json and testdata/gettoken.json.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{t: t, routes: make(map[string]http.HandlerFunc), hits: make(map[string]int), stop: make(chan struct{})}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.stop) }) // runs before Close, which waits for handlers
	s.handle("/v1.0/oauth2/accessToken", serveFile(t, "app_token.json", http.StatusOK))
	s.handle("/gettoken", serveFile(t, "gettoken.json", http.StatusOK))
	return s
}

func (s *testServer) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = h
}

// block is a handler that answers only when the client gives up. It reads
// the body first: net/http notices a client going away only after that.
func (s *testServer) block(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-s.stop:
	}
}

func (s *testServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	h := s.routes[r.URL.Path]
	s.mu.Unlock()
	if h == nil {
		s.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveFile answers with testdata/name, as HTML or JSON by its extension.
func serveFile(t *testing.T, name string, status int) http.HandlerFunc {
	t.Helper()
	body := readTestdata(t, name)
	ctype := "application/json;charset=utf-8"
	if strings.HasSuffix(name, ".html") {
		ctype = "text/html;charset=utf-8"
	}
	return serveBytes(ctype, status, body)
}

func serveBytes(contentType string, status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

// syncBuffer collects log output written from several goroutines.
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

// noSleep is the tests' Config.Sleep: waits end at once (the clock is
// frozen at testNow anyway), unless ctx has already ended.
func noSleep(ctx context.Context, _ time.Duration) error {
	return context.Cause(ctx)
}

// exactJitter replaces the retry jitter so that waits are predictable.
func exactJitter(d time.Duration) time.Duration { return d }

// newTestClient returns a client for srv whose Debug log goes to the
// returned buffer; opts adjust the config. Its waits take no time and its
// retry waits have no jitter.
func newTestClient(t *testing.T, srv *testServer, opts ...func(*Config)) (*Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := Config{
		APIBaseURL:   srv.URL,
		OAPIBaseURL:  srv.URL,
		LoginBaseURL: "https://login.dingtalk.com",
		CorpID:       testCorpID,
		AppKey:       testAppKey,
		AppSecret:    testAppSecret,
		HTTPClient:   srv.Client(),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:          func() time.Time { return testNow },
		Sleep:        noSleep,
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.jitter = exactJitter
	return c, logs
}

func withLegacyToken(c *Config) { c.LegacyTokenEndpoint = true }

func withSNS(c *Config) { c.SNSAppID, c.SNSAppSecret = testSNSAppID, testSNSSecret }

// wantRequest is what a test server expects of a request.
type wantRequest struct {
	method string
	path   string
	query  url.Values        // exact query; nil means none
	header map[string]string // header values; "" means the header must be absent
	body   string            // exact JSON body (compared as JSON); "" means no body
}

// checkRequest reports every way r differs from want. It runs in server
// goroutines, so it uses Errorf only.
func checkRequest(t *testing.T, r *http.Request, want wantRequest) {
	t.Helper()
	if r.Method != want.method {
		t.Errorf("method = %s, want %s", r.Method, want.method)
	}
	if r.URL.Path != want.path {
		t.Errorf("path = %s, want %s", r.URL.Path, want.path)
	}
	if got := r.URL.Query(); !(len(got) == 0 && len(want.query) == 0) && !reflect.DeepEqual(got, want.query) {
		t.Errorf("query = %v, want %v", got, want.query)
	}
	for k, v := range want.header {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(r.Body)
	if want.body == "" {
		if body.Len() != 0 {
			t.Errorf("body = %s, want none", body)
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got, exp any
	if err := json.Unmarshal(body.Bytes(), &got); err != nil {
		t.Errorf("body %s: %v", body, err)
		return
	}
	if err := json.Unmarshal([]byte(want.body), &exp); err != nil {
		t.Fatalf("want body %s: %v", want.body, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("body = %s, want %s", body, want.body)
	}
}

// appTokenQuery is the query of an old-API call made with the app token.
func appTokenQuery(extra ...string) url.Values {
	q := url.Values{"access_token": {testAppToken}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// oldAPIHeaders asserts the app token is not sent where the old API ignores it.
var oldAPIHeaders = map[string]string{headerUserToken: "", "Authorization": ""}

// queryParam matches a query parameter inside a URL in an error or log line.
var queryParam = regexp.MustCompile(`[?&](\w+)=([^&"\s]*)`)

// checkNoSecrets fails if any test secret appears in one of texts.
func checkNoSecrets(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, s := range testSecrets {
			if strings.Contains(text, s) {
				t.Errorf("secret %q leaked in %q", s, text)
			}
		}
		for _, m := range queryParam.FindAllStringSubmatch(text, -1) {
			if m[2] != "REDACTED" {
				t.Errorf("query parameter %s leaked in %q", m[1], text)
			}
		}
	}
}

// endpointSpec is one DingTalk call, for the tests every endpoint must pass.
type endpointSpec struct {
	name     string
	path     string
	family   family
	appToken bool // called with the app token, so retried once on ErrTokenInvalid
	// idempotent calls are retried when throttled; code exchanges are not.
	idempotent bool
	topapi     bool // behind the topapi gateway, which wraps errors in errcode 88
	okFile     string
	config     func(*Config)
	call       func(context.Context, *Client) error
}

func allEndpoints() []endpointSpec {
	return []endpointSpec{
		{name: "A1 AppToken", idempotent: true, path: "/v1.0/oauth2/accessToken", family: newAPI, okFile: "app_token.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.AppToken(ctx); return err }},
		{name: "A2 AppToken legacy", idempotent: true, path: "/gettoken", family: oldAPI, okFile: "gettoken.json", config: withLegacyToken,
			call: func(ctx context.Context, c *Client) error { _, err := c.AppToken(ctx); return err }},
		{name: "L2 UserToken", path: "/v1.0/oauth2/userAccessToken", family: newAPI, okFile: "user_token.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.UserToken(ctx, testCode); return err }},
		{name: "L2 RefreshUserToken", path: "/v1.0/oauth2/userAccessToken", family: newAPI, okFile: "user_token.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.RefreshUserToken(ctx, testRefreshToken)
				return err
			}},
		{name: "L3 Me", idempotent: true, path: "/v1.0/contact/users/me", family: newAPI, okFile: "users_me.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.Me(ctx, testUserToken); return err }},
		{name: "U1 UserIDByUnionID", idempotent: true, path: "/topapi/user/getbyunionid", family: oldAPI, appToken: true, topapi: true, okFile: "getbyunionid.json",
			call: func(ctx context.Context, c *Client) error {
				_, _, err := c.UserIDByUnionID(ctx, testUnionID)
				return err
			}},
		{name: "U2 User", idempotent: true, path: "/topapi/v2/user/get", family: oldAPI, appToken: true, topapi: true, okFile: "user_get.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.User(ctx, testUserID); return err }},
		{name: "H1 UserInfoByAuthCode", path: "/topapi/v2/user/getuserinfo", family: oldAPI, appToken: true, topapi: true, okFile: "getuserinfo.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.UserInfoByAuthCode(ctx, testCode); return err }},
		{name: "H2 UserInfoByAuthCodeLegacy", path: "/user/getuserinfo", family: oldAPI, appToken: true, okFile: "getuserinfo_legacy.json",
			call: func(ctx context.Context, c *Client) error {
				_, err := c.UserInfoByAuthCodeLegacy(ctx, testCode)
				return err
			}},
		{name: "S3 SNSUserInfoByCode", path: "/sns/getuserinfo_bycode", family: oldAPI, okFile: "sns_getuserinfo_bycode.json", config: withSNS,
			call: func(ctx context.Context, c *Client) error { _, err := c.SNSUserInfoByCode(ctx, testCode); return err }},
		{name: "D1 SubDepartments", idempotent: true, path: "/topapi/v2/department/listsub", family: oldAPI, appToken: true, topapi: true, okFile: "department_listsub.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.SubDepartments(ctx, 1); return err }},
		{name: "D2 SubDepartmentIDs", idempotent: true, path: "/topapi/v2/department/listsubid", family: oldAPI, appToken: true, topapi: true, okFile: "department_listsubid.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.SubDepartmentIDs(ctx, 1); return err }},
		{name: "D3 Department", idempotent: true, path: "/topapi/v2/department/get", family: oldAPI, appToken: true, topapi: true, okFile: "department_get.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.Department(ctx, 581208264); return err }},
		{name: "D4 DepartmentUserIDs", idempotent: true, path: "/topapi/user/listid", family: oldAPI, appToken: true, topapi: true, okFile: "user_listid.json",
			call: func(ctx context.Context, c *Client) error { _, err := c.DepartmentUserIDs(ctx, 581208264); return err }},
		{name: "D5 DepartmentUsers", idempotent: true, path: "/topapi/v2/user/list", family: oldAPI, appToken: true, topapi: true, okFile: "user_list.json",
			call: func(ctx context.Context, c *Client) error {
				_, _, _, err := c.DepartmentUsers(ctx, 581208264, 0, 100)
				return err
			}},
	}
}

func TestEndpointsSucceed(t *testing.T) {
	for _, ep := range allEndpoints() {
		t.Run(ep.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(ep.path, serveFile(t, ep.okFile, http.StatusOK))
			opts := []func(*Config){}
			if ep.config != nil {
				opts = append(opts, ep.config)
			}
			c, logs := newTestClient(t, srv, opts...)
			if err := ep.call(t.Context(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if got := srv.count(ep.path); got != 1 {
				t.Errorf("requests to %s = %d, want 1", ep.path, got)
			}
			if !strings.Contains(logs.String(), "endpoint="+ep.path) {
				t.Errorf("log = %q, want a record with endpoint=%s", logs, ep.path)
			}
			checkNoSecrets(t, logs.String())
		})
	}
}

// failureCase is one way DingTalk can fail; every endpoint it applies to
// must turn it into the right typed error without leaking secrets.
type failureCase struct {
	name    string
	applies func(endpointSpec) bool
	serve   func(t *testing.T, srv *testServer, ep endpointSpec) http.HandlerFunc
	timeout time.Duration
	check   func(t *testing.T, ep endpointSpec, err error)
	// retried: the endpoint is called twice (the one retry with a new app
	// token) for app-token endpoints.
	retried bool
	// throttled: DingTalk throttles every attempt, so idempotent endpoints
	// are called until the throttle budget is spent.
	throttled bool
}

// defaultThrottleAttempts is how often a call DingTalk keeps throttling is
// sent with the default 3s budget and no jitter: waits of 200, 400, 800 and
// 1000 ms fit (2.4s), one more 1s wait would not.
const defaultThrottleAttempts = 5

func failureCases() []failureCase {
	always := func(endpointSpec) bool { return true }
	file := func(name string, status int) func(*testing.T, *testServer, endpointSpec) http.HandlerFunc {
		return func(t *testing.T, _ *testServer, _ endpointSpec) http.HandlerFunc { return serveFile(t, name, status) }
	}
	return []failureCase{
		{
			name:    "old errcode",
			applies: func(ep endpointSpec) bool { return ep.family == oldAPI },
			serve:   file("error_old.json", http.StatusOK),
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkAPIError(t, err, APIError{Endpoint: ep.path, HTTPStatus: 200, Code: "40078", Message: "不存在的临时授权码", RequestID: "3rq4dbf4lzv3"})
				checkIs(t, err, ErrInvalidCode)
			},
		},
		{
			name:    "errcode 88 wrapper",
			applies: func(ep endpointSpec) bool { return ep.topapi },
			serve:   file("error_88.json", http.StatusOK),
			retried: true,
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkAPIError(t, err, APIError{Endpoint: ep.path, HTTPStatus: 200, Code: "40014", Message: "不合法的access_token", RequestID: "16l4ew3d47pdp"})
				checkIs(t, err, ErrTokenInvalid)
			},
		},
		{
			name:    "not a member",
			applies: func(ep endpointSpec) bool { return ep.topapi },
			serve:   file("error_not_member.json", http.StatusOK),
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkAPIError(t, err, APIError{Endpoint: ep.path, HTTPStatus: 200, Code: "60121", Message: "找不到该用户", RequestID: "2o4svlmzzsig"})
				checkIs(t, err, ErrNotMember)
			},
		},
		{
			name:    "new code and message",
			applies: func(ep endpointSpec) bool { return ep.family == newAPI },
			serve:   file("error_new.json", http.StatusBadRequest),
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkAPIError(t, err, APIError{Endpoint: ep.path, HTTPStatus: 400, Code: "InvalidAuthentication", Message: "不合法的access_token", RequestID: "01A08FE7-CD6B-79BB-8B2E-35D8768AD457"})
				checkIs(t, err, ErrTokenInvalid)
			},
		},
		{
			name:    "new code with request id header",
			applies: func(ep endpointSpec) bool { return ep.family == newAPI },
			serve: func(*testing.T, *testServer, endpointSpec) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set(headerRequestID, "hdr-7F3A")
					serveBytes("application/json", http.StatusForbidden,
						[]byte(`{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi","message":"请求频率过快"}`))(w, r)
				}
			},
			throttled: true,
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkAPIError(t, err, APIError{Endpoint: ep.path, HTTPStatus: 403, Code: "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", Message: "请求频率过快", RequestID: "hdr-7F3A"})
				checkIs(t, err, ErrThrottled)
			},
		},
		{
			name:    "html page",
			applies: always,
			serve:   file("nginx_502.html", http.StatusOK),
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusOK)
				checkIsNot(t, err, ErrThrottled)
			},
		},
		{
			name:      "punish html page",
			applies:   always,
			serve:     file("punish.html", http.StatusOK),
			throttled: true,
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusOK)
				checkIs(t, err, ErrThrottled)
			},
		},
		{
			name:      "punish json",
			applies:   always,
			serve:     file("punish.json", http.StatusOK),
			throttled: true,
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusOK)
				checkIs(t, err, ErrThrottled)
			},
		},
		{
			name:    "truncated json",
			applies: always,
			serve: func(t *testing.T, _ *testServer, ep endpointSpec) http.HandlerFunc {
				b := readTestdata(t, ep.okFile)
				return serveBytes("application/json", http.StatusOK, b[:len(b)/2])
			},
			check: func(t *testing.T, ep endpointSpec, err error) { checkBadResponse(t, err, ep.path, http.StatusOK) },
		},
		{
			name:    "not json",
			applies: always,
			serve: func(*testing.T, *testServer, endpointSpec) http.HandlerFunc {
				return serveBytes("text/plain", http.StatusOK, []byte("ok"))
			},
			check: func(t *testing.T, ep endpointSpec, err error) { checkBadResponse(t, err, ep.path, http.StatusOK) },
		},
		{
			name:    "body over 1 MiB",
			applies: always,
			serve: func(*testing.T, *testServer, endpointSpec) http.HandlerFunc {
				// Valid JSON, so only the size check can reject it.
				body := `{"errcode":0,"pad":"` + strings.Repeat("a", 1<<20) + `"}`
				return serveBytes("application/json", http.StatusOK, []byte(body))
			},
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusOK)
				if !strings.Contains(err.Error(), "exceeds") {
					t.Errorf("error = %q, want it to say the body exceeds the limit", err)
				}
			},
		},
		{
			name:    "http 500",
			applies: always,
			serve: func(*testing.T, *testServer, endpointSpec) http.HandlerFunc {
				return serveBytes("text/plain", http.StatusInternalServerError, []byte("Internal Server Error"))
			},
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusInternalServerError)
			},
		},
		{
			name:    "http 502 html",
			applies: always,
			serve:   file("nginx_502.html", http.StatusBadGateway),
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkBadResponse(t, err, ep.path, http.StatusBadGateway)
			},
		},
		{
			name:    "timeout",
			applies: always,
			timeout: 100 * time.Millisecond,
			serve: func(_ *testing.T, srv *testServer, _ endpointSpec) http.HandlerFunc {
				return srv.block
			},
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkIs(t, err, context.DeadlineExceeded)
				if !strings.Contains(err.Error(), ep.path) {
					t.Errorf("error = %q, want it to name %s", err, ep.path)
				}
			},
		},
		{
			name:    "timeout while reading the body",
			applies: always,
			timeout: 100 * time.Millisecond,
			serve: func(_ *testing.T, srv *testServer, _ endpointSpec) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"errcode":0,`))
					_ = http.NewResponseController(w).Flush()
					srv.block(w, r)
				}
			},
			check: func(t *testing.T, ep endpointSpec, err error) {
				checkIs(t, err, context.DeadlineExceeded)
				if !strings.Contains(err.Error(), ep.path) {
					t.Errorf("error = %q, want it to name %s", err, ep.path)
				}
			},
		},
	}
}

func TestEndpointsFail(t *testing.T) {
	for _, ep := range allEndpoints() {
		for _, fc := range failureCases() {
			if !fc.applies(ep) {
				continue
			}
			t.Run(ep.name+"/"+fc.name, func(t *testing.T) {
				srv := newTestServer(t)
				srv.handle(ep.path, fc.serve(t, srv, ep))
				opts := []func(*Config){}
				if ep.config != nil {
					opts = append(opts, ep.config)
				}
				if fc.timeout > 0 {
					opts = append(opts, func(c *Config) { c.Timeout = fc.timeout })
				}
				c, logs := newTestClient(t, srv, opts...)

				err := ep.call(t.Context(), c)
				if err == nil {
					t.Fatal("call succeeded, want an error")
				}
				fc.check(t, ep, err)

				want := 1
				if fc.retried && ep.appToken {
					want = 2
				}
				if fc.throttled && ep.idempotent {
					want = defaultThrottleAttempts
				}
				if got := srv.count(ep.path); got != want {
					t.Errorf("requests to %s = %d, want %d", ep.path, got, want)
				}
				checkNoSecrets(t, err.Error(), logs.String())
			})
		}
	}
}

func checkAPIError(t *testing.T, err error, want APIError) {
	t.Helper()
	var got *APIError
	if !errors.As(err, &got) {
		t.Fatalf("error = %v (%T), want *APIError", err, err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("APIError = %+v, want %+v", *got, want)
	}
}

func checkBadResponse(t *testing.T, err error, endpoint string, status int) {
	t.Helper()
	checkIs(t, err, ErrBadResponse)
	var got *BadResponseError
	if !errors.As(err, &got) {
		t.Fatalf("error = %v (%T), want *BadResponseError", err, err)
	}
	if got.Endpoint != endpoint || got.HTTPStatus != status {
		t.Errorf("BadResponseError endpoint, status = %s, %d, want %s, %d", got.Endpoint, got.HTTPStatus, endpoint, status)
	}
}

func checkIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
	}
}

func checkIsNot(t *testing.T, err, target error) {
	t.Helper()
	if errors.Is(err, target) {
		t.Errorf("errors.Is(%v, %v) = true, want false", err, target)
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{AppKey: testAppKey, AppSecret: testAppSecret})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"APIBaseURL", c.cfg.APIBaseURL, DefaultAPIBaseURL},
		{"OAPIBaseURL", c.cfg.OAPIBaseURL, DefaultOAPIBaseURL},
		{"LoginBaseURL", c.cfg.LoginBaseURL, DefaultLoginBaseURL},
		{"Timeout", c.cfg.Timeout, 5 * time.Second},
		{"TokenRefreshMargin", c.cfg.TokenRefreshMargin, 10 * time.Minute},
		{"MinTokenLifetime", c.cfg.MinTokenLifetime, 60 * time.Second},
		{"MaxResponseBytes", c.cfg.MaxResponseBytes, int64(1 << 20)},
		{"HTTPClient set", c.cfg.HTTPClient != nil, true},
		{"Logger set", c.cfg.Logger != nil, true},
		{"Now set", c.cfg.Now != nil, true},
		{"RateLimit", c.cfg.RateLimit, 20.0},
		{"ThrottleBudget", c.cfg.ThrottleBudget, 3 * time.Second},
		{"Sleep set", c.cfg.Sleep != nil, true},
		{"window limiter: calls per window", c.limiter.(*windowLimiter).n, 20},
		{"window limiter: a second and the guard", c.limiter.(*windowLimiter).window, time.Second + windowGuard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestNewTrimsTrailingSlash(t *testing.T) {
	c, err := New(Config{AppKey: testAppKey, AppSecret: testAppSecret, OAPIBaseURL: "http://127.0.0.1:8080/dt/"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got, want := c.cfg.OAPIBaseURL, "http://127.0.0.1:8080/dt"; got != want {
		t.Errorf("OAPIBaseURL = %q, want %q", got, want)
	}
}

func TestNewValidation(t *testing.T) {
	valid := Config{AppKey: testAppKey, AppSecret: testAppSecret}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"missing app key", func(c *Config) { c.AppKey = "" }, []string{"AppKey: required"}},
		{"missing app secret", func(c *Config) { c.AppSecret = "" }, []string{"AppSecret: required"}},
		{"relative api url", func(c *Config) { c.APIBaseURL = "/v1.0" }, []string{"APIBaseURL: must be an absolute http(s) URL"}},
		{"ftp oapi url", func(c *Config) { c.OAPIBaseURL = "ftp://oapi.dingtalk.com" }, []string{"OAPIBaseURL: must be an absolute http(s) URL"}},
		{"login url with query", func(c *Config) { c.LoginBaseURL = "https://login.dingtalk.com/?a=b" }, []string{"LoginBaseURL: must not have a query"}},
		{"unparsable url", func(c *Config) { c.APIBaseURL = "http://[::1" }, []string{"APIBaseURL: must be an absolute http(s) URL"}},
		{"sns half set", func(c *Config) { c.SNSAppID = "x" }, []string{"SNSAppID, SNSAppSecret: set both or neither"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"Timeout: must not be negative"}},
		{"negative margin", func(c *Config) { c.TokenRefreshMargin = -1 }, []string{"TokenRefreshMargin: must not be negative"}},
		{"negative floor", func(c *Config) { c.MinTokenLifetime = -1 }, []string{"MinTokenLifetime: must not be negative"}},
		{"negative size", func(c *Config) { c.MaxResponseBytes = -1 }, []string{"MaxResponseBytes: must not be negative"}},
		{"negative rate", func(c *Config) { c.RateLimit = -1 }, []string{"RateLimit: must be a positive number"}},
		{"NaN rate", func(c *Config) { c.RateLimit = math.NaN() }, []string{"RateLimit: must be a positive number"}},
		{"infinite rate", func(c *Config) { c.RateLimit = math.Inf(1) }, []string{"RateLimit: must be a positive number"}},
		{"negative throttle budget", func(c *Config) { c.ThrottleBudget = -time.Second }, []string{"ThrottleBudget: must not be negative"}},
		{
			"every problem at once",
			func(c *Config) { *c = Config{APIBaseURL: "nope", SNSAppSecret: "only-secret"} },
			[]string{"APIBaseURL", "AppKey: required", "AppSecret: required", "SNSAppID, SNSAppSecret"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.modify(&cfg)
			_, err := New(cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
			checkNoSecrets(t, err.Error())
		})
	}
}

func TestConfigLogValue(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "dingtalk", Config{AppKey: testAppKey, AppSecret: testAppSecret, SNSAppSecret: testSNSSecret})
	if !strings.Contains(buf.String(), testAppKey) {
		t.Errorf("log = %s, want the app key", &buf)
	}
	checkNoSecrets(t, buf.String())
}

func TestRedactQuery(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"token", "https://oapi.dingtalk.com/topapi/v2/user/get?access_token=" + testAppToken,
			"https://oapi.dingtalk.com/topapi/v2/user/get?access_token=REDACTED"},
		{"gettoken", "https://oapi.dingtalk.com/gettoken?appkey=k&appsecret=" + testAppSecret,
			"https://oapi.dingtalk.com/gettoken?appkey=REDACTED&appsecret=REDACTED"},
		{"no query", "https://api.dingtalk.com/v1.0/contact/users/me", "https://api.dingtalk.com/v1.0/contact/users/me"},
		{"user info", "https://u:" + testAppSecret + "@oapi.dingtalk.com/x?code=" + testCode, "https://oapi.dingtalk.com/x?code=REDACTED"},
		{"unparsable", "http://[::1/x?code=" + testCode, "http://[::1/x?REDACTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactQuery(tt.in); got != tt.want {
				t.Errorf("redactQuery(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTransportErrorIsRedacted(t *testing.T) {
	tests := []struct {
		name string
		opts []func(*Config)
		call func(context.Context, *Client) error
	}{
		{"gettoken secret", []func(*Config){withLegacyToken},
			func(ctx context.Context, c *Client) error { _, err := c.AppToken(ctx); return err }},
		{"sns signature", []func(*Config){withSNS},
			func(ctx context.Context, c *Client) error { _, err := c.SNSUserInfoByCode(ctx, testCode); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			c, logs := newTestClient(t, srv, tt.opts...)
			srv.Close() // every request now fails in http.Client.Do with a *url.Error
			err := tt.call(t.Context(), c)
			if err == nil {
				t.Fatal("call succeeded, want a transport error")
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("error = %v (%T), want a *url.Error inside", err, err)
			}
			if !strings.Contains(err.Error(), "REDACTED") {
				t.Errorf("error = %q, want query values replaced by REDACTED", err)
			}
			checkNoSecrets(t, err.Error(), logs.String())
		})
	}
}

func TestTransportErrorRedactsAppToken(t *testing.T) {
	srv := newTestServer(t)
	// Drop the connection without an answer: http.Client.Do reports the
	// full URL, access_token and code included.
	srv.handle("/user/getuserinfo", func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		_ = conn.Close()
	})
	c, logs := newTestClient(t, srv)
	_, err := c.UserInfoByAuthCodeLegacy(t.Context(), testCode)
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error = %v (%T), want a *url.Error inside", err, err)
	}
	checkNoSecrets(t, err.Error(), logs.String())
}

func TestCallLog(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", serveFile(t, "error_not_member.json", http.StatusOK))
	var buf syncBuffer
	c, _ := newTestClient(t, srv, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, _ = c.User(t.Context(), testUserID)

	var records []map[string]any
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "dingtalk call" {
			records = append(records, rec)
		}
	}
	if len(records) != 2 {
		t.Fatalf("got %d call records, want 2 (token, user): %s", len(records), &buf)
	}
	got := records[1]
	for _, key := range []string{"endpoint", "status", "duration", "dingtalk_code", "request_id"} {
		if _, ok := got[key]; !ok {
			t.Errorf("call record has no %q: %v", key, got)
		}
	}
	if got["level"] != "DEBUG" {
		t.Errorf("level = %v, want DEBUG", got["level"])
	}
	if got["endpoint"] != "/topapi/v2/user/get" || got["dingtalk_code"] != "60121" || got["request_id"] != "2o4svlmzzsig" {
		t.Errorf("record = %v, want endpoint /topapi/v2/user/get, dingtalk_code 60121, request_id 2o4svlmzzsig", got)
	}
	if got["status"] != float64(200) {
		t.Errorf("status = %v, want 200", got["status"])
	}
	checkNoSecrets(t, buf.String())
}

func TestAPIErrorMessageRedactsEchoedSecrets(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/getuserinfo", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":40078,"errmsg":"code `+testCode+` not found for token `+testAppToken+`"}`)))
	c, _ := newTestClient(t, srv)
	_, err := c.UserInfoByAuthCode(t.Context(), testCode)
	checkIs(t, err, ErrInvalidCode)
	checkNoSecrets(t, err.Error())
}

func TestSuccessWithoutKeyField(t *testing.T) {
	tests := []struct {
		name, path, body string
		opts             []func(*Config)
		call             func(context.Context, *Client) error
	}{
		{"A1 no accessToken", "/v1.0/oauth2/accessToken", `{"expireIn":7200}`, nil,
			func(ctx context.Context, c *Client) error { _, err := c.AppToken(ctx); return err }},
		{"A2 no access_token", "/gettoken", `{"errcode":0,"expires_in":7200}`, []func(*Config){withLegacyToken},
			func(ctx context.Context, c *Client) error { _, err := c.AppToken(ctx); return err }},
		{"L2 no accessToken", "/v1.0/oauth2/userAccessToken", `{"expireIn":7200}`, nil,
			func(ctx context.Context, c *Client) error { _, err := c.UserToken(ctx, testCode); return err }},
		{"U1 no userid", "/topapi/user/getbyunionid", `{"errcode":0,"result":{}}`, nil,
			func(ctx context.Context, c *Client) error {
				_, _, err := c.UserIDByUnionID(ctx, testUnionID)
				return err
			}},
		{"U2 no result", "/topapi/v2/user/get", `{"errcode":0}`, nil,
			func(ctx context.Context, c *Client) error { _, err := c.User(ctx, testUserID); return err }},
		{"H1 no userid", "/topapi/v2/user/getuserinfo", `{"errcode":0,"result":{}}`, nil,
			func(ctx context.Context, c *Client) error { _, err := c.UserInfoByAuthCode(ctx, testCode); return err }},
		{"H2 no userid", "/user/getuserinfo", `{"errcode":0}`, nil,
			func(ctx context.Context, c *Client) error {
				_, err := c.UserInfoByAuthCodeLegacy(ctx, testCode)
				return err
			}},
		{"S3 no unionid", "/sns/getuserinfo_bycode", `{"errcode":0,"user_info":{}}`, []func(*Config){withSNS},
			func(ctx context.Context, c *Client) error { _, err := c.SNSUserInfoByCode(ctx, testCode); return err }},
		{"D3 no result", "/topapi/v2/department/get", `{"errcode":0}`, nil,
			func(ctx context.Context, c *Client) error { _, err := c.Department(ctx, 1); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(tt.path, serveBytes("application/json", http.StatusOK, []byte(tt.body)))
			c, _ := newTestClient(t, srv, tt.opts...)
			err := tt.call(t.Context(), c)
			checkIs(t, err, ErrBadResponse)
		})
	}
}
