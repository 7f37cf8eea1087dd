package sharedlimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	testApp      = "dingappkey"
	testEndpoint = "/topapi/v2/user/get"
)

var testNow = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a clock the tests move.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// sleeper is a fake Config.Sleep: it records each wait, advances clock by
// it, and then runs then (if set) with the wait's number, from 1.
type sleeper struct {
	clock *fakeClock
	then  func(n int)

	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	n := len(s.waits)
	s.mu.Unlock()
	s.clock.Advance(d)
	if s.then != nil {
		s.then(n)
	}
	return nil
}

func (s *sleeper) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// replica opens a pool of its own on the database at url (as another
// replica would) and returns a limiter on it.
func replica(t *testing.T, url string, cfg Config) (*Postgres, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatalf("pgxpool.New: %v", err)
	}
	t.Cleanup(pool.Close)
	cfg.Pool = pool
	l, err := NewPostgres(cfg)
	if err != nil {
		t.Fatalf("NewPostgres: %v", err)
	}
	return l, pool
}

func checkIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error = %v, want one matching %v", err, target)
	}
}

// call is one call let through: when Wait returned, and when it was
// answered (done called).
type call struct{ granted, answered time.Time }

// mostInOneWindow returns the most calls DingTalk could have counted within
// one window w, in the worst case for the limiter: a call reaches DingTalk
// at any moment between its turn and its answer. A set of calls fits in a
// window when the latest turn among them comes less than w after the
// earliest answer; for each call j this counts the calls granted no later
// that were answered less than w before j was granted.
func mostInOneWindow(calls []call, w time.Duration) int {
	most := 0
	for j, cj := range calls {
		n := 1
		for i, ci := range calls {
			if i != j && !ci.granted.After(cj.granted) && ci.answered.After(cj.granted.Add(-w)) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// drive runs perWorker calls in each of workers goroutines on each
// limiter, each call answered after answerIn() on clock, and returns the
// calls.
func drive(t *testing.T, limiters []dingtalk.Limiter, workers, perWorker int, now func() time.Time, answerIn func()) []call {
	t.Helper()
	var mu sync.Mutex
	var calls []call
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range workers {
			wg.Go(func() {
				for range perWorker {
					done, err := l.Wait(t.Context(), testEndpoint)
					if err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
					granted := now()
					answerIn()
					answered := now()
					done()
					mu.Lock()
					calls = append(calls, call{granted, answered})
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	sort.Slice(calls, func(i, j int) bool { return calls[i].granted.Before(calls[j].granted) })
	return calls
}

func TestTwoReplicasNeverExceedTheRate(t *testing.T) {
	// Two limiters, each on a pool of its own, as two replicas, on one
	// fake clock; four goroutines each make calls whose answers take up to
	// a third of a second. Between them they never let more than the rate
	// through in any window, counted from answers, and the window is full:
	// the limit is shared, not halved.
	const rate, workers, perWorker = 5, 4, 10
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	var limiters []dingtalk.Limiter
	var window time.Duration
	for range 2 {
		l, _ := replica(t, url, Config{Rate: rate, Now: clk.Now, Sleep: sl.Sleep})
		limiters = append(limiters, l.App(testApp))
		_, window = l.Window()
	}
	calls := drive(t, limiters, workers, perWorker, clk.Now, func() {
		// In whole microseconds, as Postgres keeps times.
		clk.Advance(time.Duration(rand.Int64N(300_000)) * time.Microsecond)
	})
	if got, want := len(calls), 2*workers*perWorker; got != want {
		t.Fatalf("%d calls let through, want %d", got, want)
	}
	if got := mostInOneWindow(calls, window); got != rate {
		t.Errorf("at most %d calls in one window of %v (counted from answers), want %d", got, window, rate)
	}
}

func TestTwoReplicasOnTheDatabaseClock(t *testing.T) {
	// The production path: no fake clock, the database's clock decides,
	// the goroutines really wait. DingTalk's own count (any one second)
	// never goes over the rate.
	if testing.Short() {
		t.Skip("waits about two seconds")
	}
	const rate, workers, perWorker = 4, 2, 3 // 12 calls: three windows
	url := pgtest.NewDatabaseURL(t)
	var limiters []dingtalk.Limiter
	for range 2 {
		l, _ := replica(t, url, Config{Rate: rate})
		limiters = append(limiters, l.App(testApp))
	}
	calls := drive(t, limiters, workers, perWorker, time.Now, func() {
		time.Sleep(time.Duration(rand.Int64N(int64(20 * time.Millisecond))))
	})
	if got := mostInOneWindow(calls, time.Second); got != rate {
		t.Errorf("at most %d calls in one second (counted from answers), want %d", got, rate)
	}
}

func TestCountsFromTheAnswer(t *testing.T) {
	// One replica's call is under way for two windows while another asks:
	// the other waits a window at a time (the earliest the answer allows),
	// and once the answer came, a window after it, not after the first
	// call left.
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	a, _ := replica(t, url, Config{Rate: 1, Now: clk.Now, Sleep: (&sleeper{clock: clk}).Sleep})
	doneA, err := a.App(testApp).Wait(t.Context(), testEndpoint)
	if err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	sl := &sleeper{clock: clk, then: func(n int) {
		if n == 2 {
			doneA() // answered two windows after it left
		}
	}}
	b, _ := replica(t, url, Config{Rate: 1, Now: clk.Now, Sleep: sl.Sleep})
	doneB, err := b.App(testApp).Wait(t.Context(), testEndpoint)
	if err != nil {
		t.Fatalf("second Wait: %v", err)
	}
	doneB()
	_, w := b.Window()
	if got, want := sl.Waits(), []time.Duration{w, w, w}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v: two while the first call was under way, one window after its answer", got, want)
	}
	if got, want := clk.Now().Sub(testNow), 3*w; got != want {
		t.Errorf("second call let through after %v, want %v", got, want)
	}
}

func TestSlidingWindow(t *testing.T) {
	// Within a window the rate goes at once; the next call waits until the
	// oldest answer is a window old; other APIs and other apps have their
	// own slots.
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	l, _ := replica(t, url, Config{Rate: 3, Now: clk.Now, Sleep: sl.Sleep})
	_, w := l.Window()
	wait := func(app, endpoint string, n int) {
		t.Helper()
		for range n {
			done, err := l.App(app).Wait(t.Context(), endpoint)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			done()
		}
	}
	wait(testApp, testEndpoint, 2)
	clk.Advance(400 * time.Millisecond)
	wait(testApp, testEndpoint, 1)
	if got := sl.Waits(); len(got) != 0 {
		t.Fatalf("waits = %v, want none for three calls at rate 3", got)
	}
	wait(testApp, "/topapi/user/getbyunionid", 3)
	wait("otherapp", testEndpoint, 3)
	if got := sl.Waits(); len(got) != 0 {
		t.Fatalf("waits = %v, want none: another API and another app have slots of their own", got)
	}
	wait(testApp, testEndpoint, 2) // the first two calls' slots: free a window after their answers
	if got, want := sl.Waits(), []time.Duration{w - 400*time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestReclaimsACrashedReplicasSlot(t *testing.T) {
	// A replica takes the only turn and is never heard of again: the slot
	// is free again the in-flight limit plus a window after it was taken.
	// When its answer does come, later, it does not free the slot that
	// another call has taken since.
	const limit = 10 * time.Second
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	cfg := Config{Rate: 1, InFlightLimit: limit, Now: clk.Now}
	cfg.Sleep = (&sleeper{clock: clk}).Sleep
	crashed, _ := replica(t, url, cfg)
	lateDone, err := crashed.App(testApp).Wait(t.Context(), testEndpoint)
	if err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	sl := &sleeper{clock: clk}
	cfg.Sleep = sl.Sleep
	other, pool := replica(t, url, cfg)
	if _, err := other.App(testApp).Wait(t.Context(), testEndpoint); err != nil {
		t.Fatalf("Wait after the crash: %v", err)
	}
	_, w := other.Window()
	if got, want := clk.Now().Sub(testNow), limit+w; got != want {
		t.Errorf("the slot came back after %v, want %v (in-flight limit plus a window); waits %v", got, want, sl.Waits())
	}
	lateDone()
	var inFlight bool
	if err := pool.QueryRow(t.Context(), `select holder is not null from dingtalk_rate_slots where app_key = $1 and endpoint = $2`,
		testApp, testEndpoint).Scan(&inFlight); err != nil {
		t.Fatal(err)
	}
	if !inFlight {
		t.Errorf("the crashed replica's late answer freed the slot of the call under way since")
	}
}

func TestContextEnds(t *testing.T) {
	// A wait cut short, or one that would end past the deadline, returns
	// an error matching ErrThrottled and takes no turn: the next caller a
	// window on goes at once.
	url := pgtest.NewDatabaseURL(t)
	tests := []struct {
		name   string
		ctx    func(t *testing.T) (context.Context, context.CancelFunc)
		cause  error
		sleeps int // how many waits began
	}{
		{"canceled during the wait", func(t *testing.T) (context.Context, context.CancelFunc) {
			return context.WithCancel(t.Context())
		}, context.Canceled, 1},
		{"deadline too near", func(t *testing.T) (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), 300*time.Millisecond)
		}, context.DeadlineExceeded, 0},
		{"canceled before", func(t *testing.T) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx, cancel
		}, context.Canceled, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fmt.Sprintf("app%d", i)
			clk := &fakeClock{now: testNow}
			ctx, cancel := tt.ctx(t)
			defer cancel()
			var began int
			// Sleep blocks until ctx ends: only the cancellation can end
			// this wait.
			sleep := func(sctx context.Context, d time.Duration) error {
				began++
				cancel()
				<-sctx.Done()
				return context.Cause(sctx)
			}
			l, pool := replica(t, url, Config{Rate: 1, Now: clk.Now, Sleep: sleep})
			done, err := l.App(app).Wait(t.Context(), testEndpoint)
			if err != nil {
				t.Fatalf("first Wait: %v", err)
			}
			done()
			_, err = l.App(app).Wait(ctx, testEndpoint)
			checkIs(t, err, dingtalk.ErrThrottled)
			checkIs(t, err, tt.cause)
			if began != tt.sleeps {
				t.Errorf("%d waits began, want %d", began, tt.sleeps)
			}
			var holder *int64
			var freeAt time.Time
			if err := pool.QueryRow(t.Context(), `select holder, free_at from dingtalk_rate_slots where app_key = $1`, app).Scan(&holder, &freeAt); err != nil {
				t.Fatal(err)
			}
			_, w := l.Window()
			if holder != nil || !freeAt.Equal(testNow.Add(w)) {
				t.Errorf("slot: holder %v, free at %v; want free at %v, as the first call left it", holder, freeAt, testNow.Add(w))
			}
		})
	}
}

func TestQueuedCallerCanceled(t *testing.T) {
	// A caller queued behind another of the same process returns when its
	// context ends.
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	asleep, release := make(chan struct{}), make(chan struct{})
	sleep := func(ctx context.Context, d time.Duration) error {
		close(asleep)
		<-release
		clk.Advance(d)
		return nil
	}
	l, _ := replica(t, url, Config{Rate: 1, Now: clk.Now, Sleep: sleep})
	done, err := l.App(testApp).Wait(t.Context(), testEndpoint)
	if err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	done()
	first := make(chan error, 1)
	go func() {
		done, err := l.App(testApp).Wait(t.Context(), testEndpoint)
		if err == nil {
			done()
		}
		first <- err
	}()
	<-asleep // the second call holds the queue, asleep
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	queued := make(chan error, 1)
	go func() {
		_, err := l.App(testApp).Wait(ctx, testEndpoint)
		queued <- err
	}()
	select {
	case err := <-queued:
		checkIs(t, err, dingtalk.ErrThrottled)
		checkIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Error("the queued caller did not return when its context ended")
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the caller that waited: %v", err)
	}
}

func TestNewPostgresValidates(t *testing.T) {
	for _, cfg := range []Config{
		{Rate: 20},
		{Pool: &pgxpool.Pool{}, Rate: 0},
		{Pool: &pgxpool.Pool{}, Rate: 20, InFlightLimit: -time.Second},
	} {
		if _, err := NewPostgres(cfg); err == nil {
			t.Errorf("NewPostgres(%+v) = nil error, want one", cfg)
		}
	}
}
