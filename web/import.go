package web

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
)

// The import pages: upload a CSV → a dry run in the background, whose progress
// the page shows → the report, line by line → apply, which writes exactly what
// was previewed → the applied report. The upload and the job's state live in
// the store (mapping.ImportJob), so that any replica behind the load balancer
// can show or apply them; the dry run and the apply run on the replica that
// received the request.

const (
	// maxUpload bounds an upload's body: the file, plus the form's other
	// fields and the multipart framing.
	maxUpload = mapping.MaxImportBytes + 64<<10
	// uploadReadTimeout replaces the server's read timeout for an upload,
	// which a 16 MiB file on a slow line would exceed.
	uploadReadTimeout = 5 * time.Minute
	// importJobTTL is how long an upload stays after its last step.
	importJobTTL = 2 * time.Hour
	// importTimeout bounds one dry run or apply.
	importTimeout = 10 * time.Minute
	// importStall: a running job whose progress has not moved for this long
	// was interrupted (its replica stopped); the page says so.
	importStall = 2 * time.Minute
	// progressEvery is how often a running job writes its progress.
	progressEvery = 250 * time.Millisecond
	// importPageSize is the report's lines per page.
	importPageSize = 100
	// importAfterTimeout bounds what follows an import, which Drain does not
	// cancel: ending the sessions of the identities an apply moved, and
	// storing the job's outcome.
	importAfterTimeout = time.Minute
)

//go:embed static/import.js
var importJS []byte

// serveImportJS serves the script that follows a running import's progress.
func serveImportJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(importJS)
}

// isUpload reports whether r is an upload, whose body may be larger than a
// form's.
func (s *Server) isUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == s.path("/import")
}

// prepareUpload refuses an upload that is too large, before anything reads
// it, with a page saying so (browsers send the length of a form), and gives
// the rest time to arrive.
func (s *Server) prepareUpload(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.ContentLength < 0:
		s.renderMessage(w, r, http.StatusLengthRequired, "err_import_length")
		return false
	case r.ContentLength > maxUpload:
		s.log.InfoContext(r.Context(), "admin: upload too large", "bytes", r.ContentLength)
		s.renderMessage(w, r, http.StatusRequestEntityTooLarge, "err_import_big")
		return false
	}
	// Not every ResponseWriter supports deadlines (httptest's does not).
	_ = http.NewResponseController(w).SetReadDeadline(s.now().Add(uploadReadTimeout))
	return true
}

// importForm is the upload page's data.
type importForm struct {
	Detail string // why the last upload could not be read, in the file's terms
}

// importPage shows the upload form and the export link.
func (s *Server) importPage(w http.ResponseWriter, r *http.Request) {
	s.renderImportForm(w, r, http.StatusOK, "", "")
}

func (s *Server) renderImportForm(w http.ResponseWriter, r *http.Request, status int, errKey, detail string) {
	p := s.newPage(r, "import", "imp_title")
	if errKey != "" {
		p.Error = p.T[errKey]
	}
	p.D = importForm{Detail: detail}
	s.render(w, r, status, "import", p)
}

// upload stores the file as a job and starts its dry run.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	adm := adminFrom(ctx)
	f, hdr, err := r.FormFile("file")
	if err != nil {
		s.renderImportForm(w, r, http.StatusBadRequest, "err_import_no_file", "")
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, mapping.MaxImportBytes+1))
	if err != nil {
		s.internalError(w, r, fmt.Errorf("read upload: %w", err))
		return
	}
	if len(data) > mapping.MaxImportBytes {
		s.renderImportForm(w, r, http.StatusRequestEntityTooLarge, "err_import_too_large", "")
		return
	}
	// The file as a whole is checked now, so that a broken header is said
	// on the form, at once.
	n, err := mapping.CheckImport(bytes.NewReader(data))
	var ve *mapping.ValidationError
	switch {
	case errors.As(err, &ve):
		s.renderImportForm(w, r, http.StatusBadRequest, "err_import_bad_file", ve.Error())
		return
	case err != nil:
		s.internalError(w, r, err)
		return
	case n == 0:
		s.renderImportForm(w, r, http.StatusBadRequest, "err_import_empty", "")
		return
	}
	job, err := s.cfg.Store.CreateImportJob(ctx, mapping.ImportJob{
		Owner: adm.Account.ID, FileName: fileName(hdr.Filename), Relink: r.PostFormValue("relink") == "true",
		State: mapping.JobPreviewing, Total: n, Data: data, ExpiresAt: s.now().Add(importJobTTL),
	})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.InfoContext(ctx, "admin: import uploaded", "import_id", job.ID, "lines", n, "bytes", len(data))
	s.startImport(r, job, data, false)
	http.Redirect(w, r, s.path("/import/"+job.ID), http.StatusSeeOther)
}

