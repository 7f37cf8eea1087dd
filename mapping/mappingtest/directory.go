package mappingtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// DirectorySize says how big a directory LoadDirectory makes.
type DirectorySize struct {
	Identities   int // DingTalk identities in one corp
	Linked       int // the first Linked of them have an account each; the rest are not linked
	OpenRequests int // unlinked identities waiting in the pending queue
	AuditEvents  int // a trail of sign-in refusals, failures and administrators' changes
	Admins       int // accounts (among the first) that act in the trail
}

// Person is one generated employee.
type Person struct {
	Identity mapping.Identity
	Pinyin   string          // the name in pinyin, as people search for it
	Account  mapping.Account // zero ID: not linked
}

// Directory is a loaded directory.
type Directory struct {
	Pool   *pgxpool.Pool
	People []Person
	Corp   string
	// Actions lists the trail's actions; a rare one is in it a few times only.
	RareAction string
}

// DirectoryCorp is the corp of a generated directory.
const DirectoryCorp = "dingcorpbench"

// LoadDirectory returns a pool on a fresh, migrated database holding a generated directory
// as large as size, as of now: names in the proportions of a Chinese directory, sign-ins
// over the last two months (a quarter of the linked people today, in now's time zone), and
// a trail spread over the last 90 days. It copies the rows in with the secondary indexes
// dropped and builds them afterwards, the usual way to bulk-load, so the indexes end up
// exactly as the migrations define them; then it vacuums and analyzes, as autovacuum would.
func LoadDirectory(tb testing.TB, size DirectorySize, now time.Time) Directory {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	d := Directory{Pool: pgtest.NewDatabase(tb), People: people(size, now), Corp: DirectoryCorp, RareAction: "account.delete"}
	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	exec := func(sql string) {
		tb.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	rows, _ := conn.Query(ctx, `select indexname, indexdef from pg_indexes
		where tablename in ('accounts', 'dingtalk_identities', 'audit_log') and indexname not like '%pkey'`)
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Name, Def string }])
	if err != nil {
		tb.Fatal(err)
	}
	for _, def := range defs {
		exec("drop index " + def.Name)
	}
	// The rows are consistent by construction; skip the per-row foreign key checks.
	exec("set session_replication_role = replica")
	exec("set maintenance_work_mem = '512MB'")

	var accounts []mapping.Account
	byID := map[string]*mapping.Account{}
	bindings := make([]mapping.Binding, len(d.People))
	for i := range d.People {
		p := &d.People[i]
		if p.Account.ID != "" {
			accounts = append(accounts, p.Account)
			byID[p.Account.ID] = &p.Account
		}
		bindings[i] = mapping.Binding{Identity: p.Identity, AccountID: p.Account.ID, Source: mapping.SourceImport,
			CreatedAt: p.Account.CreatedAt, UpdatedAt: p.Account.CreatedAt, Version: 1}
		if p.Account.ID == "" {
			bindings[i].Source, bindings[i].CreatedAt, bindings[i].UpdatedAt = mapping.SourceLogin, now.AddDate(0, 0, -30), now.AddDate(0, 0, -30)
		}
	}
	signIns(bindings, size.Linked, now)
	if err := mapping.CopyAccounts(ctx, conn.Conn(), accounts); err != nil {
		tb.Fatal(err)
	}
	if err := mapping.CopyIdentities(ctx, conn.Conn(), bindings, func(id string) *mapping.Account { return byID[id] }); err != nil {
		tb.Fatal(err)
	}
	copyRequests(tb, conn.Conn(), d.People[size.Linked:][:min(size.OpenRequests, size.Identities-size.Linked)], now)
	copyTrail(tb, conn.Conn(), d.People, size, now, d.RareAction)
	copied := time.Since(start)
	exec("set session_replication_role = origin")
	for _, def := range defs {
		exec(def.Def)
	}
	for _, table := range []string{"accounts", "dingtalk_identities", "pending_requests", "audit_log"} {
		exec("vacuum analyze " + table)
	}
	tb.Logf("loaded %d identities (%d linked), %d open requests, %d audit events: generate and copy %s, indexes and vacuum %s",
		size.Identities, size.Linked, size.OpenRequests, size.AuditEvents, copied.Round(time.Second), (time.Since(start) - copied).Round(time.Second))
	return d
}

