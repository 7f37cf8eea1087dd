package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Default base URLs of DingTalk's three hosts.
const (
	DefaultAPIBaseURL   = "https://api.dingtalk.com"
	DefaultOAPIBaseURL  = "https://oapi.dingtalk.com"
	DefaultLoginBaseURL = "https://login.dingtalk.com"
)

const (
	defaultTimeout            = 5 * time.Second
	defaultTokenRefreshMargin = 10 * time.Minute
	defaultMinTokenLifetime   = 60 * time.Second
	defaultMaxResponseBytes   = 1 << 20

	// headerUserToken carries a USER token on the new API; it reads the token
	// from nowhere else.
	headerUserToken = "x-acs-dingtalk-access-token"
	headerRequestID = "x-acs-request-id"
)

// Config configures a Client for one DingTalk app of one corp. Zero values
// take the defaults noted on each field.
type Config struct {
	// APIBaseURL is the new API host (default https://api.dingtalk.com).
	APIBaseURL string
	// OAPIBaseURL is the old API host (default https://oapi.dingtalk.com).
	OAPIBaseURL string
	// LoginBaseURL is the OAuth2 login host (default https://login.dingtalk.com).
	LoginBaseURL string

	// CorpID is the app's organisation ("ding…"). When set, a web login whose
	// user token names another corp fails with ErrCorpMismatch.
	CorpID string
	// AppKey is the app's Client ID (AppKey). Required.
	AppKey string
	// AppSecret is the app's Client Secret (AppSecret). Required.
	AppSecret string
	// AgentID is the app's AgentId; kept for callers (the workbench page),
	// no call here needs it.
	AgentID string

	// SNSAppID and SNSAppSecret configure an optional legacy scan-login app
	// (connect/qrconnect, sns/getuserinfo_bycode). Both or neither.
	SNSAppID     string
	SNSAppSecret string

	// LegacyTokenEndpoint fetches app tokens with GET {oapi}/gettoken
	// instead of POST {api}/v1.0/oauth2/accessToken.
	LegacyTokenEndpoint bool

	// HTTPClient sends the requests (default: a new http.Client).
	HTTPClient *http.Client
	// Timeout bounds each call to DingTalk, body included (default 5s).
	Timeout time.Duration
	// TokenRefreshMargin is how long before its expiry an app token is
	// replaced (default 10m).
	TokenRefreshMargin time.Duration
	// MinTokenLifetime is how long an app token is cached at least, used when
	// DingTalk reports a zero, negative or too short expiry (default 60s).
	MinTokenLifetime time.Duration
	// MaxResponseBytes limits response bodies; larger ones are an error
	// (default 1 MiB).
	MaxResponseBytes int64
	// TokenCache optionally shares app tokens between replicas; nil keeps
	// them in this process only.
	TokenCache TokenCache

	// RateLimit is how many calls per second the Client sends to each
	// DingTalk API (endpoint path), shared by every goroutine using it
	// (default 20, DingTalk's per-app per-API limit for standard-edition
	// orgs): never more than that within any second, a burst included, and
	// a little less in the long run (see windowLimiter). Callers wait for
	// their turn; see Limiter for the errors. Each Client has its own limiter, so
	// several Clients (or replicas) for one app share the limit only through
	// a common Limiter.
	RateLimit float64
	// Limiter optionally replaces the Client's per-endpoint limiter,
	// e.g. with one shared between replicas; RateLimit is then unused.
	Limiter Limiter
	// ThrottleBudget bounds the total time one call spends waiting to retry
	// after DingTalk throttled it (default 3s); the caller's context
	// deadline bounds it too. Only idempotent calls are retried; code
	// exchanges never are.
	ThrottleBudget time.Duration

	// Observe, when set, is told about every HTTP attempt at DingTalk
	// (endpoint, result, latency), e.g. for metrics. It is called on the
	// caller's goroutine after the attempt, so it must be quick.
	Observe func(Call)
	// ObserveWait, when set, is told about every time the Client's own rate
	// limiter held a call back. It is not called when Limiter replaces the
	// Client's limiter.
	ObserveWait func(Wait)

	// Logger receives one Debug record per call (default: discard).
	Logger *slog.Logger
	// Now returns the current time (default time.Now); tests replace it.
	// The rate limiter measures time with it too.
	Now func() time.Time
	// Sleep waits for d, or until ctx ends and returns its cause (default: a
	// timer). The rate limiter and throttle retries wait with it; tests
	// replace it, together with Now, to run without real waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// LogValue implements slog.LogValuer and leaves out the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("corp_id", c.CorpID),
		slog.String("app_key", c.AppKey),
		slog.String("agent_id", c.AgentID),
		slog.String("sns_app_id", c.SNSAppID),
		slog.Bool("legacy_token_endpoint", c.LegacyTokenEndpoint),
	)
}