// fileName keeps the last element of an uploaded file's name, bounded.
func fileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	if len(name) > 200 {
		name = name[:200]
	}
	if name == "." || name == "/" {
		return ""
	}
	return name
}

// startImport runs job's dry run, or its apply, in the background: the
// request returns at once and the page follows the progress in the store.
// The import is audited as the administrator's request (actor, IP, request
// id).
func (s *Server) startImport(r *http.Request, job mapping.ImportJob, data []byte, apply bool) {
	m := s.meta(r, adminFrom(r.Context()).Account.ID)
	// The request's values (request id) without its end: the import goes on
	// after the redirect. The Server owns it; importTimeout bounds it.
	ctx := context.WithoutCancel(r.Context())
	s.imports.Add(1)
	go func() {
		defer s.imports.Done()
		s.runImport(ctx, m, job, data, apply)
	}()
}

func (s *Server) runImport(ctx context.Context, m mapping.Meta, job mapping.ImportJob, data []byte, apply bool) {
	// Drain cancels the import itself at the end of a shutdown's grace, not
	// what follows it: an apply that committed has to end sessions, and the
	// job must not be left looking as if it still ran.
	ictx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	defer context.AfterFunc(s.importsCtx, cancel)()
	var last time.Time
	opts := mapping.ImportOptions{Apply: apply, Relink: job.Relink, Progress: func(done, total int) {
		// Wall-clock pacing of the writes, not a decision: the injected clock
		// may stand still in tests.
		if done < total && time.Since(last) < progressEvery {
			return
		}
		last = time.Now()
		if err := s.cfg.Store.ImportJobProgress(ictx, job.ID, done, total); err != nil {
			s.log.WarnContext(ictx, "admin: import progress", "import_id", job.ID, "err", err)
		}
	}}
	if apply {
		opts.Expect = job.Digest
	}
	started := time.Now()
	report, err := s.cfg.Store.Import(ictx, m, bytes.NewReader(data), opts)
	ctx, cancelAfter := context.WithTimeout(ctx, importAfterTimeout)
	defer cancelAfter()
	if err == nil && report.Applied {
		s.endMovedSessions(ctx, report.Moved)
	}
	next := job
	next.ExpiresAt = s.now().Add(importJobTTL)
	next.Done, next.Error = len(report.Lines), ""
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "admin: import failed", "import_id", job.ID, "apply", apply, "err", err)
		next.Error = "err_import_failed"
		if apply { // back to the preview, which may be applied again
			next.State, next.Done = mapping.JobPreviewed, job.Total
		} else {
			next.State = mapping.JobFailed
		}
	case report.Changed:
		next.State, next.Report, next.Digest, next.Error = mapping.JobPreviewed, &report, report.Digest(), "err_import_changed"
	case apply && !report.Applied:
		next.State, next.Report, next.Error = mapping.JobPreviewed, &report, "err_import_has_conflicts"
	case apply:
		next.State, next.Report = mapping.JobApplied, &report
	default:
		next.State, next.Report, next.Digest = mapping.JobPreviewed, &report, report.Digest()
	}
	if _, err := s.cfg.Store.UpdateImportJob(ctx, next, job.State); err != nil {
		s.log.ErrorContext(ctx, "admin: import result not stored", "import_id", job.ID, "err", err)
		return
	}
	s.log.InfoContext(ctx, "admin: import done", "import_id", job.ID, "apply", apply, "state", next.State,
		"lines", len(report.Lines), "took", time.Since(started).Round(time.Millisecond))
}

