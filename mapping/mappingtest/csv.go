package mappingtest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

var importer = mapping.Meta{Actor: "import-test", RequestID: "import-1"}

// seedImport: zhangsan linked in dingcorp1, lisi unlinked, and an identity known by its
// unionId only from a sign-in attempt.
func seedImport(e *env) {
	e.t.Helper()
	zs := e.account("zhangsan", func(a *mapping.Account) { a.Email = "zs@corp.example.com" })
	e.account("lisi")
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1", UnionID: "union1", AppKey: "app1"}, AccountID: zs.ID})
	_, err := e.s.RecordPending(e.t.Context(), login, mapping.Identity{CorpID: "dingcorp1", UserID: "u9", UnionID: "union9", AppKey: "app1"})
	ok(e.t, "RecordPending", err)
}

func importCSV(t *testing.T, s mapping.Store, text string, opts mapping.ImportOptions) mapping.ImportReport {
	t.Helper()
	r, err := s.Import(t.Context(), importer, strings.NewReader(text), opts)
	ok(t, "Import", err)
	return r
}

func outcomes(r mapping.ImportReport) []string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, fmt.Sprintf("%d %s", l.Line, l.Outcome))
	}
	return out
}

func testImportOutcomes(t *testing.T, newStore NewStore) {
	const file = "\ufeffcorp_id,user_id,union_id,app_key,username,display_name,email\n" +
		"dingcorp1,u1,,,zhangsan,zhangsan,zs@corp.example.com\n" + // 2 no-op: exactly as stored
		"dingcorp1,u2,,,zhangsan,zhangsan,zs@corp.example.com\n" + // 3 create: a second identity
		"dingcorp1,u3,union3,app1,wangwu,王五,ww@corp.example.com\n" + // 4 create: account and identity
		"dingcorp1,,union9,app1,lisi,lisi,\n" + // 5 update: link the identity known by unionId
		"dingcorp1,u1,,,lisi,lisi,\n" + // 6 conflict: u1 is zhangsan's
		"dingcorp1,,union-unknown,app1,lisi,lisi,\n" + // 7 error: no identity with that unionId
		"dingcorp1,u4,,,bad name,x,\n" + // 8 error: invalid username
		",,,,zhangsan,张三,zs@corp.example.com\n" + // 9 update: account fields only
		"dingcorp1,u5,union1,app1,zhaoliu,,\n" + // 10 conflict: union1 is u1's
		"dingcorp1,u6,,,'=cmd,,\n" + // 11 error: the quote is undone, "=cmd" is no username
		"dingcorp1,u7,union7,,x,,\n" + // 12 error: union_id without app_key (BR-08)
		",,,,zhaoliu,,\n" // 13 create: line 10's account was rolled back with its conflict
	want := []string{"2 no-op", "3 create", "4 create", "5 update", "6 conflict", "7 error", "8 error",
		"9 update", "10 conflict", "11 error", "12 error", "13 create"}

	e := newEnv(t, newStore)
	seedImport(e)
	audit := e.auditCount()
	dry := importCSV(t, e.s, file, mapping.ImportOptions{})
	if got := outcomes(dry); !reflect.DeepEqual(got, want) {
		t.Errorf("dry run outcomes =\n\t%v\nwant\n\t%v", got, want)
	}
	if dry.Applied || e.auditCount() != audit {
		t.Errorf("dry run Applied = %v and wrote %d audit rows, want nothing written", dry.Applied, e.auditCount()-audit)
	}
	for _, l := range dry.Lines {
		if l.Detail == "" {
			t.Errorf("line %d has no detail", l.Line)
		}
	}
	if d := dry.Lines[4].Detail; !strings.Contains(d, "linked to zhangsan") {
		t.Errorf("conflict detail = %q, want it to name the account the identity is linked to", d)
	}

	// With relink, line 6 moves u1; the other failures still stop the apply.
	relink := importCSV(t, e.s, file, mapping.ImportOptions{Relink: true, Apply: true})
	if relink.Lines[4].Outcome != mapping.OutcomeUpdate || relink.Applied {
		t.Errorf("with relink, line 6 = %s and Applied = %v; want update, and nothing applied (other lines fail)", relink.Lines[4].Outcome, relink.Applied)
	}

	// The good lines alone apply.
	good := strings.Join(pickLines(strings.Split(file, "\n"), 0, 1, 2, 3, 4, 8), "\n") + "\n"
	applied := importCSV(t, e.s, good, mapping.ImportOptions{Apply: true})
	if !applied.Applied || !applied.OK() {
		t.Fatalf("apply of the good lines: %v, Applied %v", outcomes(applied), applied.Applied)
	}
	for _, c := range []struct {
		k    mapping.Key
		user string
	}{{key("dingcorp1", "u2"), "zhangsan"}, {key("dingcorp1", "u3"), "wangwu"}, {key("dingcorp1", "u9"), "lisi"}} {
		b, err := e.s.Binding(t.Context(), c.k)
		ok(t, "Binding", err)
		a, err := e.s.AccountByUsername(t.Context(), c.user)
		ok(t, "AccountByUsername", err)
		if b.AccountID != a.ID || b.Source != mapping.SourceImport {
			t.Errorf("%s linked to %q (source %s), want %s by import", c.k, b.AccountID, b.Source, c.user)
		}
	}
	zs, err := e.s.AccountByUsername(t.Context(), "zhangsan")
	ok(t, "AccountByUsername", err)
	if zs.DisplayName != "张三" {
		t.Errorf("zhangsan's display name = %q, want 张三 from line 9", zs.DisplayName)
	}
	if ev := e.lastAudit("identity", "dingcorp1/u3"); ev.Actor != importer.Actor || ev.RequestID != importer.RequestID {
		t.Errorf("import audit by %q (request %q), want %q (%q)", ev.Actor, ev.RequestID, importer.Actor, importer.RequestID)
	}
	// The request of u9 was closed by the import's link.
	page, err := e.s.PendingRequests(t.Context(), mapping.RequestQuery{})
	ok(t, "PendingRequests", err)
	if len(page.Requests) != 0 {
		t.Errorf("%d open requests after importing u9's link, want 0", len(page.Requests))
	}

	for _, bad := range []struct{ name, text string }{
		{"unknown column", "username,shoe_size\nx,42\n"},
		{"no username column", "corp_id,user_id\nc,u\n"},
		{"column twice", "username,username\nx,y\n"},
		{"empty", ""},
		{"broken quoting", "username\n\"x\n"},
	} {
		_, err := e.s.Import(t.Context(), importer, strings.NewReader(bad.text), mapping.ImportOptions{})
		wantIs(t, "Import("+bad.name+")", err, mapping.ErrInvalid)
	}
}