// withDefaults fills in zero values; negative durations and sizes are left
// for validate to report.
func (c Config) withDefaults() Config {
	setDefault(&c.APIBaseURL, DefaultAPIBaseURL)
	setDefault(&c.OAPIBaseURL, DefaultOAPIBaseURL)
	setDefault(&c.LoginBaseURL, DefaultLoginBaseURL)
	setDefault(&c.Timeout, defaultTimeout)
	setDefault(&c.TokenRefreshMargin, defaultTokenRefreshMargin)
	setDefault(&c.MinTokenLifetime, defaultMinTokenLifetime)
	setDefault(&c.MaxResponseBytes, defaultMaxResponseBytes)
	setDefault(&c.RateLimit, defaultRateLimit)
	setDefault(&c.ThrottleBudget, defaultThrottleBudget)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepContext
	}
	c.APIBaseURL = strings.TrimRight(c.APIBaseURL, "/")
	c.OAPIBaseURL = strings.TrimRight(c.OAPIBaseURL, "/")
	c.LoginBaseURL = strings.TrimRight(c.LoginBaseURL, "/")
	return c
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// validate reports every problem at once, each named by its field.
func (c Config) validate() error {
	var errs []error
	for _, u := range []struct{ name, value string }{
		{"APIBaseURL", c.APIBaseURL}, {"OAPIBaseURL", c.OAPIBaseURL}, {"LoginBaseURL", c.LoginBaseURL},
	} {
		if err := checkBaseURL(u.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.name, err))
		}
	}
	if c.AppKey == "" {
		errs = append(errs, errors.New("AppKey: required"))
	}
	if c.AppSecret == "" {
		errs = append(errs, errors.New("AppSecret: required"))
	}
	if (c.SNSAppID == "") != (c.SNSAppSecret == "") {
		errs = append(errs, errors.New("SNSAppID, SNSAppSecret: set both or neither"))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"Timeout", c.Timeout}, {"TokenRefreshMargin", c.TokenRefreshMargin}, {"MinTokenLifetime", c.MinTokenLifetime},
		{"ThrottleBudget", c.ThrottleBudget},
	} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", d.name))
		}
	}
	if c.MaxResponseBytes < 0 {
		errs = append(errs, errors.New("MaxResponseBytes: must not be negative"))
	}
	// The negated form also rejects NaN.
	if !(c.RateLimit > 0) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, errors.New("RateLimit: must be a positive number"))
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts absolute http(s) URLs that paths can be appended to.
// The value is not echoed: it might carry credentials.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	return nil
}

// Client calls DingTalk's APIs on behalf of one app of one corp. It is safe
// for concurrent use; create it with New.
type Client struct {
	cfg     Config
	tokens  tokenState
	limiter Limiter
	// jitter randomises a retry wait; tests make it exact.
	jitter func(time.Duration) time.Duration
}

// New applies defaults to cfg, validates it and returns a Client.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dingtalk: invalid config: %w", err)
	}
	c := &Client{cfg: cfg, limiter: cfg.Limiter, jitter: equalJitter}
	if c.limiter == nil {
		l := newWindowLimiter(cfg.RateLimit, cfg.Now, cfg.Sleep)
		l.observe = cfg.ObserveWait
		c.limiter = l
	}
	return c, nil
}

// family is an API generation; the two report errors differently (§1.1).
type family int

const (
	oldAPI family = iota // oapi host: HTTP 200 with errcode
	newAPI               // api host: HTTP 4xx/5xx with code/message
)

// request is one call to DingTalk.
type request struct {
	family    family
	method    string
	base      string // one of the Config base URLs
	path      string // also the endpoint name in logs and errors
	query     url.Values
	userToken string // sent in the x-acs-dingtalk-access-token header
	body      any    // sent as JSON when non-nil
	// secrets are values of this request (codes, tokens) that must not
	// appear in errors even if DingTalk echoes them.
	secrets []string
	// retryThrottled allows retrying the call when DingTalk throttles it.
	// Only idempotent calls set it (withThrottleRetry). Calls that spend a
	// single-use code or a refresh token never do: §9.3 does not say whether
	// a throttled exchange left the code unspent, and a retry that spends it
	// twice fails the login with a misleading "invalid code" (§10.9). The
	// caller restarts the login instead.
	retryThrottled bool
}

