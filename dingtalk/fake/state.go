package fake

import (
	"errors"
	"fmt"
	"time"
)

// appToken is an app (organisation) access token from A1, A2 or A3.
type appToken struct {
	appKey  string
	corpID  string
	expires time.Time
}

// userToken is a user access token or refresh token from L2.
type userToken struct {
	clientID string
	corpID   string // corp of the employee who signed in
	userID   string
	unionID  string
	withCorp bool // authorize scope had "corpid"
	expires  time.Time
}

// codeKind tells the three kinds of temporary codes apart: each endpoint
// accepts only its own kind.
type codeKind int

const (
	codeLogin codeKind = iota + 1 // login.dingtalk.com authCode → L2
	codeJSAPI                     // requestAuthCode → H1/H2
	codeSNS                       // legacy SNS login → S3
)

// authCode is a single-use temporary code.
type authCode struct {
	kind codeKind
	// clientID is the app key (login; JSAPI: "" = any app of the corp)
	// or the SNS appid.
	clientID string
	corpID   string // corp of the employee
	userID   string
	withCorp bool
	expires  time.Time
}

// tokenState is the outcome of looking a token up.
type tokenState int

const (
	tokenUnknown tokenState = iota
	tokenExpired
	tokenValid
)

// appTokenLocked returns the app's live token, extending it, or issues a
// new one. s.mu must be held.
func (s *Server) appTokenLocked(corp *Corp, app *App) string {
	now := s.now()
	if tok, ok := s.currentAppToken[app.AppKey]; ok {
		if t := s.appTokens[tok]; t != nil && now.Before(t.expires) {
			t.expires = now.Add(s.appTokenTTL)
			return tok
		}
	}
	for old, t := range s.appTokens {
		// Keep expired tokens a day, so their use still reads as "expired".
		if now.Sub(t.expires) > 24*time.Hour {
			delete(s.appTokens, old)
		}
	}
	tok := randomHex(16)
	s.appTokens[tok] = &appToken{appKey: app.AppKey, corpID: corp.ID, expires: now.Add(s.appTokenTTL)}
	s.currentAppToken[app.AppKey] = tok
	return tok
}

// checkAppTokenLocked looks up an app token. s.mu must be held.
func (s *Server) checkAppTokenLocked(tok string) (*Corp, *App, tokenState) {
	t := s.appTokens[tok]
	if t == nil || tok == "" {
		return nil, nil, tokenUnknown
	}
	if !s.now().Before(t.expires) {
		return nil, nil, tokenExpired
	}
	corp, app := s.fixture.app(t.appKey)
	if corp == nil {
		return nil, nil, tokenUnknown
	}
	return corp, app, tokenValid
}

// issueCodeLocked stores a new code valid for CodeTTL. s.mu must be held.
func (s *Server) issueCodeLocked(c authCode) string {
	now := s.now()
	for old, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, old)
		}
	}
	code := randomHex(16)
	c.expires = now.Add(s.codeTTL)
	s.codes[code] = &c
	return code
}

// redeemCodeLocked consumes code if it is of kind, unexpired and accepted
// by ok; a code that fails ok stays usable by its rightful owner.
// s.mu must be held.
func (s *Server) redeemCodeLocked(code string, kind codeKind, ok func(*authCode) bool) (authCode, bool) {
	c := s.codes[code]
	if c == nil || c.kind != kind {
		return authCode{}, false
	}
	if !s.now().Before(c.expires) {
		delete(s.codes, code)
		return authCode{}, false
	}
	if !ok(c) {
		return authCode{}, false
	}
	delete(s.codes, code)
	return *c, true
}

// errUnknown reports an identifier the fixture does not have.
var errUnknown = errors.New("not in fixture")

// IssueLoginCode returns an authCode as if userID of corpID had approved a
// login.dingtalk.com request of app clientID; withCorpScope is whether the
// scope contained "corpid" (L2 then returns corpId).
func (s *Server) IssueLoginCode(clientID, corpID, userID string, withCorpScope bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, app := s.fixture.app(clientID); app == nil {
		return "", fmt.Errorf("app %q: %w", clientID, errUnknown)
	}
	if err := s.accountExistsLocked(corpID, userID); err != nil {
		return "", err
	}
	return s.issueCodeLocked(authCode{kind: codeLogin, clientID: clientID, corpID: corpID, userID: userID, withCorp: withCorpScope}), nil
}

// IssueJSAPICode returns a code as if dd.requestAuthCode had run inside
// DingTalk for userID, a current member of corpID. clientID "" issues a code
// like the legacy dd.runtime.permission.requestAuthCode, usable by any app
// of the corp.
func (s *Server) IssueJSAPICode(corpID, clientID, userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	corp := s.fixture.corp(corpID)
	if corp == nil {
		return "", fmt.Errorf("corp %q: %w", corpID, errUnknown)
	}
	if clientID != "" {
		if c, _ := s.fixture.app(clientID); c != corp {
			return "", fmt.Errorf("app %q in corp %q: %w", clientID, corpID, errUnknown)
		}
	}
	if corp.member(userID) == nil {
		return "", fmt.Errorf("member %q of corp %q: %w", userID, corpID, errUnknown)
	}
	return s.issueCodeLocked(authCode{kind: codeJSAPI, clientID: clientID, corpID: corpID, userID: userID}), nil
}

// IssueSNSCode returns a legacy SNS code (tmp_auth_code) as if userID had
// approved a scan login of the SNS app appID. userID is looked up in the
// app's corp first, then in the others.
func (s *Server) IssueSNSCode(appID, userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app := s.fixture.snsApp(appID)
	if app == nil {
		return "", fmt.Errorf("sns app %q: %w", appID, errUnknown)
	}
	owner := corp
	if corp.employee(userID) == nil {
		owner = nil
		for i := range s.fixture.Corps {
			if s.fixture.Corps[i].employee(userID) != nil {
				owner = &s.fixture.Corps[i]
				break
			}
		}
	}
	if owner == nil {
		return "", fmt.Errorf("employee %q: %w", userID, errUnknown)
	}
	return s.issueCodeLocked(authCode{kind: codeSNS, clientID: appID, corpID: owner.ID, userID: userID}), nil
}

// accountExistsLocked checks that userID is (or was) an employee of corpID:
// a DingTalk account that can sign in. s.mu must be held.
func (s *Server) accountExistsLocked(corpID, userID string) error {
	corp := s.fixture.corp(corpID)
	if corp == nil {
		return fmt.Errorf("corp %q: %w", corpID, errUnknown)
	}
	if corp.employee(userID) == nil {
		return fmt.Errorf("employee %q of corp %q: %w", userID, corpID, errUnknown)
	}
	return nil
}
