package fake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, time.March, 14, 10, 0, 0, 0, time.UTC)}
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

// env is one fake behind an httptest server, with a fake clock.
type env struct {
	t      *testing.T
	fake   *Server
	url    string
	clock  *clock
	client *http.Client // does not follow redirects
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	s.SetBaseURL(ts.URL)
	return &env{
		t: t, fake: s, url: ts.URL, clock: c,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as an object, numbers kept as json.Number.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return m
}

func (e *env) do(method, path string, header http.Header, body io.Reader) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(path string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil, nil)
}

func (e *env) postJSON(path string, v any) response {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, path, http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(b))
}

func (e *env) postForm(path string, v url.Values) response {
	e.t.Helper()
	return e.do(http.MethodPost, path, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
		strings.NewReader(v.Encode()))
}

// appToken gets an app token through A1.
func (e *env) appToken(appKey, secret string) string {
	e.t.Helper()
	r := e.postJSON("/v1.0/oauth2/accessToken", map[string]string{"appKey": appKey, "appSecret": secret})
	if r.status != http.StatusOK {
		e.t.Fatalf("app token: status %d: %s", r.status, r.body)
	}
	return r.json(e.t)["accessToken"].(string)
}

// userToken exchanges a login code through L2.
func (e *env) userToken(clientID, secret, code string) map[string]any {
	e.t.Helper()
	r := e.postJSON("/v1.0/oauth2/userAccessToken", map[string]string{
		"clientId": clientID, "clientSecret": secret, "code": code, "grantType": "authorization_code",
	})
	if r.status != http.StatusOK {
		e.t.Fatalf("user token: status %d: %s", r.status, r.body)
	}
	return r.json(e.t)
}

// jsonType names the JSON type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return "?"
	}
}

// checkShape asserts that m has exactly the keys of want, with those JSON types.
func checkShape(t *testing.T, m map[string]any, want map[string]string) {
	t.Helper()
	for k, typ := range want {
		v, ok := m[k]
		if !ok {
			t.Errorf("key %q missing in %v", k, m)
			continue
		}
		if got := jsonType(v); got != typ {
			t.Errorf("%q is %s (%v), want %s", k, got, v, typ)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q in %v", k, m)
		}
	}
}

// checkOldError asserts an old-API failure with errcode.
func checkOldError(t *testing.T, r response, errcode int) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200 (body %s)", r.status, r.body)
	}
	m := r.json(t)
	if got := m["errcode"]; got != json.Number(strconv.Itoa(errcode)) {
		t.Errorf("errcode = %v, want %d (body %s)", got, errcode, r.body)
	}
	if s, _ := m["errmsg"].(string); s == "" {
		t.Errorf("errmsg = %v, want text", m["errmsg"])
	}
	if s, _ := m["request_id"].(string); s == "" {
		t.Errorf("request_id = %v, want an id", m["request_id"])
	}
	return m
}

// checkOldOK asserts an old-API success and returns the body.
func checkOldOK(t *testing.T, r response) map[string]any {
	t.Helper()
	m := checkOldError(t, r, 0)
	if m["errmsg"] != "ok" {
		t.Errorf("errmsg = %v, want ok", m["errmsg"])
	}
	return m
}

// checkNewError asserts a new-API failure.
func checkNewError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	m := r.json(t)
	shape := map[string]string{"code": "string", "message": "string", "requestid": "string"}
	if code == "Forbidden.AccessDenied.AccessTokenPermissionDenied" {
		// DingTalk's permission error also names what is missing.
		shape["accessdenieddetail"] = "object"
		scopes, _ := m["accessdenieddetail"].(map[string]any)["requiredScopes"].([]any)
		if len(scopes) == 0 {
			t.Errorf("accessdenieddetail.requiredScopes is empty in %v", m)
		}
	}
	checkShape(t, m, shape)
	if m["code"] != code {
		t.Errorf("code = %v, want %s", m["code"], code)
	}
	if got := r.header.Get("x-acs-request-id"); got == "" || got != m["requestid"] {
		t.Errorf("x-acs-request-id = %q, want %v", got, m["requestid"])
	}
}