func (c *Client) oapi(method, path string, body any) request {
	return request{family: oldAPI, method: method, base: c.cfg.OAPIBaseURL, path: path, body: body}
}

func (c *Client) api(method, path string, body any) request {
	return request{family: newAPI, method: method, base: c.cfg.APIBaseURL, path: path, body: body}
}

// withQuery returns r with key=value added to a copy of its query.
func (r request) withQuery(key, value string) request {
	q := make(url.Values, len(r.query)+1)
	for k, v := range r.query {
		q[k] = v
	}
	q.Set(key, value)
	r.query = q
	return r
}

// withThrottleRetry returns r marked idempotent: a throttled answer is
// retried within ThrottleBudget.
func (r request) withThrottleRetry() request {
	r.retryThrottled = true
	return r
}

// withSecret returns r with v added to the values redacted from errors.
func (r request) withSecret(v string) request {
	r.secrets = append(slices.Clip(r.secrets), v)
	return r
}

// outcome is what a call learned besides its result, for the call log.
type outcome struct {
	status    int
	code      string
	requestID string
}

// do performs r and decodes a successful response into out. Each attempt
// first waits for the rate limiter, then gets the per-call Timeout; a
// throttled answer is retried if r allows it (doThrottled). Every failure is
// an *APIError, a *BadResponseError, a rate-limiter error (matching
// ErrThrottled), or a transport error whose URL has its query values
// redacted.
func (c *Client) do(ctx context.Context, r request, out any) error {
	return c.doThrottled(ctx, r, func() error { return c.attempt(ctx, r, out) })
}

// attempt sends r once, after waiting for the rate limiter.
func (c *Client) attempt(ctx context.Context, r request, out any) error {
	// The wait is not part of the call's Timeout, which is for DingTalk.
	done, err := c.limiter.Wait(ctx, r.path)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res, err := c.roundTrip(ctx, r, out)
	elapsed := time.Since(start)
	if c.cfg.Observe != nil {
		c.cfg.Observe(Call{Endpoint: r.path, Result: callResult(err), Duration: elapsed})
	}
	// Only the path is logged: queries carry tokens, secrets and codes.
	c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dingtalk call",
		slog.String("endpoint", r.path),
		slog.Int("status", res.status),
		slog.Duration("duration", elapsed),
		slog.String("dingtalk_code", res.code),
		slog.String("request_id", res.requestID),
	)
	return err
}

func (c *Client) roundTrip(ctx context.Context, r request, out any) (outcome, error) {
	var res outcome
	req, err := c.newHTTPRequest(ctx, r)
	if err != nil {
		return res, err
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return res, fmt.Errorf("dingtalk %s: %w", r.path, redactURLError(err))
	}
	defer resp.Body.Close()
	res.status = resp.StatusCode
	res.requestID = resp.Header.Get(headerRequestID)

	// Read one byte more than allowed so an oversized body is detected
	// instead of being parsed truncated.
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return res, fmt.Errorf("dingtalk %s: read response: %w", r.path, redactURLError(err))
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return res, &BadResponseError{
			Endpoint: r.path, HTTPStatus: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
			RequestID: res.requestID, Reason: fmt.Sprintf("body exceeds %d bytes", c.cfg.MaxResponseBytes),
		}
	}
	err = decodeResponse(r, resp, body, out, &res)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		apiErr.Message = c.redact(apiErr.Message, r)
		res.code = apiErr.Code
	}
	return res, err
}

