package fake

import (
	"encoding/json"
	"io"
	"net/http"
)

// platforms are the dd.env.platform values the shim may report.
func validPlatform(p string) bool {
	switch p {
	case "android", "ios", "pc", "mac", "windows", "notInDingTalk":
		return true
	}
	return false
}

// handleJSAPIScript serves the window.dd shim: GET /fake/jsapi.js
// [?platform=android|ios|pc|notInDingTalk]. The default simulates a page
// opened inside the DingTalk Android client.
func (s *Server) handleJSAPIScript(w http.ResponseWriter, r *http.Request) {
	platform := r.URL.Query().Get("platform")
	if !validPlatform(platform) {
		platform = "android"
	}
	s.renderScript(w, r, scriptJSAPI, scriptData{
		BaseURL:  jsLiteral(s.publicBaseURL(r)),
		Platform: jsLiteral(platform),
	})
}

// handleFrameLoginScript serves a DTFrameLogin shim (DingTalk's ddlogin.js)
// that frames this fake's login page: GET /fake/ddlogin.js.
func (s *Server) handleFrameLoginScript(w http.ResponseWriter, r *http.Request) {
	s.renderScript(w, r, scriptFrame, scriptData{BaseURL: jsLiteral(s.publicBaseURL(r))})
}

// jsapiError is the error object requestAuthCode hands to onFail.
type jsapiError struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
}

// badCorp is DingTalk's answer for a corpId that does not fit the page.
func badCorp() jsapiError {
	return jsapiError{ErrorCode: 3, ErrorMessage: "1002,corpId不合法"}
}

// handleJSAPIAuthCode is the shim's code request: POST /fake/jsapi/authcode
// with {"corpId","clientId"[,"userId"]} (any content type, so browsers
// send it without a preflight). Answers {"code"}, {"pick":true} when a
// person must choose who is signed in, or a jsapiError.
func (s *Server) handleJSAPIAuthCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CorpID   string `json:"corpId"`
		ClientID string `json:"clientId"`
		UserID   string `json:"userId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, jsapiError{ErrorCode: 1, ErrorMessage: "参数错误 / bad request"})
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	corp := s.fixture.corp(req.CorpID)
	if corp == nil {
		writeJSON(w, http.StatusBadRequest, badCorp())
		return
	}
	if req.ClientID != "" {
		if c, _ := s.fixture.app(req.ClientID); c != corp {
			writeJSON(w, http.StatusBadRequest, jsapiError{ErrorCode: 3, ErrorMessage: "对应企业没有该微应用 (clientId)"})
			return
		}
	}
	userID := req.UserID
	if userID == "" {
		if id := s.approvalLocked(); id != nil && id.corpID == corp.ID {
			userID = id.userID
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"pick": true})
			return
		}
	}
	if corp.member(userID) == nil {
		writeJSON(w, http.StatusBadRequest, jsapiError{ErrorCode: 3, ErrorMessage: "用户不在该企业 / not a member"})
		return
	}
	code := s.issueCodeLocked(authCode{kind: codeJSAPI, clientID: req.ClientID, corpID: corp.ID, userID: userID})
	writeJSON(w, http.StatusOK, map[string]any{"code": code})
}

// handleJSAPIEmployees lists the members the shim's picker offers:
// GET /fake/jsapi/employees?corpId=.
func (s *Server) handleJSAPIEmployees(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	corp := s.fixture.corp(r.URL.Query().Get("corpId"))
	if corp == nil {
		writeJSON(w, http.StatusNotFound, badCorp())
		return
	}
	type person struct {
		UserID string `json:"userId"`
		Name   string `json:"name"`
		Title  string `json:"title"`
		Admin  bool   `json:"admin"`
	}
	people := []person{}
	for i := range corp.Employees {
		if e := &corp.Employees[i]; !e.Left {
			people = append(people, person{UserID: e.UserID, Name: e.Name, Title: e.Title, Admin: e.Admin})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"corpId": corp.ID, "corpName": corp.Name, "employees": people})
}
