package sharedlimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk"
)

var _ dingtalk.Limiter = (*appLimiter)(nil)

const (
	// defaultInFlightLimit is longer than the longest call the DingTalk
	// client lets through (dingtalk.timeout is at most a minute).
	defaultInFlightLimit = 70 * time.Second

	// statementTimeout bounds one statement. Statements do not end with
	// the caller's context: a turn taken in the database is then still
	// handed out, and counted as a call, rather than left in flight until
	// InFlightLimit.
	statementTimeout = 5 * time.Second

	// minWait is the least a caller sleeps before asking again. The
	// database can answer "no slot, one was free already" when another
	// replica holds that slot's row locked while taking it.
	minWait = time.Millisecond
)

// Config configures Postgres.
type Config struct {
	// Pool is the database the replicas share, migrated to 0010.
	Pool *pgxpool.Pool
	// Rate is the calls per second each app may make to each API (the
	// dingtalk.rate_limit setting; DingTalk allows 20).
	Rate float64
	// InFlightLimit is how long a call may stay unanswered before its turn
	// is counted as answered then and may be taken again: it lets the
	// other replicas go on when one dies with calls under way. It must be
	// longer than any DingTalk call of a live replica may take (the
	// client's Timeout); default 70s.
	InFlightLimit time.Duration
	// Logger receives a warning when an answer cannot be recorded
	// (default: discard).
	Logger *slog.Logger
	// Now, when set, is the clock of every turn. Nil (the default) uses
	// the database's clock, which is the same for every replica however
	// their own clocks drift; tests set a fake clock.
	Now func() time.Time
	// Sleep waits for d, or until ctx ends and returns its cause (default:
	// a timer); tests replace it together with Now.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Postgres hands out DingTalk calls' turns from the database, in the same
// pattern for every app and API: n slots (dingtalk.LimitWindow), each free
// again a window after its last call was answered. A caller takes the slot
// free longest, with one statement; when none is free, the statement also
// says when the first will be, and the caller sleeps until then instead of
// asking again and again. Callers in one process queue for each app and
// API, so that only the first of them asks the database; across replicas
// whoever asks first once a slot is free gets it. Each call costs two
// statements: taking the turn and recording the answer.
type Postgres struct {
	pool     *pgxpool.Pool
	n        int
	window   time.Duration
	inFlight time.Duration
	logger   *slog.Logger
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error

	mu    sync.Mutex
	gates map[gateKey]*gate
}

type gateKey struct{ appKey, endpoint string }

// gate queues one process's callers for one app and API.
type gate struct {
	turn    chan struct{} // holds one token while a caller asks the database
	created bool          // the slots exist; read and written with the token held
}

// NewPostgres returns a limiter on cfg.Pool.
func NewPostgres(cfg Config) (*Postgres, error) {
	var errs []error
	if cfg.Pool == nil {
		errs = append(errs, errors.New("Pool is required"))
	}
	if !(cfg.Rate > 0) || cfg.Rate > 1e6 {
		errs = append(errs, errors.New("Rate: must be a positive number of calls per second"))
	}
	if cfg.InFlightLimit < 0 {
		errs = append(errs, errors.New("InFlightLimit: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("sharedlimit: %w", err)
	}
	if cfg.InFlightLimit == 0 {
		cfg.InFlightLimit = defaultInFlightLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepContext
	}
	n, window := dingtalk.LimitWindow(cfg.Rate)
	return &Postgres{
		pool: cfg.Pool, n: n, window: window, inFlight: cfg.InFlightLimit,
		logger: cfg.Logger, now: cfg.Now, sleep: cfg.Sleep, gates: map[gateKey]*gate{},
	}, nil
}

// App returns the limiter of one DingTalk app, for dingtalk.Config.Limiter.
// Every Client of the app, in this process or another, should use one.
func (p *Postgres) App(appKey string) dingtalk.Limiter {
	return &appLimiter{p: p, appKey: appKey}
}

// Window returns the calls allowed per window and the window.
func (p *Postgres) Window() (n int, window time.Duration) { return p.n, p.window }

type appLimiter struct {
	p      *Postgres
	appKey string
}

// Wait implements dingtalk.Limiter. It fails at once, matching
// dingtalk.ErrThrottled and context.DeadlineExceeded, when the first free
// slot comes too late for ctx's deadline, and with ErrThrottled and ctx's
// cause when ctx ends while it waits; a caller queued behind another of
// this process learns that only when ctx ends. A wait that fails takes no
// turn. Errors of the database are returned as they are.
func (l *appLimiter) Wait(ctx context.Context, endpoint string) (func(), error) {
	p := l.p
	if ctx.Err() != nil {
		return nil, throttled(endpoint, context.Cause(ctx))
	}
	g := p.gate(l.appKey, endpoint)
	select {
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, throttled(endpoint, context.Cause(ctx))
	}
	defer func() { <-g.turn }()
	if !g.created {
		if err := p.createSlots(ctx, l.appKey, endpoint); err != nil {
			return nil, err
		}
		g.created = true
	}
	for {
		holder := rand.Int64()
		slot, wait, err := p.take(ctx, l.appKey, endpoint, holder)
		if err != nil {
			return nil, err
		}
		if slot >= 0 {
			return p.answered(l.appKey, endpoint, slot, holder), nil
		}
		wait = max(wait, minWait)
		if dl, ok := ctx.Deadline(); ok && wait >= time.Until(dl) {
			return nil, fmt.Errorf("dingtalk %s: shared rate limit needs a wait of %v, past the context deadline: %w: %w",
				endpoint, wait, dingtalk.ErrThrottled, context.DeadlineExceeded)
		}
		if err := p.sleep(ctx, wait); err != nil {
			return nil, throttled(endpoint, err)
		}
	}
}

func throttled(endpoint string, cause error) error {
	return fmt.Errorf("dingtalk %s: wait for shared rate limit: %w: %w", endpoint, dingtalk.ErrThrottled, cause)
}

func (p *Postgres) gate(appKey, endpoint string) *gate {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := gateKey{appKey, endpoint}
	g := p.gates[k]
	if g == nil {
		g = &gate{turn: make(chan struct{}, 1)}
		p.gates[k] = g
	}
	return g
}

// nowArg is the clock argument of the statements: nil (SQL null) makes
// them use the database's clock.
func (p *Postgres) nowArg() any {
	if p.now == nil {
		return nil
	}
	return p.now()
}

const createSlotsSQL = `
insert into dingtalk_rate_slots (app_key, endpoint, slot, free_at)
select $1, $2, s, '-infinity' from generate_series(0, $3::integer - 1) s
on conflict do nothing`

// createSlots makes sure the app and API have their n slots; another
// replica may have made them, or some of them for a lower rate.
func (p *Postgres) createSlots(ctx context.Context, appKey, endpoint string) error {
	ctx, cancel := statementContext(ctx)
	defer cancel()
	if _, err := p.pool.Exec(ctx, createSlotsSQL, appKey, endpoint, p.n); err != nil {
		return fmt.Errorf("dingtalk %s: create shared rate limit slots: %w", endpoint, err)
	}
	return nil
}

// takeSQL takes the slot free longest, if one is free, and marks it in
// flight until the answer, or at most until the in-flight limit ($6 is
// that limit plus a window). Otherwise it returns null and, in
// microseconds, how long until the first slot is free: a slot in flight is
// free a window after its answer, which could come at once. Locked rows
// are skipped: another caller is taking that slot. Times in Postgres are
// whole microseconds, hence the wait rounded up.
const takeSQL = `
with clock as (
	select coalesce($4::timestamptz, statement_timestamp()) as now
), pick as (
	select s.slot from dingtalk_rate_slots s, clock
	where s.app_key = $1 and s.endpoint = $2 and s.slot < $3 and s.free_at <= clock.now
	order by s.free_at
	limit 1
	for update of s skip locked
), took as (
	update dingtalk_rate_slots s
	set holder = $5, free_at = clock.now + $6::bigint * interval '1 microsecond'
	from pick, clock
	where s.app_key = $1 and s.endpoint = $2 and s.slot = pick.slot
	returning s.slot
)
select took.slot, case when took.slot is null then (
	select ceil(extract(epoch from greatest(clock.now, first.free_at) - clock.now) * 1e6)
	from (
		select min(case when s.holder is null then s.free_at
			else least(s.free_at, clock.now + $7::bigint * interval '1 microsecond') end) as free_at
		from dingtalk_rate_slots s
		where s.app_key = $1 and s.endpoint = $2 and s.slot < $3
	) first
	where first.free_at is not null
)::bigint end
from clock left join took on true`

// take runs takeSQL: slot is -1 when none was free, and wait is then how
// long until one is.
func (p *Postgres) take(ctx context.Context, appKey, endpoint string, holder int64) (slot int, wait time.Duration, err error) {
	ctx, cancel := statementContext(ctx)
	defer cancel()
	var got *int32
	var waitMicros *int64
	err = p.pool.QueryRow(ctx, takeSQL, appKey, endpoint, p.n, p.nowArg(), holder,
		(p.inFlight+p.window).Microseconds(), p.window.Microseconds()).Scan(&got, &waitMicros)
	if err != nil {
		return -1, 0, fmt.Errorf("dingtalk %s: take a turn of the shared rate limit: %w", endpoint, err)
	}
	if got != nil {
		return int(*got), 0, nil
	}
	if waitMicros == nil {
		// No slots below n: they were deleted while this process ran.
		return -1, 0, fmt.Errorf("dingtalk %s: the shared rate limit has no slots", endpoint)
	}
	return -1, time.Duration(*waitMicros) * time.Microsecond, nil
}

// answeredSQL records that the call in the slot was answered: the slot is
// free a window ($6) from now. It changes nothing once the slot has gone
// to another call (after the in-flight limit).
const answeredSQL = `
update dingtalk_rate_slots
set holder = null, free_at = coalesce($5::timestamptz, statement_timestamp()) + $6::bigint * interval '1 microsecond'
where app_key = $1 and endpoint = $2 and slot = $3 and holder = $4`

// answered returns the done func of a turn. It records the answer even
// when the caller's context has ended: DingTalk has counted the call. If
// that fails, the slot stays in flight until the in-flight limit, which
// only delays other calls.
func (p *Postgres) answered(appKey, endpoint string, slot int, holder int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
			defer cancel()
			tag, err := p.pool.Exec(ctx, answeredSQL, appKey, endpoint, slot, holder, p.nowArg(), p.window.Microseconds())
			if err == nil && tag.RowsAffected() == 0 {
				err = errors.New("the slot was taken back: the call took longer than the in-flight limit")
			}
			if err != nil {
				p.logger.WarnContext(ctx, "could not record a dingtalk answer in the shared rate limit",
					"app_key", appKey, "endpoint", endpoint, "slot", slot, "err", err)
			}
		})
	}
}

// statementContext bounds a statement without ending it with ctx (see
// statementTimeout).
func statementContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
}

// sleepContext waits for d, or until ctx ends and returns its cause.
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
