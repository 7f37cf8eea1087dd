package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

// upload posts file as the import form does.
func (tc *testConsole) upload(t *testing.T, ck *http.Cookie, csrf, name string, file []byte, relink bool, lang string) *httptest.ResponseRecorder {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", csrf)
	if relink {
		_ = mw.WriteField("relink", "true")
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	_ = mw.Close()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "https://sso.example.com/admin/import", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept-Language", lang)
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	tc.h.ServeHTTP(rec, req)
	return rec
}

// uploadJob uploads file and waits for its dry run; it returns the job's id.
func (tc *testConsole) uploadJob(t *testing.T, ck *http.Cookie, csrf, file string) string {
	t.Helper()
	rec := tc.upload(t, ck, csrf, "people.csv", []byte(file), false, "en")
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/import/") {
		t.Fatalf("upload: %d to %q, want 303 to the job:\n%s", rec.Code, loc, rec.Body)
	}
	tc.s.imports.Wait()
	return strings.TrimPrefix(loc, "/admin/import/")
}

func (tc *testConsole) job(t *testing.T, owner, id string) mapping.ImportJob {
	t.Helper()
	j, err := tc.store.ImportJob(t.Context(), owner, id, mapping.JobReport)
	if err != nil {
		t.Fatalf("ImportJob: %v", err)
	}
	return j
}

func (tc *testConsole) apply(t *testing.T, ck *http.Cookie, id string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	rec := tc.do(t, http.MethodPost, "/admin/import/"+id+"/apply", ck, form, map[string]string{"Accept-Language": "en"})
	tc.s.imports.Wait()
	return rec
}

func (tc *testConsole) auditTotal(t *testing.T) int {
	t.Helper()
	es, err := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{Limit: mapping.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

var digestField = regexp.MustCompile(`name="digest" value="([0-9a-f]+)"`)

func TestImportUploadLimit(t *testing.T) {
	tc := newTestConsole(t)
	ck, sess := tc.signIn(t, tc.admin)

	// Larger than the console's form limit, well within the import's: accepted.
	var big strings.Builder
	big.WriteString("username,display_name\n")
	for i := 0; big.Len() < 3*maxForm; i++ {
		fmt.Fprintf(&big, "person%05d,%s\n", i, strings.Repeat("x", 40))
	}
	if rec := tc.upload(t, ck, sess.CSRF, "big.csv", []byte(big.String()), false, "en"); rec.Code != http.StatusSeeOther {
		t.Fatalf("upload of %d bytes: %d, want 303:\n%s", big.Len(), rec.Code, rec.Body)
	}
	tc.s.imports.Wait()

	// Over the import's limit: refused with a message, in both languages.
	// Just over: the file is read and measured; far over: the request is
	// refused by its length, before anything reads it.
	for _, size := range []int{mapping.MaxImportBytes + 1, maxUpload + 1} {
		huge := bytes.Repeat([]byte("a"), size)
		for lang, want := range map[string]string{"zh-CN": "最大 16 MiB", "en": "at most 16 MiB"} {
			rec := tc.upload(t, ck, sess.CSRF, "huge.csv", huge, false, lang)
			if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), want) {
				t.Errorf("%s: upload of %d bytes: %d, want 413 saying %q:\n%.300s", lang, len(huge), rec.Code, want, rec.Body)
			}
		}
	}

	// The rest of the console keeps its small limit.
	form := url.Values{"csrf": {sess.CSRF}, "username": {"padded"}, "display_name": {strings.Repeat("x", 2*maxForm)}}
	if rec := tc.do(t, http.MethodPost, "/admin/accounts", ck, form, nil); rec.Code == http.StatusSeeOther {
		t.Errorf("POST /accounts with %d bytes was accepted", len(form.Encode()))
	}
	if _, err := tc.store.AccountByUsername(t.Context(), "padded"); err == nil {
		t.Errorf("an over-long form created an account")
	}

	// A file whose header is wrong is refused on the form, saying why.
	rec := tc.upload(t, ck, sess.CSRF, "bad.csv", []byte("username,shoe_size\nx,42\n"), false, "zh-CN")
	if body := rec.Body.String(); rec.Code != http.StatusBadRequest || !strings.Contains(body, "文件无法导入") || !strings.Contains(body, "shoe_size") {
		t.Errorf("bad header: %d, want 400 naming the column:\n%.500s", rec.Code, body)
	}
}