// endMovedSessions ends, for each identity an applied import moved to
// another account, the provider's sign-in sessions of the identity and the
// console sessions of the account it left, as moving it by hand does.
func (s *Server) endMovedSessions(ctx context.Context, moved []mapping.MovedIdentity) {
	if len(moved) > 0 {
		s.log.InfoContext(ctx, "admin: import moved identities to other accounts; ending their sessions", "identities", len(moved))
	}
	done := map[mapping.MovedIdentity]bool{}
	for _, mv := range moved {
		if !done[mv] {
			done[mv] = true
			s.endIdentitySessions(ctx, mv.Identity, mv.From)
		}
	}
}

// Drain waits for the dry runs and applies running in the background, for
// a graceful shutdown: call it once the HTTP server has stopped taking
// requests, before closing the store. If ctx ends first, it cancels them
// (an apply not yet committed is rolled back and its job goes back to the
// preview, to be applied again; a dry run's job fails) and waits for them
// to record that; it then returns ctx's error. From then on the Server
// cancels every import at once.
func (s *Server) Drain(ctx context.Context) error {
	idle := make(chan struct{})
	go func() {
		s.imports.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.stopImports()
	<-idle
	return fmt.Errorf("imports cancelled: %w", context.Cause(ctx))
}

// ownJob reads the signed-in administrator's job named in the path; false
// after an error page.
func (s *Server) ownJob(w http.ResponseWriter, r *http.Request, parts mapping.JobParts) (mapping.ImportJob, bool) {
	job, err := s.cfg.Store.ImportJob(r.Context(), adminFrom(r.Context()).Account.ID, chi.URLParam(r, "id"), parts)
	if errors.Is(err, mapping.ErrNotFound) {
		s.renderMessage(w, r, http.StatusNotFound, "err_import_gone")
		return mapping.ImportJob{}, false
	}
	if err != nil {
		s.internalError(w, r, err)
		return mapping.ImportJob{}, false
	}
	return job, true
}

func running(j mapping.ImportJob) bool {
	return j.State == mapping.JobPreviewing || j.State == mapping.JobApplying
}

// importStatus is a running job's progress, for import.js.
func (s *Server) importStatus(w http.ResponseWriter, r *http.Request) {
	job, ok := s.ownJob(w, r, 0)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		State   mapping.JobState `json:"state"`
		Done    int              `json:"done"`
		Total   int              `json:"total"`
		Running bool             `json:"running"`
	}{job.State, job.Done, job.Total, running(job) && !s.stalled(job)})
}

func (s *Server) stalled(j mapping.ImportJob) bool {
	return running(j) && s.now().Sub(j.UpdatedAt) > importStall
}

// outcomes in the order the page lists them.
var outcomes = []mapping.Outcome{mapping.OutcomeCreate, mapping.OutcomeUpdate, mapping.OutcomeNoop,
	mapping.OutcomeConflict, mapping.OutcomeError}

type outcomeCount struct {
	Outcome mapping.Outcome
	Label   string
	N       int
	URL     string
	Current bool
}

type changeView struct{ Field, Before, After string }

type lineView struct {
	Line     int
	Outcome  mapping.Outcome
	Label    string
	Identity string
	Username string
	Changes  []changeView
	Problem  string // a conflict's or an error's reason, in the page's language
	Detail   string // the store's words, for a conflict or an error
}

// jobView is the job page's data.
type jobView struct {
	Job         mapping.ImportJob
	Running     bool
	Stalled     bool
	Percent     int
	StatusURL   string
	Counts      []outcomeCount
	All         int // lines in the report
	AllURL      string
	Filter      mapping.Outcome
	Lines       []lineView
	Page, Pages int
	PrevURL     string
	NextURL     string
	PageText    string
	CanApply    bool
	Blocked     bool
	Summary     string // the apply's confirmation, or what the apply did
}

