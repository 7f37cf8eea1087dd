package sharedlimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	return tracedReplica(t, url, cfg, nil)
}

// tracedReplica is replica with tracer on the pool's connections.
func tracedReplica(t *testing.T, url string, cfg Config, tracer pgx.QueryTracer) (*Postgres, *pgxpool.Pool) {
	t.Helper()
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgxpool.ParseConfig: %v", err)
	}
	pc.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(t.Context(), pc)
	if err != nil {
		t.Fatalf("pgxpool.NewWithConfig: %v", err)
	}
	t.Cleanup(pool.Close)
	cfg.Pool = pool
	l, err := NewPostgres(cfg)
	if err != nil {
		t.Fatalf("NewPostgres: %v", err)
	}
	return l, pool
}

// statements is a pgx.QueryTracer: it counts the statements a pool sends
// (each a round trip), keeps the most rows a takeSQL returned (a row for
// each turn taken, or one without a turn), and runs onStart, when set,
// before each statement is sent.
type statements struct {
	n         atomic.Int64
	mostTurns atomic.Int64
	onStart   func(sql string)
}

type sqlKey struct{}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	if s.onStart != nil {
		s.onStart(d.SQL)
	}
	return context.WithValue(ctx, sqlKey{}, d.SQL)
}

func (s *statements) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if ctx.Value(sqlKey{}) != takeSQL || d.Err != nil {
		return
	}
	n := d.CommandTag.RowsAffected()
	for most := s.mostTurns.Load(); n > most && !s.mostTurns.CompareAndSwap(most, n); most = s.mostTurns.Load() {
	}
}

// waitQueued returns once n callers are queued on p's gate of testApp and
// testEndpoint, behind the one asking the database.
func waitQueued(t *testing.T, p *Postgres, n int) {
	t.Helper()
	g := p.gate(testApp, testEndpoint)
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		g.mu.Lock()
		queued := len(g.queue)
		g.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued, want %d", queued, n)
		}
	}
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
	// the limit is shared, not halved. Each replica takes turns for its
	// goroutines in batches.
	const rate, workers, perWorker = 5, 4, 10
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	sl := &sleeper{clock: clk}
	stmts := &statements{}
	var limiters []dingtalk.Limiter
	var window time.Duration
	for range 2 {
		l, _ := tracedReplica(t, url, Config{Rate: rate, Now: clk.Now, Sleep: sl.Sleep}, stmts)
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
	if got := stmts.mostTurns.Load(); got < 2 {
		t.Errorf("at most %d turns taken in one statement, want batches of several", got)
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

func TestBatchesStatements(t *testing.T) {
	// 32 callers of one replica call one API at once, one call after
	// another, on the database's clock, with a slot for each call: turns
	// are taken, and answers recorded, for several calls in one statement,
	// where one call alone takes two.
	const callers, perCaller = 32, 20
	url := pgtest.NewDatabaseURL(t)
	stmts := &statements{}
	l, _ := tracedReplica(t, url, Config{Rate: 1000}, stmts)
	app := l.App(testApp)
	done, err := app.Wait(t.Context(), testEndpoint) // creates the slots
	if err != nil {
		t.Fatalf("first Wait: %v", err)
	}
	done()
	stmts.n.Store(0)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range perCaller {
				done, err := app.Wait(t.Context(), testEndpoint)
				if err != nil {
					t.Errorf("Wait: %v", err)
					return
				}
				done()
			}
		})
	}
	wg.Wait()
	l.Flush()
	perCall := float64(stmts.n.Load()) / (callers * perCaller)
	t.Logf("%.3f statements per call, at most %d turns in one", perCall, stmts.mostTurns.Load())
	if perCall > 1 {
		t.Errorf("%.3f statements per call, want at most 1", perCall)
	}
}