// importFile: lisi renamed, a new person, and u1, which is zhangsan's, put under lisi.
const importFile = "corp_id,user_id,username,display_name\n" +
	",,lisi,李四（新）\n" +
	"dingcorp1,w1,wangwu,王五\n" +
	"dingcorp1,u1,lisi,李四（新）\n"

func seedConsoleImport(t *testing.T, tc *testConsole) {
	t.Helper()
	if _, err := tc.store.CreateBinding(t.Context(), mapping.Meta{Actor: "test"}, mapping.Binding{
		Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1"}, AccountID: tc.admin.ID,
	}); err != nil {
		t.Fatal(err)
	}
}

func TestImportPreviewThenApply(t *testing.T) {
	tc := newTestConsole(t)
	seedConsoleImport(t, tc)
	ck, sess := tc.signIn(t, tc.admin)
	id := tc.uploadJob(t, ck, sess.CSRF, importFile)

	rec := tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, map[string]string{"Accept-Language": "zh-CN"})
	body := rec.Body.String()
	for _, want := range []string{
		`data-outcome="create" class="o-create">新建 <span class="n">1</span>`,
		`data-outcome="update" class="o-update">更新 <span class="n">1</span>`,
		`data-outcome="conflict" class="o-conflict">冲突 <span class="n">1</span>`,
		"姓名: <del>李四</del> → <ins>李四（新）</ins>",
		"钉钉身份 dingcorp1/u1 已关联到账号 zhangsan，而这一行要把它关联到 lisi",
		`id="blocked"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("preview lacks %q", want)
		}
	}
	if strings.Contains(body, `id="apply"`) {
		t.Errorf("preview with a conflict offers to apply")
	}

	// Filtered by outcome, the table lists only those lines.
	rec = tc.do(t, http.MethodGet, "/admin/import/"+id+"?outcome=conflict", ck, nil, nil)
	if n := strings.Count(rec.Body.String(), "<tr data-line="); n != 1 || !strings.Contains(rec.Body.String(), `data-line="4"`) {
		t.Errorf("conflicts only: %d lines shown, want line 4 alone", n)
	}

	// Apply is refused while there are conflicts, whatever the form says.
	audit := tc.auditTotal(t)
	digest := tc.job(t, tc.admin.ID, id).Digest
	rec = tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {digest}})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "the apply was refused and nothing was written") {
		t.Errorf("apply with a conflict: %d, want 409 saying it was refused:\n%.400s", rec.Code, rec.Body)
	}
	if n := tc.auditTotal(t); n != audit {
		t.Errorf("refused apply wrote %d audit rows", n-audit)
	}

	// The corrected file applies, exactly as previewed, audited as the admin.
	fixed := strings.Replace(importFile, "dingcorp1,u1,lisi", "dingcorp1,u1,zhangsan", 1)
	fixed = strings.Replace(fixed, "zhangsan,李四（新）", "zhangsan,张三", 1)
	id = tc.uploadJob(t, ck, sess.CSRF, fixed)
	rec = tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, nil)
	m := digestField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no apply form on a clean preview:\n%s", rec.Body)
	}
	rec = tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {m[1]}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("apply: %d:\n%s", rec.Code, rec.Body)
	}
	j := tc.job(t, tc.admin.ID, id)
	if j.State != mapping.JobApplied || !j.Report.Applied {
		t.Fatalf("job after apply: %s (error %q), want applied", j.State, j.Error)
	}
	ls, _ := tc.store.AccountByUsername(t.Context(), "lisi")
	ww, err := tc.store.AccountByUsername(t.Context(), "wangwu")
	if ls.DisplayName != "李四（新）" || err != nil {
		t.Errorf("after apply lisi is %q and wangwu %v, want renamed and created", ls.DisplayName, err)
	}
	es, _ := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{TargetType: "account", TargetID: ww.ID})
	if len(es) != 1 || es[0].Actor != tc.admin.ID || !es[0].ClientIP.IsValid() || es[0].RequestID == "" {
		t.Errorf("audit of the created account = %+v, want one row by the admin with IP and request id", es)
	}
	rec = tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, map[string]string{"Accept-Language": "en"})
	if !strings.Contains(rec.Body.String(), "The import was applied: 1 lines created, 1 updated, 1 unchanged.") {
		t.Errorf("applied page does not say what was done:\n%s", rec.Body)
	}
	// A second apply of the same job is refused.
	rec = tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {m[1]}})
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "err=err_import_not_ready") {
		t.Errorf("second apply went to %q, want the job page saying it cannot be applied again", loc)
	}
}

func TestImportApplyNeedsCSRF(t *testing.T) {
	tc := newTestConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	id := tc.uploadJob(t, ck, sess.CSRF, "username,display_name\nwangwu,王五\n")
	digest := tc.job(t, tc.admin.ID, id).Digest
	for name, form := range map[string]url.Values{
		"no token":    {"digest": {digest}},
		"wrong token": {"digest": {digest}, "csrf": {randomToken()}},
	} {
		if rec := tc.apply(t, ck, id, form); rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, rec.Code)
		}
	}
	if rec := tc.upload(t, ck, randomToken(), "x.csv", []byte("username\nx\n"), false, "en"); rec.Code != http.StatusForbidden {
		t.Errorf("upload with a wrong token: %d, want 403", rec.Code)
	}
	if j := tc.job(t, tc.admin.ID, id); j.State != mapping.JobPreviewed {
		t.Errorf("job is %s after applies without a token, want previewed", j.State)
	}
	if _, err := tc.store.AccountByUsername(t.Context(), "wangwu"); err == nil {
		t.Errorf("an apply without a token wrote")
	}
}

func TestImportJobOfAnotherAdmin(t *testing.T) {
	tc := newTestConsole(t)
	other, err := tc.store.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: "wangfang", Groups: []string{"admins"}})
	if err != nil {
		t.Fatal(err)
	}
	ck, sess := tc.signIn(t, tc.admin)
	id := tc.uploadJob(t, ck, sess.CSRF, "username,display_name\nwangwu,王五\n")
	digest := tc.job(t, tc.admin.ID, id).Digest

	ock, osess := tc.signIn(t, other)
	for _, target := range []string{"/admin/import/" + id, "/admin/import/" + id + "/status"} {
		rec := tc.do(t, http.MethodGet, target, ock, nil, map[string]string{"Accept-Language": "en"})
		if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "wangwu") {
			t.Errorf("another admin's GET %s: %d, want 404 showing nothing of it", target, rec.Code)
		}
	}
	if rec := tc.apply(t, ock, id, url.Values{"csrf": {osess.CSRF}, "digest": {digest}}); rec.Code != http.StatusNotFound {
		t.Errorf("another admin's apply: %d, want 404", rec.Code)
	}
	if _, err := tc.store.AccountByUsername(t.Context(), "wangwu"); err == nil {
		t.Errorf("another admin applied the job")
	}
	// The owner still can.
	if rec := tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, nil); rec.Code != http.StatusOK {
		t.Errorf("owner's GET: %d", rec.Code)
	}
}

func TestImportStalePreviewRefused(t *testing.T) {
	tc := newTestConsole(t)
	ck, sess := tc.signIn(t, tc.admin)
	id := tc.uploadJob(t, ck, sess.CSRF, "username,display_name\nlisi,李四（新）\nwangwu,王五\n")
	rec := tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, nil)
	m := digestField.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("no apply form:\n%s", rec.Body)
	}
	// Someone renames lisi between the preview and the apply.
	ls, _ := tc.store.AccountByUsername(t.Context(), "lisi")
	ls.DisplayName = "Li Si"
	if _, err := tc.store.UpdateAccount(t.Context(), mapping.Meta{Actor: "test"}, ls); err != nil {
		t.Fatal(err)
	}
	audit := tc.auditTotal(t)
	rec = tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {m[1]}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("apply: %d", rec.Code)
	}
	if n := tc.auditTotal(t); n != audit {
		t.Errorf("stale apply wrote %d audit rows", n-audit)
	}
	if _, err := tc.store.AccountByUsername(t.Context(), "wangwu"); err == nil {
		t.Errorf("stale apply created wangwu")
	}
	rec = tc.do(t, http.MethodGet, "/admin/import/"+id, ck, nil, map[string]string{"Accept-Language": "en"})
	body := rec.Body.String()
	if !strings.Contains(body, "The data changed since the rehearsal") || !strings.Contains(body, "<del>Li Si</del>") {
		t.Errorf("after a stale apply the page does not show the new preview:\n%s", body)
	}
	// The old page's form is refused too: the admin has not seen the new preview.
	rec = tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {m[1]}})
	if loc := rec.Header().Get("Location"); !strings.Contains(loc, "err=err_import_changed") {
		t.Errorf("apply of the old preview went to %q, want the job saying it changed", loc)
	}
	// The new preview applies.
	n := digestField.FindStringSubmatch(body)
	if n == nil || n[1] == m[1] {
		t.Fatalf("the new preview has no apply form with a new digest")
	}
	tc.apply(t, ck, id, url.Values{"csrf": {sess.CSRF}, "digest": {n[1]}})
	if ls, _ := tc.store.AccountByUsername(t.Context(), "lisi"); ls.DisplayName != "李四（新）" {
		t.Errorf("after applying the new preview lisi is %q", ls.DisplayName)
	}
}

func TestImportProgressStatus(t *testing.T) {
	tc := newTestConsole(t)
	ck, _ := tc.signIn(t, tc.admin)
	// A dry run in progress, as another replica writes it.
	j, err := tc.store.CreateImportJob(t.Context(), mapping.ImportJob{Owner: tc.admin.ID, FileName: "big.csv",
		State: mapping.JobPreviewing, Total: 5000, Data: []byte("username\n"), ExpiresAt: tc.now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.store.ImportJobProgress(t.Context(), j.ID, 1250, 5000); err != nil {
		t.Fatal(err)
	}
	rec := tc.do(t, http.MethodGet, "/admin/import/"+j.ID+"/status", ck, nil, nil)
	var st struct {
		State   string
		Done    int
		Total   int
		Running bool
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.Done != 1250 || st.Total != 5000 || !st.Running {
		t.Errorf("status = %s (%v), want 1250 of 5000, running", rec.Body, err)
	}
	rec = tc.do(t, http.MethodGet, "/admin/import/"+j.ID, ck, nil, nil)
	body := rec.Body.String()
	for _, want := range []string{`<progress id="import-progress" max="5000" value="1250">`, `/admin/static/import.js`,
		`<noscript><meta http-equiv="refresh" content="2"></noscript>`, `(<span id="import-percent">25</span>%)`} {
		if !strings.Contains(body, want) {
			t.Errorf("progress page lacks %q", want)
		}
	}
	if js := tc.do(t, http.MethodGet, "/admin/static/import.js", nil, nil, nil); js.Code != http.StatusOK || !strings.Contains(js.Body.String(), "fetch(") {
		t.Errorf("import.js: %d", js.Code)
	}
	// Without progress for a while, the job was interrupted: the page says so.
	tc.now = tc.now.Add(importStall + time.Second)
	ck, _ = tc.signIn(t, tc.admin)
	rec = tc.do(t, http.MethodGet, "/admin/import/"+j.ID, ck, nil, nil)
	if !strings.Contains(rec.Body.String(), `id="interrupted"`) || strings.Contains(rec.Body.String(), "import.js") {
		t.Errorf("stalled job's page does not say it was interrupted:\n%s", rec.Body)
	}
}

func TestExportDownload(t *testing.T) {
	tc := newTestConsole(t)
	if _, err := tc.store.CreateAccount(t.Context(), mapping.Meta{Actor: "test"}, mapping.Account{Username: "formula", DisplayName: "=1+1"}); err != nil {
		t.Fatal(err)
	}
	ck, _ := tc.signIn(t, tc.admin)
	rec := tc.do(t, http.MethodGet, "/admin/export.csv", ck, nil, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("export: %d", rec.Code)
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="dingbridge-mapping-2026-03-01.csv"` {
		t.Errorf("Content-Disposition = %q, want the dated file name", cd)
	}
	if body := rec.Body.String(); !strings.HasPrefix(body, "\ufeffaccount_id,username") || !strings.Contains(body, ",'=1+1,") {
		t.Errorf("export is not the formula-safe CSV:\n%s", body)
	}
	es, _ := tc.store.AuditEvents(t.Context(), mapping.AuditQuery{Actor: tc.admin.ID})
	if len(es) != 1 || es[0].Action != "mapping.export" {
		t.Errorf("audit = %+v, want one mapping.export", es)
	}
}

