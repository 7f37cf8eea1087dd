package dingtalk

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sleeper is a fake Config.Sleep: it records each wait and, when clock is
// set, advances that clock instead of waiting. err, when set, is returned
// instead (as if ctx ended during the wait).
type sleeper struct {
	clock *fakeClock
	err   error

	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.clock != nil {
		s.clock.Advance(d)
	}
	return nil
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// callThrough waits for l and reports the call answered at once.
func callThrough(ctx context.Context, l Limiter, endpoint string) error {
	done, err := l.Wait(ctx, endpoint)
	if err == nil {
		done()
	}
	return err
}

// maxInWindow returns the most of times (sorted) that fall within any
// half-open interval of length w.
func maxInWindow(times []time.Time, w time.Duration) int {
	most, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// permitTimes runs calls Waits on l, each on the fake clock the sleeper
// advances, and returns when each was let through.
func permitTimes(t *testing.T, l Limiter, clk *fakeClock, endpoint string, calls int) []time.Time {
	t.Helper()
	var at []time.Time
	for i := range calls {
		if err := callThrough(t.Context(), l, endpoint); err != nil {
			t.Fatalf("call %d: Wait: %v", i+1, err)
		}
		at = append(at, clk.Now())
	}
	return at
}

func TestWindowLimiterNeverExceedsRateInAnySecond(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		calls int
		n     int           // calls allowed per window
		total time.Duration // fake time the calls take
	}{
		{"DingTalk default", 20, 50, 20, 2 * (time.Second + windowGuard)},
		{"five a second", 5, 12, 5, 2 * (time.Second + windowGuard)},
		{"below one a second: one per window", 0.5, 4, 1, 3 * (2*time.Second + windowGuard)},
		{"within the first window", 20, 20, 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: testNow}
			sl := &sleeper{clock: clk}
			l := newWindowLimiter(tt.rate, clk.Now, sl.Sleep)
			at := permitTimes(t, l, clk, "/topapi/v2/user/get", tt.calls)
			// DingTalk's count: calls within any one second; never more
			// than the rate, burst included.
			if got := maxInWindow(at, time.Second); got > max(int(tt.rate), 1) {
				t.Errorf("%d calls let through within one second, want at most %v", got, tt.rate)
			}
			if got := maxInWindow(at, l.window); got != tt.n {
				t.Errorf("%d calls within one window of %v, want %d", got, l.window, tt.n)
			}
			if got := clk.Now().Sub(testNow); got != tt.total {
				t.Errorf("%d calls at %v/s took %v of fake time, want %v", tt.calls, tt.rate, got, tt.total)
			}
			// The clock moves with each wait: one wait per window after the
			// first, by the call that opens it.
			if got, want := len(sl.Waits()), (tt.calls-1)/tt.n; got != want {
				t.Errorf("waits = %d, want %d (one per window after the first)", got, want)
			}
		})
	}
}

