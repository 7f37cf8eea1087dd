package fake

import (
	"bytes"
	"embed"
	"encoding/json"
	htmltemplate "html/template"
	"net/http"
	"net/url"
	texttemplate "text/template"
)

//go:embed templates
var templateFS embed.FS

// Template names; parsePages and parseScripts fail if one is missing.
const (
	pagePicker      = "picker.html.tmpl"
	pageError       = "error.html.tmpl"
	pageFrameResult = "frame_result.html.tmpl"
	pagePunish      = "punish.html.tmpl"
	pageWorkbench   = "workbench.html.tmpl"
	pageIndex       = "index.html.tmpl"
	scriptJSAPI     = "jsapi.js.tmpl"
	scriptFrame     = "ddlogin.js.tmpl"
)

// parsePages parses the HTML templates. They are embedded, so a failure is
// a programming error and panics.
func parsePages() *htmltemplate.Template {
	t := htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/*.html.tmpl"))
	for _, name := range []string{pagePicker, pageError, pageFrameResult, pagePunish, pageWorkbench, pageIndex} {
		if t.Lookup(name) == nil {
			panic("fake: missing template " + name)
		}
	}
	return t
}

// parseScripts parses the JavaScript templates; their data is pre-encoded
// JSON (see scriptData), so text/template is the right engine.
func parseScripts() *texttemplate.Template {
	t := texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/*.js.tmpl"))
	for _, name := range []string{scriptJSAPI, scriptFrame} {
		if t.Lookup(name) == nil {
			panic("fake: missing template " + name)
		}
	}
	return t
}

// renderPage renders an HTML template into a buffer, then writes it.
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "fake dingtalk: render page", "template", name, "err", err)
		http.Error(w, "render page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage is the data of error.html.tmpl.
type errorPage struct {
	Chinese, English string
	// FrameMessage, when set, is posted to the parent window (iframe mode).
	FrameMessage map[string]any
}

// renderError shows a bilingual error page; in iframe mode it also posts
// {errorMsg} to the embedding page, like DingTalk's QR frame.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, iframe bool, chinese, english string) {
	p := errorPage{Chinese: chinese, English: english}
	if iframe {
		p.FrameMessage = map[string]any{"errorMsg": chinese}
	}
	s.renderPage(w, r, status, pageError, p)
}

// frameResult is the data of frame_result.html.tmpl.
type frameResult struct {
	Message     map[string]any
	RedirectURL string
}

// renderFrameResult posts a login result to the parent window.
func (s *Server) renderFrameResult(w http.ResponseWriter, r *http.Request, msg map[string]any) {
	redirectURL, _ := msg["redirectUrl"].(string)
	s.renderPage(w, r, http.StatusOK, pageFrameResult, frameResult{Message: msg, RedirectURL: redirectURL})
}

// scriptData is what the JavaScript templates get: JSON literals.
type scriptData struct {
	BaseURL  string
	Platform string
}

// jsLiteral encodes v as a JavaScript literal.
func jsLiteral(v any) string {
	b, _ := json.Marshal(v) // strings always marshal; <, > and & are escaped
	return string(b)
}

// renderScript serves a JavaScript template.
func (s *Server) renderScript(w http.ResponseWriter, r *http.Request, name string, data scriptData) {
	var buf bytes.Buffer
	if err := s.scripts.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "fake dingtalk: render script", "template", name, "err", err)
		http.Error(w, "render script", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// withQuery appends params to a redirect URI, keeping its own query as is.
func withQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += params.Encode()
	return u.String()
}

// pickerPage is the data of picker.html.tmpl: who "scans" the QR code.
type pickerPage struct {
	Title    string
	TitleEN  string
	AppName  string
	Action   string
	Hidden   []hiddenField
	Groups   []pickerGroup
	Empty    bool
	DenyText string
}

type hiddenField struct{ Name, Value string }

type pickerGroup struct {
	CorpID   string
	CorpName string
	Foreign  bool
	People   []pickerPerson
}

type pickerPerson struct {
	Value   string // "corpId|userid", the form value of the pick button
	CorpID  string
	UserID  string
	Name    string
	Initial string
	Title   string
	Left    bool
	Admin   bool
}

// pickerGroupsLocked lists the employees a person may sign in as: first
// the home corp's (nil for none), then the others, marked foreign.
// keep filters employees; nil keeps all. s.mu must be held.
func (s *Server) pickerGroupsLocked(home *Corp, keep func(*Corp, *Employee) bool) []pickerGroup {
	var groups []pickerGroup
	add := func(c *Corp, foreign bool) {
		g := pickerGroup{CorpID: c.ID, CorpName: c.Name, Foreign: foreign}
		for i := range c.Employees {
			e := &c.Employees[i]
			if keep != nil && !keep(c, e) {
				continue
			}
			initial := []rune(e.Name + "?")[0]
			g.People = append(g.People, pickerPerson{
				Value: c.ID + "|" + e.UserID, CorpID: c.ID, UserID: e.UserID, Name: e.Name,
				Initial: string(initial), Title: e.Title, Left: e.Left, Admin: e.Admin,
			})
		}
		if len(g.People) > 0 {
			groups = append(groups, g)
		}
	}
	if home != nil {
		add(home, false)
	}
	for i := range s.fixture.Corps {
		if c := &s.fixture.Corps[i]; c != home {
			add(c, true)
		}
	}
	return groups
}
