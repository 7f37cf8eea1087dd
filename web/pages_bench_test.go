package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/mapping/mappingtest"
)

// BenchmarkConsolePages measures the server time of every list and search page of the
// console, through the real handler and the Postgres store, on a directory of a million
// DingTalk identities (800,000 linked), 5,000 open requests and a trail of 200,000 audit
// events. Loading takes minutes, so it runs only with -bench:
//
//	go test -run '^$' -bench ConsolePages -benchtime 30x ./web/
//
// It prints a table of each page's median, 95th percentile and slowest time; the target
// is under 100 ms.
func BenchmarkConsolePages(b *testing.B) {
	now := time.Now()
	d := mappingtest.LoadDirectory(b, mappingtest.DirectorySize{
		Identities: 1_000_000, Linked: 800_000, OpenRequests: 5_000, AuditEvents: 200_000, Admins: 20,
	}, now)
	store := mapping.NewPostgres(d.Pool, mapping.Options{})
	s, err := New(Config{
		Issuer: "https://sso.example.com", ClientID: "dingbridge-admin", ClientSecret: "secret",
		BaseURL: "https://sso.example.com/admin", Store: store, AdminGroups: []string{"admins"},
		CookieHashKey: make([]byte, 32), CookieBlockKey: make([]byte, 32), Secure: true,
		// As in serve: every page also reads its session from Postgres.
		Sessions: NewPostgresSessions(d.Pool),
	})
	if err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/admin", s.Routes())
	admin := d.People[0].Account
	sess, err := s.startSession(b.Context(), admin.ID)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := s.cookies.writeSession(rec, sess); err != nil {
		b.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]

	p := func(i int) mappingtest.Person { return d.People[i] }
	q := url.QueryEscape
	day := func(t time.Time) string { return t.Format("2006-01-02T15:04") }
	pages := []struct{ name, path string }{
		{"overview", "/admin/"},
		{"accounts", "/admin/accounts"},
		{"accounts: search name 张伟", "/admin/accounts?q=" + q("张伟")},
		{"accounts: search pinyin", "/admin/accounts?q=" + p(4242).Pinyin},
		{"accounts: group admins (rare)", "/admin/accounts?group=admins"},
		{"accounts: group finance (10%)", "/admin/accounts?group=finance"},
		{"accounts: group nobody is in", "/admin/accounts?group=nobody"},
		{"accounts: group + search name", "/admin/accounts?group=finance&q=" + q("张伟")},
		{"accounts: disabled (none)", "/admin/accounts?status=disabled"},
		{"accounts: enabled", "/admin/accounts?status=enabled"},
		{"account detail", "/admin/accounts/" + p(4242).Account.ID},
		{"identities", "/admin/identities"},
		{"identities: Chinese name", "/admin/identities?q=" + q(p(4242).Identity.Name)},
		{"identities: common name 张伟", "/admin/identities?q=" + q("张伟")},
		{"identities: pinyin", "/admin/identities?q=" + p(4242).Pinyin},
		{"identities: userId", "/admin/identities?q=" + p(123_456).Identity.UserID},
		{"identities: unionId", "/admin/identities?q=" + p(31_337).Identity.UnionID},
		{"identities: mobile", "/admin/identities?q=" + p(777).Identity.Mobile},
		{"identities: job number", "/admin/identities?q=" + p(654_321).Identity.JobNumber},
		{"identities: unlinked", "/admin/identities?link=unlinked"},
		{"identities: unlinked + name", "/admin/identities?link=unlinked&q=" + q("张伟")},
		{"identities: linked", "/admin/identities?link=linked"},
		{"pending", "/admin/pending"},
		{"audit", "/admin/audit"},
		{"audit: actor", "/admin/audit?actor=" + p(3).Account.Username},
		{"audit: action", "/admin/audit?action=account.disable"},
		{"audit: rare action", "/admin/audit?action=" + d.RareAction},
		{"audit: action family", "/admin/audit?action=account."},
		{"audit: target account", "/admin/audit?target=" + p(4242).Account.Username},
		{"audit: target identity", "/admin/audit?target=" + q(p(900_001).Identity.CorpID+"/"+p(900_001).Identity.UserID)},
		{"audit: last 24 h", "/admin/audit?since=" + day(now.Add(-24*time.Hour))},
		{"audit: a day 30 days ago", "/admin/audit?since=" + day(now.AddDate(0, 0, -30)) + "&until=" + day(now.AddDate(0, 0, -29))},
		{"audit: actor + a week ago", "/admin/audit?actor=" + p(3).Account.Username + "&since=" + day(now.AddDate(0, 0, -8)) + "&until=" + day(now.AddDate(0, 0, -7))},
		{"audit: sign-in failures 24 h", "/admin/audit?action=signin.&since=" + day(now.Add(-24*time.Hour))},
	}
	type result struct {
		name                string
		p50, p95, max       time.Duration
		rows, bytes, status int
	}
	var results []result
	for _, pg := range pages {
		b.Run(pg.name, func(b *testing.B) {
			var times []time.Duration
			var res result
			for b.Loop() {
				req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "https://sso.example.com"+pg.path, nil)
				req.AddCookie(cookie)
				w := httptest.NewRecorder()
				start := time.Now()
				r.ServeHTTP(w, req)
				times = append(times, time.Since(start))
				body := w.Body.String()
				if w.Code != http.StatusOK || strings.Contains(body, `role="alert"`) {
					b.Fatalf("%s: status %d:\n%s", pg.path, w.Code, body)
				}
				res.rows = strings.Count(body, "<tr data-user-id") + strings.Count(body, "<tr data-username") +
					strings.Count(body, `<li class="event"`) + strings.Count(body, `<section class="card request"`)
				res.bytes = len(body)
			}
			slices.Sort(times)
			res.name, res.p50, res.p95, res.max = pg.name, times[len(times)/2], times[len(times)*95/100], times[len(times)-1]
			b.ReportMetric(float64(res.p50.Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(res.p95.Microseconds())/1000, "ms-p95")
			if len(times) > 1 {
				results = append(results, res)
			}
		})
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\tp50 ms\tp95 ms\tmax ms\trows\tKiB\t")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t\n", r.name, ms(r.p50), ms(r.p95), ms(r.max), r.rows, r.bytes/1024)
	}
	tw.Flush()

	counts(b, d, store, now)
	signInCost(b, d, store)
}

