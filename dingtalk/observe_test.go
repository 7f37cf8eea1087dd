package dingtalk

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// calls collects what Config.Observe and Config.ObserveWait are told.
type calls struct {
	mu    sync.Mutex
	calls []Call
	waits []Wait
}

func (c *calls) observe(call Call) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
}

func (c *calls) observeWait(w Wait) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, w)
}

// results lists endpoint=result of every observed call, in order.
func (c *calls) results() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.calls {
		out = append(out, call.Endpoint+"="+call.Result)
	}
	return out
}

// TestObserveCall: every HTTP attempt is reported once, with its endpoint
// and what DingTalk answered: success, its error code, the rate-limit page,
// an answer that is not an API response, or no answer at all.
func TestObserveCall(t *testing.T) {
	const path = "/topapi/v2/user/get"
	tests := []struct {
		name  string
		serve func(s *testServer) http.HandlerFunc
		want  []string
	}{
		{"ok", func(*testServer) http.HandlerFunc { return serveFile(t, "user_get.json", http.StatusOK) },
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=ok"}},
		{"errcode", func(*testServer) http.HandlerFunc { return serveFile(t, "error_not_member.json", http.StatusOK) },
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=60121"}},
		// The gateway's 88 wraps 40014 (token invalid): the inner code is
		// reported, and the client fetches a new app token and tries once more.
		{"gateway wrapper 88 reports the inner code", func(*testServer) http.HandlerFunc { return serveFile(t, "error_88.json", http.StatusOK) },
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=40014", "/v1.0/oauth2/accessToken=ok", path + "=40014"}},
		{"punish page", func(*testServer) http.HandlerFunc { return serveFile(t, "punish.html", http.StatusOK) },
			// Throttled idempotent calls are retried: each attempt is a call.
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=throttled", path + "=throttled", path + "=throttled", path + "=throttled", path + "=throttled"}},
		{"bad response", func(*testServer) http.HandlerFunc { return serveFile(t, "nginx_502.html", http.StatusBadGateway) },
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=bad_response"}},
		{"transport", func(s *testServer) http.HandlerFunc { return s.block },
			[]string{"/v1.0/oauth2/accessToken=ok", path + "=transport"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(path, tt.serve(srv))
			var got calls
			c, _ := newTestClient(t, srv, func(c *Config) {
				c.Observe = got.observe
				c.Timeout = 200 * time.Millisecond
			})
			_, _ = c.User(t.Context(), testUserID)
			if r := got.results(); !slices.Equal(r, tt.want) {
				t.Errorf("observed %v, want %v", r, tt.want)
			}
			for _, call := range got.calls {
				if call.Duration <= 0 {
					t.Errorf("%s: duration %v, want > 0", call.Endpoint, call.Duration)
				}
			}
		})
	}
}

// TestObserveWait: the client's rate limiter reports the calls it held back
// and those it refused, and stays silent about calls that pass at once.
func TestObserveWait(t *testing.T) {
	var got calls
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	l := newWindowLimiter(1, clk.Now, sl.Sleep)
	l.observe = got.observeWait
	done, err := l.Wait(t.Context(), "/x") // the first call: no wait
	if err != nil {
		t.Fatal(err)
	}
	done()
	done, err = l.Wait(t.Context(), "/x") // a window after the first was answered
	if err != nil {
		t.Fatal(err)
	}
	done()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(ctx, "/x"); err == nil { // would pass the deadline
		t.Fatal("Wait past the deadline succeeded")
	}
	window := time.Second + windowGuard
	want := []Wait{{Endpoint: "/x", Duration: window}, {Endpoint: "/x", Duration: window, Refused: true}}
	if !slices.Equal(got.waits, want) {
		t.Errorf("observed waits %+v, want %+v", got.waits, want)
	}
}

// TestObserveWaitFromConfig: Config.ObserveWait reaches the client's own
// limiter.
func TestObserveWaitFromConfig(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", serveFile(t, "user_get.json", http.StatusOK))
	var got calls
	c, _ := newTestClient(t, srv, func(c *Config) {
		c.RateLimit = 1
		c.ObserveWait = got.observeWait
	})
	for range 2 {
		if _, err := c.User(t.Context(), testUserID); err != nil {
			t.Fatal(err)
		}
	}
	// The frozen test clock refills nothing: the second user/get waits.
	if len(got.waits) != 1 || got.waits[0].Endpoint != "/topapi/v2/user/get" || got.waits[0].Refused {
		t.Errorf("observed waits %+v, want one wait for /topapi/v2/user/get", got.waits)
	}
}
