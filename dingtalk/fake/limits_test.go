package fake_test

// DingTalk's limits (§9.3) against the simulator: the client's per-endpoint
// rate limiter, and its retry of throttled answers — idempotent calls only,
// never a single-use code exchange, never the monthly quota.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/dingtalk"
	"github.com/dingbridge/dingbridge/dingtalk/fake"
)

// sleeper is the clients' Config.Sleep in these tests: it records each wait
// and, when clock is set, advances that clock by it instead of waiting.
type sleeper struct {
	clock *clock

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

func (s *sleeper) Total() time.Duration {
	var sum time.Duration
	for _, d := range s.Waits() {
		sum += d
	}
	return sum
}

// limitsContract is a contract without the log and endpoint bookkeeping of
// TestContract.
func limitsContract(t *testing.T) *contract {
	t.Helper()
	return &contract{
		log:       &syncBuffer{},
		secrets:   &secretSet{vals: map[string]bool{}},
		succeeded: &endpointSet{ok: map[string]bool{}},
	}
}

// limitCall is one client call of the limits tests.
type limitCall func(t *testing.T, h *harness, cl *dingtalk.Client) error

func limitCalls() map[string]limitCall {
	return map[string]limitCall{
		"AppToken": func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
			_, err := cl.AppToken(t.Context())
			return err
		},
		"User": func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
			_, err := cl.User(t.Context(), "zhangsan")
			return err
		},
		"UserIDByUnionID": func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
			u := employee(t, fake.DefaultFixture(), fake.DemoCorpID, "zhangsan")
			_, _, err := cl.UserIDByUnionID(t.Context(), u.UnionID)
			return err
		},
		"SubDepartments": func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
			_, err := cl.SubDepartments(t.Context(), dingtalk.RootDeptID)
			return err
		},
		"DepartmentUsers": func(t *testing.T, _ *harness, cl *dingtalk.Client) error {
			_, _, _, err := cl.DepartmentUsers(t.Context(), dingtalk.RootDeptID, 0, 10)
			return err
		},
		"Me": func(t *testing.T, h *harness, cl *dingtalk.Client) error {
			tok, err := cl.UserToken(t.Context(), h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, "zhangsan"))
			if err != nil {
				t.Fatalf("UserToken: %v", err)
			}
			_, err = cl.Me(t.Context(), tok.AccessToken)
			return err
		},
	}
}

func TestThrottledCallRetried(t *testing.T) {
	// Fault{Times: 2}: two throttled answers, then the real one. Idempotent
	// calls wait twice (200 ms, then 400 ms, each with jitter down to half)
	// and succeed well within the 3 s budget.
	c := limitsContract(t)
	calls := limitCalls()
	for _, tt := range []struct {
		name     string
		endpoint string
		fault    fake.Fault
		legacy   bool
		call     string
	}{
		{"90018 on U2", fake.EndpointUser, fake.Fault{Errcode: 90018}, false, "User"},
		{"90002 on U2", fake.EndpointUser, fake.Fault{Errcode: 90002}, false, "User"},
		{"90006 on U1", fake.EndpointUserByUnionID, fake.Fault{Errcode: 90006}, false, "UserIDByUnionID"},
		{"90018 on D1", fake.EndpointDepartmentSub, fake.Fault{Errcode: 90018}, false, "SubDepartments"},
		{"90018 on D5", fake.EndpointUserList, fake.Fault{Errcode: 90018}, false, "DepartmentUsers"},
		{"QpsLimitForAppkeyAndApi on A1", fake.EndpointAppToken, fake.Fault{Errcode: 90018}, false, "AppToken"},
		{"QpsLimitForApi on A1", fake.EndpointAppToken, fake.Fault{Errcode: 90002}, false, "AppToken"},
		{"90018 on A2", fake.EndpointGetToken, fake.Fault{Errcode: 90018}, true, "AppToken"},
		{"QpsLimitForAppkeyAndApi on L3", fake.EndpointContactUser, fake.Fault{Errcode: 90018}, false, "Me"},
		{"punish page on U2", fake.EndpointUser, fake.Fault{PunishPage: true}, false, "User"},
		{"punish page on A2", fake.EndpointGetToken, fake.Fault{PunishPage: true}, true, "AppToken"},
		{"punish JSON on A1", fake.EndpointAppToken, fake.Fault{PunishPage: true}, false, "AppToken"},
		{"punish JSON on L3", fake.EndpointContactUser, fake.Fault{PunishPage: true}, false, "Me"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, func(cfg *dingtalk.Config) { cfg.LegacyTokenEndpoint = tt.legacy })
			f := tt.fault
			f.Times = 2
			h.sim.InjectFault(tt.endpoint, f)
			if err := calls[tt.call](t, h, cl); err != nil {
				t.Fatalf("%s: %v, want success after two retries", tt.call, err)
			}
			if got := h.sim.Calls(tt.endpoint); got != 3 {
				t.Errorf("Calls(%s) = %d, want 3 (two throttled, one answered)", tt.endpoint, got)
			}
			waits := h.sleep.Waits()
			if len(waits) != 2 {
				t.Fatalf("waits = %v, want 2", waits)
			}
			for i, hi := range []time.Duration{200 * time.Millisecond, 400 * time.Millisecond} {
				if waits[i] < hi/2 || waits[i] > hi {
					t.Errorf("wait %d = %v, want within [%v, %v]", i+1, waits[i], hi/2, hi)
				}
			}
		})
	}
}

