package dingtalk

import (
	"context"
	"errors"
	"math"
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

// perCall returns the wait for k calls beyond the burst at rate calls/s.
func perCall(k int, rate float64) time.Duration {
	return time.Duration(math.Ceil(float64(k) * float64(time.Second) / rate))
}

func TestBucketLimiterSpacing(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		calls int
		burst int
	}{
		{"DingTalk default", 20, 50, 20},
		{"five a second", 5, 12, 5},
		{"below one a second has a burst of one", 0.5, 4, 1},
		{"within the burst", 20, 20, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: testNow}
			sl := &sleeper{clock: clk}
			l := newBucketLimiter(tt.rate, clk.Now, sl.Sleep)
			for i := range tt.calls {
				if err := l.Wait(t.Context(), "/topapi/v2/user/get"); err != nil {
					t.Fatalf("call %d: Wait: %v", i+1, err)
				}
			}
			elapsed := clk.Now().Sub(testNow)
			// The calls beyond the burst each need 1/rate of fake time.
			min := perCall(tt.calls-tt.burst, tt.rate)
			if elapsed < min || elapsed > min+perCall(1, tt.rate) {
				t.Errorf("%d calls at %v/s took %v of fake time, want %v (one call's spacing more at most)", tt.calls, tt.rate, elapsed, min)
			}
			if got, want := len(sl.Waits()), max(tt.calls-tt.burst, 0); got != want {
				t.Errorf("waits = %d, want %d (one per call beyond the burst)", got, want)
			}
		})
	}
}

func TestBucketLimiterSharedByGoroutines(t *testing.T) {
	// The clock stands still, so each call beyond the burst must wait one
	// spacing longer than the one before, whichever goroutine makes it:
	// the waits are exactly 1/rate, 2/rate, …, whatever the interleaving.
	const (
		rate       = 20
		goroutines = 10
		perG       = 5
	)
	sl := &sleeper{}
	l := newBucketLimiter(rate, func() time.Time { return testNow }, sl.Sleep)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				if err := l.Wait(t.Context(), "/topapi/v2/user/get"); err != nil {
					t.Errorf("Wait: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := sl.Waits()
	slices.Sort(got)
	var want []time.Duration
	for k := 1; k <= goroutines*perG-rate; k++ {
		want = append(want, perCall(k, rate))
	}
	if !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestBucketLimiterPerEndpoint(t *testing.T) {
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	l := newBucketLimiter(2, clk.Now, sl.Sleep)
	for range 3 {
		if err := l.Wait(t.Context(), "/topapi/v2/user/get"); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if got := len(sl.Waits()); got != 1 {
		t.Fatalf("waits on the first endpoint = %d, want 1", got)
	}
	for range 2 {
		if err := l.Wait(t.Context(), "/topapi/user/getbyunionid"); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if got := len(sl.Waits()); got != 1 {
		t.Errorf("waits after the second endpoint's burst = %d, want still 1: it has its own bucket", got)
	}
}

func TestBucketLimiterRefill(t *testing.T) {
	clk := &fakeClock{now: testNow}
	sl := &sleeper{}
	l := newBucketLimiter(4, clk.Now, sl.Sleep)
	wait := func(n int) {
		t.Helper()
		for range n {
			if err := l.Wait(t.Context(), "/x"); err != nil {
				t.Fatalf("Wait: %v", err)
			}
		}
	}
	wait(4)
	clk.Advance(500 * time.Millisecond) // two tokens back
	wait(2)
	if got := sl.Waits(); len(got) != 0 {
		t.Fatalf("waits = %v, want none: half a second refills two of four", got)
	}
	clk.Advance(time.Hour) // the bucket holds at most the burst
	wait(5)
	if got, want := sl.Waits(), []time.Duration{perCall(1, 4)}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v: an idle hour refills the burst, no more", got, want)
	}
}

func TestBucketLimiterDeadline(t *testing.T) {
	// A wait that cannot end before the deadline fails at once, matches
	// both ErrThrottled and context.DeadlineExceeded, and takes no token.
	sl := &sleeper{}
	l := newBucketLimiter(1, func() time.Time { return testNow }, sl.Sleep)
	if err := l.Wait(t.Context(), "/x"); err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	err := l.Wait(ctx, "/x")
	checkIs(t, err, ErrThrottled)
	checkIs(t, err, context.DeadlineExceeded)
	if ctx.Err() != nil {
		t.Errorf("Wait returned after the deadline, want at once")
	}
	if got := sl.Waits(); len(got) != 0 {
		t.Errorf("waits = %v, want none", got)
	}
	if err := l.Wait(t.Context(), "/x"); err != nil {
		t.Fatalf("Wait without deadline: %v", err)
	}
	if got, want := sl.Waits(), []time.Duration{time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v: the refused call took no token", got, want)
	}
}

func TestBucketLimiterContextEnds(t *testing.T) {
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
			l := newBucketLimiter(1, func() time.Time { return testNow }, sl.Sleep)
			if err := l.Wait(t.Context(), "/x"); err != nil {
				t.Fatalf("first Wait: %v", err)
			}
			err := l.Wait(ctx, "/x")
			checkIs(t, err, ErrThrottled)
			checkIs(t, err, cause)
			// The token is given back: the next caller waits one spacing.
			sl.err = nil
			if err := l.Wait(t.Context(), "/x"); err != nil {
				t.Fatalf("Wait after: %v", err)
			}
			waits := sl.Waits()
			if got := waits[len(waits)-1]; got != time.Second {
				t.Errorf("next wait = %v, want 1s", got)
			}
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
	// R take (N-R)/R of fake time; other endpoints have their own buckets.
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
	if got, want := clk.Now().Sub(testNow), perCall(calls-rate, rate); got < want || got > want+perCall(1, rate) {
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

func (l *recordingLimiter) Wait(_ context.Context, endpoint string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endpoints = append(l.endpoints, endpoint)
	return l.err
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
