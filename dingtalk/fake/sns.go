package fake

import (
	"crypto/hmac"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// snsParamNames are the parameters of the legacy /connect/... login pages.
func snsParamNames() []string {
	return []string{"appid", "response_type", "scope", "state", "redirect_uri"}
}

// checkSNSLocked validates a legacy login request. s.mu must be held.
func (s *Server) checkSNSLocked(v url.Values) (*Corp, *App, *problem) {
	corp, app := s.fixture.snsApp(v.Get("appid"))
	switch {
	case app == nil:
		return nil, nil, &problem{"appid 无效。", "Unknown appid."}
	case v.Get("redirect_uri") == "" || !app.allowsRedirect(v.Get("redirect_uri")):
		return nil, nil, &problem{"redirect_uri 不在应用的回调域名内。", "redirect_uri is not registered for this app."}
	case v.Get("response_type") != "code":
		return nil, nil, &problem{"不支持的 response_type，只支持 code。", "response_type must be code."}
	case v.Get("scope") != "snsapi_login" && v.Get("scope") != "snsapi_auth":
		return nil, nil, &problem{"scope 参数错误。", "scope must be snsapi_login or snsapi_auth."}
	}
	return corp, app, nil
}

// handleSNSAuthorize is S1 (GET /connect/qrconnect) and S2
// (GET /connect/oauth2/sns_authorize).
func (s *Server) handleSNSAuthorize(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app, p := s.checkSNSLocked(v)
	if p != nil {
		s.renderError(w, r, http.StatusBadRequest, false, p.chinese, p.english)
		return
	}
	if id := s.approvalLocked(); id != nil {
		s.finishSNSLocked(w, r, v, *id)
		return
	}
	groups := s.pickerGroupsLocked(corp, nil)
	s.renderPage(w, r, http.StatusOK, pagePicker, pickerPage{
		Title:   "钉钉扫码登录",
		TitleEN: "DingTalk scan login (legacy)",
		AppName: app.Name,
		Action:  "/fake/sns/approve",
		Hidden:  hidden(v, snsParamNames()),
		Groups:  groups,
		Empty:   len(groups) == 0,
	})
}

// handleSNSApprove is the legacy picker's submit: POST /fake/sns/approve.
func (s *Server) handleSNSApprove(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, false, "表单无效。", "Bad form.")
		return
	}
	v := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, p := s.checkSNSLocked(v); p != nil {
		s.renderError(w, r, http.StatusBadRequest, false, p.chinese, p.english)
		return
	}
	if v.Get("deny") != "" {
		q := url.Values{"error": {"access_denied"}}
		if st := v.Get("state"); st != "" {
			q.Set("state", st)
		}
		http.Redirect(w, r, withQuery(v.Get("redirect_uri"), q), http.StatusFound)
		return
	}
	corpID, userID, _ := strings.Cut(v.Get("pick"), "|")
	s.finishSNSLocked(w, r, v, identity{corpID: corpID, userID: userID})
}

// finishSNSLocked issues a tmp_auth_code and redirects with code and
// state. s.mu must be held.
func (s *Server) finishSNSLocked(w http.ResponseWriter, r *http.Request, v url.Values, id identity) {
	if err := s.accountExistsLocked(id.corpID, id.userID); err != nil {
		s.renderError(w, r, http.StatusBadRequest, false, "所选账号不存在。", "The chosen account does not exist.")
		return
	}
	code := s.issueCodeLocked(authCode{kind: codeSNS, clientID: v.Get("appid"), corpID: id.corpID, userID: id.userID})
	q := url.Values{"code": {code}}
	if st := v.Get("state"); st != "" {
		q.Set("state", st)
	}
	http.Redirect(w, r, withQuery(v.Get("redirect_uri"), q), http.StatusFound)
}

// snsMaxSkew is how far the signed timestamp may be from DingTalk's clock.
const snsMaxSkew = time.Minute

// handleSNSUserInfo is S3: POST /sns/getuserinfo_bycode?accessKey=&timestamp=&signature=.
func (s *Server) handleSNSUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query() // decodes the signature exactly once
	p, perr := readParams(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil || ts <= 0 {
		writeOldError(w, r, 853001, "")
		return
	}
	if skew := s.now().Sub(time.UnixMilli(ts)); skew > snsMaxSkew || skew < -snsMaxSkew {
		writeOldError(w, r, 853002, "")
		return
	}
	_, app := s.fixture.snsApp(q.Get("accessKey"))
	if app == nil {
		writeOldError(w, r, 853003, "")
		return
	}
	want := snsSignature(app.SNSAppSecret, q.Get("timestamp"))
	if !hmac.Equal([]byte(want), []byte(q.Get("signature"))) {
		writeOldError(w, r, 853004, "")
		return
	}
	code := p.str("tmp_auth_code")
	if perr != nil || code == "" {
		writeOldError(w, r, 41026, "")
		return
	}
	c, ok := s.redeemCodeLocked(code, codeSNS, func(c *authCode) bool { return c.clientID == app.SNSAppID })
	if !ok {
		writeOldError(w, r, 40078, "")
		return
	}
	var e *Employee
	if corp := s.fixture.corp(c.corpID); corp != nil {
		e = corp.employee(c.userID)
	}
	if e == nil {
		writeOldError(w, r, 40078, "")
		return
	}
	writeOldOK(w, r, map[string]any{"user_info": map[string]any{
		"nick":                     e.nick(),
		"unionid":                  e.UnionID,
		"openid":                   e.OpenID,
		"main_org_auth_high_level": true,
	}})
}
