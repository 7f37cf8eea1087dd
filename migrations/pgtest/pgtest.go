package pgtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations"
)

// EnvURL names the environment variable with the connection string of a Postgres server that
// tests may create databases on (the role needs CREATEDB). When it is unset, tests start
// their own server.
const EnvURL = "DINGBRIDGE_TEST_DATABASE_URL"

// NewDatabase creates a fresh database with every migration applied, drops it when t ends,
// and returns a pool on it that is closed when t ends. The package's tests must run through
// Main; without a Postgres to use, the test is skipped (or fails when CI is set).
func NewDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return open(t, NewDatabaseURL(t))
}

// NewEmptyDatabase creates a fresh database without any table, for testing migrations,
// drops it when t ends, and returns a pool on it that is closed when t ends.
func NewEmptyDatabase(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return open(t, NewEmptyDatabaseURL(t))
}

// NewDatabaseURL is NewDatabase for tests that connect on their own (a CLI, several pools):
// it returns the database's connection string. The database is dropped when t ends, with
// any connections still open to it.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	return shared.newDatabase(t, true)
}

// NewEmptyDatabaseURL is NewEmptyDatabase, returning the connection string.
func NewEmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return shared.newDatabase(t, false)
}

// Main runs the tests of a package that uses pgtest, then stops the Postgres server that
// pgtest started (if any), removes its files, and exits with the tests' code. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()
	if err := shared.shutdown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code) // TestMain is the test binary's main
}

// shared is the one harness of this test binary. It is package state on purpose: the
// point of this package is one Postgres per test binary, shared by every test in it.
var shared harness

// harness starts the backend on first use, remembers the outcome (so a failed start is
// reported to every test, not retried by each), and builds the migrated template once.
type harness struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	backend *backend
	err     error
	missing string // why no Postgres can be had here at all; tests skip (or fail under CI)

	templateDone bool
	templateErr  error
}

// backend is a Postgres server on which pgtest creates databases.
type backend struct {
	admin    *pgxpool.Pool          // on the server's maintenance database
	url      func(db string) string // connection string of database db
	version  int                    // server_version_num, e.g. 150010
	server   *server                // nil with DINGBRIDGE_TEST_DATABASE_URL
	template string                 // migrated database that NewDatabase clones
	strategy string                 // CREATE DATABASE option, see connect
}

// backendFor returns the backend, starting it on first use, or ends the test.
func (h *harness) backendFor(t testing.TB) *backend {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.inMain {
		t.Fatal("pgtest: add func TestMain(m *testing.M) { pgtest.Main(m) } to this package's tests, so the database server is stopped and removed afterwards")
	}
	if !h.started {
		h.started = true
		h.backend, h.missing, h.err = start(t)
	}
	if h.missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: %s, and CI is set: install postgresql or set %s", h.missing, EnvURL)
		}
		t.Skipf("SKIPPING Postgres tests: %s — install postgresql", h.missing)
	}
	if h.err != nil {
		t.Fatalf("pgtest: %v", h.err)
	}
	return h.backend
}

// start connects to DINGBRIDGE_TEST_DATABASE_URL, or else starts a local server. It returns
// a reason in missing when neither is possible.
func start(t testing.TB) (b *backend, missing string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if raw := os.Getenv(EnvURL); raw != "" {
		b, err := connect(ctx, raw, urlFunc(raw))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvURL, err)
		}
		// Several test binaries may share this server at once, each with its own template.
		b.template = "dingbridge_template_" + randomSuffix()
		t.Logf("pgtest: using %s (Postgres %d)", EnvURL, b.version)
		return b, "", nil
	}
	bin, missing := findBinaries()
	if missing != "" {
		return nil, missing + " and " + EnvURL + " unset", nil
	}
	runAs, missing, err := serverUser()
	if missing != "" || err != nil {
		return nil, missing, err
	}
	s, err := startServer(ctx, bin, runAs)
	if err != nil {
		return nil, "", err
	}
	b, err = connect(ctx, s.url("postgres"), s.url)
	if err != nil {
		return nil, "", errors.Join(err, s.stop())
	}
	b.server = s
	b.template = "dingbridge_template"
	t.Logf("pgtest: started Postgres %d from %s: data %s, socket %s, log %s", b.version, bin.dir, s.dataDir, s.socketDir, s.logPath)
	return b, "", nil
}

