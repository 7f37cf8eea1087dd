package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// TestMain lets a test re-run this binary as the real dingbridge command
// (DINGBRIDGE_RUN_MAIN=1), to check exit codes and signal handling of the
// process itself; otherwise it runs the tests with a throwaway Postgres.
func TestMain(m *testing.M) {
	if os.Getenv("DINGBRIDGE_RUN_MAIN") == "1" {
		main()
		return
	}
	pgtest.Main(m)
}

// started runs the command in the background and returns once it has printed
// a line matching ready, with the first submatch of that line (e.g. a URL).
// The command is stopped, and its exit code checked, at the end of the test.
type started struct {
	out  *lockedBuffer
	code chan int
}

func start(t *testing.T, args []string, ready *regexp.Regexp) (*started, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	s := &started{out: &lockedBuffer{}, code: make(chan int, 1)}
	go func() {
		s.code <- run(ctx, args, pw, s.out)
		pw.Close()
	}()
	match := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		found := false
		for sc.Scan() {
			s.out.Write([]byte(sc.Text() + "\n"))
			if m := ready.FindStringSubmatch(sc.Text()); !found && m != nil {
				found = true
				match <- m[1]
			}
		}
		close(match)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-s.code:
			if code != exitOK {
				t.Errorf("dingbridge %s exited %d after cancel, want 0; output:\n%s", args[0], code, s.out)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("dingbridge %s did not stop within 20s of cancel", args[0])
		}
	})
	select {
	case m, ok := <-match:
		if !ok {
			t.Fatalf("dingbridge %s ended before printing %q; output:\n%s", args[0], ready, s.out)
		}
		return s, m
	case <-time.After(30 * time.Second):
		t.Fatalf("dingbridge %s printed nothing matching %q in 30s; output:\n%s", args[0], ready, s.out)
	}
	return nil, ""
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningLine = regexp.MustCompile(`listening on (http://\S+)`)

func get(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", url, err)
	}
	return resp.StatusCode, body
}

// writeConfig writes a valid configuration for serve with the given database
// URL and auto_migrate setting, and returns its path.
func writeConfig(t *testing.T, dbURL string, autoMigrate bool) string {
	t.Helper()
	raw := strings.NewReplacer(
		`database: {url: "postgres://localhost/db"}`,
		fmt.Sprintf("database: {url: %q, auto_migrate: %v}\nlisten: 127.0.0.1:0\nlog: {level: debug}", dbURL, autoMigrate),
	).Replace(minimal())
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeWithPostgresIsLiveAndReady(t *testing.T) {
	dbURL := pgtest.NewEmptyDatabaseURL(t)
	path := writeConfig(t, dbURL, true)
	s, base := start(t, []string{"serve", "-config", path}, listeningLine)

	for _, p := range []string{"/healthz/live", "/healthz/ready"} {
		if code, body := get(t, base+p); code != http.StatusOK {
			t.Errorf("GET %s = %d %v, want 200", p, code, body)
		}
	}
	// auto_migrate applied every migration before serving.
	var out lockedBuffer
	if code := run(t.Context(), []string{"migrate", "-config", path, "status"}, &out, &out); code != exitOK {
		t.Fatalf("migrate status exited %d: %s", code, out.String())
	}
	if strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), "0001") {
		t.Errorf("after serve with auto_migrate, migrate status =\n%s\nwant every migration applied", out.String())
	}
	// The access log names requests by path only and carries a request id.
	if log := s.out.String(); !strings.Contains(log, `"request_id"`) || !strings.Contains(log, `"path":"/healthz/ready"`) {
		t.Errorf("access log lacks request_id or path; log:\n%s", log)
	}
}

func TestServeReadinessFailsWhilePostgresIsUnreachable(t *testing.T) {
	// Nothing listens on this socket directory; auto_migrate is off so serve
	// starts anyway and must report itself not ready.
	dead := "postgres://dingbridge@/dingbridge?host=" + t.TempDir() + "&connect_timeout=1"
	path := writeConfig(t, dead, false)
	_, base := start(t, []string{"serve", "-config", path}, listeningLine)

	if code, _ := get(t, base+"/healthz/live"); code != http.StatusOK {
		t.Errorf("GET /healthz/live = %d, want 200", code)
	}
	code, body := get(t, base+"/healthz/ready")
	if code != http.StatusServiceUnavailable || body["reason"] != "database unreachable" {
		t.Errorf("GET /healthz/ready = %d %v, want 503 with reason", code, body)
	}
}