// pickLines picks lines by index.
func pickLines(lines []string, idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, lines[i])
	}
	return out
}

// testImportDryRunEqualsApply checks that a dry run reports exactly what an apply then
// does, and that the apply's result is the state the dry run described.
func testImportDryRunEqualsApply(t *testing.T, newStore NewStore) {
	const file = "corp_id,user_id,union_id,app_key,username,display_name,email,email_verified,phone,groups,disabled\n" +
		"dingcorp1,u1,,,zhangsan,张三,zs@corp.example.com,true,,ops;dev,false\n" +
		"dingcorp1,u2,union2,app1,wangwu,王五,,false,+86 139 0000 1111,,false\n" +
		"dingcorp2,u2,,,wangwu,王五,,false,+86 139 0000 1111,,false\n" +
		",,,,lisi,李四,,false,,,true\n" +
		"dingcorp1,,union9,app1,zhaoliu,赵六,,false,,,false\n"
	e := newEnv(t, newStore)
	seedImport(e)
	dry := importCSV(t, e.s, file, mapping.ImportOptions{})
	if !dry.OK() || dry.Applied {
		t.Fatalf("dry run: %v, Applied %v; want every line fine and nothing applied", outcomes(dry), dry.Applied)
	}
	before := e.auditCount()
	applied := importCSV(t, e.s, file, mapping.ImportOptions{Apply: true})
	if !applied.Applied {
		t.Fatalf("apply: Applied = false; %v", outcomes(applied))
	}
	dry.Applied = true
	if !reflect.DeepEqual(dry, applied) {
		t.Errorf("dry run report\n\t%+v\ndiffers from the apply's\n\t%+v", dry.Lines, applied.Lines)
	}
	if e.auditCount() == before {
		t.Errorf("apply wrote no audit rows")
	}
	// Importing again finds everything done.
	again := importCSV(t, e.s, file, mapping.ImportOptions{})
	for _, l := range again.Lines {
		if l.Outcome != mapping.OutcomeNoop {
			t.Errorf("second import, line %d: %s (%s), want no-op", l.Line, l.Outcome, l.Detail)
		}
	}
	ls, err := e.s.AccountByUsername(t.Context(), "lisi")
	ok(t, "AccountByUsername", err)
	if !ls.Disabled || ls.DisplayName != "李四" {
		t.Errorf("lisi = %+v, want disabled with display name 李四", ls)
	}
}