const versionSQL = `select current_setting('server_version_num')::int`

// connect opens the admin pool on the server's maintenance database.
func connect(ctx context.Context, adminURL string, url func(string) string) (*backend, error) {
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	b := &backend{admin: admin, url: url}
	if err := admin.QueryRow(ctx, versionSQL).Scan(&b.version); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if b.version >= 150000 {
		// The default since 15, WAL_LOG, writes every page of the new database to the WAL;
		// FILE_COPY copies the files and, with fsync off, is faster for small databases.
		b.strategy = " strategy file_copy"
	}
	return b, nil
}

// urlFunc returns a function that points the connection string raw at another database.
// raw is a URL (postgres://…) or a keyword/value string (host=… dbname=…).
func urlFunc(raw string) func(string) string {
	return func(db string) string {
		if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
			u.Path = "/" + db
			u.RawPath = ""
			return u.String()
		}
		return raw + " dbname=" + db // the last dbname wins
	}
}

// newDatabase creates a database for t, cloned from the migrated template or from
// template0, and returns its connection string.
func (h *harness) newDatabase(t testing.TB, migrated bool) string {
	t.Helper()
	b := h.backendFor(t)
	template := "template0"
	if migrated {
		template = h.migratedTemplate(t, b)
	}
	name := databaseName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.createDatabase(ctx, name, template); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		// t's context is done by now; cleanup gets its own.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return b.url(name)
}

// migratedTemplate returns the name of the template database, creating and migrating it
// on first use: cloning it is much faster than migrating every database.
func (h *harness) migratedTemplate(t testing.TB, b *backend) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.templateDone {
		h.templateDone = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		h.templateErr = b.buildTemplate(ctx)
	}
	if h.templateErr != nil {
		t.Fatalf("pgtest: %v", h.templateErr)
	}
	return b.template
}

func (b *backend) buildTemplate(ctx context.Context) error {
	if err := b.createDatabase(ctx, b.template, "template0"); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, b.url(b.template))
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	// Close before cloning: CREATE DATABASE refuses a template that has sessions.
	defer pool.Close()
	if err := migrations.Up(ctx, pool); err != nil {
		return fmt.Errorf("migrate template database %s: %w", b.template, err)
	}
	return nil
}

func (b *backend) createDatabase(ctx context.Context, name, template string) error {
	sql := "create database " + ident(name) + " template " + ident(template) + b.strategy
	if _, err := b.admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

const terminateSQL = `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`

// dropDatabase drops a database even if the test left connections open to it.
func (b *backend) dropDatabase(ctx context.Context, name string) error {
	sql := "drop database if exists " + ident(name)
	if b.version >= 130000 {
		sql += " with (force)"
	} else if _, err := b.admin.Exec(ctx, terminateSQL, name); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if _, err := b.admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// shutdown drops what pgtest made on a shared server, or stops and removes its own server.
func (h *harness) shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.backend
	if b == nil {
		return nil
	}
	h.backend, h.err = nil, errors.New("pgtest: used after Main's tests ended")
	var errs []error
	if b.server == nil && h.templateDone {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		errs = append(errs, b.dropDatabase(ctx, b.template))
	}
	b.admin.Close()
	if b.server != nil {
		errs = append(errs, b.server.stop())
	}
	return errors.Join(errs...)
}

func open(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	// Registered after the drop, so it runs before it.
	t.Cleanup(pool.Close)
	return pool
}

var notIdent = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName is unique, and says which test made the database, for whoever looks
// at the server while tests run.
func databaseName(t testing.TB) string {
	name := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return "t_" + name + "_" + randomSuffix()
}

func randomSuffix() string {
	return fmt.Sprintf("%012x", rand.Uint64()>>16)
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
