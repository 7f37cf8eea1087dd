package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// maxTokenLifetime caps what DingTalk may claim (it says 7200 s) so that a
// bogus expireIn cannot pin a token for ever or overflow a Duration.
const maxTokenLifetime = 24 * time.Hour

// TokenCache shares app access tokens between replicas, for example in a
// Postgres row, so that they do not each call the throttled token endpoint.
// Implementations should bound their own latency.
type TokenCache interface {
	// Load returns the token cached for appKey and the time after which it
	// must not be used; ok is false when there is none.
	Load(ctx context.Context, appKey string) (token string, expiresAt time.Time, ok bool)
	// Store records a freshly fetched token; expiresAt already includes the
	// refresh margin.
	Store(ctx context.Context, appKey, token string, expiresAt time.Time)
}

// tokenState is the in-process app token cache with single-flight refresh.
type tokenState struct {
	mu        sync.Mutex
	token     string
	expiresAt time.Time
	// rejected is the last token DingTalk refused; it is never taken from
	// the shared TokenCache again, which may still hold it.
	rejected string
	// refresh is the fetch in flight, shared by all callers; nil when idle.
	refresh *tokenRefresh
}

// tokenRefresh is one fetch of an app token; done is closed when token or err
// is set.
type tokenRefresh struct {
	done  chan struct{}
	token string
	err   error
}

// AppToken returns the app access token, from the cache while it has more
// than TokenRefreshMargin left, else from DingTalk. Concurrent callers share
// one fetch; a failed fetch is returned to all of them and not cached.
func (c *Client) AppToken(ctx context.Context) (string, error) {
	t := &c.tokens
	t.mu.Lock()
	if t.token != "" && c.cfg.Now().Before(t.expiresAt) {
		token := t.token
		t.mu.Unlock()
		return token, nil
	}
	f := t.refresh
	if f == nil {
		f = &tokenRefresh{done: make(chan struct{})}
		t.refresh = f
		// The fetch is detached from this caller's cancellation so that one
		// caller giving up does not fail everyone waiting on it; do still
		// bounds it with the per-call Timeout.
		go c.refreshAppToken(context.WithoutCancel(ctx), f)
	}
	t.mu.Unlock()

	select {
	case <-f.done:
		return f.token, f.err
	case <-ctx.Done():
		return "", fmt.Errorf("dingtalk: wait for app token: %w", context.Cause(ctx))
	}
}

func (c *Client) refreshAppToken(ctx context.Context, f *tokenRefresh) {
	token, expiresAt, err := c.loadOrFetchAppToken(ctx)
	t := &c.tokens
	t.mu.Lock()
	if err == nil {
		t.token, t.expiresAt = token, expiresAt
	}
	t.refresh = nil
	t.mu.Unlock()
	f.token, f.err = token, err
	close(f.done)
}

// loadOrFetchAppToken takes a usable token from the shared cache, or fetches
// one and shares it.
func (c *Client) loadOrFetchAppToken(ctx context.Context) (string, time.Time, error) {
	cache := c.cfg.TokenCache
	if cache != nil {
		c.tokens.mu.Lock()
		rejected := c.tokens.rejected
		c.tokens.mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		token, expiresAt, ok := cache.Load(lctx, c.cfg.AppKey)
		cancel()
		if ok && token != "" && token != rejected && c.cfg.Now().Before(expiresAt) {
			return token, expiresAt, nil
		}
	}
	token, expireIn, err := c.fetchAppToken(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	// The expiry is fixed at receipt: expireIn counts from DingTalk's answer.
	expiresAt := c.cfg.Now().Add(c.tokenLifetime(expireIn))
	if cache != nil {
		sctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		cache.Store(sctx, c.cfg.AppKey, token, expiresAt)
		cancel()
	}
	return token, expiresAt, nil
}

// tokenLifetime is how long a token DingTalk says is valid for expireIn
// seconds stays in the cache: expireIn minus the refresh margin, but at least
// MinTokenLifetime so that odd values cannot make every call refetch.
func (c *Client) tokenLifetime(expireIn int64) time.Duration {
	if expireIn <= 0 {
		return c.cfg.MinTokenLifetime
	}
	secs := min(expireIn, int64(maxTokenLifetime/time.Second))
	life := time.Duration(secs)*time.Second - c.cfg.TokenRefreshMargin
	return max(life, c.cfg.MinTokenLifetime)
}

// fetchAppToken calls A1, or A2 when LegacyTokenEndpoint is set.
func (c *Client) fetchAppToken(ctx context.Context) (token string, expireIn int64, err error) {
	if c.cfg.LegacyTokenEndpoint {
		// A2 reads its parameters from the query string only (a GET body
		// yields 40035).
		r := c.oapi(http.MethodGet, "/gettoken", nil).withThrottleRetry()
		r.query = url.Values{"appkey": {c.cfg.AppKey}, "appsecret": {c.cfg.AppSecret}}
		var out struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		}
		if err := c.do(ctx, r, &out); err != nil {
			return "", 0, err
		}
		if out.AccessToken == "" {
			return "", 0, missingField(r, "access_token")
		}
		return out.AccessToken, out.ExpiresIn, nil
	}
	in := struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}{c.cfg.AppKey, c.cfg.AppSecret}
	r := c.api(http.MethodPost, "/v1.0/oauth2/accessToken", in).withThrottleRetry()
	var out struct {
		AccessToken string `json:"accessToken"`
		ExpireIn    int64  `json:"expireIn"`
	}
	if err := c.do(ctx, r, &out); err != nil {
		return "", 0, err
	}
	if out.AccessToken == "" {
		return "", 0, missingField(r, "accessToken")
	}
	return out.AccessToken, out.ExpireIn, nil
}

// invalidateAppToken drops token from the cache after DingTalk rejected it,
// unless another caller has already replaced it.
func (c *Client) invalidateAppToken(token string) {
	t := &c.tokens
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rejected = token
	if t.token == token {
		t.token, t.expiresAt = "", time.Time{}
	}
}

// doWithAppToken performs r with the app token in its access_token query.
// If DingTalk says the token is invalid or expired (it can be revoked or
// expire early), it gets a new token and retries once.
func (c *Client) doWithAppToken(ctx context.Context, r request, out any) error {
	token, err := c.AppToken(ctx)
	if err != nil {
		return err
	}
	err = c.do(ctx, r.withQuery("access_token", token).withSecret(token), out)
	if !errors.Is(err, ErrTokenInvalid) {
		return err
	}
	c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dingtalk app token rejected, refreshing",
		slog.String("endpoint", r.path))
	c.invalidateAppToken(token)
	if token, err = c.AppToken(ctx); err != nil {
		return err
	}
	return c.do(ctx, r.withQuery("access_token", token).withSecret(token), out)
}

// missingField is the error for a success response without a field the
// caller cannot do without.
func missingField(r request, field string) error {
	return &BadResponseError{Endpoint: r.path, HTTPStatus: http.StatusOK, Reason: "response has no " + field}
}
