package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// embedded holds the schema of this binary: every released migration, applied in order.
//
//go:embed *.sql
var embedded embed.FS

// lockKey is the session-level advisory lock that serializes Up across replicas: the first
// eight bytes of sha256("dingbridge:migrations"), big-endian, as an int64. In pg_locks it
// shows as locktype advisory, classid 1950335984 (high half), objid 720126461 (low half).
const lockKey int64 = 8376629268212105725

// Errors that callers may want to branch on, for instance to print advice to an operator.
var (
	// ErrDatabaseNewer reports that the database has migrations this binary does not know:
	// a newer dingbridge has migrated it.
	ErrDatabaseNewer = errors.New("the binary is older than the database")

	// ErrChecksumMismatch reports that an applied migration's file differs from the file
	// embedded in this binary.
	ErrChecksumMismatch = errors.New("released migrations are never edited")
)

// fileName is the only accepted shape of a migration file name: version, then a name.
var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.up\.sql$`)

// Migration is one migration and whether the database has applied it.
type Migration struct {
	Version   int       // from the file name: 1 for 0001_audit_log.up.sql
	Name      string    // from the file name: "audit_log" for 0001_audit_log.up.sql
	AppliedAt time.Time // zero if pending
	Applied   bool
}

// Set is an ordered set of migrations, read from a file system by Load.
type Set struct {
	files []file // by version, ascending
}

// file is one migration file.
type file struct {
	version  int
	name     string // "audit_log"
	path     string // "0001_audit_log.up.sql", the name errors use
	sql      string
	checksum string // hex sha256 of the file's bytes
}

// Up applies the migrations embedded in this binary that the database has not applied yet.
// See (*Set).Up.
func Up(ctx context.Context, pool *pgxpool.Pool) error {
	s, err := Load(embedded)
	if err != nil {
		return err
	}
	return s.Up(ctx, pool)
}

// Status lists the migrations embedded in this binary, applied or pending, and any the
// database has applied that this binary does not know. See (*Set).Status.
func Status(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	s, err := Load(embedded)
	if err != nil {
		return nil, err
	}
	return s.Status(ctx, pool)
}

// Load reads the migrations in the top directory of fsys. Every file whose name ends in
// .sql must be named like 0001_name.up.sql (four-digit version, lower-case name); other
// files and directories are ignored. Versions must be unique, need not be contiguous, and
// at least one migration must exist. Load reports every bad file at once.
func Load(fsys fs.FS) (*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	var (
		s    Set
		errs []error
		seen = make(map[int]string)
	)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(strings.ToLower(e.Name()), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: name must look like 0001_name.up.sql (four digits, then a-z, 0-9 and _)", e.Name()))
			continue
		}
		version, _ := strconv.Atoi(m[1]) // the pattern allows digits only
		if version == 0 {
			errs = append(errs, fmt.Errorf("%s: versions start at 0001", e.Name()))
			continue
		}
		if other, ok := seen[version]; ok {
			errs = append(errs, fmt.Errorf("%s: version %04d is also used by %s", e.Name(), version, other))
			continue
		}
		seen[version] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.TrimSpace(string(b)) == "" {
			errs = append(errs, fmt.Errorf("%s: file is empty", e.Name()))
			continue
		}
		sum := sha256.Sum256(b)
		s.files = append(s.files, file{
			version:  version,
			name:     m[2],
			path:     e.Name(),
			sql:      string(b),
			checksum: hex.EncodeToString(sum[:]),
		})
	}
	if len(errs) == 0 && len(s.files) == 0 {
		errs = append(errs, errors.New("no *.up.sql files"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	slices.SortFunc(s.files, func(a, b file) int { return a.version - b.version })
	return &s, nil
}

const lockSQL = `select pg_advisory_lock($1)`

// Up applies, in version order, every migration of s that the database has not applied.
// Each runs in its own transaction together with the insert that records it in
// schema_migrations, so a failing migration leaves no trace and its error names the file.
//
// Up is safe to call from several processes at once: it holds a session-level advisory lock
// on one connection while it reads what is applied and applies the rest, so each migration
// runs exactly once. Waiting for that lock ends when ctx is done. The lock needs a real
// session: a pooler in transaction mode (PgBouncer) between Up and Postgres breaks it.
//
// Before applying anything, Up checks the database against s and refuses to continue if an
// applied migration's file has changed or been renamed (ErrChecksumMismatch), if the
// database has applied a version s does not contain (ErrDatabaseNewer), or if a pending
// migration's version is lower than an applied one (it would run out of order).
func (s *Set) Up(ctx context.Context, pool *pgxpool.Pool) (err error) {
	// The lock belongs to a session, so lock, work and unlock all use this one connection.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for migrations: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, lockSQL, lockKey); err != nil {
		// When ctx ends, pgx drops the connection and sends the server a cancel request, so
		// the server stops waiting. Closing here covers any other failure: the session then
		// cannot go back to the pool holding a lock granted just as the wait failed.
		closeConn(ctx, conn)
		return fmt.Errorf("wait for migration lock: %w", err)
	}
	defer func() {
		if uerr := unlock(ctx, conn); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()

	if err := createTable(ctx, conn); err != nil {
		return err
	}
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return err
	}
	pending, err := s.pending(applied)
	if err != nil {
		return err
	}
	for _, f := range pending {
		if err := apply(ctx, conn, f); err != nil {
			return err
		}
	}
	return nil
}

const unlockSQL = `select pg_advisory_unlock($1)`

// unlock releases the migration lock, or ends the session if it cannot.
func unlock(ctx context.Context, conn *pgxpool.Conn) error {
	if conn.Conn().IsClosed() {
		return nil // the server released the lock with the session
	}
	// ctx may be done already; the lock must be released all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var released bool
	err := conn.QueryRow(ctx, unlockSQL, lockKey).Scan(&released)
	if err == nil && !released {
		err = errors.New("lock was not held")
	}
	if err != nil {
		closeConn(ctx, conn)
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}

// closeConn ends conn's session, so that Release drops it from the pool instead of
// handing out a session that might still hold the lock.
func closeConn(ctx context.Context, conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx) // the session ends even if the goodbye fails
}

const (
	tableExistsSQL = `select to_regclass('schema_migrations') is not null`

	createTableSQL = `
