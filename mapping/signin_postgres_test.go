package mapping

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// Tests of RecordSignIn's one-statement path on Postgres (signInSQL): how many statements
// a sign-in costs, that the statement and the transaction it stands in for leave the same
// results, that it keeps sign-in updates HOT, and that it stays safe beside an
// administrator's changes. The conformance suite (mappingtest) runs it too.

// statements records the statements a pool runs, for counting round trips.
type statements struct {
	mu   sync.Mutex
	sql  []string
	tags []string // command tags, in the order the statements ended
}

func (s *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sql = append(s.sql, d.SQL)
	return context.WithValue(ctx, statementKey{}, d.SQL)
}

func (s *statements) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	if ctx.Value(statementKey{}) != signInSQL {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tags = append(s.tags, d.CommandTag.String())
}

type statementKey struct{}

// take returns the statements run since the last take.
func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sql
	s.sql = nil
	return out
}

// fellBack counts the runs of signInSQL that updated nothing.
func (s *statements) fellBack() (n, of int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tag := range s.tags {
		if tag == "UPDATE 0" {
			n++
		}
	}
	return n, len(s.tags)
}

// tracedPool returns a pool of up to conns connections on a fresh migrated database,
// whose statements st records.
func tracedPool(t *testing.T, st *statements, conns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	cfg.ConnConfig.Tracer = st
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// transactionOnly hides pgBackend's signInStatement: RecordSignIn on it always runs the
// transaction, as it did before the statement existed.
type transactionOnly struct{ backend }

func newTransactionOnly(pool *pgxpool.Pool, opts Options) *Postgres {
	p := NewPostgres(pool, opts)
	p.core = newCore(transactionOnly{pgBackend{pool}}, opts)
	return p
}

// testClock is a clock that tests set.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var signInAdmin = Meta{Actor: "admin-1"}

// signInFixture creates the identities the sign-in tests sign in as:
//
//	u1  unionId union1, openId open1 (app1), linked to zhangsan
//	u2  no unionId, not linked
//	u3  unionId union3 (app1), linked to lisi, disabled
//	u4  no unionId, linked to wangwu, whose account is disabled
func signInFixture(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	for _, a := range []Account{
		{ID: "acct-zs", Username: "zhangsan", DisplayName: "张三", Email: "zs@corp.example.com"},
		{ID: "acct-ls", Username: "lisi", DisplayName: "李四"},
		{ID: "acct-ww", Username: "wangwu", DisplayName: "王五"},
	} {
		if _, err := s.CreateAccount(ctx, signInAdmin, a); err != nil {
			t.Fatalf("CreateAccount(%s): %v", a.Username, err)
		}
	}
	for _, b := range []Binding{
		{Identity: Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", OpenID: "open1", AppKey: "app1",
			Name: "张三", Mobile: "13800000001", JobNumber: "E001", DeptIDs: []int64{1}, Active: true}, AccountID: "acct-zs"},
		{Identity: Identity{CorpID: "corp1", UserID: "u2", Name: "赵六"}},
		{Identity: Identity{CorpID: "corp1", UserID: "u3", UnionID: "union3", AppKey: "app1", Name: "李四"}, AccountID: "acct-ls"},
		{Identity: Identity{CorpID: "corp1", UserID: "u4", Name: "王五"}, AccountID: "acct-ww"},
	} {
		if _, err := s.CreateBinding(ctx, signInAdmin, b); err != nil {
			t.Fatalf("CreateBinding(%s): %v", b.Key(), err)
		}
	}
	if _, err := s.SetBindingDisabled(ctx, signInAdmin, Key{CorpID: "corp1", UserID: "u3"}, true); err != nil {
		t.Fatalf("SetBindingDisabled(u3): %v", err)
	}
	if _, err := s.SetAccountDisabled(ctx, signInAdmin, "acct-ww", true); err != nil {
		t.Fatalf("SetAccountDisabled(wangwu): %v", err)
	}
}

// The transaction costs five statements (begin, lock the identity, read its account,
// update it, commit); the common sign-in costs one.
func TestRecordSignInOneStatement(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(*pgxpool.Pool, Options) *Postgres
		want int
	}{
		{"statement", NewPostgres, 1},
		{"transaction only", newTransactionOnly, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var st statements
			s := tt.open(tracedPool(t, &st, 1), Options{Now: newTestClock().Now})
			signInFixture(t, s)
			id := Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", AppKey: "app1", Name: "张三"}
			for i := range 3 {
				st.take()
				if _, _, err := s.RecordSignIn(t.Context(), id); err != nil {
					t.Fatalf("RecordSignIn: %v", err)
				}
				if got := st.take(); len(got) != tt.want {
					t.Errorf("sign-in %d ran %d statements, want %d:\n%s", i+1, len(got), tt.want, strings.Join(got, "\n---\n"))
				}
			}
		})
	}
}