// Names in the proportions of a Chinese directory: a few surnames are very common.
var (
	surnames = []struct{ han, pinyin string }{
		{"王", "wang"}, {"李", "li"}, {"张", "zhang"}, {"刘", "liu"}, {"陈", "chen"}, {"杨", "yang"}, {"黄", "huang"},
		{"赵", "zhao"}, {"吴", "wu"}, {"周", "zhou"}, {"徐", "xu"}, {"孙", "sun"}, {"马", "ma"}, {"朱", "zhu"},
		{"胡", "hu"}, {"郭", "guo"}, {"何", "he"}, {"高", "gao"}, {"林", "lin"}, {"罗", "luo"}, {"郑", "zheng"},
		{"梁", "liang"}, {"谢", "xie"}, {"宋", "song"}, {"唐", "tang"}, {"许", "xu"}, {"韩", "han"}, {"冯", "feng"},
		{"邓", "deng"}, {"曹", "cao"}, {"彭", "peng"}, {"曾", "zeng"}, {"肖", "xiao"}, {"田", "tian"}, {"董", "dong"},
	}
	givenNames = []struct{ han, pinyin string }{
		{"伟", "wei"}, {"芳", "fang"}, {"娜", "na"}, {"敏", "min"}, {"静", "jing"}, {"丽", "li"}, {"强", "qiang"},
		{"磊", "lei"}, {"军", "jun"}, {"洋", "yang"}, {"勇", "yong"}, {"艳", "yan"}, {"杰", "jie"}, {"娟", "juan"},
		{"涛", "tao"}, {"明", "ming"}, {"超", "chao"}, {"秀", "xiu"}, {"霞", "xia"}, {"平", "ping"}, {"刚", "gang"},
		{"桂", "gui"}, {"英", "ying"}, {"华", "hua"}, {"文", "wen"}, {"辉", "hui"}, {"玲", "ling"}, {"建", "jian"},
		{"国", "guo"}, {"小", "xiao"}, {"红", "hong"}, {"梅", "mei"}, {"鹏", "peng"}, {"飞", "fei"}, {"宇", "yu"},
		{"浩", "hao"}, {"晨", "chen"}, {"欣", "xin"}, {"雪", "xue"}, {"慧", "hui"}, {"婷", "ting"}, {"俊", "jun"},
	}
)

func people(size DirectorySize, now time.Time) []Person {
	rng := rand.New(rand.NewPCG(1, 2))
	created := now.AddDate(-1, 0, 0).UTC().Truncate(time.Microsecond)
	out := make([]Person, size.Identities)
	for i := range out {
		// Zipf-like: the first surnames take most of the directory.
		s := surnames[min(int(rng.ExpFloat64()*6), len(surnames)-1)]
		g := givenNames[rng.IntN(len(givenNames))]
		han, pinyin := s.han+g.han, s.pinyin+g.pinyin
		if rng.IntN(3) > 0 {
			g2 := givenNames[rng.IntN(len(givenNames))]
			han, pinyin = han+g2.han, pinyin+g2.pinyin
		}
		userID := fmt.Sprintf("%018d", 100_000_000_000_000_000+rng.Int64N(900_000_000_000_000_000))
		if i%20 == 0 {
			userID = fmt.Sprintf("%s%d", pinyin, i)
		}
		id := mapping.Identity{
			CorpID: DirectoryCorp, UserID: userID, UnionID: fmt.Sprintf("z%027x", rng.Uint64()^uint64(i)<<20), AppKey: "benchapp",
			Name: han, Mobile: fmt.Sprintf("1%d%09d", 3+rng.IntN(7), rng.IntN(1_000_000_000)),
			JobNumber: fmt.Sprintf("E%06d", i), OrgEmail: fmt.Sprintf("%s%d@corp.example.com", pinyin, i), Active: true,
		}
		out[i] = Person{Identity: id, Pinyin: pinyin}
		if i < size.Linked {
			out[i].Account = mapping.Account{
				ID: mapping.NewID(), Username: fmt.Sprintf("%s%d", pinyin, i), DisplayName: han, Email: id.OrgEmail,
				EmailVerified: true, Phone: id.Mobile, CreatedAt: created, UpdatedAt: created, Version: 1,
			}
			if i < size.Admins {
				out[i].Account.Groups = []string{"admins"}
			}
			if i%10 == 3 {
				// A large group, a tenth of the accounts: the console's group filter must
				// stay fast for both rare and common groups.
				out[i].Account.Groups = append(out[i].Account.Groups, "finance")
			}
		}
	}
	return out
}

// signIns gives the linked identities their last sign-in: a quarter today (since
// midnight in now's time zone), most of the rest over the last 60 days, some never.
func signIns(bs []mapping.Binding, linked int, now time.Time) {
	rng := rand.New(rand.NewPCG(5, 6))
	y, m, d := now.Date()
	sinceMidnight := now.Sub(time.Date(y, m, d, 0, 0, 0, 0, now.Location()))
	for i := range bs[:linked] {
		switch r := rng.IntN(100); {
		case r < 25:
			bs[i].LastLoginAt = now.Add(-time.Duration(rng.Int64N(int64(sinceMidnight) + 1)))
		case r < 85:
			bs[i].LastLoginAt = now.Add(-sinceMidnight - time.Duration(rng.Int64N(int64(60*24*time.Hour))))
		}
		bs[i].LastLoginAt = bs[i].LastLoginAt.UTC().Truncate(time.Microsecond)
	}
}

