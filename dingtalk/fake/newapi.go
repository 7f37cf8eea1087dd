package fake

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"
)

// secretEqual compares secrets in constant time.
func secretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

const (
	msgInvalidClient = "无效的clientId或者clientSecret"
	msgInvalidToken  = "不合法的access_token"
)

// handleAppToken is A1: POST /v1.0/oauth2/accessToken.
func (s *Server) handleAppToken(w http.ResponseWriter, r *http.Request) {
	p := jsonBody(r)
	appKey, appSecret := p.str("appKey"), p.str("appSecret")

	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app := s.fixture.app(appKey)
	if app == nil || !secretEqual(app.AppSecret, appSecret) {
		writeNewError(w, r, http.StatusBadRequest, "invalidClientIdOrSecret", msgInvalidClient)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"accessToken": s.appTokenLocked(corp, app),
		"expireIn":    int64(s.appTokenTTL.Seconds()),
	})
}

// handleCorpToken is A3: POST /v1.0/oauth2/{corpId}/token.
func (s *Server) handleCorpToken(w http.ResponseWriter, r *http.Request) {
	p := jsonBody(r)
	clientID, clientSecret := p.str("client_id"), p.str("client_secret")

	s.mu.Lock()
	defer s.mu.Unlock()
	corp := s.fixture.corp(r.PathValue("corpId"))
	switch {
	case corp == nil:
		writeNewError(w, r, http.StatusInternalServerError, "unknownError", "未知错误")
		return
	case p.str("grant_type") != "client_credentials":
		writeNewError(w, r, http.StatusBadRequest, "unsupported.grant.type", "不支持的授权类型")
		return
	}
	appCorp, app := s.fixture.app(clientID)
	switch {
	case app == nil || !secretEqual(app.AppSecret, clientSecret):
		writeNewError(w, r, http.StatusBadRequest, "invalid.client", "无效的client_id或client_secret")
		return
	case appCorp != corp:
		writeNewError(w, r, http.StatusUnauthorized, "unauthorized.client", "应用未被该组织授权")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": s.appTokenLocked(corp, app),
		"expires_in":   int64(s.appTokenTTL.Seconds()),
	})
}

// handleUserToken is L2: POST /v1.0/oauth2/userAccessToken.
func (s *Server) handleUserToken(w http.ResponseWriter, r *http.Request) {
	p := jsonBody(r)
	clientID, refreshToken := p.str("clientId"), p.str("refreshToken")

	s.mu.Lock()
	defer s.mu.Unlock()
	_, app := s.fixture.app(clientID)
	if app == nil || !secretEqual(app.AppSecret, p.str("clientSecret")) {
		writeNewError(w, r, http.StatusBadRequest, "invalidClientIdOrSecret", msgInvalidClient)
		return
	}

	now := s.now()
	var grant userToken
	switch p.str("grantType") {
	case "authorization_code":
		c, ok := s.redeemCodeLocked(p.str("code"), codeLogin, func(c *authCode) bool { return c.clientID == clientID })
		if !ok {
			writeNewError(w, r, http.StatusBadRequest, "invalidCode", "无效的授权码")
			return
		}
		grant = userToken{clientID: c.clientID, corpID: c.corpID, userID: c.userID, withCorp: c.withCorp}
		if corp := s.fixture.corp(c.corpID); corp != nil {
			if e := corp.employee(c.userID); e != nil {
				grant.unionID = e.UnionID
			}
		}
		grant.expires = now.Add(refreshTokenTTL)
		refreshToken = randomHex(16)
		s.refreshTokens[refreshToken] = &grant
	case "refresh_token":
		t := s.refreshTokens[refreshToken]
		if t == nil || t.clientID != clientID || !now.Before(t.expires) {
			writeNewError(w, r, http.StatusBadRequest, "invalidRefreshToken", "无效的refreshToken")
			return
		}
		grant = *t // the refresh token is not rotated
	default:
		writeNewError(w, r, http.StatusBadRequest, "unsupported.grant.type", "不支持的grantType")
		return
	}

	s.pruneUserTokensLocked(now)
	access := grant
	access.expires = now.Add(userTokenTTL)
	token := randomHex(16)
	s.userTokens[token] = &access
	body := map[string]any{
		"accessToken":  token,
		"refreshToken": refreshToken,
		"expireIn":     int64(userTokenTTL.Seconds()),
	}
	if grant.withCorp {
		body["corpId"] = grant.corpID
	}
	writeJSON(w, http.StatusOK, body)
}

// pruneUserTokensLocked forgets expired user and refresh tokens.
// s.mu must be held.
func (s *Server) pruneUserTokensLocked(now time.Time) {
	// Once a minute is enough (tokens live two hours), and keeps a burst of
	// logins from walking every token on every exchange.
	if now.Sub(s.lastPrune) < time.Minute && !now.Before(s.lastPrune) {
		return
	}
	s.lastPrune = now
	for _, m := range []map[string]*userToken{s.userTokens, s.refreshTokens} {
		for tok, t := range m {
			if !now.Before(t.expires) {
				delete(m, tok)
			}
		}
	}
}

// scopeContactUserRead is the permission users/me needs (个人权限).
const scopeContactUserRead = "Contact.User.Read"

// handleContactUser is L3: GET /v1.0/contact/users/{unionId|me}.
func (s *Server) handleContactUser(w http.ResponseWriter, r *http.Request) {
	// Only the header counts; Authorization: Bearer and ?access_token= are
	// ignored, as by DingTalk.
	tok := strings.TrimSpace(r.Header.Get("x-acs-dingtalk-access-token"))
	if tok == "" {
		writeNewError(w, r, http.StatusBadRequest, "AuthenticationFailed.MissingParameter",
			"缺少参数x-acs-dingtalk-access-token")
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.userTokens[tok]
	if t == nil || !s.now().Before(t.expires) {
		if _, _, state := s.checkAppTokenLocked(tok); state == tokenValid {
			writePermissionDenied(w, r, scopeContactUserRead)
			return
		}
		writeNewError(w, r, http.StatusBadRequest, "InvalidAuthentication", msgInvalidToken)
		return
	}

	if _, app := s.fixture.app(t.clientID); app != nil && slices.Contains(app.DeniedScopes, scopeContactUserRead) {
		writePermissionDenied(w, r, scopeContactUserRead)
		return
	}
	unionID := r.PathValue("unionId")
	if unionID == "me" {
		unionID = t.unionID
	}
	_, e := s.fixture.account(unionID)
	if e == nil {
		writeNewError(w, r, http.StatusNotFound, "invalidParameter.user.notFound", "找不到该用户")
		return
	}
	body := map[string]any{
		"nick":    e.nick(),
		"openId":  e.OpenID,
		"unionId": e.UnionID,
	}
	// Unset profile fields are absent, as in DingTalk's responses.
	for k, v := range map[string]string{
		"avatarUrl": e.Avatar, "mobile": e.Mobile, "stateCode": e.StateCode, "email": e.Email,
	} {
		if v != "" {
			body[k] = v
		}
	}
	writeJSON(w, http.StatusOK, body)
}