// importJob shows a job: its progress while it runs, then its report.
func (s *Server) importJob(w http.ResponseWriter, r *http.Request) {
	job, ok := s.ownJob(w, r, mapping.JobReport)
	if !ok {
		return
	}
	s.renderJob(w, r, http.StatusOK, job, "")
}

func (s *Server) renderJob(w http.ResponseWriter, r *http.Request, status int, job mapping.ImportJob, errKey string) {
	title := "imp_job"
	switch {
	case running(job):
		title = "imp_running_title"
	case job.State == mapping.JobApplied:
		title = "imp_applied_title"
	}
	p := s.newPage(r, "import", title)
	if errKey == "" {
		errKey = job.Error
	}
	if strings.HasPrefix(errKey, "err_") && p.T[errKey] != "" {
		p.Error = p.T[errKey]
	}
	v := jobView{Job: job, Running: running(job), Stalled: s.stalled(job), StatusURL: s.path("/import/" + job.ID + "/status")}
	if job.Total > 0 {
		v.Percent = job.Done * 100 / job.Total
	}
	if job.Report != nil && !v.Running {
		s.reportView(r, p.T, job, &v)
	}
	v.Job.Report = nil
	p.D = v
	s.render(w, r, status, "import_job", p)
}

// reportView fills in the counts and one page of the lines, filtered by
// ?outcome=.
func (s *Server) reportView(r *http.Request, t map[string]string, job mapping.ImportJob, v *jobView) {
	q := r.URL.Query()
	filter := mapping.Outcome(q.Get("outcome"))
	base := s.path("/import/" + job.ID)
	counts := map[mapping.Outcome]int{}
	var shown []mapping.LineReport
	for _, l := range job.Report.Lines {
		counts[l.Outcome]++
		if filter == "" || l.Outcome == filter {
			shown = append(shown, l)
		}
	}
	known := false
	for _, o := range outcomes {
		known = known || o == filter
		v.Counts = append(v.Counts, outcomeCount{Outcome: o, Label: t["o_"+string(o)], N: counts[o],
			URL: base + "?outcome=" + url.QueryEscape(string(o)), Current: o == filter})
	}
	if !known {
		filter, shown = "", job.Report.Lines
	}
	v.Filter, v.AllURL, v.All = filter, base, len(job.Report.Lines)
	v.Pages = max(1, (len(shown)+importPageSize-1)/importPageSize)
	v.Page, _ = strconv.Atoi(q.Get("page"))
	v.Page = min(max(v.Page, 1), v.Pages)
	pageURL := func(n int) string {
		u := url.Values{"page": {strconv.Itoa(n)}}
		if filter != "" {
			u.Set("outcome", string(filter))
		}
		return base + "?" + u.Encode()
	}
	if v.Page > 1 {
		v.PrevURL = pageURL(v.Page - 1)
	}
	if v.Page < v.Pages {
		v.NextURL = pageURL(v.Page + 1)
	}
	v.PageText = fill(t["imp_page"], "{page}", strconv.Itoa(v.Page), "{pages}", strconv.Itoa(v.Pages))
	for _, l := range shown[min((v.Page-1)*importPageSize, len(shown)):min(v.Page*importPageSize, len(shown))] {
		v.Lines = append(v.Lines, lineFor(t, l))
	}
	nums := []string{"{create}", strconv.Itoa(counts[mapping.OutcomeCreate]), "{update}", strconv.Itoa(counts[mapping.OutcomeUpdate]),
		"{noop}", strconv.Itoa(counts[mapping.OutcomeNoop])}
	v.Blocked = counts[mapping.OutcomeConflict]+counts[mapping.OutcomeError] > 0
	switch job.State {
	case mapping.JobPreviewed:
		v.CanApply = !v.Blocked
		v.Summary = fill(t["imp_apply_confirm"], nums...)
	case mapping.JobApplied:
		v.Summary = fill(t["imp_applied"], nums...)
	}
}

func fill(s string, oldnew ...string) string { return strings.NewReplacer(oldnew...).Replace(s) }

