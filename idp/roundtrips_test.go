package idp

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/dingtalk/fake"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// statementCounter is a pgx tracer that counts, per step of a sign-in, the
// statements the provider sends to Postgres and the round trips they take
// (a batch is one round trip for all its statements). The step is the
// label withStep put on the request's context; statements without one
// (background work) count under "other". Prepares are not counted: pgx
// prepares each statement once per connection and caches it, so they
// depend on which connection a request gets, not on the code.
type statementCounter struct {
	mu         sync.Mutex
	statements map[string]int
	trips      map[string]int
	sql        map[string][]string // step → statements, for -v
}

type stepKey struct{}

func newStatementCounter() *statementCounter {
	c := &statementCounter{}
	c.reset()
	return c
}

func (c *statementCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statements, c.trips, c.sql = map[string]int{}, map[string]int{}, map[string][]string{}
}

func stepOf(ctx context.Context) string {
	if s, ok := ctx.Value(stepKey{}).(string); ok {
		return s
	}
	return "other"
}

func (c *statementCounter) count(ctx context.Context, sql string, trip bool) {
	step := stepOf(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.statements[step]++
	if trip {
		c.trips[step]++
	}
	c.sql[step] = append(c.sql[step], strings.Join(strings.Fields(sql), " "))
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.count(ctx, d.SQL, true)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.mu.Lock()
	c.trips[stepOf(ctx)]++
	c.mu.Unlock()
	return ctx
}

func (c *statementCounter) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.count(ctx, d.SQL, false)
}

func (c *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// snapshot returns the counts so far and resets them.
func (c *statementCounter) snapshot() (statements, trips map[string]int, sql map[string][]string) {
	c.mu.Lock()
	statements, trips, sql = c.statements, c.trips, c.sql
	c.mu.Unlock()
	c.reset()
	return statements, trips, sql
}

// withStep labels each request with the sign-in step its path is.
func withStep(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		step := strings.Trim(r.URL.Path, "/")
		if strings.HasPrefix(r.URL.Path, pathLoginCallback) {
			step = "callback"
		}
		if r.URL.Path == pathToken {
			step = "token"
			if r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
				step = "refresh"
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stepKey{}, step)))
	})
}

// countingPool returns a pool on a fresh migrated database whose
// statements c counts.
func countingPool(t *testing.T, c *statementCounter) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = c
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// roundTripBudget is the most round trips to Postgres each step of a
// sign-in may take, as counted after the optimisation of the sign-in path.
// It guards against regressions: a count, unlike a time, is exact. Raise a
// figure only with a reason a reviewer accepts.
var roundTripBudget = map[string]map[string]int{
	// callback: upstream transaction and request 1, mapping lookup 1,
	// profile refresh time 1, mapping.RecordSignIn 5, session and
	// completion 1.
	"fresh": {"authorize": 1, "login": 2, "callback": 5, "token": 3, "userinfo": 2, "refresh": 3},
	"sso":   {"authorize": 1, "login": 3, "token": 3},
}

// TestRoundTripsPerSignIn counts what one fresh DingTalk sign-in (a known
// identity with a fresh profile, the common case), its userinfo and
// refresh, and one SSO sign-in of a second app send to Postgres, step by
// step (printed with -v), and holds each step to roundTripBudget.
func TestRoundTripsPerSignIn(t *testing.T) {
	counter := newStatementCounter()
	d := newDingTalkEnv(t, dtOptions{pool: countingPool(t, counter)})
	h := withStep(d.p.Handler())
	d.handler.Store(&h)
	rp := d.rp(appID, appSecret, appRedirect)
	rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
	params := authParams("scope", "openid profile email offline_access")

	signIn := func(b *dtBrowser) string {
		d.sim.SetAutoApprove(fake.DemoCorpID, "zhangsan")
		_, tok := d.signIn(b.browser, rp, params)
		if got := d.userinfo(tok.AccessToken); got.status != http.StatusOK {
			t.Fatalf("userinfo = %d %v", got.status, got.body)
		}
		tr := d.token(appID, appSecret, "basic", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		if tr.status != http.StatusOK {
			t.Fatalf("refresh = %d %v", tr.status, tr.body)
		}
		return tok.AccessToken
	}
	// The first sign-in refreshes the profile snapshot and warms the app
	// token and the key set: not the common case, not counted.
	signIn(d.browser(uaDingTalk, false))
	counter.reset()

	b := d.browser(uaDingTalk, false)
	signIn(b)
	fresh, freshTrips, freshSQL := counter.snapshot()
	d.signIn(b.browser, d.rp(otherID, otherSecret, otherRedir), authParams("client_id", otherID, "redirect_uri", otherRedir))
	sso, ssoTrips, ssoSQL := counter.snapshot()

	for _, run := range []struct {
		name              string
		statements, trips map[string]int
		sql               map[string][]string
	}{
		{"fresh", fresh, freshTrips, freshSQL},
		{"sso", sso, ssoTrips, ssoSQL},
	} {
		budget := roundTripBudget[run.name]
		total := 0
		for _, step := range slices.Sorted(maps.Keys(run.trips)) {
			total += run.trips[step]
			t.Logf("%s sign-in, %-9s %2d round trips, %2d statements", run.name, step+":", run.trips[step], run.statements[step])
			if testing.Verbose() {
				for _, s := range run.sql[step] {
					t.Logf("    %.140s", s)
				}
			}
			limit, ok := budget[step]
			if !ok {
				t.Errorf("%s sign-in: step %q sent %d round trips to Postgres, want none", run.name, step, run.trips[step])
				continue
			}
			if run.trips[step] > limit {
				t.Errorf("%s sign-in: step %q took %d round trips to Postgres, want at most %d", run.name, step, run.trips[step], limit)
			}
		}
		t.Logf("%s sign-in: %d round trips in all", run.name, total)
		for step := range budget {
			if run.trips[step] == 0 {
				t.Errorf("%s sign-in: step %q sent nothing to Postgres; is the step still counted? (%v)", run.name, step, fmt.Sprint(run.trips))
			}
		}
	}
}
