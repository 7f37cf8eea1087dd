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

// windowGuard lengthens the limiter's window beyond the second DingTalk
// counts in, so that calls the limiter spaced a window apart are still
// more than a second apart when they reach DingTalk, although each spends
// a different, unknown time on its way (scheduling, connection setup).
// It costs a tenth of the rate: 20 calls per 1.1 s.
const windowGuard = 100 * time.Millisecond

// windowLimiter is the default Limiter. DingTalk allows an app rate calls
// per second to each API and refuses the rest; the limiter keeps, per
// endpoint, the times of the last n calls it let through (n = rate, at
// least 1) and lets the next one through no earlier than a window (n/rate
// seconds, plus windowGuard) after the call n before it. So no window of
// that length, and no second, holds more than n of its calls, including a
// burst: a token bucket with a burst of n would let 2n through in the
// second after an idle spell, and DingTalk would refuse half of them.
// A caller takes its turn at once and then sleeps until it comes: callers
// are served in the order they arrive. A wait cut short keeps its turn (it
// cannot be handed back without letting a later turn come early), which
// only makes the limiter stricter.
type windowLimiter struct {
	n      int
	window time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error

	mu      sync.Mutex
	history map[string]*callTimes
}

// callTimes is a ring of the times of an endpoint's last n calls; next is
// the oldest (the zero time while fewer than n were made).
type callTimes struct {
	at   []time.Time
	next int
}

func newWindowLimiter(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *windowLimiter {
	n := max(int(rate), 1)
	window := time.Duration(math.Ceil(float64(n)*float64(time.Second)/rate)) + windowGuard
	return &windowLimiter{n: n, window: window, now: now, sleep: sleep, history: map[string]*callTimes{}}
}

// Wait implements Limiter. A wait that cannot end before ctx's deadline
// fails at once, without taking a turn, with an error matching both
// ErrThrottled and context.DeadlineExceeded: the local limit, not DingTalk,
// refused the call, and the caller's deadline is what made waiting futile.
// A wait cut short by ctx fails with an error matching ErrThrottled and the
// context's cause.
func (l *windowLimiter) Wait(ctx context.Context, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, context.Cause(ctx))
	}
	l.mu.Lock()
	h := l.history[endpoint]
	if h == nil {
		h = &callTimes{at: make([]time.Time, l.n)}
		l.history[endpoint] = h
	}
	now := l.now()
	turn := now
	if oldest := h.at[h.next]; !oldest.IsZero() && oldest.Add(l.window).After(now) {
		turn = oldest.Add(l.window)
	}
	wait := turn.Sub(now)
	if dl, ok := ctx.Deadline(); ok && wait > 0 && wait >= time.Until(dl) {
		l.mu.Unlock()
		return fmt.Errorf("dingtalk %s: rate limit needs a wait of %v, past the context deadline: %w: %w",
			endpoint, wait, ErrThrottled, context.DeadlineExceeded)
	}
	h.at[h.next] = turn
	h.next = (h.next + 1) % l.n
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	if err := l.sleep(ctx, wait); err != nil {
		return fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, err)
	}
	return nil
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
