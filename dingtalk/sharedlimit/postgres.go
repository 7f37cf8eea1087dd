package sharedlimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk"
)

var _ dingtalk.Limiter = (*appLimiter)(nil)

const (
	// defaultInFlightLimit is longer than the longest call the DingTalk
	// client lets through (dingtalk.timeout is at most a minute).
	defaultInFlightLimit = 70 * time.Second

	// statementTimeout bounds one statement. Statements do not end with
	// the caller's context: a turn taken for a caller who has gone is then
	// handed on or given back, rather than left in flight until
	// InFlightLimit.
	statementTimeout = 5 * time.Second

	// maxBatch caps the turns one statement takes: the callers of this
	// process waiting for one API, up to a few round trips' worth of
	// DingTalk calls.
	maxBatch = 64

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
// again a window after its last call was answered, and each call in a slot
// of its own. Callers in one process queue for each app and API, and only
// the first of them, the leader, asks the database: with one statement it
// takes the slots free longest, one for itself and one for each caller
// queued behind it, and hands them out. When none is free, the statement
// also says when the first will be, and the leader sleeps until then
// instead of asking again and again. Across replicas whoever asks first
// once a slot is free gets it.
//
// Answers are recorded in batches too: done writes its answer at once when
// no other answer is being written, so that a call alone costs what it
// did; otherwise it only queues it, and the statement after the one under
// way writes every answer queued meanwhile. Flush waits for those.
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

	amu     sync.Mutex
	answers []answer      // answered calls not yet being written
	written chan struct{} // closed when the answers being written are; nil when none are
}

type gateKey struct{ appKey, endpoint string }

// gate queues one process's callers for one app and API behind the one
// that asks the database, the leader.
type gate struct {
	mu      sync.Mutex
	led     bool      // a caller leads, or the lead is on its way to one
	queue   []*waiter // the other callers, first come first
	created bool      // the slots exist; only the leader reads and writes it
}

// waiter is a caller queued on a gate. It gets one message, sent as it
// leaves the queue (with the gate's mu held).
type waiter struct{ msg chan message }

// message is what a queued caller gets: a turn, or else the lead, with how
// long until a slot is free by the database's last word (zero: ask).
type message struct {
	turn *turn
	wait time.Duration
}

