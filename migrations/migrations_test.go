package migrations_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestUpEmbedded(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.NewEmptyDatabase(t)

	// The embedded set must be exactly the *.up.sql files beside this test.
	paths, err := filepath.Glob("*.up.sql")
	if err != nil || len(paths) == 0 {
		t.Fatalf("glob *.up.sql = %v, %v; want the migration files", paths, err)
	}
	if paths[0] != "0001_audit_log.up.sql" {
		t.Errorf("first migration = %s, want 0001_audit_log.up.sql", paths[0])
	}

	before, err := migrations.Status(ctx, pool)
	if err != nil {
		t.Fatalf("Status before Up: %v", err)
	}
	if len(before) != len(paths) {
		t.Fatalf("Status before Up lists %d migrations, want %d (%v)", len(before), len(paths), paths)
	}
	for i, m := range before {
		if got, want := fileName(m), paths[i]; got != want {
			t.Errorf("Status before Up [%d] = %s, want %s", i, got, want)
		}
		if m.Applied || !m.AppliedAt.IsZero() {
			t.Errorf("Status before Up: %s Applied = %v, AppliedAt = %v; want pending with zero time", fileName(m), m.Applied, m.AppliedAt)
		}
	}

	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatalf("Up: %v", err)
	}
	after, err := migrations.Status(ctx, pool)
	if err != nil {
		t.Fatalf("Status after Up: %v", err)
	}
	if len(after) != len(paths) {
		t.Fatalf("Status after Up lists %d migrations, want %d", len(after), len(paths))
	}
	for i, m := range after {
		if got, want := fileName(m), paths[i]; got != want {
			t.Errorf("Status after Up [%d] = %s, want %s", i, got, want)
		}
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("Status after Up: %s Applied = %v, AppliedAt = %v; want applied with a time", fileName(m), m.Applied, m.AppliedAt)
		}
	}

	// schema_migrations records the sha256 of each file.
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		var got string
		if err := pool.QueryRow(ctx, `select checksum from schema_migrations where version = $1`, versionOf(t, path)).Scan(&got); err != nil {
			t.Fatalf("select checksum of %s: %v", path, err)
		}
		if want := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("checksum of %s = %s, want %s", path, got, want)
		}
	}

	// A second Up finds nothing to do and changes nothing.
	if err := migrations.Up(ctx, pool); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	again, err := migrations.Status(ctx, pool)
	if err != nil {
		t.Fatalf("Status after second Up: %v", err)
	}
	for i := range again {
		if got, want := again[i], after[i]; got.Version != want.Version || !got.AppliedAt.Equal(want.AppliedAt) {
			t.Errorf("after second Up, %s applied at %v, want unchanged %v", fileName(got), got.AppliedAt, want.AppliedAt)
		}
	}
}