func TestThrottleBudgetSpent(t *testing.T) {
	// A throttle that does not lift is retried until the waits would pass
	// the budget; the last answer is returned.
	c := limitsContract(t)
	for _, tt := range []struct {
		name     string
		budget   time.Duration
		minCalls int // with the jitter at its largest
		maxCalls int // with the jitter at its smallest
	}{
		// Waits of 200/400/800/1000 ms at most fit 3 s; at least half of
		// 200/400/800/1000/1000/1000/1000 ms, 2.7 s, also fit.
		{"default 3s", 0, 5, 8},
		// At most 200 ms fits; 100 + 200 ms at least may.
		{"500ms", 500 * time.Millisecond, 2, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, func(cfg *dingtalk.Config) { cfg.ThrottleBudget = tt.budget })
			h.sim.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 90018})
			_, err := cl.User(t.Context(), "zhangsan")
			h.wantErr(t, "User", err, dingtalk.ErrThrottled)
			wantCode(t, "User", err, "90018")
			budget := orDefault(tt.budget, 3*time.Second)
			if got := h.sleep.Total(); got > budget {
				t.Errorf("waited %v in all, want at most the %v budget", got, budget)
			}
			if got := h.sim.Calls(fake.EndpointUser); got < tt.minCalls || got > tt.maxCalls {
				t.Errorf("Calls(U2) = %d, want %d to %d", got, tt.minCalls, tt.maxCalls)
			}
			if got, want := len(h.sleep.Waits()), h.sim.Calls(fake.EndpointUser)-1; got != want {
				t.Errorf("waits = %d, want %d (one before each retry)", got, want)
			}
		})
	}
}

// orDefault returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestCodeExchangeNeverRetried(t *testing.T) {
	// L2, H1, H2 and S3 spend a single-use code (L2 refresh: a refresh
	// token that may rotate). Whether a throttled exchange left it unspent
	// is not documented, so a throttled answer is returned at once.
	c := limitsContract(t)
	// Each exchange calls inject just before it sends the exchange.
	type exchange func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error
	exchanges := []struct {
		name     string
		endpoint string
		call     exchange
	}{
		{"L2 UserToken", fake.EndpointUserToken, func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error {
			code := h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, "zhangsan")
			inject()
			_, err := cl.UserToken(t.Context(), code)
			return err
		}},
		{"L2 RefreshUserToken", fake.EndpointUserToken, func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error {
			tok, err := cl.UserToken(t.Context(), h.loginCode(t, fake.DemoAppKey, fake.DemoCorpID, "zhangsan"))
			if err != nil {
				t.Fatalf("UserToken: %v", err)
			}
			inject()
			_, err = cl.RefreshUserToken(t.Context(), tok.RefreshToken)
			return err
		}},
		{"H1 UserInfoByAuthCode", fake.EndpointUserInfoByCode, func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error {
			code := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
			inject()
			_, err := cl.UserInfoByAuthCode(t.Context(), code)
			return err
		}},
		{"H2 UserInfoByAuthCodeLegacy", fake.EndpointLegacyUserInfo, func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error {
			code := h.jsapiCode(t, fake.DemoCorpID, fake.DemoAppKey, "zhangsan")
			inject()
			_, err := cl.UserInfoByAuthCodeLegacy(t.Context(), code)
			return err
		}},
		{"S3 SNSUserInfoByCode", fake.EndpointSNSUserInfo, func(t *testing.T, h *harness, cl *dingtalk.Client, inject func()) error {
			code := h.snsCode(t, fake.DemoSNSAppID, "zhangsan")
			inject()
			_, err := cl.SNSUserInfoByCode(t.Context(), code)
			return err
		}},
	}
	faults := []struct {
		name  string
		fault fake.Fault
	}{
		{"90018", fake.Fault{Errcode: 90018}},
		{"90002", fake.Fault{Errcode: 90002}},
		{"punish page", fake.Fault{PunishPage: true}},
	}
	for _, ex := range exchanges {
		for _, ft := range faults {
			t.Run(ex.name+"/"+ft.name, func(t *testing.T) {
				h := c.newHarness(t, fake.Options{})
				cl := h.client(t, nil)
				f := ft.fault
				f.Times = 1
				before := 0
				err := ex.call(t, h, cl, func() {
					before = h.sim.Calls(ex.endpoint)
					h.sim.InjectFault(ex.endpoint, f)
				})
				h.wantErr(t, ex.name, err, dingtalk.ErrThrottled)
				if got := h.sim.Calls(ex.endpoint) - before; got != 1 {
					t.Errorf("Calls(%s) = %d, want exactly 1: a code exchange is never retried", ex.endpoint, got)
				}
				if got := h.sleep.Waits(); len(got) != 0 {
					t.Errorf("waits = %v, want none", got)
				}
			})
		}
	}
}