// turn is a slot taken for one call, marked in flight by holder, a random
// id of the call. prevFreeAt and prevHolder are what the slot held before,
// to give the turn back.
type turn struct {
	slot       int32
	holder     int64
	prevFreeAt pgtype.Timestamptz // may be -infinity
	prevHolder *int64
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

// Flush waits until the answers of the calls done so far are written, or
// their statement has failed. A server calls it once it has stopped, before
// closing the pool: answers queued behind another statement would
// otherwise be lost, and their slots stay in flight until InFlightLimit. It
// may be called any number of times.
func (p *Postgres) Flush() {
	for {
		p.amu.Lock()
		written := p.written
		p.amu.Unlock()
		if written == nil {
			return
		}
		<-written
	}
}

type appLimiter struct {
	p      *Postgres
	appKey string
}

// Wait implements dingtalk.Limiter. It fails at once, matching
// dingtalk.ErrThrottled and context.DeadlineExceeded, when the first free
// slot comes too late for ctx's deadline, and with ErrThrottled and ctx's
// cause when ctx ends while it waits; a caller queued behind another of
// this process learns that only when ctx ends. A wait that fails takes no
// turn: one taken for it goes to another caller or back to the database.
// Errors of the database are returned as they are.
func (l *appLimiter) Wait(ctx context.Context, endpoint string) (func(), error) {
	if ctx.Err() != nil {
		return nil, throttled(endpoint, context.Cause(ctx))
	}
	g := l.p.gate(l.appKey, endpoint)
	var wait time.Duration
	g.mu.Lock()
	if g.led {
		w := &waiter{msg: make(chan message, 1)}
		g.queue = append(g.queue, w)
		g.mu.Unlock()
		m, err := l.receive(ctx, g, endpoint, w)
		if err != nil {
			return nil, err
		}
		if m.turn != nil {
			return l.p.done(l.appKey, endpoint, *m.turn), nil
		}
		wait = m.wait
	} else {
		g.led = true
		g.mu.Unlock()
	}
	t, err := l.lead(ctx, g, endpoint, wait)
	if err != nil {
		return nil, err
	}
	return l.p.done(l.appKey, endpoint, t), nil
}

// receive waits for w's message. When ctx ends first, w leaves the queue,
// and a turn or the lead sent to it meanwhile goes on (see pass).
func (l *appLimiter) receive(ctx context.Context, g *gate, endpoint string, w *waiter) (message, error) {
	select {
	case m := <-w.msg:
		if ctx.Err() == nil {
			return m, nil
		}
		l.pass(g, endpoint, m)
	case <-ctx.Done():
		g.mu.Lock()
		i := slices.Index(g.queue, w)
		if i >= 0 {
			g.queue = slices.Delete(g.queue, i, i+1)
		}
		g.mu.Unlock()
		if i < 0 {
			l.pass(g, endpoint, <-w.msg)
		}
	}
	return message{}, throttled(endpoint, context.Cause(ctx))
}

// lead asks the database for turns, for this caller and those queued
// behind it, sleeping first for wait and then as long as no slot is free;
// it hands out the turns and passes the lead to the first caller left.
func (l *appLimiter) lead(ctx context.Context, g *gate, endpoint string, wait time.Duration) (turn, error) {
	p := l.p
	for {
		if wait > 0 {
			if dl, ok := ctx.Deadline(); ok && wait >= time.Until(dl) {
				l.pass(g, endpoint, message{wait: wait})
				return turn{}, fmt.Errorf("dingtalk %s: shared rate limit needs a wait of %v, past the context deadline: %w: %w",
					endpoint, wait, dingtalk.ErrThrottled, context.DeadlineExceeded)
			}
			if err := p.sleep(ctx, wait); err != nil {
				l.pass(g, endpoint, message{})
				return turn{}, throttled(endpoint, err)
			}
		}
		if !g.created {
			if err := p.createSlots(ctx, l.appKey, endpoint); err != nil {
				l.pass(g, endpoint, message{})
				return turn{}, err
			}
			g.created = true
		}
		g.mu.Lock()
		k := min(1+len(g.queue), maxBatch)
		g.mu.Unlock()
		turns, next, err := p.take(ctx, l.appKey, endpoint, k)
		if err != nil {
			l.pass(g, endpoint, message{})
			return turn{}, err
		}
		// Even "none free, one was already" means a wait: another
		// replica holds that slot's row locked while taking it.
		next = max(next, minWait)
		if len(turns) == 0 {
			wait = next
			continue
		}
		mine, rest := turns[0], turns[1:]
		g.mu.Lock()
		for len(rest) > 0 && len(g.queue) > 0 {
			g.sendLocked(message{turn: &rest[0]})
			rest = rest[1:]
		}
		if len(g.queue) == 0 {
			g.led = false
		} else if len(turns) < k {
			g.sendLocked(message{wait: next}) // none was left
		} else {
			g.sendLocked(message{})
		}
		g.mu.Unlock()
		if len(rest) > 0 { // taken for callers who have gone since
			p.giveBack(l.appKey, endpoint, rest)
		}
		if ctx.Err() != nil {
			l.pass(g, endpoint, message{turn: &mine})
			return turn{}, throttled(endpoint, context.Cause(ctx))
		}
		return mine, nil
	}
}

// pass gives the message of a caller who has gone to the first caller
// queued. With none queued, a turn goes back to the database, and the lead
// ends.
func (l *appLimiter) pass(g *gate, endpoint string, m message) {
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.sendLocked(m)
		g.mu.Unlock()
		return
	}
	if m.turn == nil {
		g.led = false
	}
	g.mu.Unlock()
	if m.turn != nil {
		l.p.giveBack(l.appKey, endpoint, []turn{*m.turn})
	}
}

// sendLocked sends m to the first caller queued, which leaves the queue.
func (g *gate) sendLocked(m message) {
	g.queue[0].msg <- m
	g.queue = slices.Delete(g.queue, 0, 1)
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
		g = &gate{}
		p.gates[k] = g
	}
	return g
}

// clock is the time of the process, or Config.Now's.
func (p *Postgres) clock() time.Time {
	if p.now == nil {
		return time.Now()
	}
	return p.now()
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
	tag, err := p.pool.Exec(ctx, createSlotsSQL, appKey, endpoint, p.n)
	if err != nil {
		return fmt.Errorf("dingtalk %s: create shared rate limit slots: %w", endpoint, err)
	}
	if tag.RowsAffected() > 0 {
		// New slots, often in a table ANALYZE has never seen: without
		// statistics the planner recording answers chose to scan every slot
		// of the API, 0.65 ms a statement at 1,000 calls/s instead of a few
		// primary-key lookups (0.1 ms), until autovacuum analyzed the table.
		// The table is small; analyzing it is quick.
		if _, err := p.pool.Exec(ctx, `analyze dingtalk_rate_slots`); err != nil {
			p.logger.WarnContext(ctx, "could not analyze the shared rate limit slots", "err", err)
		}
	}
	return nil
}