func TestUpConcurrent(t *testing.T) {
	tests := []struct {
		name         string
		up           func(context.Context, *pgxpool.Pool) error
		wantVersions []int64
		countsRuns   bool // the set records each run in table runs
	}{
		{name: "testdata set", up: loadDir(t, "testdata/concurrent").Up, wantVersions: []int64{1, 2, 3}, countsRuns: true},
		{name: "embedded set", up: migrations.Up, wantVersions: fileVersions(t, mustGlob(t, "*.up.sql"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			url := pgtest.NewEmptyDatabaseURL(t)

			// Eight replicas, each with its own pool, connected before they start together.
			const replicas = 8
			pools := make([]*pgxpool.Pool, replicas)
			for i := range pools {
				pool, err := pgxpool.New(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(pool.Close)
				if err := pool.Ping(ctx); err != nil {
					t.Fatal(err)
				}
				pools[i] = pool
			}
			start := make(chan struct{})
			errs := make([]error, replicas)
			var wg sync.WaitGroup
			for i, pool := range pools {
				wg.Go(func() {
					<-start
					errs[i] = tt.up(ctx, pool)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("replica %d: Up: %v", i, err)
				}
			}

			pool := pools[0]
			assertOncePerVersion(t, pool, `select version, count(*) from schema_migrations group by version order by version`, tt.wantVersions)
			if tt.countsRuns {
				assertOncePerVersion(t, pool, `select version, count(*) from runs group by version order by version`, tt.wantVersions)
			}
		})
	}
}

// assertOncePerVersion checks that sql, selecting (version, count) in
// version order, finds exactly the versions want, once each.
func assertOncePerVersion(t *testing.T, pool *pgxpool.Pool, sql string, want []int64) {
	t.Helper()
	rows, _ := pool.Query(t.Context(), sql)
	type versionCount struct{ Version, Count int64 }
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[versionCount])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(counts) != len(want) {
		t.Errorf("%s: %d versions (%v), want %v", sql, len(counts), counts, want)
	}
	for i, c := range counts {
		if i >= len(want) || c.Version != want[i] || c.Count != 1 {
			t.Errorf("%s: row %d is version %d counted %d times, want versions %v once each", sql, i, c.Version, c.Count, want)
		}
	}
}

func TestUpStopsWaitingForLockWhenCancelled(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewEmptyDatabaseURL(t)

	// Another replica holds the migration lock.
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.WithoutCancel(ctx))
	if _, err := holder.Exec(ctx, `select pg_advisory_lock($1)`, lockKey()); err != nil {
		t.Fatal(err)
	}

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- migrations.Up(upCtx, pool) }()

	// Cancel only once Up is queued behind the holder. (Advisory locks belong to a database,
	// and other tests may be waiting for theirs on the same server.)
	const waitingSQL = `
select exists (
	select from pg_locks
	where locktype = 'advisory' and not granted
	  and database = (select oid from pg_database where datname = current_database())
)`
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("Up = %v while another session held the migration lock; want it to wait", err)
		default:
		}
		if err := holder.QueryRow(ctx, waitingSQL).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "wait for migration lock") {
		t.Fatalf("Up after cancel = %v, want an error waiting for the migration lock", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Up after cancel = %v, want it to wrap context.Canceled", err)
	}

	// The server stopped waiting for the cancelled session, and nothing ran.
	waitCtx, cancelWait := context.WithTimeout(ctx, 30*time.Second) // a leftover waiter fails, not hangs
	defer cancelWait()
	for waiting := true; waiting; {
		if err := holder.QueryRow(waitCtx, waitingSQL).Scan(&waiting); err != nil {
			t.Fatalf("the cancelled Up's session still waits for the lock on the server: %v", err)
		}
	}
	var exists bool
	if err := holder.QueryRow(ctx, `select to_regclass('schema_migrations') is not null`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema_migrations exists after a cancelled Up, want nothing done")
	}

	// Once the holder lets go, Up goes ahead.
	if _, err := holder.Exec(ctx, `select pg_advisory_unlock($1)`, lockKey()); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Up(waitCtx, pool); err != nil {
		t.Errorf("Up after the lock is free: %v", err)
	}
}

func TestUpFailingMigration(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.NewEmptyDatabase(t)
	set := loadDir(t, "testdata/failing")

	err := set.Up(ctx, pool)
	if err == nil {
		t.Fatal("Up = nil, want the error of 0002_broken.up.sql")
	}
	for _, want := range []string{"apply migration 0002_broken.up.sql", "line 3", `"missing_table"`, "42P01"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Up = %q, want it to contain %q", err, want)
		}
	}

	got, err := set.Status(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0001_ok.up.sql applied", "0002_broken.up.sql pending", "0003_never.up.sql pending"}
	assertStatus(t, got, want)

	// The broken file's first statement was rolled back with its second; nothing after it ran.
	for table, want := range map[string]bool{"ok": true, "half": false, "never": false} {
		var got bool
		if err := pool.QueryRow(ctx, `select to_regclass($1) is not null`, table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("table %s exists = %v, want %v", table, got, want)
		}
	}
}

