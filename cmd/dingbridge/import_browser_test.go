package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// importWait bounds a dry run or an apply of 5,000 lines in the browser test
// (on Postgres it takes seconds; a CI machine may be slower and shared).
const importWait = 5 * time.Minute

// importPlan is a generated 5,000-line import and what each line must do.
type importPlan struct {
	csv                        string
	creates, updates, conflict int
	newUsername                string // one of the new people
}

// planImport writes 5,000 lines: every demo account but the administrator
// renamed (updates), conflicts linked identities put under new usernames
// (conflicts; with fixed, under their own accounts: no-ops), and new people
// with new identities (creates).
func planImport(t *testing.T, w *signinWorld, conflicts int, fixed bool) importPlan {
	t.Helper()
	ctx := t.Context()
	var accounts []mapping.Account
	for after := ""; ; {
		p, err := w.accounts.SearchAccounts(ctx, mapping.Query{Limit: mapping.MaxPageSize, After: after})
		if err != nil {
			t.Fatal(err)
		}
		accounts = append(accounts, p.Accounts...)
		if after = p.Next; after == "" {
			break
		}
	}
	page, err := w.accounts.Search(ctx, mapping.Query{Limit: mapping.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	var linked []mapping.SearchResult
	for _, r := range page.Results {
		if r.Account != nil && r.Account.Username != "zhangsan" {
			linked = append(linked, r)
		}
	}
	if len(linked) < conflicts {
		t.Fatalf("the demo has %d linked identities, want at least %d", len(linked), conflicts)
	}
	var b strings.Builder
	b.WriteString("corp_id,user_id,username,display_name\n")
	var p importPlan
	lines := 0
	for _, a := range accounts {
		if a.Username == "zhangsan" { // the administrator signed in
			continue
		}
		fmt.Fprintf(&b, ",,%s,%s（导入）\n", a.Username, a.DisplayName)
		p.updates++
		lines++
	}
	for _, r := range linked[:conflicts] {
		if fixed {
			fmt.Fprintf(&b, "%s,%s,%s,%s\n", r.Binding.CorpID, r.Binding.UserID, r.Account.Username, r.Account.DisplayName+"（导入）")
		} else {
			fmt.Fprintf(&b, "%s,%s,takeover%s,抢占者\n", r.Binding.CorpID, r.Binding.UserID, strings.ToLower(r.Binding.UserID))
			p.conflict++
		}
		lines++
	}
	for i := 0; lines < 5000; i++ {
		fmt.Fprintf(&b, "dingimportcorp,imp%05d,imp%05d,导入员工%d\n", i, i, i)
		p.creates++
		lines++
	}
	p.csv, p.newUsername = b.String(), "imp04321"
	return p
}

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// uploadAndWatch uploads path on the import page and follows the dry run:
// it waits until the page shows a count between none and all, takes the
// progress screenshot, then waits for the report. It returns the job's id.
func uploadAndWatch(t *testing.T, ctx context.Context, base, path, shot string) string {
	t.Helper()
	browse(t, ctx, "import page", chromedp.Navigate(base+"/admin/import"), chromedp.WaitVisible("#upload-button", chromedp.ByID),
		chromedp.SetUploadFiles("#file", []string{path}, chromedp.ByID))
	browse(t, ctx, "upload", chromedp.Click("#upload-button", chromedp.ByID), chromedp.WaitVisible("#import-progress", chromedp.ByID))
	id := strings.TrimPrefix(location(t, ctx).Path, "/admin/import/")
	watchProgress(t, ctx, shot)
	return id
}

// watchProgress waits until the running job's page shows progress part of
// the way (so the page does follow it), screenshots it, then waits for the
// job to finish.
func watchProgress(t *testing.T, ctx context.Context, shot string) {
	t.Helper()
	const partWay = `(() => { const d = document.getElementById("import-done"), n = document.getElementById("import-total");
		return !!d && +d.textContent > 0 && +d.textContent < +n.textContent; })()`
	wctx, cancel := context.WithTimeout(ctx, importWait)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.Poll(partWay, nil, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		screenshot(t, ctx, "failed-progress")
		t.Fatalf("the page never showed the import part of the way: %v", err)
	}
	screenshot(t, ctx, shot)
	if err := chromedp.Run(wctx, chromedp.WaitVisible("#counts", chromedp.ByID)); err != nil {
		screenshot(t, ctx, "failed-import")
		t.Fatalf("the import did not finish within %v: %v", importWait, err)
	}
}

// pageCounts reads the counts per outcome off a report page.
func pageCounts(t *testing.T, ctx context.Context) map[string]int {
	t.Helper()
	var raw map[string]string
	browse(t, ctx, "read counts", chromedp.Evaluate(`Object.fromEntries([...document.querySelectorAll("#counts a[data-outcome]")]
		.map(a => [a.dataset.outcome, a.querySelector(".n").textContent]))`, &raw))
	out := map[string]int{}
	for k, v := range raw {
		out[k], _ = strconv.Atoi(v)
	}
	return out
}

func wantCounts(t *testing.T, what string, got map[string]int, create, update, noop, conflict int) {
	t.Helper()
	want := map[string]int{"create": create, "update": update, "no-op": noop, "conflict": conflict, "error": 0}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, got[k], n, got)
		}
	}
}