// takeSQL takes the slots free longest, as many as are free up to one for
// each holder in $5, and marks each in flight until its answer, or at most
// until the in-flight limit ($6 is that limit plus a window); it returns
// them with what they held before. Locked rows are skipped: another caller
// is taking that slot. Each row also says, when fewer slots were taken
// than asked for, how long until the first slot not taken now is free, in
// microseconds: a slot in flight, including those just taken, is free a
// window ($7) after its answer, which could come at once. With no slot
// taken, that is the one row, with a null slot. Times in Postgres are
// whole microseconds, hence the wait rounded up. (Rows taken are updated
// by ctid, which they keep while locked: the plan then does not depend on
// the table's statistics.)
const takeSQL = `
with clock as (
	select coalesce($4::timestamptz, statement_timestamp()) as now
), pick as (
	select s.ctid, s.slot, s.free_at, s.holder from dingtalk_rate_slots s, clock
	where s.app_key = $1 and s.endpoint = $2 and s.slot < $3 and s.free_at <= clock.now
	order by s.free_at
	limit cardinality($5::bigint[])
	for update of s skip locked
), took as (
	update dingtalk_rate_slots s
	set holder = ($5::bigint[])[p.i], free_at = clock.now + $6::bigint * interval '1 microsecond'
	from (select pick.*, row_number() over () as i from pick) p, clock
	where s.ctid = p.ctid
	returning s.slot, s.holder, p.free_at as prev_free_at, p.holder as prev_holder
), first as (
	select min(case
		when s.slot in (select slot from pick) then clock.now + $7::bigint * interval '1 microsecond'
		when s.holder is not null then least(s.free_at, clock.now + $7::bigint * interval '1 microsecond')
		else s.free_at end) as free_at
	from dingtalk_rate_slots s, clock
	where s.app_key = $1 and s.endpoint = $2 and s.slot < $3
		and (select count(*) from pick) < cardinality($5::bigint[])
)
select took.slot, took.holder, took.prev_free_at, took.prev_holder,
	case when first.free_at is not null then
		ceil(extract(epoch from greatest(clock.now, first.free_at) - clock.now) * 1e6)::bigint
	end
from clock cross join first left join took on true`

// take runs takeSQL for up to k turns. With none, wait is how long until
// one is free; with fewer than k, it is until the next one is.
func (p *Postgres) take(ctx context.Context, appKey, endpoint string, k int) (turns []turn, wait time.Duration, err error) {
	ctx, cancel := statementContext(ctx)
	defer cancel()
	holders := make([]int64, k)
	for i := range holders {
		holders[i] = rand.Int64()
	}
	rows, err := p.pool.Query(ctx, takeSQL, appKey, endpoint, p.n, p.nowArg(), holders,
		(p.inFlight + p.window).Microseconds(), p.window.Microseconds())
	if err != nil {
		return nil, 0, fmt.Errorf("dingtalk %s: take turns of the shared rate limit: %w", endpoint, err)
	}
	defer rows.Close()
	var waitMicros *int64
	for rows.Next() {
		var t turn
		var slot *int32
		var holder *int64
		if err := rows.Scan(&slot, &holder, &t.prevFreeAt, &t.prevHolder, &waitMicros); err != nil {
			return nil, 0, fmt.Errorf("dingtalk %s: take turns of the shared rate limit: %w", endpoint, err)
		}
		if slot != nil {
			t.slot, t.holder = *slot, *holder
			turns = append(turns, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("dingtalk %s: take turns of the shared rate limit: %w", endpoint, err)
	}
	if waitMicros != nil {
		wait = time.Duration(*waitMicros) * time.Microsecond
	} else if len(turns) == 0 {
		// No slots below n: they were deleted while this process ran.
		return nil, 0, fmt.Errorf("dingtalk %s: the shared rate limit has no slots", endpoint)
	}
	return turns, wait, nil
}

// giveBackSQL undoes the taking of slots, while they are still the turns'
// (holder matches): nothing else can have changed them since, as a slot in
// flight is not free, and only its own answer records one.
const giveBackSQL = `
update dingtalk_rate_slots s
set free_at = g.free_at, holder = g.prev_holder
from unnest($3::integer[], $4::bigint[], $5::timestamptz[], $6::bigint[]) g(slot, holder, free_at, prev_holder)
where s.app_key = $1 and s.endpoint = $2 and s.slot = g.slot and s.holder = g.holder`

// giveBack returns turns no call has used, so that they are not counted
// as calls. If that fails, the slots stay in flight until the in-flight
// limit, which only delays other calls.
func (p *Postgres) giveBack(appKey, endpoint string, turns []turn) {
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	var slots []int32
	var holders []int64
	var freeAt []pgtype.Timestamptz
	var prevHolders []*int64
	for _, t := range turns {
		slots = append(slots, t.slot)
		holders = append(holders, t.holder)
		freeAt = append(freeAt, t.prevFreeAt)
		prevHolders = append(prevHolders, t.prevHolder)
	}
	if _, err := p.pool.Exec(ctx, giveBackSQL, appKey, endpoint, slots, holders, freeAt, prevHolders); err != nil {
		p.logger.WarnContext(ctx, "could not give back unused turns of the dingtalk shared rate limit",
			"app_key", appKey, "endpoint", endpoint, "turns", len(turns), "err", err)
	}
}

// answer is a call answered, to be recorded: at is when, on clock.
type answer struct {
	appKey, endpoint string
	slot             int32
	holder           int64
	at               time.Time
}

// done returns the done func of a turn. It records the answer even when
// the caller's context has ended: DingTalk has counted the call.
func (p *Postgres) done(appKey, endpoint string, t turn) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.answered(answer{appKey: appKey, endpoint: endpoint, slot: t.slot, holder: t.holder, at: p.clock()})
		})
	}
}