// testImportAllOrNothing checks that one failing line leaves nothing written.
func testImportAllOrNothing(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedImport(e)
	var before bytes.Buffer
	ok(t, "Export", e.s.Export(t.Context(), &before))
	audit := e.auditCount()

	const file = "corp_id,user_id,username,display_name\n" +
		"dingcorp1,u2,newuser,新人\n" +
		"dingcorp1,u3,zhangsan,改名\n" +
		"dingcorp1,u1,lisi,\n" // conflict: u1 is zhangsan's
	r := importCSV(t, e.s, file, mapping.ImportOptions{Apply: true})
	if r.Applied || r.OK() || r.Count(mapping.OutcomeCreate) != 2 || r.Count(mapping.OutcomeConflict) != 1 {
		t.Errorf("import = %v, Applied %v; want two creates, one conflict, nothing applied", outcomes(r), r.Applied)
	}
	var after bytes.Buffer
	ok(t, "Export", e.s.Export(t.Context(), &after))
	if before.String() != after.String() {
		t.Errorf("a failed import changed the data:\nbefore\n%s\nafter\n%s", before.String(), after.String())
	}
	if n := e.auditCount(); n != audit {
		t.Errorf("a failed import wrote %d audit rows, want 0", n-audit)
	}
	if _, err := e.s.AccountByUsername(t.Context(), "newuser"); err == nil {
		t.Errorf("account newuser exists after a failed import")
	}
}

// testExportImportRoundTrip checks that importing an export changes nothing.
func testExportImportRoundTrip(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedImport(e)
	e.account("formula", func(a *mapping.Account) {
		a.DisplayName, a.Phone, a.Groups, a.EmailVerified = "=HYPERLINK(\"x\")", "+86 185", []string{"@all", "-x", "'q"}, true
	})
	ww := e.account("wangwu", func(a *mapping.Account) { a.DisplayName = "王五" })
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp2", UserID: "w1", UnionID: "uw", AppKey: "app2", Name: "王五"}, AccountID: ww.ID})
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "w2"), AccountID: ww.ID})
	_, err := e.s.SetAccountDisabled(t.Context(), admin, ww.ID, true)
	ok(t, "SetAccountDisabled", err)

	var out bytes.Buffer
	ok(t, "Export", e.s.Export(t.Context(), &out))
	r := importCSV(t, e.s, out.String(), mapping.ImportOptions{})
	if len(r.Lines) != 5 {
		t.Errorf("export has %d lines, want 5 (formula, lisi, wangwu twice, zhangsan)", len(r.Lines))
	}
	for _, l := range r.Lines {
		if l.Outcome != mapping.OutcomeNoop {
			t.Errorf("re-import of the export, line %d: %s (%s), want no-op", l.Line, l.Outcome, l.Detail)
		}
	}
}