// awaitPromise makes Evaluate wait for the promise an async script returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// newestAuditID is the id of the latest audit row.
func newestAuditID(t *testing.T, s mapping.Store) int64 {
	t.Helper()
	es, err := s.AuditEvents(t.Context(), mapping.AuditQuery{Limit: 1})
	if err != nil || len(es) != 1 {
		t.Fatalf("newest audit row: %v (%d rows)", err, len(es))
	}
	return es[0].ID
}

// applyAndWait confirms and applies the previewed job, and waits for the
// applied report.
func applyAndWait(t *testing.T, ctx context.Context) {
	t.Helper()
	browse(t, ctx, "open the apply confirmation", chromedp.Click("#apply-confirm summary", chromedp.ByQuery),
		chromedp.WaitVisible("#apply", chromedp.ByID))
	browse(t, ctx, "apply", chromedp.Click("#apply", chromedp.ByID))
	wctx, cancel := context.WithTimeout(ctx, importWait)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.WaitVisible("#applied", chromedp.ByID)); err != nil {
		screenshot(t, ctx, "failed-apply")
		t.Fatalf("the apply did not finish within %v: %v", importWait, err)
	}
}

// TestBrowserImportExport: 张三 imports 5,000 lines through the console: the
// rehearsal shows the progress and counts the file's creates, updates and
// conflicts, the apply is refused while there are conflicts, the corrected
// file applies, and an export imported again changes nothing.
func TestBrowserImportExport(t *testing.T) {
	// On Postgres, as in production: a 5,000-line import there takes
	// seconds, long enough to watch its progress (the in-memory demo's
	// takes a fraction of a second).
	w := startSigninDemoOn(t, pgtest.NewDatabaseURL(t))
	ctx := newBrowser(t)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	w.adminBrowserSignIn(t, ctx, "zhangsan")
	admin, err := w.accounts.AccountByUsername(t.Context(), "zhangsan")
	if err != nil {
		t.Fatal(err)
	}

	browse(t, ctx, "import page from the menu", chromedp.Click(`header nav a[href$="/admin/import"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#upload", chromedp.ByID))
	screenshot(t, ctx, "zh-import-upload")

	// 1. A file with conflicts: the rehearsal counts them; apply is refused.
	bad := planImport(t, w, 5, false)
	started := time.Now()
	badID := uploadAndWatch(t, ctx, w.bridgeURL, writeFile(t, "people.csv", bad.csv), "zh-import-progress")
	t.Logf("5,000-line dry run in the browser (demo on Postgres): %v", time.Since(started).Round(time.Millisecond))
	wantCounts(t, "dry run with conflicts", pageCounts(t, ctx), bad.creates, bad.updates, 0, bad.conflict)
	browse(t, ctx, "apply is not offered", chromedp.WaitVisible("#blocked", chromedp.ByID))
	screenshot(t, ctx, "zh-import-dry-run")
	browse(t, ctx, "conflicts only", chromedp.Click(`#counts a[data-outcome="conflict"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#counts a[data-outcome="conflict"][aria-current="true"]`, chromedp.ByQuery))
	var rows []string
	browse(t, ctx, "read conflict rows", chromedp.Evaluate(`[...document.querySelectorAll("#lines tbody tr")].map(r => r.dataset.outcome + ": " + r.querySelector(".problem").textContent)`, &rows))
	if len(rows) != bad.conflict || !strings.Contains(rows[0], "已关联到账号") {
		t.Errorf("conflict rows = %q, want %d saying whose account the identity is linked to", rows, bad.conflict)
	}
	screenshot(t, ctx, "zh-import-conflicts")
	// Even posted directly, with the session's token, the apply is refused.
	job, err := w.accounts.ImportJob(t.Context(), admin.ID, badID, 0)
	if err != nil {
		t.Fatal(err)
	}
	auditBefore := newestAuditID(t, w.accounts)
	var refused struct {
		Status int
		Text   string
	}
	browse(t, ctx, "post apply", chromedp.Evaluate(fmt.Sprintf(`(async () => {
		const body = new URLSearchParams({csrf: document.querySelector('input[name="csrf"]').value, digest: %q});
		const r = await fetch(%q, {method: "POST", body});
		return {status: r.status, text: await r.text()};
	})()`, job.Digest, "/admin/import/"+badID+"/apply"), &refused, awaitPromise))
	if refused.Status != 409 || !strings.Contains(refused.Text, "应用已被拒绝，没有写入任何内容") {
		t.Errorf("apply with conflicts: %d, want 409 saying it was refused", refused.Status)
	}
	if n := newestAuditID(t, w.accounts); n != auditBefore {
		t.Errorf("the refused apply wrote audit rows %d..%d", auditBefore+1, n)
	}

	// 2. The corrected file, in English: rehearsal, then apply.
	setLanguage(t, ctx, "en-US,en;q=0.9")
	good := planImport(t, w, 5, true)
	uploadAndWatch(t, ctx, w.bridgeURL, writeFile(t, "people-fixed.csv", good.csv), "en-import-progress")
	wantCounts(t, "corrected dry run", pageCounts(t, ctx), good.creates, good.updates, 5, 0)
	screenshot(t, ctx, "en-import-dry-run")
	started = time.Now()
	applyAndWait(t, ctx)
	t.Logf("5,000-line apply in the browser (demo on Postgres): %v", time.Since(started).Round(time.Millisecond))
	wantCounts(t, "applied", pageCounts(t, ctx), good.creates, good.updates, 5, 0)
	screenshot(t, ctx, "en-import-applied")
	appliedURL := location(t, ctx).String()

	// The data is there: the accounts page finds one of the new people.
	browse(t, ctx, "search a new person", chromedp.Navigate(w.bridgeURL+"/admin/accounts?q="+good.newUsername),
		chromedp.WaitVisible(`#accounts tr[data-username="`+good.newUsername+`"]`, chromedp.ByQuery))
	screenshot(t, ctx, "en-imported-person")

	// 3. Export, and import the export: every line a no-op; applying it
	// writes no audit row.
	browse(t, ctx, "import page", chromedp.Navigate(w.bridgeURL+"/admin/import"), chromedp.WaitVisible("#export", chromedp.ByID))
	screenshot(t, ctx, "en-import-export")
	var export struct {
		Disposition string
		Text        string
	}
	browse(t, ctx, "download the export", chromedp.Evaluate(`(async () => {
		const r = await fetch(document.getElementById("export").href);
		return {disposition: r.headers.get("Content-Disposition"), text: await r.text()};
	})()`, &export, awaitPromise))
	if want := `attachment; filename="dingbridge-mapping-` + time.Now().Format("2006-01-02") + `.csv"`; export.Disposition != want {
		t.Errorf("export Content-Disposition = %q, want %q", export.Disposition, want)
	}
	exported := strings.Count(export.Text, "\n") - 1
	// fetch's text() drops the byte order mark. Every new person is one line,
	// and each demo account at least one.
	if !strings.HasPrefix(export.Text, "account_id,") || exported < good.creates+good.updates {
		t.Fatalf("export has %d lines, want the header and at least %d", exported, good.creates+good.updates)
	}
	auditBefore = newestAuditID(t, w.accounts)
	setLanguage(t, ctx, "zh-CN,zh;q=0.9")
	uploadAndWatch(t, ctx, w.bridgeURL, writeFile(t, "export.csv", export.Text), "zh-import-progress-export")
	wantCounts(t, "re-import of the export", pageCounts(t, ctx), 0, 0, exported, 0)
	screenshot(t, ctx, "zh-import-dry-run-export")
	applyAndWait(t, ctx)
	screenshot(t, ctx, "zh-import-applied")
	if n := newestAuditID(t, w.accounts); n != auditBefore {
		t.Errorf("applying the export wrote audit rows %d..%d, want none", auditBefore+1, n)
	}

	// The remaining pages in the other language.
	browse(t, ctx, "export link (zh)", chromedp.Navigate(w.bridgeURL+"/admin/import"), chromedp.WaitVisible("#export", chromedp.ByID))
	screenshot(t, ctx, "zh-import-export")
	setLanguage(t, ctx, "en-US,en;q=0.9")
	browse(t, ctx, "upload page (en)", chromedp.Navigate(w.bridgeURL+"/admin/import"), chromedp.WaitVisible("#upload", chromedp.ByID))
	screenshot(t, ctx, "en-import-upload")
	browse(t, ctx, "dry run with conflicts (en)", chromedp.Navigate(w.bridgeURL+"/admin/import/"+badID), chromedp.WaitVisible("#blocked", chromedp.ByID))
	screenshot(t, ctx, "en-import-dry-run-conflicts")
	setPhone(t, ctx)
	browse(t, ctx, "applied on a phone", chromedp.Navigate(appliedURL), chromedp.WaitVisible("#applied", chromedp.ByID))
	screenshot(t, ctx, "en-import-applied-phone")
}