// gatedStore holds every apply until gate is closed, or until its context
// ends; dry runs pass.
type gatedStore struct {
	mapping.Store
	gate chan struct{}
}

func (g gatedStore) Import(ctx context.Context, m mapping.Meta, r io.Reader, opts mapping.ImportOptions) (mapping.ImportReport, error) {
	if opts.Apply {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return mapping.ImportReport{}, ctx.Err()
		}
	}
	return g.Store.Import(ctx, m, r, opts)
}

// startGatedApply uploads a file creating wangwu on a console whose applies
// wait for gate, and starts its apply; it returns the job's id.
func startGatedApply(t *testing.T, gate chan struct{}) (*testConsole, string) {
	t.Helper()
	tc := newConsoleWith(t, func(cfg *Config) { cfg.Store = gatedStore{Store: cfg.Store, gate: gate} })
	ck, sess := tc.signIn(t, tc.admin)
	id := tc.uploadJob(t, ck, sess.CSRF, "username,display_name\nwangwu,王五\n")
	digest := tc.job(t, tc.admin.ID, id).Digest
	if rec := tc.do(t, http.MethodPost, "/admin/import/"+id+"/apply", ck, url.Values{"csrf": {sess.CSRF}, "digest": {digest}}, nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("apply: %d\n%s", rec.Code, rec.Body)
	}
	return tc, id
}