// Every sign-in leaves the same results, returned and stored, whether the statement
// records it or the transaction does; the statement records the common ones and leaves
// the others to the transaction.
func TestRecordSignInStatementMatchesTransaction(t *testing.T) {
	const (
		statement   = "statement"   // signInSQL alone
		fallback    = "fallback"    // signInSQL updates nothing; the transaction follows
		transaction = "transaction" // no userId: only the transaction
	)
	tests := []struct {
		name      string
		id        Identity
		path      string
		signsIn   bool   // sets last_login_at
		wantUnion string // the row's unionId afterwards
		wantErr   error
	}{
		{"linked, same unionId, new profile and openId",
			Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", OpenID: "open1b", AppKey: "app1",
				Name: "张三丰", Mobile: "13800000009", OrgEmail: "zs@corp.example.com", Email: "zs@example.com",
				JobNumber: "E009", Title: "工程师", DeptIDs: []int64{2, 3}, Active: true},
			statement, true, "union1", nil},
		{"linked, profile unchanged",
			Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", OpenID: "open1", AppKey: "app1",
				Name: "张三", Mobile: "13800000001", JobNumber: "E001", DeptIDs: []int64{1}, Active: true},
			statement, true, "union1", nil},
		{"no unionId, no dept ids", Identity{CorpID: "corp1", UserID: "u1", Name: "  张三 "}, statement, true, "union1", nil},
		{"unionId and openId of another app are not taken",
			Identity{CorpID: "corp1", UserID: "u1", UnionID: "unionX", OpenID: "openX", AppKey: "app2"},
			statement, true, "union1", nil},
		{"openId of another app is not taken", Identity{CorpID: "corp1", UserID: "u1", OpenID: "openY", AppKey: "app2"},
			statement, true, "union1", nil},
		{"openId of the same app without unionId", Identity{CorpID: "corp1", UserID: "u1", OpenID: "openZ", AppKey: "app1"},
			statement, true, "union1", nil},
		{"not linked", Identity{CorpID: "corp1", UserID: "u2", Name: "赵六六", OpenID: "open2", AppKey: "app1"},
			statement, false, "", nil},
		{"disabled identity", Identity{CorpID: "corp1", UserID: "u3", UnionID: "union3", AppKey: "app1", Name: "李四四"},
			statement, false, "union3", nil},
		{"disabled account", Identity{CorpID: "corp1", UserID: "u4", Name: "王五五"}, statement, false, "", nil},

		{"unknown userId", Identity{CorpID: "corp1", UserID: "u9"}, fallback, false, "", ErrNotFound},
		{"unknown userId, unionId of another row", Identity{CorpID: "corp1", UserID: "u9", UnionID: "union1", AppKey: "app1"},
			fallback, false, "", ErrNotFound},
		{"no userId, found by unionId", Identity{CorpID: "corp1", UnionID: "union1", AppKey: "app1", Name: "张三"},
			transaction, true, "union1", nil},
		{"not linked, learns a unionId", Identity{CorpID: "corp1", UserID: "u2", UnionID: "union2", OpenID: "open2", AppKey: "app1"},
			fallback, false, "union2", nil},
		{"linked, learns a new unionId of its app", Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1b", AppKey: "app1"},
			fallback, true, "union1b", nil},
		{"unionId held by another row", Identity{CorpID: "corp1", UserID: "u2", UnionID: "union1", OpenID: "open2", AppKey: "app1"},
			fallback, false, "", nil},
		{"disabled account, learns a unionId", Identity{CorpID: "corp1", UserID: "u4", UnionID: "union4", AppKey: "app1"},
			fallback, false, "union4", nil},
		{"disabled identity, new unionId", Identity{CorpID: "corp1", UserID: "u3", UnionID: "union3b", AppKey: "app1"},
			fallback, false, "union3b", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			type result struct {
				b      Binding
				a      *Account
				err    error
				ran    []string // statements of the sign-in
				tables string
			}
			var st statements
			run := func(s *Postgres, pool *pgxpool.Pool, clock *testClock) result {
				t.Helper()
				signInFixture(t, s)
				clock.Advance(time.Hour)
				st.take()
				b, a, err := s.RecordSignIn(t.Context(), tt.id)
				return result{b, a, err, st.take(), dumpTables(t, pool)}
			}
			fastClock, txClock := newTestClock(), newTestClock()
			fastPool := tracedPool(t, &st, 1)
			txPool := pgtest.NewDatabase(t)
			got := run(NewPostgres(fastPool, Options{Now: fastClock.Now}), fastPool, fastClock)
			want := run(newTransactionOnly(txPool, Options{Now: txClock.Now}), txPool, txClock)
			ran := got.ran

			switch {
			case tt.path == statement && (len(ran) != 1 || ran[0] != signInSQL),
				tt.path == fallback && (len(ran) < 2 || ran[0] != signInSQL),
				tt.path == transaction && slices.Contains(ran, signInSQL):
				t.Errorf("ran %d statements, want the %s path:\n%s", len(ran), tt.path, strings.Join(ran, "\n---\n"))
			}
			if !errors.Is(got.err, tt.wantErr) || fmt.Sprint(got.err) != fmt.Sprint(want.err) {
				t.Fatalf("error = %v, want %v (the transaction's: %v)", got.err, tt.wantErr, want.err)
			}
			if tt.wantErr != nil {
				return
			}
			if got.tables != want.tables {
				t.Errorf("tables after the sign-in:\n%s\nwant (after the transaction):\n%s", got.tables, want.tables)
			}
			if !reflect.DeepEqual(normalized(got.b), normalized(want.b)) || !reflect.DeepEqual(got.a, want.a) {
				t.Errorf("RecordSignIn = %+v, %+v\nwant (the transaction's) %+v, %+v", got.b, got.a, want.b, want.a)
			}
			if signedIn := got.b.LastLoginAt.Equal(fastClock.Now()); signedIn != tt.signsIn {
				t.Errorf("last_login_at = %v, set now = %t, want %t", got.b.LastLoginAt, signedIn, tt.signsIn)
			}
			if got.b.UnionID != tt.wantUnion {
				t.Errorf("unionId = %q, want %q", got.b.UnionID, tt.wantUnion)
			}
			if got.b.Version != want.b.Version || got.b.UpdatedAt != want.b.UpdatedAt {
				t.Errorf("version, updated_at = %d, %v; want them unchanged: %d, %v", got.b.Version, got.b.UpdatedAt, want.b.Version, want.b.UpdatedAt)
			}
		})
	}
}