// answered records a, in a statement of its own when no other answers are
// being written; otherwise it queues a for the statement after the one
// under way, sent by a goroutine that goes on while answers queue.
func (p *Postgres) answered(a answer) {
	p.amu.Lock()
	p.answers = append(p.answers, a)
	if p.written != nil {
		p.amu.Unlock()
		return
	}
	p.written = make(chan struct{})
	p.amu.Unlock()
	if p.writeAnswers() {
		go func() {
			for p.writeAnswers() {
			}
		}()
	}
}

// writeAnswers writes the answers queued, in one statement, and reports
// whether more queued meanwhile; if none did, the writing ends.
func (p *Postgres) writeAnswers() (more bool) {
	p.amu.Lock()
	answers := p.answers
	p.answers = nil
	p.amu.Unlock()
	p.record(answers)
	p.amu.Lock()
	defer p.amu.Unlock()
	if len(p.answers) > 0 {
		return true
	}
	close(p.written)
	p.written = nil
	return false
}

// answeredSQL records that the calls in the slots were answered, each
// $2 - ago microseconds before now: the slot is free a window after its
// answer. ago is measured on this process's monotonic clock and now is the
// database's (or Config.Now's, $1), so that the replicas' clocks never
// enter into it; an answer recorded late only delays its slot. It changes
// nothing in a slot that has gone to another call (after the in-flight
// limit).
const answeredSQL = `
update dingtalk_rate_slots s
set holder = null,
	free_at = coalesce($1::timestamptz, statement_timestamp()) + ($2::bigint - a.ago) * interval '1 microsecond'
from unnest($3::text[], $4::text[], $5::integer[], $6::bigint[], $7::bigint[]) a(app_key, endpoint, slot, holder, ago)
where s.app_key = a.app_key and s.endpoint = a.endpoint and s.slot = a.slot and s.holder = a.holder
returning a.holder`

// record runs answeredSQL. If that fails, the slots stay in flight until
// the in-flight limit, which only delays other calls.
func (p *Postgres) record(answers []answer) {
	ctx, cancel := context.WithTimeout(context.Background(), statementTimeout)
	defer cancel()
	now := p.clock()
	var nowArg any
	if p.now != nil {
		nowArg = now
	}
	var appKeys, endpoints []string
	var slots []int32
	var holders, ago []int64
	for _, a := range answers {
		appKeys = append(appKeys, a.appKey)
		endpoints = append(endpoints, a.endpoint)
		slots = append(slots, a.slot)
		holders = append(holders, a.holder)
		ago = append(ago, now.Sub(a.at).Microseconds()) // rounded down: never earlier
	}
	rows, err := p.pool.Query(ctx, answeredSQL, nowArg, p.window.Microseconds(), appKeys, endpoints, slots, holders, ago)
	var recorded []int64
	if err == nil {
		recorded, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		p.logger.WarnContext(ctx, "could not record dingtalk answers in the shared rate limit",
			"answers", len(answers), "err", err)
		return
	}
	for _, a := range answers {
		if !slices.Contains(recorded, a.holder) {
			p.logger.WarnContext(ctx, "could not record a dingtalk answer in the shared rate limit",
				"app_key", a.appKey, "endpoint", a.endpoint, "slot", a.slot,
				"err", "the slot was taken back: the call took longer than the in-flight limit")
		}
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