func TestMonthlyQuotaNotRetried(t *testing.T) {
	// 90020 / ApiCountLimitForOrg lasts until the month ends: no wait helps.
	c := limitsContract(t)
	calls := limitCalls()
	for _, tt := range []struct {
		name     string
		endpoint string
		call     string
	}{
		{"A1", fake.EndpointAppToken, "AppToken"},
		{"U2", fake.EndpointUser, "User"},
		{"D5", fake.EndpointUserList, "DepartmentUsers"},
		{"L3", fake.EndpointContactUser, "Me"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, nil)
			h.sim.InjectFault(tt.endpoint, fake.Fault{Errcode: 90020, Times: 1})
			err := calls[tt.call](t, h, cl)
			h.wantErr(t, tt.call, err, dingtalk.ErrThrottled)
			if got := h.sim.Calls(tt.endpoint); got != 1 {
				t.Errorf("Calls(%s) = %d, want 1", tt.endpoint, got)
			}
			if got := h.sleep.Waits(); len(got) != 0 {
				t.Errorf("waits = %v, want none", got)
			}
		})
	}
}

func TestThrottleRetryRespectsDeadline(t *testing.T) {
	// No wait is begun that would end past the caller's deadline; the call
	// returns the throttled answer while the context is still live.
	c := limitsContract(t)
	for _, tt := range []struct {
		name      string
		deadline  time.Duration
		wantCalls int // 0: not checked
	}{
		{"shorter than the first wait", 90 * time.Millisecond, 1},
		{"a few waits", 700 * time.Millisecond, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := c.newHarness(t, fake.Options{})
			cl := h.client(t, nil)
			if _, err := cl.AppToken(t.Context()); err != nil {
				t.Fatalf("AppToken: %v", err)
			}
			h.sim.InjectFault(fake.EndpointUser, fake.Fault{Errcode: 90018})
			ctx, cancel := context.WithTimeout(t.Context(), tt.deadline)
			defer cancel()
			_, err := cl.User(ctx, "zhangsan")
			h.wantErr(t, "User", err, dingtalk.ErrThrottled)
			if ctx.Err() != nil {
				t.Errorf("User returned after the deadline: %v", err)
			}
			for _, w := range h.sleep.Waits() {
				if w >= tt.deadline {
					t.Errorf("waited %v, want every wait shorter than the %v deadline", w, tt.deadline)
				}
			}
			if got := h.sim.Calls(fake.EndpointUser); tt.wantCalls != 0 && got != tt.wantCalls {
				t.Errorf("Calls(U2) = %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	// N calls to one endpoint at rate R, against a simulator that enforces
	// R calls per second: none is refused, because the client lets R
	// through per window of a second and a guard (two windows for 12 calls
	// at 5/s); another endpoint has its own window.
	const rate, calls = 5, 12
	c := limitsContract(t)
	h := c.newHarness(t, fake.Options{})
	h.sim.SetRateLimit(rate)
	cl := h.client(t, func(cfg *dingtalk.Config) { cfg.RateLimit = rate })
	user, unionID := limitCalls()["User"], limitCalls()["UserIDByUnionID"]
	start := h.clock.Now()
	for i := range calls {
		if err := user(t, h, cl); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if got, min, max := h.clock.Now().Sub(start), 2*time.Second, 3*time.Second; got < min || got > max {
		t.Errorf("%d calls at %d/s took %v of fake time, want between %v and %v", calls, rate, got, min, max)
	}
	if got := h.sim.Calls(fake.EndpointUser); got != calls {
		t.Errorf("Calls(U2) = %d, want %d", got, calls)
	}
	if got := h.sim.Throttled(fake.EndpointUser); got != 0 {
		t.Errorf("the simulator refused %d calls, want none", got)
	}
	before := len(h.sleep.Waits())
	for range rate {
		if err := unionID(t, h, cl); err != nil {
			t.Fatalf("UserIDByUnionID: %v", err)
		}
	}
	if got := len(h.sleep.Waits()); got != before {
		t.Errorf("waits = %d after another endpoint's %d calls, want %d: it has its own window", got, rate, before)
	}
}

func TestSimulatorEnforcesRateLimit(t *testing.T) {
	// Without a limiter of its own (a rate far above the simulator's), the
	// client's calls beyond the simulator's limit within one second are
	// refused as DingTalk refuses them, until the second has passed.
	const limit = 3
	c := limitsContract(t)
	h := c.newHarness(t, fake.Options{})
	h.sim.SetRateLimit(limit)
	cl := h.client(t, func(cfg *dingtalk.Config) { cfg.RateLimit = 1000; cfg.ThrottleBudget = time.Nanosecond })
	user := limitCalls()["User"]
	var refused int
	for range limit + 2 {
		if err := user(t, h, cl); err != nil {
			if !errors.Is(err, dingtalk.ErrThrottled) {
				t.Fatalf("User: %v, want success or ErrThrottled", err)
			}
			refused++
		}
	}
	if refused != 2 || h.sim.Throttled(fake.EndpointUser) != 2 {
		t.Errorf("refused %d calls (simulator: %d), want 2", refused, h.sim.Throttled(fake.EndpointUser))
	}
	h.clock.Advance(time.Second)
	if err := user(t, h, cl); err != nil {
		t.Errorf("User a second later: %v", err)
	}
}

func TestRateLimitSharedByGoroutines(t *testing.T) {
	// Goroutines sharing a Client share its windows. The clock stands
	// still, so each call beyond the first window's waits one window after
	// the answer to the call n before it, whoever makes it.
	const rate, goroutines, each = 5, 4, 5
	c := limitsContract(t)
	h := c.newHarness(t, fake.Options{})
	h.sleep = &sleeper{} // records, does not advance the clock
	cl := h.client(t, func(cfg *dingtalk.Config) { cfg.RateLimit = rate })
	user := limitCalls()["User"]
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := user(t, h, cl); err != nil {
					t.Errorf("User: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := h.sleep.Waits()
	slices.Sort(got)
	var want []time.Duration
	window := time.Second + 20*time.Millisecond // dingtalk's windowGuard
	for range goroutines*each - rate {
		want = append(want, window)
	}
	if !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if got := h.sim.Calls(fake.EndpointUser); got != goroutines*each {
		t.Errorf("Calls(U2) = %d, want %d", got, goroutines*each)
	}
}

func TestRateLimitDeadline(t *testing.T) {
	// A caller whose deadline comes before its turn fails at once with an
	// error matching both ErrThrottled and context.DeadlineExceeded, and
	// DingTalk is not called.
	c := limitsContract(t)
	h := c.newHarness(t, fake.Options{})
	h.sleep = &sleeper{}
	cl := h.client(t, func(cfg *dingtalk.Config) { cfg.RateLimit = 1 })
	if err := limitCalls()["User"](t, h, cl); err != nil {
		t.Fatalf("User: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := cl.User(ctx, "zhangsan")
	if !errors.Is(err, dingtalk.ErrThrottled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to match ErrThrottled and context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Error("User returned after the deadline, want at once")
	}
	if got := h.sim.Calls(fake.EndpointUser); got != 1 {
		t.Errorf("Calls(U2) = %d, want 1", got)
	}
	if got := h.sleep.Waits(); len(got) != 0 {
		t.Errorf("waits = %v, want none", got)
	}
}
