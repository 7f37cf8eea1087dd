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
// replace the Client's own per-endpoint limiter with one, for example one
// shared by all replicas of the service.
type Limiter interface {
	// Wait blocks until one call to endpoint, the API's URL path such as
	// "/topapi/v2/user/get", may be sent. It returns an error, without
	// waiting, when ctx's deadline would pass first, and when ctx ends while
	// it waits; such errors should match ErrThrottled and the context's
	// error. On success the caller must call done once the call has been
	// answered or has failed: DingTalk has counted the call by then, so a
	// limiter may count its window from that moment.
	Wait(ctx context.Context, endpoint string) (done func(), err error)
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
// counts in, for a DingTalk clock that runs a little fast against ours.
// Jitter on the way to DingTalk needs no guard: windows start when the
// answer came back (see windowLimiter).
const windowGuard = 20 * time.Millisecond

// windowLimiter is the default Limiter. DingTalk allows an app rate calls
// per second to each API and refuses the rest. The limiter keeps, per
// endpoint, the last n calls it let through (n = rate, at least 1) and lets
// the next one through a window (n/rate seconds, plus windowGuard) after
// the call n before it was answered. DingTalk counted that call before it
// answered, so however long either call spends on its way, DingTalk never
// sees more than n calls within a window, nor within a second, a burst
// included. (A token bucket with a burst of n lets 2n through in the
// second after an idle spell, and times taken when calls leave let calls
// that left a second apart arrive closer together.) A caller takes its
// turn at once and then waits, first for the call n before it to be
// answered, then for the window: callers are served in the order they
// arrive. A wait cut short counts as a call made when its turn would have
// come, which keeps the limiter strict for the callers after it.
type windowLimiter struct {
	n      int
	window time.Duration
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	// observe, when set, is told about every call that had to wait or was
	// refused (Config.ObserveWait).
	observe func(Wait)

	mu      sync.Mutex
	history map[string]*callTimes
}

// callTimes is a ring of an endpoint's last n calls; next is the oldest.
type callTimes struct {
	calls []*call
	next  int
}

// call is one call let through. answered is closed when done is set.
type call struct {
	answered chan struct{}
	done     time.Time // when it was answered; set (under mu) before answered closes
}

func newWindowLimiter(rate float64, now func() time.Time, sleep func(context.Context, time.Duration) error) *windowLimiter {
	n, window := LimitWindow(rate)
	return &windowLimiter{n: n, window: window, now: now, sleep: sleep, history: map[string]*callTimes{}}
}

// LimitWindow returns the window a limiter of rate calls per second keeps
// and how many calls it lets through per window, counting each call's
// window from its answer: n = rate (at least 1), n/rate seconds plus a
// guard for a DingTalk clock that runs a little fast. The default limiter
// uses it, and so should a Limiter kept elsewhere (for example one shared
// by replicas), so that both keep the same limit.
func LimitWindow(rate float64) (n int, window time.Duration) {
	n = max(int(rate), 1)
	return n, time.Duration(math.Ceil(float64(n)*float64(time.Second)/rate)) + windowGuard
}

// Wait implements Limiter. A wait that cannot end before ctx's deadline
// fails at once, without taking a turn, with an error matching both
// ErrThrottled and context.DeadlineExceeded: the local limit, not DingTalk,
// refused the call, and the caller's deadline is what made waiting futile.
// (While the call n before is still under way, that is judged by the
// earliest its answer allows.) A wait cut short by ctx fails with an error
// matching ErrThrottled and the context's cause.
func (l *windowLimiter) Wait(ctx context.Context, endpoint string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, context.Cause(ctx))
	}
	l.mu.Lock()
	h := l.history[endpoint]
	if h == nil {
		h = &callTimes{calls: make([]*call, l.n)}
		l.history[endpoint] = h
	}
	now := l.now()
	start := now
	prev := h.calls[h.next]
	earliest := now
	if prev != nil {
		select {
		case <-prev.answered:
			earliest = laterOf(now, prev.done.Add(l.window))
		default:
			earliest = now.Add(l.window) // answered now at the earliest
		}
	}
	if err := l.pastDeadline(ctx, endpoint, earliest.Sub(now)); err != nil {
		l.mu.Unlock()
		l.report(endpoint, earliest.Sub(now), true)
		return nil, err
	}
	mine := &call{answered: make(chan struct{})}
	h.calls[h.next] = mine
	h.next = (h.next + 1) % l.n
	l.mu.Unlock()

	slept, err := l.waitTurn(ctx, endpoint, prev)
	// What the clock says, or what was slept when the clock does not move
	// with sleeps (tests).
	waited := max(l.now().Sub(start), slept)
	if err != nil {
		l.settle(mine, prev)
		l.report(endpoint, waited, true)
		return nil, err
	}
	if waited > 0 {
		l.report(endpoint, waited, false)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			mine.done = l.now()
			close(mine.answered)
			l.mu.Unlock()
		})
	}, nil
}

// waitTurn waits until prev (the call n before, if any) has been answered
// and a window has passed since. It returns how long it slept for the
// window, or would have had to.
func (l *windowLimiter) waitTurn(ctx context.Context, endpoint string, prev *call) (time.Duration, error) {
	if prev == nil {
		return 0, nil
	}
	select {
	case <-prev.answered:
	case <-ctx.Done():
		return 0, fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, context.Cause(ctx))
	}
	l.mu.Lock()
	now := l.now()
	wait := prev.done.Add(l.window).Sub(now)
	l.mu.Unlock()
	if wait <= 0 {
		return 0, nil
	}
	if err := l.pastDeadline(ctx, endpoint, wait); err != nil {
		return wait, err
	}
	if err := l.sleep(ctx, wait); err != nil {
		return wait, fmt.Errorf("dingtalk %s: wait for rate limit: %w: %w", endpoint, ErrThrottled, err)
	}
	return wait, nil
}

// report tells the observer, if any, about a wait.
func (l *windowLimiter) report(endpoint string, wait time.Duration, refused bool) {
	if l.observe != nil {
		l.observe(Wait{Endpoint: endpoint, Duration: wait, Refused: refused})
	}
}

// pastDeadline refuses a wait that cannot end before ctx's deadline.
func (l *windowLimiter) pastDeadline(ctx context.Context, endpoint string, wait time.Duration) error {
	if dl, ok := ctx.Deadline(); ok && wait > 0 && wait >= time.Until(dl) {
		return fmt.Errorf("dingtalk %s: rate limit needs a wait of %v, past the context deadline: %w: %w",
			endpoint, wait, ErrThrottled, context.DeadlineExceeded)
	}
	return nil
}

// settle marks mine, a turn that will not be used, as a call answered when
// its turn would have come: a window after prev was answered, or now if
// that is later. If prev is still under way, that is decided once it is
// answered.
func (l *windowLimiter) settle(mine, prev *call) {
	finish := func() {
		l.mu.Lock()
		mine.done = l.now()
		if prev != nil {
			mine.done = laterOf(mine.done, prev.done.Add(l.window))
		}
		close(mine.answered)
		l.mu.Unlock()
	}
	if prev == nil {
		finish()
		return
	}
	select {
	case <-prev.answered:
		finish()
	default:
		// prev's caller calls done when its call ends, bounded by the
		// client's timeout, so this goroutine ends too.
		go func() {
			<-prev.answered
			finish()
		}()
	}
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