// testExportEscapesFormulas checks ADM-08: no cell of an export starts a formula.
func testExportEscapesFormulas(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	e.account("formula", func(a *mapping.Account) {
		a.DisplayName, a.Email, a.Phone = "=1+1", "@x@example.com", "+86 185 1234 7676"
		a.Groups = []string{"-2"}
	})
	e.account("tab", func(a *mapping.Account) { a.DisplayName = "'quoted" })
	var out bytes.Buffer
	ok(t, "Export", e.s.Export(t.Context(), &out))
	if !bytes.HasPrefix(out.Bytes(), []byte("\ufeff")) {
		t.Errorf("export does not start with a UTF-8 byte order mark")
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out.Bytes(), []byte("\ufeff")))).ReadAll()
	ok(t, "read export", err)
	if got, want := strings.Join(recs[0], ","), "account_id,username,display_name,email,email_verified,phone,groups,disabled,corp_id,user_id,union_id,app_key,open_id,identity_disabled,source,dingtalk_name,job_number,mobile,org_email,last_login_at"; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	cells := map[string]bool{}
	for _, rec := range recs[1:] {
		for _, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("cell %q starts a formula", c)
			}
			cells[c] = true
		}
	}
	for _, want := range []string{"'=1+1", "'@x@example.com", "'+86 185 1234 7676", "'-2", "''quoted"} {
		if !cells[want] {
			t.Errorf("export has no cell %q", want)
		}
	}
}

