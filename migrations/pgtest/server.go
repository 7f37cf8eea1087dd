package pgtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// binaries are the initdb and postgres of one Postgres installation.
type binaries struct {
	dir, initdb, postgres string
}

// findBinaries looks for initdb and postgres in one directory: first where PATH finds
// initdb (or where that symlink points), then /usr/lib/postgresql/*/bin (Debian and
// Ubuntu), highest version first. It returns why not when there are none.
func findBinaries() (binaries, string) {
	if !localSupported {
		return binaries{}, "a throwaway Postgres needs a Unix-like system"
	}
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // the pattern is valid
	slices.SortFunc(installed, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	for _, dir := range append(dirs, installed...) {
		b := binaries{dir: dir, initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, ""
		}
	}
	return binaries{}, "no initdb/postgres found"
}

// compareVersions compares "15" and "9.6" as versions.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// runAs is the OS user the server runs as when the tests run as root: initdb and
// postgres refuse to run as root.
type runAs struct {
	uid, gid uint32
}

// serverUser returns nil when the tests do not run as root, the postgres OS user when
// they do, and why not when there is no such user.
func serverUser() (*runAs, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", nil
	}
	u, err := user.Lookup("postgres")
	if errors.As(err, new(user.UnknownUserError)) {
		return nil, "tests run as root, Postgres refuses to, and there is no OS user postgres to run it as", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("look up OS user postgres: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, "", fmt.Errorf("OS user postgres: uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, "", fmt.Errorf("OS user postgres: gid %q: %w", u.Gid, err)
	}
	return &runAs{uid: uint32(uid), gid: uint32(gid)}, "", nil
}

// server is a throwaway Postgres: a fresh cluster in a temporary directory, reachable only
// through a Unix socket in that directory, with durability off.
type server struct {
	root      string // temporary directory holding everything below; removed by stop
	dataDir   string
	socketDir string
	logPath   string
	port      int // names the socket file; nothing listens on TCP

	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{} // closed when the postgres process has exited
	waitErr error         // how it exited; read only after exited is closed
}

const (
	tempPattern = "dingbridge-pgtest-*"
	ownerFile   = "owner.pid" // the pid of the test binary that owns a temporary directory
	readyWithin = 30 * time.Second
	stopWithin  = 10 * time.Second
)

// startServer creates a cluster with initdb and starts postgres on it. When runAs is set,
// both run as that user, which then owns the temporary directory.
func startServer(ctx context.Context, bin binaries, runAs *runAs) (_ *server, err error) {
	base := baseDir()
	removeStale(base)
	// Not t.TempDir: the server outlives the test that starts it, and as root the parents
	// of t.TempDir are mode 0700, closed to the postgres user.
	root, err := os.MkdirTemp(base, tempPattern)
	if err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	s := &server{
		root:      root,
		dataDir:   filepath.Join(root, "data"),
		socketDir: filepath.Join(root, "socket"),
		logPath:   filepath.Join(root, "postgres.log"),
		exited:    make(chan struct{}),
	}
	close(s.exited) // until a process runs, stop has nothing to wait for
	defer func() {
		if err != nil {
			err = errors.Join(err, s.stop())
		}
	}()
	if err := os.WriteFile(filepath.Join(root, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	if err := os.Mkdir(s.socketDir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if runAs != nil {
		// root stays 0700: the tests run as root and pass anyway; nobody else needs in.
		for _, dir := range []string{root, s.socketDir} {
			if err := os.Chown(dir, int(runAs.uid), int(runAs.gid)); err != nil {
				return nil, fmt.Errorf("hand server directory to the postgres user: %w", err)
			}
		}
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	if socket := filepath.Join(s.socketDir, ".s.PGSQL."+strconv.Itoa(s.port)); len(socket) > 107 {
		return nil, fmt.Errorf("socket path %s is longer than Unix sockets allow; set TMPDIR to a shorter directory", socket)
	}

	initdb := exec.CommandContext(ctx, bin.initdb,
		"-D", s.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir, initdb.Env, initdb.SysProcAttr = root, serverEnv(), sysProcAttr(runAs, false)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", bin.initdb, err, out)
	}

	if s.log, err = os.Create(s.logPath); err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	s.cmd = exec.Command(bin.postgres,
		"-D", s.dataDir,
		"-k", s.socketDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=", // Unix socket only: no port can clash
		"-c", "max_connections=200", // tests run in parallel, each with pools
		// Dynamic shared memory as files in the data directory, not in /dev/shm, so that
		// removing the directory removes it even after a crash.
		"-c", "dynamic_shared_memory_type=mmap",
		// The cluster is thrown away, so durability buys nothing and costs time.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	)
	s.cmd.Dir, s.cmd.Env, s.cmd.SysProcAttr = root, serverEnv(), sysProcAttr(runAs, true)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.run(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin.postgres, err)
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// run starts the postgres process and waits for it in the background. The kernel sends
// Pdeathsig when the thread that started the child ends, not the process, so the starting
// goroutine keeps its thread until the server exits: only the death of the whole test
// binary (a panic, -timeout, a kill) ends the thread early, and then the server with it.
func (s *server) run() error {
	s.exited = make(chan struct{})
	started := make(chan error)
	go func() {
		defer close(s.exited)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
	}()
	return <-started
}

// waitReady connects until the server answers, it exits, or readyWithin passes.
func (s *server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited before accepting connections (%v); end of %s:\n%s", s.waitErr, s.logPath, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within %v: %w; end of %s:\n%s", readyWithin, err, s.logPath, s.logTail())
		case <-tick.C:
		}
	}
}

// stop shuts the server down (SIGINT, Postgres' fast shutdown, then SIGKILL if it lingers)
// and removes its directory.
func (s *server) stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(os.Interrupt) // fails only if it has exited already
		select {
		case <-s.exited:
		case <-time.After(stopWithin):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.log != nil {
		_ = s.log.Close()
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("remove server directory: %w", err)
	}
	return nil
}

// url is the connection string of database db, through the server's socket.
func (s *server) url(db string) string {
	q := url.Values{
		"host":    {s.socketDir},
		"port":    {strconv.Itoa(s.port)},
		"user":    {"postgres"},
		"sslmode": {"disable"},
	}
	return (&url.URL{Scheme: "postgres", Path: "/" + db, RawQuery: q.Encode()}).String()
}

// logTail returns the end of the server log, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePort returns a TCP port number nobody listens on. The server does not listen on it
// either; the number only names its socket file, which keeps that name unsurprising.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverEnv is the test binary's environment without PG* variables, which could point
// initdb or postgres elsewhere.
func serverEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
}

// removeStale removes the directories of earlier test binaries that died before Main could
// clean up (a panic or -timeout); Pdeathsig has already ended their servers. A directory
// without an owner file is still being set up and is left alone.
func removeStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, tempPattern)) // the pattern is valid
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(dir) // best effort: it may belong to another user
	}
}
