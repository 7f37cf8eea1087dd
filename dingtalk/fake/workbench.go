package fake

import (
	"net/http"
	"net/url"
	"strings"
)

// Simulator pages that are no DingTalk endpoint: they are not counted by
// Calls and take no faults, so call counts stay those of the real protocol.
const (
	pathIndex     = "GET /fake/{$}"
	pathWorkbench = "GET /fake/workbench"
)

// corpIDPlaceholder is what DingTalk replaces with the corp's id in a
// workbench app's home page URL when someone opens it (工作台 → 应用首页地址).
const corpIDPlaceholder = "$CORPID$"

// workbenchApp is one tile on a corp's simulated workbench.
type workbenchApp struct {
	name    string
	homeURL string // may contain $CORPID$
}

// AddWorkbenchApp puts an app on the simulated DingTalk workbench of corpID
// (GET /fake/workbench?corpId=…). Opening its tile sends the browser to
// homeURL with every $CORPID$ replaced by the corp's id, as the DingTalk
// client does. Apps appear in the order they were added.
func (s *Server) AddWorkbenchApp(corpID, name, homeURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fixture.corp(corpID) == nil {
		s.log.Warn("fake dingtalk: workbench app for a corp not in the fixture", "corp_id", corpID, "name", name)
	}
	if s.workbench == nil {
		s.workbench = map[string][]workbenchApp{}
	}
	s.workbench[corpID] = append(s.workbench[corpID], workbenchApp{name: name, homeURL: homeURL})
}

// workbenchPage is the data of workbench.html.tmpl.
type workbenchPage struct {
	CorpID   string
	CorpName string
	Apps     []workbenchTile
}

type workbenchTile struct {
	Name    string
	Initial string
	URL     string
}

// handleWorkbench shows a corp's workbench: GET /fake/workbench?corpId=.
// Without corpId it sends the browser to the index, where corps are listed.
func (s *Server) handleWorkbench(w http.ResponseWriter, r *http.Request) {
	corpID := r.URL.Query().Get("corpId")
	if corpID == "" {
		http.Redirect(w, r, "/fake/", http.StatusFound)
		return
	}
	s.mu.Lock()
	corp := s.fixture.corp(corpID)
	if corp == nil {
		s.mu.Unlock()
		s.renderError(w, r, http.StatusNotFound, false, "没有这个组织（corpId 无效）。", "Unknown corpId: no such organisation.")
		return
	}
	p := workbenchPage{CorpID: corp.ID, CorpName: corp.Name}
	for _, app := range s.workbench[corp.ID] {
		p.Apps = append(p.Apps, workbenchTile{
			Name:    app.name,
			Initial: string([]rune(app.name + "?")[0]),
			URL:     strings.ReplaceAll(app.homeURL, corpIDPlaceholder, corp.ID),
		})
	}
	s.mu.Unlock()
	s.renderPage(w, r, http.StatusOK, pageWorkbench, p)
}

// indexPage is the data of index.html.tmpl.
type indexPage struct {
	BaseURL string
	Corps   []indexCorp
	// AuthCode, State and LoginError are what the login page sent back when
	// the index itself was the try-it redirect_uri.
	AuthCode   string
	State      string
	LoginError string
}

type indexCorp struct {
	ID        string
	Name      string
	Employees int
	Workbench int // apps on its workbench
	Apps      []indexApp
}

type indexApp struct {
	Name     string
	AppKey   string
	TryLogin string // a login page URL that comes back here; "" if the app's redirect hosts forbid it
}

// handleIndex is the simulator's start page: GET /fake/. It links to each
// corp's workbench and documents the login page, with a try-it link per app
// whose redirect_uri is this page (which then shows the authCode it got).
func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	base := s.publicBaseURL(r)
	back := base + "/fake/"
	q := r.URL.Query()
	p := indexPage{BaseURL: base, AuthCode: q.Get("authCode"), State: q.Get("state"), LoginError: q.Get("error")}
	s.mu.Lock()
	for i := range s.fixture.Corps {
		c := &s.fixture.Corps[i]
		ic := indexCorp{ID: c.ID, Name: c.Name, Employees: len(c.Employees), Workbench: len(s.workbench[c.ID])}
		for j := range c.Apps {
			a := &c.Apps[j]
			ia := indexApp{Name: a.Name, AppKey: a.AppKey}
			if a.allowsRedirect(back) {
				ia.TryLogin = "/oauth2/auth?" + url.Values{
					"client_id": {a.AppKey}, "redirect_uri": {back}, "response_type": {"code"},
					"scope": {"openid"}, "prompt": {"consent"}, "state": {"try-" + a.AppKey},
				}.Encode()
			}
			ic.Apps = append(ic.Apps, ia)
		}
		p.Corps = append(p.Corps, ic)
	}
	s.mu.Unlock()
	s.renderPage(w, r, http.StatusOK, pageIndex, p)
}