// testImportChanges checks that each line says, field by field, what it changes, and for a
// conflict what it collides with, in a dry run as in the apply.
func testImportChanges(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedImport(e)
	ww := e.account("wangwu")
	e.binding(mapping.Binding{Identity: ident("dingcorp1", "w1"), AccountID: ww.ID})
	const file = "corp_id,user_id,union_id,app_key,username,display_name,email,groups,disabled\n" +
		"dingcorp1,u1,,,zhangsan,张三,zs@corp.example.com,ops;dev,false\n" + // 2 update fields
		"dingcorp1,u3,union3,app1,zhaoliu,赵六,,,true\n" + // 3 create account and identity
		"dingcorp1,,union9,app1,lisi,lisi,,,false\n" + // 4 link u9 to lisi
		"dingcorp1,u1,,,lisi,lisi,,,false\n" + // 5 conflict: u1 is zhangsan's
		"dingcorp1,u5,union1,app1,zhaoliu,赵六,,,true\n" + // 6 conflict: union1 is u1's
		"dingcorp1,u6,,,bad name,,,,false\n" + // 7 error in username
		"dingcorp1,w1,,,lisi,lisi,,,false\n" // 8 relink (with Relink) of w1 from wangwu
	type want struct {
		outcome  mapping.Outcome
		changes  []mapping.Change
		conflict mapping.Conflict
		with     string
		field    string
	}
	wants := []want{
		{outcome: mapping.OutcomeUpdate, changes: []mapping.Change{
			{Field: "display_name", Before: "zhangsan", After: "张三"}, {Field: "groups", After: "dev;ops"}}},
		{outcome: mapping.OutcomeCreate, changes: []mapping.Change{
			{Field: "username", After: "zhaoliu"}, {Field: "display_name", After: "赵六"},
			{Field: "email_verified", After: "false"}, {Field: "disabled", After: "true"},
			{Field: "identity", After: "dingcorp1/u3"}, {Field: "linked_to", After: "zhaoliu"},
			{Field: "union_id", After: "union3"}, {Field: "app_key", After: "app1"}}},
		{outcome: mapping.OutcomeUpdate, changes: []mapping.Change{{Field: "linked_to", After: "lisi"}}},
		{outcome: mapping.OutcomeConflict, conflict: mapping.ConflictIdentityLinked, with: "zhangsan"},
		{outcome: mapping.OutcomeConflict, conflict: mapping.ConflictUnionIDTaken, with: "dingcorp1/u1"},
		{outcome: mapping.OutcomeError, field: "username"},
		{outcome: mapping.OutcomeUpdate, changes: []mapping.Change{{Field: "linked_to", Before: "wangwu", After: "lisi"}}},
	}
	r := importCSV(t, e.s, file, mapping.ImportOptions{Relink: true})
	if len(r.Lines) != len(wants) {
		t.Fatalf("%d lines, want %d", len(r.Lines), len(wants))
	}
	for i, w := range wants {
		l := r.Lines[i]
		if i == 3 {
			continue // with Relink, line 5 moves u1; checked without it below
		}
		if l.Outcome != w.outcome || !reflect.DeepEqual(l.Changes, w.changes) || l.Conflict != w.conflict ||
			l.ConflictWith != w.with || l.Field != w.field {
			t.Errorf("line %d = %s %+v conflict %q with %q field %q;\nwant %s %+v conflict %q with %q field %q",
				l.Line, l.Outcome, l.Changes, l.Conflict, l.ConflictWith, l.Field, w.outcome, w.changes, w.conflict, w.with, w.field)
		}
	}
	// The identities moved from one account to another: u1 from zhangsan (line 5), w1
	// from wangwu (line 8). Line 4 links u9, which was not linked: nothing moved.
	zs, err := e.s.AccountByUsername(t.Context(), "zhangsan")
	ok(t, "AccountByUsername", err)
	wantMoved := []mapping.MovedIdentity{{Identity: mapping.Key{CorpID: "dingcorp1", UserID: "u1"}, From: zs.ID},
		{Identity: mapping.Key{CorpID: "dingcorp1", UserID: "w1"}, From: ww.ID}}
	if !reflect.DeepEqual(r.Moved, wantMoved) {
		t.Errorf("moved = %+v, want %+v", r.Moved, wantMoved)
	}
	plain := importCSV(t, e.s, file, mapping.ImportOptions{})
	if len(plain.Moved) != 0 {
		t.Errorf("moved without relink = %+v, want none (lines 5 and 8 are conflicts)", plain.Moved)
	}
	if l := plain.Lines[3]; l.Outcome != mapping.OutcomeConflict || l.Conflict != mapping.ConflictIdentityLinked || l.ConflictWith != "zhangsan" {
		t.Errorf("line 5 without relink = %s %q with %q, want a conflict identity_linked with zhangsan", l.Outcome, l.Conflict, l.ConflictWith)
	}
}

// testImportExpect checks that an apply given a dry run's digest writes only if it does
// exactly what the dry run said, checked in the apply's own transaction.
func testImportExpect(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedImport(e)
	const file = "corp_id,user_id,username,display_name\n" +
		"dingcorp1,u2,newuser,新人\n" +
		",,lisi,李四\n"
	dry := importCSV(t, e.s, file, mapping.ImportOptions{})
	again := importCSV(t, e.s, file, mapping.ImportOptions{})
	if dry.Digest() != again.Digest() || dry.Digest() == "" {
		t.Fatalf("two dry runs of one file have digests %q and %q, want equal", dry.Digest(), again.Digest())
	}

	// Someone renames lisi after the preview: the apply's "before" differs.
	ls, err := e.s.AccountByUsername(t.Context(), "lisi")
	ok(t, "AccountByUsername", err)
	ls.DisplayName = "Li Si"
	_, err = e.s.UpdateAccount(t.Context(), admin, ls)
	ok(t, "UpdateAccount", err)
	audit := e.auditCount()
	r := importCSV(t, e.s, file, mapping.ImportOptions{Apply: true, Expect: dry.Digest()})
	if r.Applied || !r.Changed {
		t.Fatalf("apply after a change: Applied %v Changed %v, want nothing applied and Changed", r.Applied, r.Changed)
	}
	if n := e.auditCount(); n != audit {
		t.Errorf("refused apply wrote %d audit rows", n-audit)
	}
	if _, err := e.s.AccountByUsername(t.Context(), "newuser"); err == nil {
		t.Errorf("refused apply created newuser")
	}
	if c := r.Lines[1].Changes; len(c) != 1 || c[0].Before != "Li Si" {
		t.Errorf("the refused apply reports line 3 changes %+v, want display_name from Li Si (the lines as they are now)", c)
	}

	// With the new preview's digest, it applies.
	r = importCSV(t, e.s, file, mapping.ImportOptions{Apply: true, Expect: r.Digest()})
	if !r.Applied || r.Changed {
		t.Fatalf("apply of the new preview: Applied %v Changed %v, want applied", r.Applied, r.Changed)
	}
	if _, err := e.s.AccountByUsername(t.Context(), "newuser"); err != nil {
		t.Errorf("newuser after apply: %v", err)
	}
}