// TestDrainWaitsForImport: a graceful shutdown's Drain returns only once
// the running apply is done, and the job is applied, not interrupted.
func TestDrainWaitsForImport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		tc, id := startGatedApply(t, gate)
		drained := make(chan error, 1)
		go func() { drained <- tc.s.Drain(t.Context()) }()
		synctest.Wait() // the apply waits at the gate; Drain must wait for it
		select {
		case err := <-drained:
			t.Fatalf("Drain returned (%v) while an apply was running", err)
		default:
		}
		close(gate)
		if err := <-drained; err != nil {
			t.Fatalf("Drain = %v, want nil", err)
		}
		if j := tc.job(t, tc.admin.ID, id); j.State != mapping.JobApplied || j.Error != "" {
			t.Errorf("job after Drain: %s (error %q), want applied", j.State, j.Error)
		}
		if _, err := tc.store.AccountByUsername(t.Context(), "wangwu"); err != nil {
			t.Errorf("wangwu after the drained apply: %v, want created", err)
		}
	})
}

// TestDrainCancelsImportAfterGrace: once the grace is over, Drain cancels
// the apply, which writes nothing, and returns when the job is back at its
// preview, saying the import did not complete, to be applied again.
func TestDrainCancelsImportAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tc, id := startGatedApply(t, make(chan struct{})) // never opens
		const grace = 15 * time.Second
		ctx, cancel := context.WithTimeout(t.Context(), grace)
		defer cancel()
		start := time.Now() // the bubble's clock: exact, and the wait takes no real time
		if err := tc.s.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain = %v, want the grace's deadline", err)
		}
		if took := time.Since(start); took != grace {
			t.Errorf("Drain took %v, want the grace, %v (not the import's own timeout)", took, grace)
		}
		if j := tc.job(t, tc.admin.ID, id); j.State != mapping.JobPreviewed || j.Error != "err_import_failed" {
			t.Errorf("job after a cancelled apply: %s (error %q), want previewed with err_import_failed", j.State, j.Error)
		}
		if _, err := tc.store.AccountByUsername(t.Context(), "wangwu"); err == nil {
			t.Error("the cancelled apply created wangwu")
		}
	})
}