create table schema_migrations (
	version    int primary key,
	name       text not null,
	checksum   text not null, -- sha256 hex of the migration file
	applied_at timestamptz not null default now()
)`
)

// createTable creates schema_migrations if it does not exist. It looks first, rather than
// saying "create table if not exists", so that a role without the CREATE privilege can run
// Up on an up-to-date database. Callers hold the migration lock, so nobody races the create.
func createTable(ctx context.Context, conn *pgxpool.Conn) error {
	var exists bool
	if err := conn.QueryRow(ctx, tableExistsSQL).Scan(&exists); err != nil {
		return fmt.Errorf("look for schema_migrations: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, createTableSQL); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	return nil
}

// appliedMigration is one row of schema_migrations.
type appliedMigration struct {
	version   int
	name      string
	checksum  string
	appliedAt time.Time
}

// querier is what appliedMigrations needs: a pool or one of its connections.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const appliedSQL = `select version, name, checksum, applied_at from schema_migrations order by version`

// appliedMigrations reads schema_migrations, which may not exist yet.
func appliedMigrations(ctx context.Context, q querier) ([]appliedMigration, error) {
	var exists bool
	if err := q.QueryRow(ctx, tableExistsSQL).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for schema_migrations: %w", err)
	}
	if !exists {
		return nil, nil
	}
	rows, _ := q.Query(ctx, appliedSQL) // Collect reports the error
	applied, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (appliedMigration, error) {
		var a appliedMigration
		err := row.Scan(&a.version, &a.name, &a.checksum, &a.appliedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("select applied migrations: %w", err)
	}
	return applied, nil
}

// pending checks what the database has applied against s and returns the migrations
// left to apply, in order.
func (s *Set) pending(applied []appliedMigration) ([]file, error) {
	byVersion := make(map[int]file, len(s.files))
	for _, f := range s.files {
		byVersion[f.version] = f
	}
	var errs []error
	done := make(map[int]bool, len(applied))
	latest := 0
	for _, a := range applied {
		done[a.version] = true
		latest = max(latest, a.version)
		f, ok := byVersion[a.version]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("database has migration %04d_%s applied, which this binary does not contain: %w; run a newer dingbridge", a.version, a.name, ErrDatabaseNewer))
		case a.checksum != f.checksum:
			errs = append(errs, fmt.Errorf("migration %s was changed after it was applied (sha256 %.12s… in the database, %.12s… in this binary): %w; undo the edit and add a new migration instead", f.path, a.checksum, f.checksum, ErrChecksumMismatch))
		case a.name != f.name:
			errs = append(errs, fmt.Errorf("migration %s was applied under the name %q: %w, nor renamed", f.path, a.name, ErrChecksumMismatch))
		}
	}
	var pending []file
	for _, f := range s.files {
		if done[f.version] {
			continue
		}
		if f.version < latest {
			errs = append(errs, fmt.Errorf("migration %s is pending but version %04d is already applied: it would run out of order; give it a version above %04d", f.path, latest, latest))
			continue
		}
		pending = append(pending, f)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check applied migrations: %w", err)
	}
	return pending, nil
}

const recordSQL = `insert into schema_migrations (version, name, checksum) values ($1, $2, $3)`

// apply runs one migration and records it, in one transaction.
func apply(ctx context.Context, conn *pgxpool.Conn, f file) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("apply migration %s: begin: %w", f.path, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit

	// Without arguments pgx uses the simple protocol, which runs several statements.
	if _, err := tx.Exec(ctx, f.sql); err != nil {
		return fmt.Errorf("apply migration %s: %s%w", f.path, errorLine(err, f.sql), err)
	}
	if _, err := tx.Exec(ctx, recordSQL, f.version, f.name, f.checksum); err != nil {
		return fmt.Errorf("apply migration %s: record it: %w", f.path, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("apply migration %s: commit: %w", f.path, err)
	}
	return nil
}

// errorLine returns "line N: " for a server error that points into sql, or "".
func errorLine(err error, sql string) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return ""
	}
	// Position counts characters from 1, not bytes.
	runes := []rune(sql)
	if int(pgErr.Position) > len(runes) {
		return ""
	}
	return fmt.Sprintf("line %d: ", 1+strings.Count(string(runes[:pgErr.Position-1]), "\n"))
}

// Status lists every migration of s, applied or pending, followed by any version the
// database has applied that s does not contain (with the name the database recorded).
// Status only reports; it does not take the migration lock and does not compare
// checksums. Up is what refuses a database that does not match.
func (s *Set) Status(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	applied, err := appliedMigrations(ctx, pool)
	if err != nil {
		return nil, err
	}
	byVersion := make(map[int]appliedMigration, len(applied))
	for _, a := range applied {
		byVersion[a.version] = a
	}
	list := make([]Migration, 0, len(s.files))
	known := make(map[int]bool, len(s.files))
	for _, f := range s.files {
		known[f.version] = true
		m := Migration{Version: f.version, Name: f.name}
		if a, ok := byVersion[f.version]; ok {
			m.Applied, m.AppliedAt = true, a.appliedAt
		}
		list = append(list, m)
	}
	for _, a := range applied {
		if !known[a.version] {
			list = append(list, Migration{Version: a.version, Name: a.name, AppliedAt: a.appliedAt, Applied: true})
		}
	}
	slices.SortFunc(list, func(a, b Migration) int { return a.Version - b.Version })
	return list, nil
}