func TestWindowLimiterSharedByGoroutines(t *testing.T) {
	// The clock stands still and every call is answered at once, so each
	// call beyond the first window's waits one window after the answer to
	// the call n before it, whichever goroutine makes it: one goroutine's
	// calls count against the others'.
	const (
		rate       = 20
		goroutines = 10
		perG       = 5
	)
	sl := &sleeper{}
	l := newWindowLimiter(rate, func() time.Time { return testNow }, sl.Sleep)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				if err := callThrough(t.Context(), l, "/topapi/v2/user/get"); err != nil {
					t.Errorf("Wait: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := sl.Waits()
	slices.Sort(got)
	var want []time.Duration
	for range goroutines*perG - rate {
		want = append(want, l.window)
	}
	if !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestWindowLimiterPerEndpoint(t *testing.T) {
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	l := newWindowLimiter(2, clk.Now, sl.Sleep)
	for range 3 {
		if err := callThrough(t.Context(), l, "/topapi/v2/user/get"); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if got := len(sl.Waits()); got != 1 {
		t.Fatalf("waits on the first endpoint = %d, want 1", got)
	}
	for range 2 {
		if err := callThrough(t.Context(), l, "/topapi/user/getbyunionid"); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if got := len(sl.Waits()); got != 1 {
		t.Errorf("waits after the second endpoint's two calls = %d, want still 1: it has its own window", got)
	}
}

func TestWindowLimiterSlides(t *testing.T) {
	clk := &fakeClock{now: testNow}
	sl := &sleeper{}
	l := newWindowLimiter(4, clk.Now, sl.Sleep)
	wait := func(n int) {
		t.Helper()
		for range n {
			if err := callThrough(t.Context(), l, "/x"); err != nil {
				t.Fatalf("Wait: %v", err)
			}
		}
	}
	wait(2)
	clk.Advance(600 * time.Millisecond)
	wait(2) // four within the window: no wait
	if got := sl.Waits(); len(got) != 0 {
		t.Fatalf("waits = %v, want none: four calls per window", got)
	}
	clk.Advance(600 * time.Millisecond) // the first two are a window old
	wait(2)
	if got := sl.Waits(); len(got) != 0 {
		t.Fatalf("waits = %v, want none: the first two left the window", got)
	}
	wait(1) // the fifth in the window of the 3rd to 6th: waits until the 3rd leaves it
	if got, want := sl.Waits(), []time.Duration{l.window - 600*time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	clk.Advance(time.Hour) // an idle hour allows a window's worth, no more
	wait(5)
	if got := sl.Waits(); len(got) != 2 || got[1] != l.window {
		t.Errorf("waits = %v, want a second wait of one window after an idle hour's four calls", got)
	}
}

func TestWindowLimiterDeadline(t *testing.T) {
	// A wait that cannot end before the deadline fails at once, matches
	// both ErrThrottled and context.DeadlineExceeded, and takes no turn.
	sl := &sleeper{}
	l := newWindowLimiter(1, func() time.Time { return testNow }, sl.Sleep)
	if err := callThrough(t.Context(), l, "/x"); err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := callThrough(ctx, l, "/x")
	checkIs(t, err, ErrThrottled)
	checkIs(t, err, context.DeadlineExceeded)
	if ctx.Err() != nil {
		t.Errorf("Wait returned after the deadline, want at once")
	}
	if got := sl.Waits(); len(got) != 0 {
		t.Errorf("waits = %v, want none", got)
	}
	if err := callThrough(t.Context(), l, "/x"); err != nil {
		t.Fatalf("Wait without deadline: %v", err)
	}
	if got, want := sl.Waits(), []time.Duration{l.window}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v: the refused call took no turn", got, want)
	}
}

func TestWindowLimiterContextEnds(t *testing.T) {
	tests := []struct {
		name  string
		ended func() (context.Context, error) // a context, and the error its wait ends with
	}{
		{"canceled during the wait", func() (context.Context, error) { return t.Context(), context.Canceled }},
		{"deadline during the wait", func() (context.Context, error) { return t.Context(), context.DeadlineExceeded }},
		{"canceled before", func() (context.Context, error) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx, context.Canceled
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cause := tt.ended()
			sl := &sleeper{err: cause}
			l := newWindowLimiter(1, func() time.Time { return testNow }, sl.Sleep)
			if err := callThrough(t.Context(), l, "/x"); err != nil {
				t.Fatalf("first Wait: %v", err)
			}
			err := callThrough(ctx, l, "/x")
			checkIs(t, err, ErrThrottled)
			checkIs(t, err, cause)
		})
	}
}

func TestThrottleBackoff(t *testing.T) {
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second, time.Second}
	for i, w := range want {
		if got := throttleBackoff(i + 1); got != w {
			t.Errorf("throttleBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := throttleBackoff(1000); got != time.Second {
		t.Errorf("throttleBackoff(1000) = %v, want 1s", got)
	}
}

func TestEqualJitter(t *testing.T) {
	const d = 800 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		got := equalJitter(d)
		if got < d/2 || got > d {
			t.Fatalf("equalJitter(%v) = %v, want within [%v, %v]", d, got, d/2, d)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Errorf("equalJitter gave %d distinct values in 1000 tries, want jitter", len(seen))
	}
}

func TestThrottleRetryable(t *testing.T) {
	api := func(code string) error { return &APIError{Endpoint: "/x", Code: code} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"app QPS 90018", api("90018"), true},
		{"global QPS 90002", api("90002"), true},
		{"corp credential 90006", api("90006"), true},
		{"new app QPS", api("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"), true},
		{"new app QPM", api("Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"), true},
		{"new global QPS", api("Forbidden.AccessDenied.QpsLimitForApi"), true},
		{"monthly quota 90020", api("90020"), false},
		{"new monthly quota", api("Forbidden.AccessDenied.ApiCountLimitForOrg"), false},
		{"busy -1", api("-1"), false},
		{"invalid code", api("40078"), false},
		{"punish page", &BadResponseError{Endpoint: "/x", Throttled: true}, true},
		{"html page", &BadResponseError{Endpoint: "/x"}, false},
		{"wrapped", errors.Join(errors.New("x"), api("90018")), true},
		{"rate limiter", ErrThrottled, false},
		{"timeout", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := throttleRetryable(tt.err); got != tt.want {
				t.Errorf("throttleRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// throttledTwice answers 90018 to the first two requests, then with file.
func throttledTwice(t *testing.T, file string) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	ok := serveFile(t, file, http.StatusOK)
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n <= 2
		mu.Unlock()
		if first {
			serveBytes("application/json", http.StatusOK, []byte(`{"errcode":90018,"errmsg":"请求频率过快"}`))(w, r)
			return
		}
		ok(w, r)
	}
}

func TestThrottleRetry(t *testing.T) {
	const path = "/topapi/v2/user/get"
	ms := time.Millisecond
	tests := []struct {
		name      string
		serve     func(t *testing.T) http.HandlerFunc
		budget    time.Duration
		deadline  time.Duration // 0: none
		wantErr   error         // nil: success
		wantCalls int
		wantWaits []time.Duration
	}{
		{"throttled twice, then answered", func(t *testing.T) http.HandlerFunc { return throttledTwice(t, "user_get.json") },

			0, 0, nil, 3, []time.Duration{200 * ms, 400 * ms}},
		{"default budget spent", throttled, 0, 0, ErrThrottled, 5, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1000 * ms}},
		{"small budget", throttled, time.Second, 0, ErrThrottled, 3, []time.Duration{200 * ms, 400 * ms}},
		{"budget below the first wait", throttled, 100 * ms, 0, ErrThrottled, 1, nil},
		{"context deadline", throttled, 0, 700 * ms, ErrThrottled, 3, []time.Duration{200 * ms, 400 * ms}},
		{"deadline before the first wait", throttled, 0, 150 * ms, ErrThrottled, 1, nil},
		{"monthly quota", serveCode(`{"errcode":90020,"errmsg":"超过限额"}`), 0, 0, ErrThrottled, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(path, tt.serve(t))
			sl := &sleeper{}
			c, _ := newTestClient(t, srv, func(c *Config) {
				c.Sleep = sl.Sleep
				c.ThrottleBudget = tt.budget
			})
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			_, err := c.User(ctx, testUserID)
			if tt.wantErr == nil && err != nil {
				t.Errorf("User: %v", err)
			}
			if tt.wantErr != nil {
				checkIs(t, err, tt.wantErr)
				// The last answer is kept for callers and audit.
				if _, ok := errors.AsType[*APIError](err); !ok {
					t.Errorf("error = %v, want an *APIError inside", err)
				}
				checkIsNot(t, err, context.DeadlineExceeded)
			}
			if got := srv.count(path); got != tt.wantCalls {
				t.Errorf("requests = %d, want %d", got, tt.wantCalls)
			}
			if got := sl.Waits(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
		})
	}
}

// throttled answers every request with 90018.
func throttled(t *testing.T) http.HandlerFunc {
	return serveCode(`{"errcode":90018,"errmsg":"请求频率过快","request_id":"r90018"}`)(t)
}

func serveCode(body string) func(*testing.T) http.HandlerFunc {
	return func(*testing.T) http.HandlerFunc {
		return serveBytes("application/json", http.StatusOK, []byte(body))
	}
}

func TestThrottleRetryWaitEnds(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", throttled(t))
	sl := &sleeper{err: context.Canceled}
	c, _ := newTestClient(t, srv, func(c *Config) { c.Sleep = sl.Sleep })
	_, err := c.User(t.Context(), testUserID)
	checkIs(t, err, ErrThrottled)
	checkIs(t, err, context.Canceled)
	if _, ok := errors.AsType[*APIError](err); !ok {
		t.Errorf("error = %v, want the throttled *APIError inside", err)
	}
	if got := srv.count("/topapi/v2/user/get"); got != 1 {
		t.Errorf("requests = %d, want 1", got)
	}
}

func TestThrottleRetryLogged(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", throttledTwice(t, "user_get.json"))
	c, logs := newTestClient(t, srv)
	if _, err := c.User(t.Context(), testUserID); err != nil {
		t.Fatalf("User: %v", err)
	}
	if got := strings.Count(logs.String(), `msg="dingtalk throttled, retrying"`); got != 2 {
		t.Errorf("retry records = %d, want 2: %s", got, logs)
	}
	checkNoSecrets(t, logs.String())
}

func TestClientRateLimit(t *testing.T) {
	// Every call goes through the limiter: N calls to one endpoint at rate
	// R let R through per window; other endpoints have their own windows.
	const rate, calls = 5, 12
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", serveFile(t, "user_get.json", http.StatusOK))
	srv.handle("/topapi/user/getbyunionid", serveFile(t, "getbyunionid.json", http.StatusOK))
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	c, _ := newTestClient(t, srv, func(c *Config) {
		c.RateLimit = rate
		c.Now, c.Sleep = clk.Now, sl.Sleep
	})
	for i := range calls {
		if _, err := c.User(t.Context(), testUserID); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if got, want := clk.Now().Sub(testNow), 2*(time.Second+windowGuard); got != want {
		t.Errorf("%d calls at %d/s took %v of fake time, want %v", calls, rate, got, want)
	}
	before := len(sl.Waits())
	if _, _, err := c.UserIDByUnionID(t.Context(), testUnionID); err != nil {
		t.Fatalf("UserIDByUnionID: %v", err)
	}
	if got := len(sl.Waits()); got != before {
		t.Errorf("waits = %d after another endpoint's first call, want %d", got, before)
	}
}

// recordingLimiter is a Limiter that records endpoints and may refuse.
type recordingLimiter struct {
	mu        sync.Mutex
	endpoints []string
	err       error
}

func (l *recordingLimiter) Wait(_ context.Context, endpoint string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endpoints = append(l.endpoints, endpoint)
	return func() {}, l.err
}

func TestConfigLimiter(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", throttledTwice(t, "user_get.json"))
	l := &recordingLimiter{}
	c, _ := newTestClient(t, srv, func(c *Config) { c.Limiter = l })
	if _, err := c.User(t.Context(), testUserID); err != nil {
		t.Fatalf("User: %v", err)
	}
	want := []string{"/v1.0/oauth2/accessToken", "/topapi/v2/user/get", "/topapi/v2/user/get", "/topapi/v2/user/get"}
	if !slices.Equal(l.endpoints, want) {
		t.Errorf("limiter saw %v, want %v (every attempt, retries included)", l.endpoints, want)
	}

	refuse := errors.New("shared limiter: over the limit")
	l2 := &recordingLimiter{err: refuse}
	c2, _ := newTestClient(t, srv, func(c *Config) { c.Limiter = l2 })
	_, err := c2.AppToken(t.Context())
	checkIs(t, err, refuse)
	if got := srv.count("/v1.0/oauth2/accessToken"); got != 1 {
		t.Errorf("token requests = %d, want 1 (from the first client only)", got)
	}
}

func TestWindowLimiterCountsFromTheAnswer(t *testing.T) {
	// A call's window starts when it was answered, not when it left: a
	// call that took 3 s keeps the next one a whole window after its
	// answer, and the next one waits while it is under way.
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	l := newWindowLimiter(1, clk.Now, sl.Sleep)
	done, err := l.Wait(t.Context(), "/x")
	if err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	next := make(chan error, 1)
	go func() { next <- callThrough(t.Context(), l, "/x") }()
	select {
	case err := <-next:
		t.Fatalf("second Wait returned (%v) while the first call was under way", err)
	case <-time.After(50 * time.Millisecond):
	}
	clk.Advance(3 * time.Second)
	done()
	if err := <-next; err != nil {
		t.Fatalf("second Wait: %v", err)
	}
	if got, want := sl.Waits(), []time.Duration{l.window}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v: one window after the first call's answer", got, want)
	}
}
