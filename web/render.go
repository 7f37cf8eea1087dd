package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"golang.org/x/text/language"
)

// renderer holds one template set per page, each the layout plus the page.
type renderer struct {
	pages map[string]*template.Template
}

func newRenderer() (*renderer, error) {
	names, err := fs.Glob(assets, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	rd := &renderer{pages: map[string]*template.Template{}}
	for _, n := range names {
		if strings.HasSuffix(n, "/layout.tmpl") {
			continue
		}
		t, err := template.New("layout.tmpl").Funcs(funcs).ParseFS(assets, "templates/layout.tmpl", n)
		if err != nil {
			return nil, err
		}
		rd.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".tmpl")] = t
	}
	return rd, nil
}

var funcs = template.FuncMap{
	"date": func(v any) string {
		type timeLike interface {
			IsZero() bool
			Format(string) string
		}
		if t, ok := v.(timeLike); ok && !t.IsZero() {
			return t.Format("2006-01-02 15:04")
		}
		return ""
	},
	"join": strings.Join,
}

// pageData is what every page gets; D is the page's own data.
type pageData struct {
	Lang      string
	T         map[string]string
	Title     string
	Base      string
	Nav       string
	AdminName string
	CSRF      string
	Flash     string
	Error     string
	Message   string
	RequestID string
	D         any
}

var langMatcher = language.NewMatcher([]language.Tag{language.SimplifiedChinese, language.English})

// english reports whether the browser prefers English to Chinese (the default).
func english(r *http.Request) bool {
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return false
	}
	_, i, _ := langMatcher.Match(tags...)
	return i == 1
}

// newPage starts a page's data: language, texts, the administrator, and a
// flash or error message named by ?ok= or ?err= (only known keys are shown).
func (s *Server) newPage(r *http.Request, nav, title string) pageData {
	t, lang := textZH, "zh-CN"
	if english(r) {
		t, lang = textEN, "en"
	}
	p := pageData{Lang: lang, T: t, Title: t[title], Base: s.basePath, Nav: nav, RequestID: requestID(r.Context())}
	if a := adminFrom(r.Context()); a != nil {
		p.AdminName = a.Account.DisplayName
		if p.AdminName == "" {
			p.AdminName = a.Account.Username
		}
		p.CSRF = a.Session.CSRF
	}
	q := r.URL.Query()
	if k := q.Get("ok"); strings.HasPrefix(k, "ok_") {
		p.Flash = t[k]
	}
	if k := q.Get("err"); strings.HasPrefix(k, "err_") {
		p.Error = t[k]
	}
	return p
}

// render writes a page through a buffer, so a template error never leaves
// half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p pageData) {
	t := s.pages.pages[name]
	var buf bytes.Buffer
	if t == nil {
		s.internalError(w, r, fmt.Errorf("no template %q", name))
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.ErrorContext(r.Context(), "admin: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage shows a page with one message: key names its title, and
// key+"_body" its text.
func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, status int, key string) {
	p := s.newPage(r, "", key)
	p.Message = p.T[key+"_body"]
	s.render(w, r, status, "message", p)
}

// renderSignedIn is the page right after sign-in; it moves on to the
// overview by itself.
func (s *Server) renderSignedIn(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "", "msg_signed_in")
	p.Message = p.T["msg_signed_in_body"]
	s.render(w, r, http.StatusOK, "signedin", p)
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "admin: internal error", "err", err, "path", r.URL.Path)
	s.renderMessage(w, r, http.StatusInternalServerError, "err_unavailable")
}
