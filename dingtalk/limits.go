package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// DingTalk's limits (§9.3 of the protocol notes): an app may call each API
// 20 times a second on a standard-edition org; above that it gets 90018 /
// Forbidden.AccessDenied.QpsLimitForAppkeyAndApi, and DingTalk advises
// waiting about a second and retrying.
const (
	defaultRateLimit      = 20
	defaultThrottleBudget = 3 * time.Second

	// The waits between retries of a throttled call double from
	// throttleBackoffMin up to throttleBackoffMax, each with jitter.
	throttleBackoffMin = 200 * time.Millisecond
	throttleBackoffMax = time.Second
)

// Limiter decides when a call to DingTalk may be sent. Config.Limiter can
// replace the Client's own per-endpoint token buckets with one, for example
// one shared by all replicas of the service.
type Limiter interface {
	// Wait blocks until one call to endpoint, the API's URL path such as
	// "/topapi/v2/user/get", may be sent. It returns an error, without
	// waiting, when ctx's deadline would pass first, and when ctx ends while
	// it waits; such errors should match ErrThrottled and the context's
	// error.
	Wait(ctx context.Context, endpoint string) error
}

// sleepContext waits for d, or until ctx ends and returns its cause. It is
// the default Config.Sleep.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// bucketLimiter is the default Limiter: one token bucket per endpoint, all
// with the same rate, and a burst equal to the rate (at least one call). A
// caller takes its token at once, possibly going into debt, and then sleeps
// until the debt is paid off: callers are served in the order they arrive.
type bucketLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
	// observe, when set, is told about every wait (Config.ObserveWait).
	observe func(Wait)

	mu      sync.Mutex
	buckets map[string]*bucket
}

// bucket is the state of one endpoint's token bucket at time last.
type bucket struct {
	tokens float64
	last   time.Time
}

func newBucketLimiter(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *bucketLimiter {
	return &bucketLimiter{rate: rate, burst: max(rate, 1), now: now, sleep: sleep, buckets: map[string]*bucket{}}
}

// Wait implements Limiter. A wait that cannot end before ctx's deadline
// fails at once, without taking a token, with an error matching both
// ErrThrottled and context.DeadlineExceeded: the local limit, not DingTalk,
// refused the call, and the caller's deadline is what made waiting futile.
// A wait cut short by ctx gives the token back and fails with an error
// matching ErrThrottled and the context's cause.
func (l *bucketLimiter) Wait(ctx context.Context, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, context.Cause(ctx))
	}
	l.mu.Lock()
	b := l.bucketLocked(endpoint)
	var wait time.Duration
	if b.tokens < 1 {
		// Round up so that the debt is paid off when the wait ends.
		wait = time.Duration(math.Ceil((1 - b.tokens) * float64(time.Second) / l.rate))
	}
	if dl, ok := ctx.Deadline(); ok && wait > 0 && wait >= time.Until(dl) {
		l.mu.Unlock()
		l.report(endpoint, wait, true)
		return fmt.Errorf("dingtalk %s: rate limit needs a wait of %v, past the context deadline: %w: %w",
			endpoint, wait, ErrThrottled, context.DeadlineExceeded)
	}
	b.tokens--
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	if err := l.sleep(ctx, wait); err != nil {
		// The call will not be made: return its token.
		l.mu.Lock()
		b := l.bucketLocked(endpoint)
		b.tokens = min(b.tokens+1, l.burst)
		l.mu.Unlock()
		l.report(endpoint, wait, true)
		return fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, err)
	}
	l.report(endpoint, wait, false)
	return nil
}

// report tells the observer, if any, about a wait.
func (l *bucketLimiter) report(endpoint string, wait time.Duration, refused bool) {
	if l.observe != nil {
		l.observe(Wait{Endpoint: endpoint, Duration: wait, Refused: refused})
	}
}

// bucketLocked returns endpoint's bucket refilled up to now. l.mu must be
// held.
func (l *bucketLimiter) bucketLocked(endpoint string) *bucket {
	now := l.now()
	b := l.buckets[endpoint]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[endpoint] = b
		return b
	}
	// A clock that went back (a test clock, a wall clock without monotonic
	// reading) refills nothing until it passes last again.
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.tokens+elapsed.Seconds()*l.rate, l.burst)
		b.last = now
	}
	return b
}

// throttleRetryable reports whether err is DingTalk throttling that waiting a
// moment can cure: the per-app and global QPS/QPM limits (90018, 90002,
// 90006 and their new-API codes) and the per-IP "punish" page. The monthly
// quota (90020, ApiCountLimitForOrg) also matches ErrThrottled but is not
// retried: it lasts until the month ends.
func throttleRetryable(err error) bool {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		switch apiErr.Code {
		case "90020", "Forbidden.AccessDenied.ApiCountLimitForOrg":
			return false
		}
		return errors.Is(apiErr, ErrThrottled)
	}
	if bad, ok := errors.AsType[*BadResponseError](err); ok {
		return bad.Throttled
	}
	return false
}

// throttleBackoff is the wait before retry number n (1 for the first):
// throttleBackoffMin doubled n-1 times, at most throttleBackoffMax.
func throttleBackoff(n int) time.Duration {
	d := throttleBackoffMin
	for i := 1; i < n && d < throttleBackoffMax; i++ {
		d *= 2
	}
	return min(d, throttleBackoffMax)
}

// equalJitter returns a random duration in [d/2, d], so that callers
// throttled together do not all retry at the same instant.
func equalJitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

// doThrottled performs r with attempt, retrying throttled answers when r
// allows it (see request.retryThrottled) while the waits add up to no more
// than ThrottleBudget and each ends before ctx's deadline. When it gives up,
// the last answer is returned, wrapped: it matches ErrThrottled and is still
// an *APIError or *BadResponseError. A wait cut short by ctx returns that
// answer joined with the context's cause.
func (c *Client) doThrottled(ctx context.Context, r request, attempt func() error) error {
	var waited time.Duration
	for n := 1; ; n++ {
		err := attempt()
		if err == nil || !r.retryThrottled || !throttleRetryable(err) {
			return err
		}
		wait := c.jitter(throttleBackoff(n))
		if waited+wait > c.cfg.ThrottleBudget {
			return fmt.Errorf("%w (gave up after %d attempts: throttle budget %v spent)", err, n, c.cfg.ThrottleBudget)
		}
		if dl, ok := ctx.Deadline(); ok && wait >= time.Until(dl) {
			return fmt.Errorf("%w (gave up after %d attempts: next retry would pass the context deadline)", err, n)
		}
		c.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dingtalk throttled, retrying",
			slog.String("endpoint", r.path), slog.Int("attempt", n), slog.Duration("wait", wait))
		if serr := c.cfg.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (retry wait ended: %w)", err, serr)
		}
		waited += wait
	}
}