func TestRequestIDs(t *testing.T) {
	e := newEnv(t, Options{})
	seen := map[string]bool{}
	for range 3 {
		r := e.get("/gettoken?appkey=x&appsecret=y")
		id, _ := r.json(t)["request_id"].(string)
		if len(id) != 13 || seen[id] {
			t.Errorf("request_id = %q, want a fresh 13-character id", id)
		}
		seen[id] = true
	}
	r := e.postJSON("/v1.0/oauth2/accessToken", map[string]string{"appKey": "x"})
	checkNewError(t, r, http.StatusBadRequest, "invalidClientIdOrSecret")
	if id := r.header.Get("x-acs-request-id"); len(id) != 36 || strings.ToUpper(id) != id {
		t.Errorf("x-acs-request-id = %q, want an upper-case UUID", id)
	}
	if r.header.Get("x-acs-trace-id") == "" {
		t.Error("x-acs-trace-id missing")
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	e := newEnv(t, Options{})
	t.Run("unknown topapi path", func(t *testing.T) {
		m := checkOldError(t, e.postJSON("/topapi/v2/user/nope", map[string]string{}), 22)
		if !strings.HasPrefix(m["errmsg"].(string), "Invalid method[") {
			t.Errorf("errmsg = %v, want Invalid method[...]", m["errmsg"])
		}
	})
	t.Run("unknown new api path", func(t *testing.T) {
		checkNewError(t, e.get("/v1.0/contact/nope/x/y"), http.StatusNotFound, "InvalidAction.NotFound")
	})
	tests := []struct {
		name, method, path string
		errcode            int
	}{
		{"GET on a topapi POST", http.MethodGet, "/topapi/v2/user/get", 43002},
		{"GET on sns POST", http.MethodGet, "/sns/getuserinfo_bycode", 43002},
		{"POST on gettoken", http.MethodPost, "/gettoken?appkey=a&appsecret=b", 43001},
		{"POST on legacy getuserinfo", http.MethodPost, "/user/getuserinfo", 43001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOldError(t, e.do(tt.method, tt.path, nil, nil), tt.errcode)
		})
	}
	t.Run("GET on a new-API POST", func(t *testing.T) {
		checkNewError(t, e.get("/v1.0/oauth2/accessToken"), http.StatusNotFound, "InvalidAction.NotFound")
	})
	t.Run("POST on the login page", func(t *testing.T) {
		if r := e.do(http.MethodPost, "/oauth2/auth", nil, nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("status = %d, want 405", r.status)
		}
	})
}

func TestCalls(t *testing.T) {
	e := newEnv(t, Options{})
	e.appToken(DemoAppKey, DemoAppSecret)
	e.appToken(DemoAppKey, DemoAppSecret)
	e.get("/gettoken")
	e.get("/v1.0/oauth2/accessToken") // wrong method still counts
	if got := e.fake.Calls(EndpointAppToken); got != 3 {
		t.Errorf("Calls(EndpointAppToken) = %d, want 3", got)
	}
	if got := e.fake.Calls(EndpointGetToken); got != 1 {
		t.Errorf("Calls(EndpointGetToken) = %d, want 1", got)
	}
	if got := e.fake.Calls(EndpointUser); got != 0 {
		t.Errorf("Calls(EndpointUser) = %d, want 0", got)
	}
	e.fake.ResetCalls()
	if got := e.fake.Calls(EndpointAppToken); got != 0 {
		t.Errorf("after ResetCalls: Calls(EndpointAppToken) = %d, want 0", got)
	}
}

func TestEveryEndpointIsRouted(t *testing.T) {
	e := newEnv(t, Options{})
	for _, rt := range e.fake.routes() {
		method, path, _ := strings.Cut(rt.endpoint, " ")
		path = strings.NewReplacer("{corpId}", DemoCorpID, "{unionId}", "me").Replace(path)
		e.do(method, path, nil, nil)
		if got := e.fake.Calls(rt.endpoint); got != 1 {
			t.Errorf("Calls(%s) = %d after one request, want 1", rt.endpoint, got)
		}
	}
}

func TestStartAndClose(t *testing.T) {
	s := New(Options{})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start: err = nil, want an error")
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/fake/jsapi.js", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET jsapi.js: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), mustString(json.Marshal(base))) {
		t.Errorf("jsapi.js does not carry the base URL %s", base)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func mustString(b []byte, _ error) string { return string(b) }
