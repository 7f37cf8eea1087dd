package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewDatabaseIsolated(t *testing.T) {
	ctx := t.Context()
	first, second := pgtest.NewDatabase(t), pgtest.NewDatabase(t)

	if a, b := databaseName(t, first), databaseName(t, second); a == b {
		t.Fatalf("both pools are on database %q, want two databases", a)
	}
	// Both are migrated; what one writes, the other does not see.
	const insertSQL = `insert into audit_log (actor, action, target_type, target_id) values ('test', 'write', 'db', '1')`
	if _, err := first.Exec(ctx, insertSQL); err != nil {
		t.Fatalf("insert into the first database: %v", err)
	}
	if _, err := first.Exec(ctx, `create table only_here (id int)`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		pool         *pgxpool.Pool
		wantAudit    int
		wantOnlyHere bool
	}{
		{name: "first", pool: first, wantAudit: 1, wantOnlyHere: true},
		{name: "second", pool: second, wantAudit: 0, wantOnlyHere: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var audit int
			var onlyHere bool
			if err := tt.pool.QueryRow(t.Context(), `select count(*) from audit_log`).Scan(&audit); err != nil {
				t.Fatalf("count audit_log: %v", err)
			}
			if err := tt.pool.QueryRow(t.Context(), `select to_regclass('only_here') is not null`).Scan(&onlyHere); err != nil {
				t.Fatal(err)
			}
			if audit != tt.wantAudit || onlyHere != tt.wantOnlyHere {
				t.Errorf("audit rows = %d, table only_here = %v; want %d, %v", audit, onlyHere, tt.wantAudit, tt.wantOnlyHere)
			}
		})
	}
}

func TestNewEmptyDatabase(t *testing.T) {
	pool := pgtest.NewEmptyDatabase(t)
	var tables int
	const countSQL = `select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')`
	if err := pool.QueryRow(t.Context(), countSQL).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("empty database has %d tables, want 0", tables)
	}
}

func TestNewDatabaseURL(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabaseURL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var applied int
	if err := conn.QueryRow(ctx, `select count(*) from schema_migrations`).Scan(&applied); err != nil {
		t.Fatalf("count schema_migrations: %v", err)
	}
	if applied == 0 {
		t.Errorf("schema_migrations has no rows, want a migrated database")
	}
}

func databaseName(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	if err := pool.QueryRow(t.Context(), `select current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