// counts compares the overview's figures with exact counts, and says what the exact
// counts cost.
func counts(b *testing.B, d mappingtest.Directory, store *mapping.Postgres, now time.Time) {
	ctx := context.Background()
	y, m, day := now.Date()
	midnight := time.Date(y, m, day, 0, 0, 0, 0, now.Location())
	start := time.Now()
	st, err := store.Stats(ctx, mapping.StatsQuery{SignedInSince: midnight, FailuresSince: now.Add(-24 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("Stats: %s\n", time.Since(start).Round(10*time.Microsecond))
	for _, c := range []struct {
		name string
		got  mapping.Count
		sql  string
		args []any
	}{
		{"accounts", st.Accounts, `select count(*) from accounts`, nil},
		{"identities", st.Identities, `select count(*) from dingtalk_identities`, nil},
		{"linked", st.Linked, `select count(*) from dingtalk_identities where account_id is not null`, nil},
		{"unlinked", st.Unlinked, `select count(*) from dingtalk_identities where account_id is null`, nil},
		{"open requests", st.OpenRequests, `select count(*) from pending_requests where status = 'open'`, nil},
		{"signed in today", st.SignIns, `select count(*) from dingtalk_identities where last_login_at >= $1`, []any{midnight}},
	} {
		var exact int64
		start := time.Now()
		if err := d.Pool.QueryRow(ctx, c.sql, c.args...).Scan(&exact); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		mark := ""
		if c.got.Estimate {
			mark = "≈"
		}
		fmt.Printf("%-16s overview %s%d, exact %d (%+.1f%%), exact count took %s\n", c.name, mark, c.got.N, exact,
			100*(float64(c.got.N)-float64(exact))/float64(max(exact, 1)), took.Round(100*time.Microsecond))
	}
}

// signInCost measures what an index on last_login_at costs sign-ins: the mean time of
// RecordSignIn, and how many of its updates stay HOT (touching no index), with and
// without the index.
func signInCost(b *testing.B, d mappingtest.Directory, store *mapping.Postgres) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	measure := func() (time.Duration, float64) {
		var before, beforeHot int64
		stat := `select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables where relname = 'dingtalk_identities'`
		_ = d.Pool.QueryRow(ctx, `select pg_stat_force_next_flush()`).Scan(new(any))
		_ = d.Pool.QueryRow(ctx, stat).Scan(&before, &beforeHot)
		const n = 500
		start := time.Now()
		for range n {
			if _, _, err := store.RecordSignIn(ctx, d.People[rng.IntN(800_000)].Identity); err != nil {
				b.Fatal(err)
			}
		}
		mean := time.Since(start) / n
		time.Sleep(time.Second) // statistics reach pg_stat_user_tables asynchronously
		var after, afterHot int64
		_ = d.Pool.QueryRow(ctx, stat).Scan(&after, &afterHot)
		return mean, float64(afterHot-beforeHot) / float64(max(after-before, 1))
	}
	exec := func(sql string) {
		if _, err := d.Pool.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	measure() // warm the cache
	without, hotWithout := measure()
	exec(`create index dingtalk_identities_last_login_idx on dingtalk_identities (last_login_at)`)
	with, hotWith := measure()
	exec(`drop index dingtalk_identities_last_login_idx`)
	again, hotAgain := measure()
	fmt.Printf("RecordSignIn, 500 known people each: without an index on last_login_at %s, %.0f%% HOT updates; "+
		"with it %s, %.0f%% HOT; without again %s, %.0f%% HOT\n",
		without.Round(10*time.Microsecond), hotWithout*100, with.Round(10*time.Microsecond), hotWith*100,
		again.Round(10*time.Microsecond), hotAgain*100)
}