// lineFor is one line of the report as the page shows it.
func lineFor(t map[string]string, l mapping.LineReport) lineView {
	v := lineView{Line: l.Line, Outcome: l.Outcome, Label: t["o_"+string(l.Outcome)], Username: l.Username}
	if l.Identity != (mapping.Key{}) {
		v.Identity = l.Identity.String()
	}
	for _, c := range l.Changes {
		label := t["imp_f_"+c.Field]
		if label == "" {
			label = c.Field
		}
		cv := changeView{Field: label, Before: orEmpty(t, c.Before), After: orEmpty(t, c.After)}
		if l.Outcome == mapping.OutcomeCreate && c.Before == "" {
			cv.Before = "" // nothing was there: only the new value
		}
		v.Changes = append(v.Changes, cv)
	}
	if l.Outcome == mapping.OutcomeConflict || l.Outcome == mapping.OutcomeError {
		v.Problem, v.Detail = lineProblem(t, l), l.Detail
	}
	return v
}

func orEmpty(t map[string]string, s string) string {
	if s == "" {
		return t["imp_empty_value"]
	}
	return s
}

// lineProblem says why a line is a conflict or an error, in the page's
// language.
func lineProblem(t map[string]string, l mapping.LineReport) string {
	var key string
	if l.Outcome == mapping.OutcomeConflict {
		key = "imp_c_" + string(l.Conflict)
		if t[key] == "" {
			key = "imp_c_other"
		}
	} else {
		key = "imp_e_" + l.Field
		if t[key] == "" {
			key = "imp_e_other"
		}
	}
	return fill(t[key], "{identity}", l.Identity.String(), "{username}", l.Username, "{with}", l.ConflictWith)
}

// applyImport applies a previewed job, if the page that asked showed the
// job's current preview and that preview has no conflicts or errors.
func (s *Server) applyImport(w http.ResponseWriter, r *http.Request) {
	job, ok := s.ownJob(w, r, mapping.JobReport|mapping.JobData)
	if !ok {
		return
	}
	back := s.path("/import/" + job.ID)
	switch {
	case job.State != mapping.JobPreviewed:
		http.Redirect(w, r, back+"?err=err_import_not_ready", http.StatusSeeOther)
		return
	case r.PostFormValue("digest") != job.Digest:
		// The page was of an earlier preview, replaced since because the data
		// changed: the administrator has not seen what would be written.
		http.Redirect(w, r, back+"?err=err_import_changed", http.StatusSeeOther)
		return
	case job.Report == nil || !job.Report.OK():
		s.renderJob(w, r, http.StatusConflict, job, "err_import_has_conflicts")
		return
	}
	next := job
	next.Data, next.State, next.Done, next.Error = nil, mapping.JobApplying, 0, ""
	next.ExpiresAt = s.now().Add(importJobTTL)
	started, err := s.cfg.Store.UpdateImportJob(r.Context(), next, mapping.JobPreviewed)
	if errors.Is(err, mapping.ErrConflict) { // applied from another tab or replica meanwhile
		http.Redirect(w, r, back+"?err=err_import_not_ready", http.StatusSeeOther)
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "admin: import apply started", "import_id", job.ID)
	s.startImport(r, started, job.Data, true)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// export downloads the whole mapping as CSV. It changes nothing, so it is a
// GET; who exported it, and when, is audited.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.cfg.Store.RecordEvent(ctx, s.meta(r, adminFrom(ctx).Account.ID), mapping.Event{
		Action: "mapping.export", TargetType: "mapping",
	}); err != nil {
		s.internalError(w, r, err)
		return
	}
	name := "dingbridge-mapping-" + s.now().Format("2006-01-02") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	// A large mapping takes longer than the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(s.now().Add(importTimeout))
	// Streamed, not buffered: a mapping of a million identities is hundreds
	// of MiB. A failure half-way aborts the response, so that the browser
	// reports a failed download instead of saving a truncated file.
	if err := s.cfg.Store.Export(ctx, w); err != nil {
		s.log.ErrorContext(ctx, "admin: export failed", "err", err)
		panic(http.ErrAbortHandler)
	}
}