func (c *Client) newHTTPRequest(ctx context.Context, r request) (*http.Request, error) {
	u := r.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("dingtalk %s: encode request: %w", r.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("dingtalk %s: %w", r.path, redactURLError(err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.userToken != "" {
		req.Header.Set(headerUserToken, r.userToken)
	}
	return req, nil
}

// envelope holds the fields of both error shapes and of the rate-limit JSON.
// Every field is a flexString so that no body shape makes decoding fail.
type envelope struct {
	ErrCode      flexString `json:"errcode"`
	ErrMsg       flexString `json:"errmsg"`
	SubCode      flexString `json:"sub_code"`
	SubMsg       flexString `json:"sub_msg"`
	OldRequestID flexString `json:"request_id"`
	Code         flexString `json:"code"`
	Message      flexString `json:"message"`
	NewRequestID flexString `json:"requestid"`
	Punish       flexString `json:"punish"`
	// AccessDenied is the new API's detail of a 403 permission error; kept
	// raw so that an unexpected shape cannot fail the decoding.
	AccessDenied json.RawMessage `json:"accessdenieddetail"`
}

// requiredScopes reads accessdenieddetail.requiredScopes: the permissions
// the app must be granted, e.g. ["Contact.User.Read"].
func (e envelope) requiredScopes() []string {
	var d struct {
		RequiredScopes []string `json:"requiredScopes"`
	}
	if len(e.AccessDenied) == 0 || json.Unmarshal(e.AccessDenied, &d) != nil {
		return nil
	}
	return d.RequiredScopes
}

// decodeResponse classifies a complete body: rate-limit page, HTML, broken
// JSON, DingTalk error (either shape), unexpected status, or success, which
// is decoded into out.
func decodeResponse(r request, resp *http.Response, body []byte, out any, res *outcome) error {
	ctype := resp.Header.Get("Content-Type")
	bad := func(reason string, err error) *BadResponseError {
		return &BadResponseError{
			Endpoint: r.path, HTTPStatus: resp.StatusCode, ContentType: ctype,
			RequestID: res.requestID, Reason: reason, Err: err,
		}
	}
	trimmed := bytes.TrimSpace(body)
	if isHTML(ctype, trimmed) {
		b := bad("html body", nil)
		b.Throttled = bytes.Contains(bytes.ToLower(trimmed), []byte("punish"))
		return b
	}
	if len(trimmed) == 0 {
		return bad("empty body", nil)
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return bad("not a complete JSON object", nil)
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return bad("decode error envelope", err)
	}
	if id := firstNonEmpty(string(env.OldRequestID), string(env.NewRequestID)); id != "" {
		res.requestID = id
	}
	if env.Punish != "" {
		b := bad("rate-limit page", nil)
		b.Throttled = true
		return b
	}
	if e := env.apiError(r, resp.StatusCode, res.requestID); e != nil {
		return e
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return bad("unexpected http status", nil)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(trimmed, out); err != nil {
		return bad("decode result", err)
	}
	return nil
}

// apiError returns the DingTalk error the envelope reports, or nil.
func (e envelope) apiError(r request, status int, requestID string) *APIError {
	if e.ErrCode != "" && e.ErrCode != "0" {
		code, msg := string(e.ErrCode), string(e.ErrMsg)
		// 88 is the topapi gateway's wrapper; the real code is inside.
		if code == "88" && e.SubCode != "" {
			code, msg = string(e.SubCode), firstNonEmpty(string(e.SubMsg), msg)
		}
		return &APIError{Endpoint: r.path, HTTPStatus: status, Code: code, Message: msg, RequestID: requestID}
	}
	// The new API reports errors with an HTTP error status; an old-API body
	// may carry an unrelated "code" field on success.
	if e.Code != "" && (r.family == newAPI || status >= 400) {
		return &APIError{Endpoint: r.path, HTTPStatus: status, Code: string(e.Code), Message: string(e.Message),
			RequestID: requestID, RequiredScopes: e.requiredScopes()}
	}
	return nil
}

func isHTML(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	return len(body) > 0 && body[0] == '<'
}

// redact removes this client's secrets and r's tokens and codes from s, in
// case DingTalk echoes a parameter in an error message.
func (c *Client) redact(s string, r request) string {
	for _, v := range append([]string{c.cfg.AppSecret, c.cfg.SNSAppSecret, r.userToken}, r.secrets...) {
		if v != "" {
			s = strings.ReplaceAll(s, v, "REDACTED")
		}
	}
	return s
}

// redactURLError replaces the query values in the URL of a *url.Error, which
// http.Client.Do embeds whole in its error text: DingTalk puts access_token,
// appsecret and auth codes in queries. The error is freshly made by the
// caller's http call, so changing it in place is safe.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactQuery(ue.URL)
	}
	return err
}

func redactQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i] + "?REDACTED"
		}
		return raw
	}
	u.User = nil
	u.Fragment = ""
	if u.RawQuery != "" {
		q, _ := url.ParseQuery(u.RawQuery)
		redacted := make(url.Values, len(q))
		for k := range q {
			redacted.Set(k, "REDACTED")
		}
		u.RawQuery = redacted.Encode()
		if u.RawQuery == "" {
			u.RawQuery = "REDACTED"
		}
	}
	return u.String()
}

// flexString decodes a JSON string, number or boolean as its text and
// ignores objects, arrays and null: DingTalk quotes codes inconsistently.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexString(s)
		return nil
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '{' || b[0] == '[' || string(b) == "null" {
		return nil
	}
	*f = flexString(b)
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