func TestGoneCallerTakesNoTurn(t *testing.T) {
	// A queued caller's context ends while the statement that takes a turn
	// for it runs: that turn is given back, not counted as a call. Its
	// slot is as it was, and the next caller takes it without waiting.
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	asleep, wake := make(chan struct{}), make(chan struct{})
	var sleeps atomic.Int64
	sleep := func(ctx context.Context, d time.Duration) error {
		if sleeps.Add(1) == 1 { // the leader's: held until the other caller is queued
			asleep <- struct{}{}
			<-wake
		}
		clk.Advance(d)
		return nil
	}
	stmts := &statements{}
	l, pool := tracedReplica(t, url, Config{Rate: 2, Now: clk.Now, Sleep: sleep}, stmts)
	app := l.App(testApp)
	_, w := l.Window()
	for range 2 { // both slots free a window from now
		done, err := app.Wait(t.Context(), testEndpoint)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		done()
	}
	leader := make(chan func(), 1)
	go func() {
		done, err := app.Wait(t.Context(), testEndpoint)
		if err != nil {
			t.Errorf("the leader's Wait: %v", err)
			done = func() {}
		}
		leader <- done
	}()
	<-asleep
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	gone := make(chan error, 1)
	go func() {
		_, err := app.Wait(ctx, testEndpoint)
		gone <- err
	}()
	waitQueued(t, l, 1)
	stmts.onStart = func(sql string) {
		if sql == takeSQL {
			cancel() // the statement takes both slots, one for the caller gone
		}
	}
	wake <- struct{}{}
	err := <-gone
	checkIs(t, err, dingtalk.ErrThrottled)
	checkIs(t, err, context.Canceled)
	done := <-leader
	defer done()
	stmts.onStart = nil
	if got := stmts.mostTurns.Load(); got != 2 {
		t.Fatalf("at most %d turns taken in one statement, want 2", got)
	}
	var inFlight, free int
	rows, err := pool.Query(t.Context(), `select holder, free_at from dingtalk_rate_slots where app_key = $1 and endpoint = $2`,
		testApp, testEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var holder *int64
		var freeAt time.Time
		if err := rows.Scan(&holder, &freeAt); err != nil {
			t.Fatal(err)
		}
		switch {
		case holder != nil:
			inFlight++
		case freeAt.Equal(testNow.Add(w)):
			free++
		default:
			t.Errorf("a slot free at %v, want %v, as the first calls left it", freeAt, testNow.Add(w))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if inFlight != 1 || free != 1 {
		t.Errorf("%d slots in flight and %d free, want the leader's in flight and the other given back", inFlight, free)
	}
	next, err := app.Wait(t.Context(), testEndpoint)
	if err != nil {
		t.Fatalf("next Wait: %v", err)
	}
	next()
	if got := sleeps.Load(); got != 1 {
		t.Errorf("%d waits, want only the leader's: the slot given back is free", got)
	}
}

func TestAnswersQueuedDuringAWrite(t *testing.T) {
	// Answers that come while another is being written wait for the next
	// statement, which writes them all; each slot is free a window after
	// its own answer, however much later that is written.
	url := pgtest.NewDatabaseURL(t)
	clk := &fakeClock{now: testNow}
	stmts := &statements{}
	l, pool := tracedReplica(t, url, Config{Rate: 4, Now: clk.Now, Sleep: (&sleeper{clock: clk}).Sleep}, stmts)
	app := l.App(testApp)
	_, w := l.Window()
	var dones []func()
	for range 4 {
		done, err := app.Wait(t.Context(), testEndpoint)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		dones = append(dones, done)
	}
	var want []time.Time // when each slot is free again
	var once sync.Once
	stmts.onStart = func(sql string) {
		if sql != answeredSQL {
			return
		}
		once.Do(func() { // the first answer is being written
			for _, done := range dones[1:] {
				clk.Advance(10 * time.Millisecond)
				want = append(want, clk.Now().Add(w))
				done()
			}
			clk.Advance(10 * time.Millisecond)
		})
	}
	before := stmts.n.Load()
	want = append(want, clk.Now().Add(w))
	dones[0]()
	l.Flush()
	l.Flush() // does nothing more
	if got := stmts.n.Load() - before; got != 2 {
		t.Errorf("%d statements wrote the answers, want 2: the first answer's, and one for the three that came meanwhile", got)
	}
	var got []time.Time
	rows, err := pool.Query(t.Context(), `select free_at from dingtalk_rate_slots where app_key = $1 and endpoint = $2 and holder is null order by free_at`,
		testApp, testEndpoint)
	if err == nil {
		got, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("slots answered and free at %v, want %v", got, want)
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
