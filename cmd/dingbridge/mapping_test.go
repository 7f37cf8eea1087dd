package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/migrations/pgtest"
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