// normalized is b with nil dept ids as empty: the transaction returns the sign-in's
// slice, the statement what Postgres stored.
func normalized(b Binding) Binding {
	b.DeptIDs = nonNil(b.DeptIDs)
	return b
}

// dumpTables returns every column of the mapping's tables (audit rows counted: their ids
// and times come from the database).
func dumpTables(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	err := pool.QueryRow(t.Context(), `select concat_ws(E'\n',
		(select jsonb_agg(to_jsonb(i) order by corp_id, user_id) from dingtalk_identities i),
		(select jsonb_agg(to_jsonb(a) order by id) from accounts a),
		(select jsonb_agg(to_jsonb(r) - 'id' order by corp_id, user_id) from pending_requests r),
		(select 'audit rows: ' || count(*) from audit_log))`).Scan(&out)
	if err != nil {
		t.Fatalf("dump tables: %v", err)
	}
	return strings.ReplaceAll(out, `}, {`, "},\n{")
}

// Sign-ins that change no indexed value stay HOT updates, as the transaction's do
// (web/pages_bench_test.go measures it at a million rows).
func TestRecordSignInStaysHOT(t *testing.T) {
	var st statements
	pool := tracedPool(t, &st, 1) // one connection: the one whose statistics are flushed
	clock := newTestClock()
	s := NewPostgres(pool, Options{Now: clock.Now})
	signInFixture(t, s)
	ctx := t.Context()
	updates := func() (n, hot int64) {
		t.Helper()
		// A backend sends its statistics when idle, at most once a second unless told to.
		if _, err := pool.Exec(ctx, `select pg_stat_force_next_flush()`); err != nil {
			t.Fatal(err)
		}
		err := pool.QueryRow(ctx, `select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables
			where relname = 'dingtalk_identities'`).Scan(&n, &hot)
		if err != nil {
			t.Fatal(err)
		}
		return n, hot
	}
	signIn := func(id Identity) {
		t.Helper()
		clock.Advance(time.Minute)
		st.take()
		if _, _, err := s.RecordSignIn(ctx, id); err != nil {
			t.Fatalf("RecordSignIn: %v", err)
		}
		if ran := st.take(); len(ran) != 1 {
			t.Fatalf("RecordSignIn ran %d statements, want 1", len(ran))
		}
	}
	id := Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", OpenID: "open1", AppKey: "app1",
		Name: "张三", Mobile: "13800000001", JobNumber: "E001", DeptIDs: []int64{1}, Active: true}
	n0, hot0 := updates()
	for range 10 {
		signIn(id)
	}
	id.Title, id.DeptIDs, id.OpenID = "工程师", []int64{7, 8}, "open1b" // not indexed
	signIn(id)
	n1, hot1 := updates()
	if n1-n0 != 11 || hot1-hot0 != 11 {
		t.Errorf("11 sign-ins made %d updates, %d of them HOT; want all HOT", n1-n0, hot1-hot0)
	}
	// The check can tell: a new name changes the search document, which is indexed.
	id.Name = "张三丰"
	signIn(id)
	if n2, hot2 := updates(); n2-n1 != 1 || hot2 != hot1 {
		t.Errorf("a renaming sign-in made %d updates, %d HOT; want 1, not HOT", n2-n1, hot2-hot1)
	}
}

