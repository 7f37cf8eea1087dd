package fake

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// loginParamNames are the parameters of login.dingtalk.com/oauth2/auth the
// picker carries through in hidden fields.
func loginParamNames() []string {
	return []string{
		"redirect_uri", "response_type", "client_id", "scope", "prompt", "state",
		"org_type", "corpId", "exclusiveLogin", "exclusiveCorpId", "iframe",
	}
}

// loginRequest is one login.dingtalk.com/oauth2/auth request.
type loginRequest struct {
	values       url.Values // the recognised parameters only
	redirectURI  string
	responseType string
	clientID     string
	scope        string
	prompt       string
	state        string
	orgType      string
	corpID       string
	iframe       bool
}

func parseLoginRequest(v url.Values) loginRequest {
	kept := url.Values{}
	for _, name := range loginParamNames() {
		if v.Has(name) {
			kept.Set(name, v.Get(name))
		}
	}
	return loginRequest{
		values:       kept,
		redirectURI:  v.Get("redirect_uri"),
		responseType: v.Get("response_type"),
		clientID:     v.Get("client_id"),
		scope:        v.Get("scope"),
		prompt:       v.Get("prompt"),
		state:        v.Get("state"),
		orgType:      v.Get("org_type"),
		corpID:       v.Get("corpId"),
		iframe:       v.Get("iframe") == "true",
	}
}

// withCorpScope reports whether scope asks for the corp ("openid corpid").
func (lr loginRequest) withCorpScope() bool {
	return slices.Contains(strings.Fields(lr.scope), "corpid")
}

// hidden returns the parameters as hidden form fields, in a stable order.
func hidden(v url.Values, names []string) []hiddenField {
	var out []hiddenField
	for _, name := range names {
		if v.Has(name) {
			out = append(out, hiddenField{Name: name, Value: v.Get(name)})
		}
	}
	return out
}

// problem is a reason to refuse a request with an error page.
type problem struct{ chinese, english string }

// checkLoginLocked validates a request as login.dingtalk.com does before
// showing anything; a bad request gets an error page, never a redirect.
// s.mu must be held.
func (s *Server) checkLoginLocked(lr loginRequest) (*Corp, *App, *problem) {
	corp, app := s.fixture.app(lr.clientID)
	switch {
	case app == nil:
		return nil, nil, &problem{"应用不存在，请检查 client_id。", "Unknown client_id."}
	case lr.redirectURI == "" || !app.allowsRedirect(lr.redirectURI):
		return nil, nil, &problem{"redirect_uri 与应用配置的回调域名不一致。", "redirect_uri is not registered for this app."}
	case lr.responseType != "code":
		return nil, nil, &problem{"不支持的 response_type，只支持 code。", "response_type must be code."}
	case !slices.Contains(strings.Fields(lr.scope), "openid"):
		return nil, nil, &problem{"scope 参数错误，需包含 openid。", "scope must contain openid."}
	case lr.prompt != "consent":
		return nil, nil, &problem{"缺少参数 prompt=consent。", "prompt=consent is required."}
	case lr.corpID != "" && lr.withCorpScope() && s.fixture.corp(lr.corpID) == nil:
		return nil, nil, &problem{"corpId 无效。", "Unknown corpId."}
	}
	return corp, app, nil
}

// handleLogin is L1: GET /oauth2/auth. With an auto-approve identity it
// redirects at once; otherwise it shows the picker.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	lr := parseLoginRequest(r.URL.Query())
	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app, p := s.checkLoginLocked(lr)
	if p != nil {
		s.renderError(w, r, http.StatusBadRequest, lr.iframe, p.chinese, p.english)
		return
	}
	if id := s.approvalLocked(); id != nil {
		s.finishLoginLocked(w, r, lr, *id)
		return
	}

	keep := func(c *Corp, e *Employee) bool {
		if lr.withCorpScope() && lr.corpID != "" && c.ID != lr.corpID {
			return false
		}
		return lr.orgType != "management" || e.Admin
	}
	groups := s.pickerGroupsLocked(corp, keep)
	s.renderPage(w, r, http.StatusOK, pagePicker, pickerPage{
		Title:   "钉钉登录",
		TitleEN: "DingTalk login",
		AppName: app.Name,
		Action:  "/fake/oauth2/approve",
		Hidden:  hidden(lr.values, loginParamNames()),
		Groups:  groups,
		Empty:   len(groups) == 0,
	})
}

// handleLoginApprove is the picker's submit: POST /fake/oauth2/approve with
// the original parameters and either pick=corpId|userid or deny=1.
func (s *Server) handleLoginApprove(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, false, "表单无效。", "Bad form.")
		return
	}
	lr := parseLoginRequest(r.PostForm)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, p := s.checkLoginLocked(lr); p != nil {
		s.renderError(w, r, http.StatusBadRequest, lr.iframe, p.chinese, p.english)
		return
	}
	if r.PostForm.Get("deny") != "" {
		if lr.iframe {
			s.renderFrameResult(w, r, map[string]any{"errorMsg": "access_denied"})
			return
		}
		q := url.Values{"error": {"access_denied"}}
		if lr.state != "" {
			q.Set("state", lr.state)
		}
		http.Redirect(w, r, withQuery(lr.redirectURI, q), http.StatusFound)
		return
	}
	corpID, userID, _ := strings.Cut(r.PostForm.Get("pick"), "|")
	s.finishLoginLocked(w, r, lr, identity{corpID: corpID, userID: userID})
}

// finishLoginLocked issues a code for id and sends it to redirect_uri as
// both code and authCode (or to the parent window in iframe mode).
// s.mu must be held.
func (s *Server) finishLoginLocked(w http.ResponseWriter, r *http.Request, lr loginRequest, id identity) {
	if err := s.accountExistsLocked(id.corpID, id.userID); err != nil {
		s.renderError(w, r, http.StatusBadRequest, lr.iframe, "所选账号不存在。", "The chosen account does not exist.")
		return
	}
	code := s.issueCodeLocked(authCode{
		kind: codeLogin, clientID: lr.clientID, corpID: id.corpID, userID: id.userID, withCorp: lr.withCorpScope(),
	})
	q := url.Values{"code": {code}, "authCode": {code}}
	if lr.state != "" {
		q.Set("state", lr.state)
	}
	target := withQuery(lr.redirectURI, q)
	if lr.iframe {
		s.renderFrameResult(w, r, map[string]any{"success": true, "redirectUrl": target})
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}