// testImportProgress checks the progress callback: from 0 to every line, in order.
func testImportProgress(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	var b strings.Builder
	b.WriteString("username\n")
	for i := range 25 {
		fmt.Fprintf(&b, "user%02d\n", i)
	}
	for _, apply := range []bool{false, true} {
		var got []string
		importCSV(t, e.s, b.String(), mapping.ImportOptions{Apply: apply, Progress: func(done, total int) {
			got = append(got, fmt.Sprintf("%d/%d", done, total))
		}})
		if len(got) != 26 || got[0] != "0/25" || got[12] != "12/25" || got[25] != "25/25" {
			t.Errorf("apply %v: progress %v, want 0/25 … 25/25 in steps of one", apply, got)
		}
	}
	if n, err := mapping.CheckImport(strings.NewReader(b.String())); n != 25 || err != nil {
		t.Errorf("CheckImport = %d, %v; want 25 lines", n, err)
	}
	if _, err := mapping.CheckImport(strings.NewReader("shoe_size\n42\n")); !errors.Is(err, mapping.ErrInvalid) {
		t.Errorf("CheckImport of a bad header: %v, want ErrInvalid", err)
	}
}

// testImportJobs checks the storage of uploads: bound to their owner, updated only from the
// state the caller saw, invisible once expired.
func testImportJobs(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	data := []byte("username\nzhangsan\n")
	j, err := e.s.CreateImportJob(ctx, mapping.ImportJob{Owner: "admin1", FileName: "people.csv", Relink: true,
		State: mapping.JobPreviewing, Total: 1, Data: data, ExpiresAt: e.clock.Now().Add(time.Hour)})
	ok(t, "CreateImportJob", err)
	if j.ID == "" || !j.CreatedAt.Equal(e.clock.Now()) {
		t.Fatalf("created job = %+v, want an id and the clock's time", j)
	}
	got, err := e.s.ImportJob(ctx, "admin1", j.ID, 0)
	ok(t, "ImportJob", err)
	if got.Data != nil || got.Report != nil || got.FileName != "people.csv" || !got.Relink || got.State != mapping.JobPreviewing || got.Total != 1 {
		t.Errorf("job without parts = %+v, want no data, no report, the upload's name and option", got)
	}
	got, err = e.s.ImportJob(ctx, "admin1", j.ID, mapping.JobData)
	ok(t, "ImportJob(data)", err)
	if !bytes.Equal(got.Data, data) {
		t.Errorf("job data = %q, want %q", got.Data, data)
	}
	_, err = e.s.ImportJob(ctx, "admin2", j.ID, mapping.JobData)
	wantIs(t, "another administrator's job", err, mapping.ErrNotFound)
	_, err = e.s.ImportJob(ctx, "admin1", "nope", 0)
	wantIs(t, "no such job", err, mapping.ErrNotFound)

	ok(t, "ImportJobProgress", e.s.ImportJobProgress(ctx, j.ID, 1, 1))
	got, err = e.s.ImportJob(ctx, "admin1", j.ID, 0)
	ok(t, "ImportJob", err)
	if got.Done != 1 {
		t.Errorf("done = %d after progress, want 1", got.Done)
	}

	report := importCSV(t, e.s, string(data), mapping.ImportOptions{})
	next := got
	next.State, next.Report, next.Digest = mapping.JobPreviewed, &report, report.Digest()
	_, err = e.s.UpdateImportJob(ctx, next, mapping.JobPreviewing)
	ok(t, "UpdateImportJob", err)
	got, err = e.s.ImportJob(ctx, "admin1", j.ID, mapping.JobReport)
	ok(t, "ImportJob(report)", err)
	if got.State != mapping.JobPreviewed || got.Report == nil || !reflect.DeepEqual(*got.Report, report) || got.Digest != report.Digest() {
		t.Errorf("previewed job = %+v, want the report and its digest", got)
	}
	// Two applies of one preview: only the first moves it on.
	start := got
	start.State = mapping.JobApplying
	_, err = e.s.UpdateImportJob(ctx, start, mapping.JobPreviewed)
	ok(t, "UpdateImportJob(apply)", err)
	_, err = e.s.UpdateImportJob(ctx, start, mapping.JobPreviewed)
	wantConflict(t, "second apply", err, mapping.ConflictStale)
	other := start
	other.Owner = "admin2"
	_, err = e.s.UpdateImportJob(ctx, other, mapping.JobApplying)
	wantIs(t, "update of another administrator's job", err, mapping.ErrNotFound)
	// Progress of a job that is not running changes nothing.
	done := start
	done.State, done.Done = mapping.JobApplied, 1
	_, err = e.s.UpdateImportJob(ctx, done, mapping.JobApplying)
	ok(t, "UpdateImportJob(applied)", err)
	ok(t, "ImportJobProgress", e.s.ImportJobProgress(ctx, j.ID, 0, 1))
	if got, _ := e.s.ImportJob(ctx, "admin1", j.ID, 0); got.Done != 1 {
		t.Errorf("progress of a finished job changed done to %d", got.Done)
	}

	_, err = e.s.CreateImportJob(ctx, mapping.ImportJob{Owner: "admin1", State: mapping.JobPreviewing, Data: data})
	wantIs(t, "job without expiry", err, mapping.ErrInvalid)
	_, err = e.s.CreateImportJob(ctx, mapping.ImportJob{Owner: "admin1", State: "lost", Data: data, ExpiresAt: e.clock.Now().Add(time.Hour)})
	wantIs(t, "job in an unknown state", err, mapping.ErrInvalid)

	live, err := e.s.CreateImportJob(ctx, mapping.ImportJob{Owner: "admin2", State: mapping.JobPreviewing, Data: data,
		ExpiresAt: e.clock.Now().Add(2 * time.Hour)})
	ok(t, "CreateImportJob", err)
	if n, err := e.s.DeleteExpiredImportJobs(ctx); n != 0 || err != nil {
		t.Errorf("DeleteExpiredImportJobs before any expired = %d, %v; want 0", n, err)
	}

	e.clock.Advance(time.Hour)
	_, err = e.s.ImportJob(ctx, "admin1", j.ID, 0)
	wantIs(t, "expired job", err, mapping.ErrNotFound)
	_, err = e.s.UpdateImportJob(ctx, done, mapping.JobApplied)
	wantIs(t, "update of an expired job", err, mapping.ErrNotFound)
	// The periodic clean-up deletes the expired job, and only it.
	if n, err := e.s.DeleteExpiredImportJobs(ctx); n != 1 || err != nil {
		t.Errorf("DeleteExpiredImportJobs = %d, %v; want the one expired job", n, err)
	}
	if n, err := e.s.DeleteExpiredImportJobs(ctx); n != 0 || err != nil {
		t.Errorf("DeleteExpiredImportJobs again = %d, %v; want 0", n, err)
	}
	_, err = e.s.ImportJob(ctx, "admin2", live.ID, 0)
	ok(t, "ImportJob of the job that has not expired", err)
}
