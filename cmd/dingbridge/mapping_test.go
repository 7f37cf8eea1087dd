package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dingbridge/dingbridge/idp"
	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
	"github.com/dingbridge/dingbridge/web"
)

func TestMappingImportExport(t *testing.T) {
	path := writeConfig(t, pgtest.NewEmptyDatabaseURL(t), false)
	dir := t.TempDir()
	runCode := func(args ...string) (int, string) {
		t.Helper()
		var out lockedBuffer
		code := run(t.Context(), args, &out, &out)
		return code, out.String()
	}
	runOK := func(args ...string) string {
		t.Helper()
		code, out := runCode(args...)
		if code != exitOK {
			t.Fatalf("dingbridge %s exited %d:\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	links := write("links.csv", "corp_id,user_id,username,display_name,email\n"+
		"dingcorp1,u1,zhangsan,张三,zs@corp.example.com\n"+
		"dingcorp1,u2,lisi,=李四,\n")

	// Before migrating, the command says what to do.
	if code, out := runCode("mapping", "import", "-config", path, links); code != exitFailure || !strings.Contains(out, "run dingbridge migrate up") {
		t.Errorf("import on an unmigrated database = exit %d:\n%s\nwant exit 1 and advice to migrate", code, out)
	}
	runOK("migrate", "-config", path, "up")

	// A dry run reports and writes nothing.
	out := runOK("mapping", "import", "-config", path, links)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^2\s+create\s+dingcorp1/u1\s+zhangsan\s+create account zhangsan; create identity dingcorp1/u1 linked to zhangsan$`),
		regexp.MustCompile(`(?m)^3\s+create\s+dingcorp1/u2\s+lisi`),
		regexp.MustCompile(`2 lines: 2 create, 0 update, 0 no-op, 0 conflict, 0 error`),
		regexp.MustCompile(`Dry run: nothing written`),
	} {
		if !want.MatchString(out) {
			t.Errorf("dry run output =\n%s\nwant a match for %s", out, want)
		}
	}
	if out := runOK("mapping", "export", "-config", path); strings.Contains(out, "zhangsan") {
		t.Errorf("export after a dry run shows zhangsan:\n%s", out)
	}

	// Apply, then export to a file: formulas defused, readable only by its owner.
	if out := runOK("mapping", "import", "-config", path, "-apply", "-actor", "alice", links); !strings.Contains(out, "Applied") {
		t.Errorf("apply output =\n%s\nwant it to say the changes are applied", out)
	}
	export := filepath.Join(dir, "export.csv")
	runOK("mapping", "export", "-config", path, export)
	b, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ",zhangsan,张三,") || !strings.Contains(string(b), ",'=李四,") {
		t.Errorf("export =\n%s\nwant zhangsan and the escaped '=李四", b)
	}
	if fi, err := os.Stat(export); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("export file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if out := runOK("mapping", "import", "-config", path, export); !strings.Contains(out, "2 lines: 0 create, 0 update, 2 no-op") {
		t.Errorf("re-import of the export =\n%s\nwant all no-ops", out)
	}

	// A failing line fails the command and writes nothing.
	bad := write("bad.csv", "corp_id,user_id,username\ndingcorp1,u3,wangwu\ndingcorp1,u1,lisi\n")
	code, out := runCode("mapping", "import", "-config", path, "-apply", bad)
	if code != exitFailure || !regexp.MustCompile(`(?m)^3\s+conflict\s+dingcorp1/u1\s+lisi\s+identity dingcorp1/u1 is linked to zhangsan`).MatchString(out) ||
		!strings.Contains(out, "Nothing written") {
		t.Errorf("import with a conflict = exit %d:\n%s\nwant exit 1, the conflict on line 3 and nothing written", code, out)
	}
	if out := runOK("mapping", "export", "-config", path, "-"); strings.Contains(out, "wangwu") {
		t.Errorf("export after a failed import shows wangwu:\n%s", out)
	}
}

func TestMappingCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no subcommand", []string{"mapping"}, exitUsage, "dingbridge mapping import"},
		{"unknown subcommand", []string{"mapping", "sync"}, exitUsage, `unknown command "sync"`},
		{"import -h", []string{"mapping", "import", "-h"}, exitOK, "Usage: dingbridge mapping import"},
		{"import without file", []string{"mapping", "import", "-config", "x.yaml"}, exitUsage, "name one CSV file"},
		{"import missing file", []string{"mapping", "import", "-config", "x.yaml", "/nonexistent.csv"}, exitUsage, "no such file"},
		{"export two files", []string{"mapping", "export", "-config", "x.yaml", "a", "b"}, exitUsage, "at most one file"},
		{"export without config", []string{"mapping", "export", "-config", ""}, exitUsage, "no configuration"},
		{"listed in usage", []string{"help"}, exitOK, "dingbridge mapping import|export"},
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

// TestMappingImportEndsSessions: an applied import that moves an identity to
// another account ends the provider's sign-in sessions of that identity and
// the console sessions of the account it left; a dry run ends nothing.
func TestMappingImportEndsSessions(t *testing.T) {
	url := pgtest.NewDatabaseURL(t)
	path := writeConfig(t, url, false)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, dir := t.Context(), t.TempDir()
	runImport := func(file string, args ...string) (int, string) {
		t.Helper()
		p := filepath.Join(dir, "links.csv")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		var out lockedBuffer
		code := run(ctx, append(append([]string{"mapping", "import", "-config", path}, args...), p), &out, &out)
		return code, out.String()
	}
	if code, out := runImport("corp_id,user_id,username\ndingcorp1,u1,zhangsan\ndingcorp1,u2,zhangsan\n,,lisi\n", "-apply"); code != exitOK {
		t.Fatalf("seed: exit %d:\n%s", code, out)
	}
	zhangsan, err := mapping.NewPostgres(pool, mapping.Options{}).AccountByUsername(ctx, "zhangsan")
	if err != nil {
		t.Fatal(err)
	}

	// 张三 signed in through u1 (the provider's session) and to the console.
	now := time.Now()
	sso := idp.NewPostgresStore(pool)
	if err := sso.CreateSession(ctx, &idp.Session{ID: "sso-u1", Subject: zhangsan.ID, AuthTime: now, AMR: []string{"dingtalk"},
		DingTalk: idp.DingTalkIDs{CorpID: "dingcorp1", UserID: "u1"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	console := web.NewPostgresSessions(pool)
	consoleID := sha256.Sum256([]byte("console-session"))
	if err := console.Create(ctx, web.SessionRecord{IDHash: consoleID, AccountID: zhangsan.ID, Created: now, LastSeen: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ended := func() (bool, bool) {
		t.Helper()
		s, err := sso.Session(ctx, "sso-u1")
		if err != nil {
			t.Fatal(err)
		}
		c, err := console.Session(ctx, consoleID)
		if err != nil {
			t.Fatal(err)
		}
		return s.EndedAt != nil, !c.Revoked.IsZero()
	}

	move := "corp_id,user_id,username\ndingcorp1,u1,lisi\n"
	if code, out := runImport(move, "-relink"); code != exitOK || strings.Contains(out, "sessions") {
		t.Fatalf("dry run: exit %d:\n%s\nwant exit 0 saying nothing of sessions", code, out)
	}
	if s, c := ended(); s || c {
		t.Fatalf("after the dry run: sign-in session ended %v, console session ended %v; want neither", s, c)
	}
	code, out := runImport(move, "-relink", "-apply")
	if code != exitOK || !strings.Contains(out, "Moved 1 identities to another account: ended 1 sign-in sessions through them and 1 console sessions") {
		t.Fatalf("apply: exit %d:\n%s\nwant exit 0 saying one session of each ended", code, out)
	}
	if s, c := ended(); !s || !c {
		t.Errorf("after the apply: sign-in session ended %v, console session ended %v; want both", s, c)
	}
}