func TestUpRefusesMismatchedDatabase(t *testing.T) {
	const (
		a = "create table a (id int);"
		b = "create table b (id int);"
		c = "create table c (id int);"
	)
	tests := []struct {
		name    string
		applied fstest.MapFS // the set a binary applied earlier
		binary  fstest.MapFS // the set of the binary that runs Up now
		wantIs  error
		want    []string
	}{
		{
			name:    "released file edited",
			applied: files("0001_a.up.sql", a),
			binary:  files("0001_a.up.sql", "create table a (id bigint);"),
			wantIs:  migrations.ErrChecksumMismatch,
			want:    []string{"0001_a.up.sql", "released migrations are never edited"},
		},
		{
			name:    "released file renamed",
			applied: files("0001_a.up.sql", a),
			binary:  files("0001_first.up.sql", a),
			wantIs:  migrations.ErrChecksumMismatch,
			want:    []string{"0001_first.up.sql", `under the name "a"`},
		},
		{
			name:    "database newer than binary",
			applied: files("0001_a.up.sql", a, "0002_b.up.sql", b),
			binary:  files("0001_a.up.sql", a),
			wantIs:  migrations.ErrDatabaseNewer,
			want:    []string{"0002_b", "the binary is older than the database"},
		},
		{
			name:    "pending below applied",
			applied: files("0001_a.up.sql", a, "0003_c.up.sql", c),
			binary:  files("0001_a.up.sql", a, "0002_b.up.sql", b, "0003_c.up.sql", c),
			want:    []string{"0002_b.up.sql", "out of order"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			pool := pgtest.NewEmptyDatabase(t)
			if err := load(t, tt.applied).Up(ctx, pool); err != nil {
				t.Fatalf("Up with the earlier set: %v", err)
			}

			err := load(t, tt.binary).Up(ctx, pool)
			if err == nil {
				t.Fatal("Up = nil, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Up = %q, want errors.Is %q", err, tt.wantIs)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Up = %q, want it to contain %q", err, want)
				}
			}
			var n int
			if err := pool.QueryRow(ctx, `select count(*) from schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != len(tt.applied) {
				t.Errorf("schema_migrations has %d rows after the refused Up, want %d", n, len(tt.applied))
			}
		})
	}
}

func TestStatusListsVersionsUnknownToBinary(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.NewEmptyDatabase(t)
	if err := load(t, files("0001_a.up.sql", "select 1;", "0002_b.up.sql", "select 2;")).Up(ctx, pool); err != nil {
		t.Fatal(err)
	}
	got, err := load(t, files("0001_a.up.sql", "select 1;")).Status(ctx, pool)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	assertStatus(t, got, []string{"0001_a.up.sql applied", "0002_b.up.sql applied"})
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr []string // substrings; none means Load must succeed
		want    []string // for success: the files, as Status reports them on an empty database
	}{
		{
			name: "sorted by version, other files ignored",
			fsys: fstest.MapFS{
				"0010_ten.up.sql":   {Data: []byte("select 10;")},
				"0002_two.up.sql":   {Data: []byte("select 2;")},
				"README.md":         {Data: []byte("not a migration")},
				"sub/0003.up.sql":   {Data: []byte("in a directory, ignored")},
				"0001_one_1.up.sql": {Data: []byte("select 1;")},
			},
			want: []string{"0001_one_1.up.sql pending", "0002_two.up.sql pending", "0010_ten.up.sql pending"},
		},
		{name: "no version", fsys: files("a.up.sql", "select;"), wantErr: []string{"a.up.sql: name must look like 0001_name.up.sql"}},
		{name: "short version", fsys: files("1_a.up.sql", "select;"), wantErr: []string{"1_a.up.sql: name must"}},
		{name: "upper case name", fsys: files("0001_A.up.sql", "select;"), wantErr: []string{"0001_A.up.sql: name must"}},
		{name: "dash", fsys: files("0001-a.up.sql", "select;"), wantErr: []string{"0001-a.up.sql: name must"}},
		{name: "without up", fsys: files("0001_a.sql", "select;"), wantErr: []string{"0001_a.sql: name must"}},
		{name: "down migration", fsys: files("0001_a.down.sql", "select;"), wantErr: []string{"0001_a.down.sql: name must"}},
		{name: "upper case extension", fsys: files("0001_a.up.SQL", "select;"), wantErr: []string{"0001_a.up.SQL: name must"}},
		{name: "version zero", fsys: files("0000_a.up.sql", "select;"), wantErr: []string{"0000_a.up.sql: versions start at 0001"}},
		{name: "empty file", fsys: files("0001_a.up.sql", " \n"), wantErr: []string{"0001_a.up.sql: file is empty"}},
		{name: "no migrations", fsys: files("README.md", "hello"), wantErr: []string{"no *.up.sql files"}},
		{
			name:    "duplicate version",
			fsys:    files("0001_a.up.sql", "select;", "0001_b.up.sql", "select;"),
			wantErr: []string{"0001_b.up.sql: version 0001 is also used by 0001_a.up.sql"},
		},
		{
			name:    "every problem at once",
			fsys:    files("1_a.up.sql", "select;", "0002_B.up.sql", "select;", "0003_c.up.sql", "select;"),
			wantErr: []string{"1_a.up.sql: name must", "0002_B.up.sql: name must"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := migrations.Load(tt.fsys)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Load = nil error, want one containing %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Load = %q, want it to contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := set.Status(t.Context(), pgtest.NewEmptyDatabase(t))
			if err != nil {
				t.Fatalf("Status: %v", err)
			}
			assertStatus(t, got, tt.want)
		})
	}
}

func TestAuditLog(t *testing.T) {
	ctx := t.Context()
	pool := pgtest.NewDatabase(t)

	const insertSQL = `
insert into audit_log (actor, action, target_type, target_id, before, after, request_id, client_ip)
values ('admin-1', 'account.update', 'account', 'acc-1', '{"name": "A"}', '{"name": "B"}', 'req-1', '192.0.2.1')
returning id, at`
	var id int64
	var at time.Time
	if err := pool.QueryRow(ctx, insertSQL).Scan(&id, &at); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if at.IsZero() {
		t.Errorf("at = zero, want now() by default")
	}
	const rowSQL = `select actor || ' ' || action || ' ' || target_type || ' ' || target_id || ' ' ||
		before::text || ' ' || after::text || ' ' || request_id || ' ' || host(client_ip) from audit_log where id = $1`
	const wantRow = `admin-1 account.update account acc-1 {"name": "A"} {"name": "B"} req-1 192.0.2.1`
	row := func() string {
		t.Helper()
		var s string
		if err := pool.QueryRow(ctx, rowSQL, id).Scan(&s); err != nil {
			t.Fatalf("select the audit row: %v", err)
		}
		return s
	}
	if got := row(); got != wantRow {
		t.Errorf("audit row = %q, want %q", got, wantRow)
	}

	tests := []struct {
		name string
		sql  string
		want string
	}{
		{"update", `update audit_log set actor = 'someone else'`, "audit_log is append-only: UPDATE is not allowed"},
		{"update matching no row", `update audit_log set actor = 'x' where false`, "append-only: UPDATE"},
		{"upsert", `insert into audit_log (actor, action, target_type, target_id) values ('a', 'b', 'c', 'd') on conflict (id) do update set actor = 'x'`, "append-only: UPDATE"},
		{"delete", `delete from audit_log`, "audit_log is append-only: DELETE is not allowed"},
		{"delete matching no row", `delete from audit_log where id = -1`, "append-only: DELETE"},
		{"truncate", `truncate audit_log`, "audit_log is append-only: TRUNCATE is not allowed"},
		{"empty actor", `insert into audit_log (actor, action, target_type, target_id) values ('', 'b', 'c', 'd')`, "audit_log_actor_check"},
		{"explicit id", `insert into audit_log (id, actor, action, target_type, target_id) values (99, 'a', 'b', 'c', 'd')`, `non-DEFAULT value into column "id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pool.Exec(t.Context(), tt.sql)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: error = %v, want one containing %q", tt.sql, err, tt.want)
			}
			if got := row(); got != wantRow {
				t.Errorf("after %s, audit row = %q, want %q", tt.sql, got, wantRow)
			}
		})
	}
	var n int
	if err := pool.QueryRow(ctx, `select count(*) from audit_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("audit_log has %d rows, want 1", n)
	}
}

// lockKey derives the migration lock's key as package migrations documents it.
func lockKey() int64 {
	sum := sha256.Sum256([]byte("dingbridge:migrations"))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// files builds a file system from name, content pairs.
func files(nameContent ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i+1 < len(nameContent); i += 2 {
		fsys[nameContent[i]] = &fstest.MapFile{Data: []byte(nameContent[i+1])}
	}
	return fsys
}

func load(t *testing.T, fsys fstest.MapFS) *migrations.Set {
	t.Helper()
	set, err := migrations.Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return set
}

func loadDir(t *testing.T, dir string) *migrations.Set {
	t.Helper()
	set, err := migrations.Load(os.DirFS(dir))
	if err != nil {
		t.Fatalf("Load %s: %v", dir, err)
	}
	return set
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// fileVersions returns the version numbers of migration files, in order.
func fileVersions(t *testing.T, paths []string) []int64 {
	t.Helper()
	var out []int64
	for _, p := range paths {
		var v int64
		if _, err := fmt.Sscanf(filepath.Base(p), "%04d_", &v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// fileName is the file a Migration comes from.
func fileName(m migrations.Migration) string {
	return fmt.Sprintf("%04d_%s.up.sql", m.Version, m.Name)
}

// versionOf is the version in a migration file's name.
func versionOf(t *testing.T, path string) int {
	t.Helper()
	v, err := strconv.Atoi(path[:4])
	if err != nil {
		t.Fatalf("version of %s: %v", path, err)
	}
	return v
}

// assertStatus compares Status output with lines like "0001_a.up.sql applied".
func assertStatus(t *testing.T, got []migrations.Migration, want []string) {
	t.Helper()
	lines := make([]string, len(got))
	for i, m := range got {
		state := "pending"
		if m.Applied {
			state = "applied"
		}
		if m.Applied == m.AppliedAt.IsZero() {
			state += " (AppliedAt " + m.AppliedAt.String() + ")"
		}
		lines[i] = fileName(m) + " " + state
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("Status =\n\t%s\nwant\n\t%s", strings.Join(lines, "\n\t"), strings.Join(want, "\n\t"))
	}
}
