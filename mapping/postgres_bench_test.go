package mapping

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// Benchmarks against a directory of a million DingTalk identities (800,000 linked to
// their own account, 200,000 recorded by sign-in attempts and not linked), loaded with
// COPY once per benchmark function. They run only with -bench, e.g.
//
//	go test -run '^$' -bench . -benchtime 2000x ./mapping/
const (
	benchIdentities = 1_000_000
	benchAccounts   = 800_000
	benchCorp       = "dingcorpbench"
)

// Names in the proportions of a Chinese directory: a few surnames are very common.
var (
	benchSurnames = []struct{ han, pinyin string }{
		{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"}, {"黄", "huang"},
		{"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"}, {"马", "ma"}, {"朱", "zhu"},
		{"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"高", "gao"}, {"林", "lin"}, {"罗", "luo"}, {"郑", "zheng"},
		{"梁", "liang"}, {"谢", "xie"}, {"宋", "song"}, {"唐", "tang"}, {"许", "xu"}, {"韩", "han"}, {"冯", "feng"},
		{"邓", "deng"}, {"曹", "cao"}, {"彭", "peng"}, {"曾", "zeng"}, {"肖", "xiao"}, {"田", "tian"}, {"董", "dong"},
		{"袁", "yuan"}, {"潘", "pan"}, {"于", "yu"}, {"蒋", "jiang"}, {"蔡", "cai"}, {"余", "yu"}, {"杜", "du"},
	}
	benchGiven = []struct{ han, pinyin string }{
		{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"}, {"强", "qiang"},
		{"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"}, {"杰", "jie"}, {"娟", "juan"},
		{"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"秀", "xiu"}, {"霞", "xia"}, {"平", "ping"}, {"刚", "gang"},
		{"桂", "gui"}, {"英", "ying"}, {"华", "hua"}, {"文", "wen"}, {"辉", "hui"}, {"玲", "ling"}, {"建", "jian"},
		{"国", "guo"}, {"小", "xiao"}, {"红", "hong"}, {"梅", "mei"}, {"鹏", "peng"}, {"飞", "fei"}, {"宇", "yu"},
		{"浩", "hao"}, {"晨", "chen"}, {"欣", "xin"}, {"雪", "xue"}, {"慧", "hui"}, {"婷", "ting"}, {"俊", "jun"},
		{"斌", "bin"}, {"琳", "lin"}, {"博", "bo"}, {"志", "zhi"}, {"鑫", "xin"}, {"海", "hai"}, {"云", "yun"},
		{"龙", "long"}, {"子", "zi"}, {"轩", "xuan"}, {"怡", "yi"}, {"佳", "jia"}, {"睿", "rui"}, {"嘉", "jia"},
	}
)

// benchPerson is one generated employee: an identity, and an account for the first
// benchAccounts of them.
type benchPerson struct {
	id      Identity
	account Account // zero ID: not linked
}

func benchPeople(n int) []benchPerson {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	people := make([]benchPerson, n)
	for i := range people {
		// Zipf-like: the first surnames take most of the directory.
		s := benchSurnames[min(int(rng.ExpFloat64()*6), len(benchSurnames)-1)]
		g1 := benchGiven[rng.IntN(len(benchGiven))]
		han, pinyin := s.han+g1.han, s.pinyin+g1.pinyin
		if rng.IntN(3) > 0 {
			g2 := benchGiven[rng.IntN(len(benchGiven))]
			han, pinyin = han+g2.han, pinyin+g2.pinyin
		}
		userID := fmt.Sprintf("%018d", 100_000_000_000_000_000+rng.Int64N(900_000_000_000_000_000))
		if i%20 == 0 {
			userID = fmt.Sprintf("%s%d", pinyin, i)
		}
		id := Identity{
			CorpID: benchCorp, UserID: userID, UnionID: fmt.Sprintf("z%027x", rng.Uint64()^uint64(i)<<20), AppKey: "benchapp",
			Name: han, Mobile: fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1_000_000_000)),
			JobNumber: fmt.Sprintf("E%06d", i), OrgEmail: fmt.Sprintf("%s%d@corp.example.com", pinyin, i), Active: true,
		}
		people[i].id = id
		if i < benchAccounts {
			people[i].account = Account{
				ID: NewID(), Username: fmt.Sprintf("%s%d", pinyin, i), DisplayName: han, Email: id.OrgEmail,
				EmailVerified: true, Phone: id.Mobile, CreatedAt: now, UpdatedAt: now, Version: 1,
			}
		}
	}
	return people
}

// loadBench returns a pool on a fresh database holding the generated directory. It
// copies the rows in with the secondary indexes dropped and builds them afterwards, the
// usual way to bulk-load, so the indexes end up exactly as the migration defines them.
func loadBench(b *testing.B) (*pgxpool.Pool, []benchPerson) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	pool := pgtest.NewDatabase(b)
	people := benchPeople(benchIdentities)

	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	rows, _ := conn.Query(ctx, `select indexname, indexdef from pg_indexes
		where tablename in ('accounts', 'dingtalk_identities') and indexname not like '%pkey'`)
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Def string }])
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range defs {
		exec("drop index " + d.Name)
	}
	// The rows are consistent by construction; skip the per-row foreign key checks.
	exec("set session_replication_role = replica")
	exec("set maintenance_work_mem = '1GB'")

	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"accounts"},
		[]string{"id", "username", "display_name", "email", "email_verified", "phone", "email_key", "phone_key",
			"search_doc", "search_cjk", "created_at", "updated_at", "version"},
		pgx.CopyFromSlice(benchAccounts, func(i int) ([]any, error) {
			a := people[i].account
			doc := accountDoc(a)
			return []any{a.ID, a.Username, a.DisplayName, a.Email, true, a.Phone, emailKey(a.Email), phoneKey(a.Phone),
				doc, nonNil(cjkBigrams(nil, doc)), now, now, int64(1)}, nil
		}))
	if err != nil {
		b.Fatalf("copy accounts: %v", err)
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"dingtalk_identities"},
		[]string{"corp_id", "user_id", "union_id", "app_key", "account_id", "source", "name", "mobile", "org_email",
			"job_number", "active", "search_doc", "search_cjk", "search_account", "account_cjk", "created_at", "updated_at", "version"},
		pgx.CopyFromSlice(benchIdentities, func(i int) ([]any, error) {
			p := people[i]
			doc := identityDoc(p.id)
			var accountID any
			source, acctDoc := "login", ""
			if p.account.ID != "" {
				accountID, source, acctDoc = p.account.ID, "import", accountDoc(p.account)
			}
			return []any{p.id.CorpID, p.id.UserID, p.id.UnionID, p.id.AppKey, accountID, source, p.id.Name, p.id.Mobile,
				p.id.OrgEmail, p.id.JobNumber, true, doc, nonNil(cjkBigrams(nil, doc)), acctDoc,
				nonNil(cjkBigrams(nil, acctDoc)), now, now, int64(1)}, nil
		}))
	if err != nil {
		b.Fatalf("copy identities: %v", err)
	}
	copied := time.Since(start)
	exec("set session_replication_role = origin")
	for _, d := range defs {
		exec(d.Def)
	}
	exec("vacuum analyze accounts")
	exec("vacuum analyze dingtalk_identities")
	b.Logf("loaded %d identities and %d accounts: generate and copy %s, indexes and analyze %s",
		benchIdentities, benchAccounts, copied.Round(time.Second), (time.Since(start) - copied).Round(time.Second))
	return pool, people
}