// Sign-ins racing an administrator who links, unlinks, disables and enables the identity
// never undo the administrator's change and never set last_login_at on an identity that
// is disabled or not linked at the moment it is written. A trigger checks the latter on
// every write; the statement's guard (the row is still cur's version) is what keeps it
// true, since the sign-in's snapshot may predate the administrator's change.
func TestRecordSignInRacesAdmin(t *testing.T) {
	var st statements
	pool := tracedPool(t, &st, 8)
	ctx := t.Context()
	_, err := pool.Exec(ctx, `
		create function test_sign_in_resolves() returns trigger language plpgsql as $$
		begin
			if new.last_login_at is distinct from old.last_login_at and (new.status = 'disabled' or new.account_id is null) then
				raise exception 'last_login_at set on identity % (status %, account %)', new.user_id, new.status, new.account_id;
			end if;
			return new;
		end $$;
		create trigger test_sign_in_resolves before update on dingtalk_identities
			for each row execute function test_sign_in_resolves()`)
	if err != nil {
		t.Fatal(err)
	}
	// Every call of the clock a new time, so that each sign-in that resolves changes
	// last_login_at and the trigger sees it.
	var (
		mu   sync.Mutex
		tick = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick = tick.Add(time.Millisecond)
		return tick
	}
	s := NewPostgres(pool, Options{Now: now})
	if _, err := s.CreateAccount(ctx, signInAdmin, Account{ID: "acct-zs", Username: "zhangsan"}); err != nil {
		t.Fatal(err)
	}
	k := Key{CorpID: "corp1", UserID: "u1"}
	b, err := s.CreateBinding(ctx, signInAdmin, Binding{Identity: Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", AppKey: "app1"}, AccountID: "acct-zs"})
	if err != nil {
		t.Fatal(err)
	}

	const workers, rounds = 6, 15
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		// check fails unless the administrator's change is what is stored, although
		// sign-ins keep writing the row.
		check := func(what string, got Binding, err error) {
			if err != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			b = got
			stored, err := s.Binding(ctx, k)
			if err != nil || stored.AccountID != b.AccountID || stored.Disabled != b.Disabled || stored.Version != b.Version || stored.Source != b.Source {
				t.Errorf("after %s: stored %+v, %v; want account %q, disabled %t, version %d", what, stored, err, b.AccountID, b.Disabled, b.Version)
			}
		}
		for range rounds {
			got, err := s.SetBindingDisabled(ctx, signInAdmin, k, true)
			check("disable", got, err)
			got, err = s.SetBindingDisabled(ctx, signInAdmin, k, false)
			check("enable", got, err)
			got, err = s.Unlink(ctx, signInAdmin, k, b.Version)
			check("unlink", got, err)
			got, err = s.Link(ctx, signInAdmin, k, "acct-zs")
			check("link", got, err)
		}
	})
	for w := range workers {
		wg.Go(func() {
			// Sign in for as long as the administrator works.
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				got, a, err := s.RecordSignIn(ctx, Identity{CorpID: "corp1", UserID: "u1", UnionID: "union1", AppKey: "app1", Name: name})
				if err != nil {
					t.Errorf("RecordSignIn(%s): %v", name, err)
					return
				}
				if got.Name != name || got.Linked() != (a != nil) || (a != nil && a.ID != got.AccountID) {
					t.Errorf("RecordSignIn(%s) = %+v, %+v; want its own profile and the account it is linked to", name, got, a)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored, err := s.Binding(ctx, k)
	if err != nil || stored.AccountID != b.AccountID || stored.Disabled != b.Disabled || stored.Version != b.Version {
		t.Errorf("in the end: stored %+v, %v; want the administrator's last change %+v", stored, err, b)
	}
	fell, of := st.fellBack()
	t.Logf("%d of %d sign-in statements found the row changed and left it to the transaction", fell, of)
}

// A sign-in whose statement waits for another transaction's change of the row sees the
// change, as the transaction would: the statement, whose snapshot predates the change,
// updates nothing and the transaction records the sign-in on the changed row.
func TestRecordSignInWaitsForAChange(t *testing.T) {
	tests := []struct {
		name      string
		key       Key
		change    string // SQL changing the row, in the style of the store's own changes
		wantLink  string
		wantLogin bool
	}{
		{"unlinked", Key{CorpID: "corp1", UserID: "u1"},
			`update dingtalk_identities set account_id = null, search_account = '', account_cjk = '{}', version = version + 1`, "", false},
		{"disabled", Key{CorpID: "corp1", UserID: "u1"},
			`update dingtalk_identities set status = 'disabled', disabled_at = now(), version = version + 1`, "acct-zs", false},
		{"linked", Key{CorpID: "corp1", UserID: "u2"},
			`update dingtalk_identities set account_id = 'acct-ls', version = version + 1`, "acct-ls", true},
		{"linked to an account created with the link", Key{CorpID: "corp1", UserID: "u2"},
			`insert into accounts (id, username, created_at, updated_at) values ('acct-new', 'new', now(), now());
			update dingtalk_identities set account_id = 'acct-new', version = version + 1`, "acct-new", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st statements
			pool := tracedPool(t, &st, 3)
			clock := newTestClock()
			s := NewPostgres(pool, Options{Now: clock.Now})
			signInFixture(t, s)
			clock.Advance(time.Hour)
			ctx := t.Context()

			change, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer change.Rollback(context.Background())
			where := fmt.Sprintf(` where corp_id = '%s' and user_id = '%s'`, tt.key.CorpID, tt.key.UserID)
			if _, err := change.Exec(ctx, tt.change+where); err != nil {
				t.Fatalf("change: %v", err)
			}
			type result struct {
				b   Binding
				a   *Account
				err error
			}
			done := make(chan result, 1)
			go func() {
				b, a, err := s.RecordSignIn(ctx, Identity{CorpID: tt.key.CorpID, UserID: tt.key.UserID, Name: "新名字"})
				done <- result{b, a, err}
			}()
			// Commit once the statement, its snapshot taken, waits for the row's lock. (It
			// is the only statement here that can wait for one.)
			for waiting := false; !waiting; {
				select {
				case got := <-done:
					t.Fatalf("RecordSignIn returned without waiting for the change: %+v, %+v, %v", got.b, got.a, got.err)
				default:
				}
				err := pool.QueryRow(ctx, `select exists (select 1 from pg_stat_activity
					where datname = current_database() and wait_event_type = 'Lock')`).Scan(&waiting)
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := change.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			got := <-done
			if got.err != nil {
				t.Fatalf("RecordSignIn: %v", got.err)
			}
			if got.b.AccountID != tt.wantLink || (got.a == nil) != (tt.wantLink == "") || got.b.Name != "新名字" {
				t.Errorf("RecordSignIn = %+v, %+v; want the new profile, linked to %q", got.b, got.a, tt.wantLink)
			}
			if login := got.b.LastLoginAt.Equal(clock.Now()); login != tt.wantLogin {
				t.Errorf("last_login_at = %v, set now = %t, want %t", got.b.LastLoginAt, login, tt.wantLogin)
			}
			stored, err := s.Binding(ctx, tt.key)
			if err != nil || stored.LastLoginAt != got.b.LastLoginAt || stored.AccountID != tt.wantLink {
				t.Errorf("stored %+v, %v; want what RecordSignIn returned", stored, err)
			}
			if fell, _ := st.fellBack(); fell != 1 {
				t.Errorf("%d sign-in statements updated nothing, want 1: the statement must leave a changed row to the transaction", fell)
			}
		})
	}
}