func copyRequests(tb testing.TB, conn *pgx.Conn, ps []Person, now time.Time) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 8))
	_, err := conn.CopyFrom(context.Background(), pgx.Identifier{"pending_requests"},
		[]string{"id", "corp_id", "user_id", "status", "attempts", "first_seen_at", "last_seen_at", "suggested_account_ids"},
		pgx.CopyFromSlice(len(ps), func(i int) ([]any, error) {
			last := now.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour))))
			return []any{mapping.NewID(), ps[i].Identity.CorpID, ps[i].Identity.UserID, "open", 1 + rng.IntN(3),
				last.Add(-time.Hour), last, []string{}}, nil
		}))
	if err != nil {
		tb.Fatalf("copy pending requests: %v", err)
	}
}

// copyTrail writes size.AuditEvents audit rows, oldest first, over the last 90 days:
// refused and failed sign-ins, administrators signing in and changing accounts and links,
// and a rare action a handful of times.
func copyTrail(tb testing.TB, conn *pgx.Conn, ps []Person, size DirectorySize, now time.Time, rare string) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(9, 10))
	n := size.AuditEvents
	span := 90 * 24 * time.Hour
	ip := netip.MustParseAddr("192.0.2.10")
	person := func() Person { return ps[rng.IntN(len(ps))] }
	linked := func() Person { return ps[rng.IntN(size.Linked)] }
	acct := func(p Person, disabled bool) []byte {
		b, _ := json.Marshal(map[string]any{"id": p.Account.ID, "username": p.Account.Username, "display_name": p.Account.DisplayName,
			"email": p.Account.Email, "disabled": disabled, "version": 1})
		return b
	}
	detail := func(kv ...string) []byte {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return b
	}
	_, err := conn.CopyFrom(context.Background(), pgx.Identifier{"audit_log"},
		[]string{"at", "actor", "action", "target_type", "target_id", "before", "after", "request_id", "client_ip"},
		pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			at := now.Add(-span + time.Duration(int64(span)/int64(n)*int64(i)))
			admin := ps[rng.IntN(size.Admins)].Account.ID
			reqID := fmt.Sprintf("req-%d", i)
			switch r := rng.IntN(100); {
			case i%(n/10) == 5:
				p := linked()
				return []any{at, admin, rare, "account", p.Account.ID, acct(p, false), nil, reqID, ip}, nil
			case r < 40:
				p := person()
				reason := []string{"not_linked", "not_linked", "not_linked", "account_disabled", "identity_disabled", "corp_not_allowed"}[rng.IntN(6)]
				return []any{at, "system", "signin.deny", "identity", p.Identity.CorpID + "/" + p.Identity.UserID, nil, detail("reason", reason), reqID, ip}, nil
			case r < 60:
				reason := []string{"dingtalk_error", "state_expired", "user_denied"}[rng.IntN(3)]
				return []any{at, "system", "signin.fail", "signin", "", nil, detail("reason", reason, "mode", "qr"), reqID, ip}, nil
			case r < 75:
				return []any{at, admin, "admin.signin", "account", admin, nil, nil, reqID, ip}, nil
			case r < 85:
				p := linked()
				return []any{at, admin, "account.update", "account", p.Account.ID, acct(p, false), acct(p, false), reqID, ip}, nil
			case r < 90:
				p := linked()
				key := p.Identity.CorpID + "/" + p.Identity.UserID
				return []any{at, admin, "identity.link", "identity", key, detail("account_id", ""), detail("account_id", p.Account.ID), reqID, ip}, nil
			case r < 93:
				p := linked()
				return []any{at, admin, "account.disable", "account", p.Account.ID, acct(p, false), acct(p, true), reqID, ip}, nil
			case r < 98:
				p := ps[size.Linked+rng.IntN(len(ps)-size.Linked)]
				return []any{at, "login", "identity.create", "identity", p.Identity.CorpID + "/" + p.Identity.UserID, nil, detail("name", p.Identity.Name), reqID, ip}, nil
			default:
				return []any{at, admin, "request.approve", "request", mapping.NewID(), nil, detail("status", "approved"), reqID, ip}, nil
			}
		}))
	if err != nil {
		tb.Fatalf("copy audit trail: %v", err)
	}
}