func TestServeFailsClearlyWhenMigrationsCannotRun(t *testing.T) {
	dead := "postgres://dingbridge@/dingbridge?host=" + t.TempDir() + "&connect_timeout=1"
	path := writeConfig(t, dead, true)
	var stdout, stderr lockedBuffer
	code := run(t.Context(), []string{"serve", "-config", path}, &stdout, &stderr)
	if code != exitFailure {
		t.Errorf("serve with unreachable database and auto_migrate = exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(stderr.String(), "apply migrations") {
		t.Errorf("stderr does not say migrations failed:\n%s", stderr.String())
	}
}

func TestMigrateUpAndStatus(t *testing.T) {
	path := writeConfig(t, pgtest.NewEmptyDatabaseURL(t), false)
	runOK := func(args ...string) string {
		t.Helper()
		var out lockedBuffer
		if code := run(t.Context(), args, &out, &out); code != exitOK {
			t.Fatalf("dingbridge %s exited %d:\n%s", strings.Join(args, " "), code, out.String())
		}
		return out.String()
	}
	if out := runOK("migrate", "-config", path, "status"); !regexp.MustCompile(`0001\s+audit_log\s+pending`).MatchString(out) {
		t.Errorf("status on an empty database =\n%s\nwant 0001 audit_log pending", out)
	}
	if out := runOK("migrate", "-config", path, "up"); !regexp.MustCompile(`0001\s+audit_log\s+applied`).MatchString(out) {
		t.Errorf("up =\n%s\nwant 0001 audit_log applied", out)
	}
	if out := runOK("migrate", "-config", path, "up"); strings.Contains(out, "pending") {
		t.Errorf("second up =\n%s\nwant nothing pending", out)
	}
}

func TestDemoServesBridgeAndSimulator(t *testing.T) {
	// Wait for the last line the demo prints, so the whole report is there.
	s, _ := start(t, []string{"demo", "-listen", "127.0.0.1:0", "-dingtalk-listen", "127.0.0.1:0",
		"-app-listen", "127.0.0.1:0", "-app2-listen", "127.0.0.1:0"},
		regexp.MustCompile(`(Press Ctrl-C) to stop`))
	bm := regexp.MustCompile(`dingbridge \(OIDC issuer\)\s+(http://\S+)`).FindStringSubmatch(s.out.String())
	if bm == nil {
		t.Fatalf("demo output names no issuer:\n%s", s.out)
	}
	base := bm[1]
	if code, body := get(t, base+"/healthz/live"); code != http.StatusOK {
		t.Errorf("demo GET /healthz/live = %d %v, want 200", code, body)
	}
	if code, body := get(t, base+"/healthz/ready"); code != http.StatusOK {
		t.Errorf("demo GET /healthz/ready = %d %v, want 200", code, body)
	}
	m := regexp.MustCompile(`JSAPI shim\s+(http://\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("demo output has no JSAPI shim URL:\n%s", s.out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %d, want 200 from the simulator", m[1], resp.StatusCode)
	}
	if n := strings.Count(s.out.String(), "app token OK"); n < 2 {
		t.Errorf("demo checked %d corps with the DingTalk client, want at least 2; output:\n%s", n, s.out)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, exitUsage, "Usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", []string{"help"}, exitOK, "dingbridge serve"},
		{"serve -h", []string{"serve", "-h"}, exitOK, "Usage: dingbridge serve"},
		{"migrate -h", []string{"migrate", "-h"}, exitOK, "Usage: dingbridge migrate"},
		{"demo -h", []string{"demo", "-h"}, exitOK, "Usage: dingbridge demo"},
		{"version -h", []string{"version", "-h"}, exitOK, "Usage: dingbridge version"},
		{"version", []string{"version"}, exitOK, "dingbridge dev (go1."},
		{"bad flag", []string{"serve", "-nope"}, exitUsage, "flag provided but not defined: -nope"},
		{"migrate without verb", []string{"migrate", "-config", "x.yaml"}, exitUsage, "say up or status"},
		{"serve without config", []string{"serve", "-config", ""}, exitUsage, "no configuration"},
		{"serve with missing file", []string{"serve", "-config", "/nonexistent/dingbridge.yaml"}, exitUsage, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out lockedBuffer
			code := run(t.Context(), tt.args, &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("dingbridge %v = exit %d, output:\n%s\nwant exit %d and output containing %q",
					tt.args, code, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

// runBinary runs this test binary as the real dingbridge process.
func runBinary(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DINGBRIDGE_RUN_MAIN=1")
	return cmd
}

func TestBrokenConfigListsEveryProblemAndExits2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.yaml")
	broken := `
issuer: http://sso.example.com/
listen: nowhere
secrets: {key_encryption_key: short}
corps: [{id: dingx}]
clients: [{id: app, redirect_uris: ["https://app.example.com/cb#frag"]}]
`
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := runBinary(t, "serve", "-config", path)
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != exitUsage {
		t.Fatalf("serve with a broken config: %v, want exit 2; output:\n%s", err, out)
	}
	for _, key := range []string{"issuer:", "listen:", "database.url:", "secrets.key_encryption_key:",
		"secrets.cookie_hash_key:", "secrets.cookie_block_key:", "corps[0].app_key:", "corps[0].app_secret:",
		"clients[0].secret:", "clients[0].redirect_uris[0]:"} {
		if !strings.Contains(string(out), "  - "+key) {
			t.Errorf("output does not list a problem for %s:\n%s", key, out)
		}
	}
	if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
		t.Errorf("output looks like a stack trace:\n%s", out)
	}
}

func TestSIGTERMStopsGracefully(t *testing.T) {
	cmd := runBinary(t, "demo", "-listen", "127.0.0.1:0", "-dingtalk-listen", "127.0.0.1:0",
		"-app-listen", "127.0.0.1:0", "-app2-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "Press Ctrl-C") {
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v, want a clean exit 0", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("did not exit within 20s of SIGTERM")
	}
}

func TestKeysListAndRotate(t *testing.T) {
	dbURL := pgtest.NewEmptyDatabaseURL(t)
	path := writeConfig(t, dbURL, true)
	runOK := func(args ...string) string {
		t.Helper()
		var out lockedBuffer
		if code := run(t.Context(), args, &out, &out); code != exitOK {
			t.Fatalf("dingbridge %s exited %d:\n%s", strings.Join(args, " "), code, out.String())
		}
		return out.String()
	}
	states := func(out string) map[string]int {
		n := map[string]int{}
		for _, m := range regexp.MustCompile(`(?m)^\S+\s+(RS256|ES256)\s+(next|current|previous)\s`).FindAllStringSubmatch(out, -1) {
			n[m[1]+" "+m[2]]++
		}
		return n
	}
	first := states(runOK("keys", "-config", path, "list"))
	for _, k := range []string{"RS256 current", "RS256 next", "ES256 current", "ES256 next"} {
		if first[k] != 1 {
			t.Errorf("keys list: %d %s keys, want 1; got %v", first[k], k, first)
		}
	}
	// Rotating keys that became current seconds ago is refused, and said so.
	if out := runOK("keys", "-config", path, "rotate"); !strings.Contains(out, "RS256: not rotated") || states(out)["RS256 previous"] != 0 {
		t.Errorf("rotate right after bootstrap:\n%s\nwant a refusal and no previous key", out)
	}
	// Make the keys two minutes old, as after a normal start.
	pool, err := pgxpool.New(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `update signing_keys set created_at = created_at - interval '2 minutes',
		activated_at = activated_at - interval '2 minutes'`); err != nil {
		t.Fatal(err)
	}
	out := runOK("keys", "-config", path, "rotate")
	if !strings.Contains(out, "RS256: rotated") || !strings.Contains(out, "ES256: rotated") {
		t.Errorf("rotate:\n%s\nwant both algorithms rotated", out)
	}
	rotated := states(out)
	for _, k := range []string{"RS256 current", "RS256 next", "RS256 previous", "ES256 current", "ES256 next", "ES256 previous"} {
		if rotated[k] != 1 {
			t.Errorf("after rotate: %d %s keys, want 1; got %v", rotated[k], k, rotated)
		}
	}
	if out := runOK("keys", "-config", path, "list"); !strings.Contains(out, "previous") {
		t.Errorf("list after rotate shows no previous key:\n%s", out)
	}
}

func TestServeMountsTheProvider(t *testing.T) {
	path := writeConfig(t, pgtest.NewEmptyDatabaseURL(t), true)
	_, base := start(t, []string{"serve", "-config", path}, listeningLine)

	resp, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The issuer comes from the configuration, not from the request's Host.
	if d["issuer"] != "https://sso.example.com" || d["token_endpoint"] != "https://sso.example.com/oauth/token" {
		t.Errorf("discovery issuer %v token_endpoint %v, want the configured issuer", d["issuer"], d["token_endpoint"])
	}

	resp, err = http.Get(base + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set struct{ Keys []map[string]any }
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil || len(set.Keys) != 4 {
		t.Errorf("JWKS: %d keys (%v), want current and next for RS256 and ES256", len(set.Keys), err)
	}

	// The request reaches /login, which (in a PC browser, one corp) shows
	// DingTalk's QR login page loading the configured DTFrameLogin script.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		req.URL.Scheme, req.URL.Host = "http", strings.TrimPrefix(base, "http://") // the issuer is https://sso.example.com
		return nil
	}}
	q := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {"https://app.example.com/cb"},
		"scope": {"openid"}, "state": {"s"}}
	resp, err = client.Get(base + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "钉钉登录") ||
		!strings.Contains(string(body), "h5-dingtalk-login/0.21.0/ddlogin.js") {
		t.Errorf("authorize → login = %d, want the QR login page with the DingTalk script; body:\n%.500s", resp.StatusCode, body)
	}
}