// BenchmarkResolve resolves known, linked identities: one sign-in each (find the row,
// read the account, refresh the snapshot and last sign-in time, commit).
func BenchmarkResolve(b *testing.B) {
	pool, people := loadBench(b)
	store := NewPostgres(pool, Options{})
	r, err := NewResolver(ResolverConfig{Store: store, Corps: []Corp{{ID: benchCorp}}})
	if err != nil {
		b.Fatal(err)
	}
	pick := rand.New(rand.NewPCG(3, 4))
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.Resolve(b.Context(), people[pick.IntN(benchAccounts)].id, Meta{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 5))
			for pb.Next() {
				if _, err := r.Resolve(context.Background(), people[rng.IntN(benchAccounts)].id, Meta{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkSearch asks for the first page of the admin page's search, as an
// administrator would type it; with -v it prints each query's plan.
func BenchmarkSearch(b *testing.B) {
	pool, people := loadBench(b)
	store := NewPostgres(pool, Options{})
	queries := []struct{ name, text string }{
		{"name_fragment", "小明"},
		{"common_name", "张伟"},
		{"full_name", people[4242].id.Name},
		{"pinyin", "zhangwei"},
		{"user_id", people[123_456].id.UserID},
		{"user_id_fragment", people[123_456].id.UserID[6:14]},
		{"job_number", people[654_321].id.JobNumber},
		{"mobile_suffix", people[777].id.Mobile[7:]},
		{"org_email", people[99].id.OrgEmail},
		{"union_id", people[31_337].id.UnionID},
		{"one_character", "鑫"},
		{"no_match", "nobody-here"},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var n int
			for b.Loop() {
				page, err := store.Search(b.Context(), Query{Text: q.text})
				if err != nil {
					b.Fatal(err)
				}
				n = len(page.Results)
			}
			b.ReportMetric(float64(n), "results")
			tq, err := prepareText(q.text)
			if err != nil {
				b.Fatal(err)
			}
			sql, args := searchSQL(tq, nil, DefaultPageSize+1)
			rows, _ := pool.Query(context.Background(), "explain (analyze, buffers, costs off) "+sql, args...)
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				b.Fatal(err)
			}
			if testing.Verbose() {
				// Not b.Logf: benchmark logs are cut to ten lines.
				fmt.Printf("EXPLAIN (ANALYZE, BUFFERS) of the search for %q:\n%s\n\n", q.text, strings.Join(plan, "\n"))
			}
		})
	}
}
