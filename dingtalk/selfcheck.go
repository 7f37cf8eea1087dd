package dingtalk

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"
)

// API names one DingTalk API that dingbridge needs, as the self-check
// reports it.
type API string

// The APIs the sign-in uses (dingtalk-api.md §0). The event callbacks call
// none: they only decrypt what DingTalk pushes.
const (
	APIAppToken       API = "app_token"         // A1, or A2 with LegacyTokenEndpoint
	APIUserByUnionID  API = "user_by_unionid"   // U1: web and SNS sign-in, unionId → userid
	APIUser           API = "user"              // U2: directory record, membership
	APIUserToken      API = "user_token"        // L2: web sign-in, authCode → user token
	APIMe             API = "me"                // L3: web sign-in, user token → unionId
	APIUserByAuthCode API = "user_by_auth_code" // H1: workbench one-click, JSAPI code → userid
	APISNSUser        API = "sns_user"          // S3: legacy scan login, code → unionId
)

// CheckStatus is the outcome of one API in a self-check.
type CheckStatus string

// Self-check outcomes. OK and AtSignIn are not problems; Skipped means the
// check could not run (Reason says why); the rest are problems.
const (
	CheckOK CheckStatus = "ok"
	// CheckMissingPermission: the app lacks a permission (Scopes names it).
	CheckMissingPermission CheckStatus = "missing_permission"
	// CheckOutsideRange: the person looked up is outside the app's contact
	// range (通讯录权限范围, 50002/50004): people there cannot sign in.
	CheckOutsideRange CheckStatus = "outside_range"
	// CheckIPNotAllowed: this server's IP is not in the app's allow-list.
	CheckIPNotAllowed   CheckStatus = "ip_not_allowed"
	CheckBadCredentials CheckStatus = "bad_credentials"
	CheckThrottled      CheckStatus = "throttled"
	// CheckUnreachable: no answer, or one that is not DingTalk's (timeouts,
	// gateway errors, HTML).
	CheckUnreachable CheckStatus = "unreachable"
	// CheckFailed: DingTalk answered with another error (Code says which).
	CheckFailed  CheckStatus = "failed"
	CheckSkipped CheckStatus = "skipped"
	// CheckAtSignIn: the API needs a single-use code that only a person
	// signing in produces, so only a real sign-in can exercise it.
	CheckAtSignIn CheckStatus = "at_sign_in"
)

// Problem reports whether s is something an administrator must fix.
func (s CheckStatus) Problem() bool {
	return s != CheckOK && s != CheckSkipped && s != CheckAtSignIn
}

// Reasons a check was skipped or could not be made now (Check.Reason).
const (
	ReasonNoAppToken = "no_app_token" // the app token check failed
	ReasonNoPerson   = "no_person"    // no person of the corp to look up is known
	ReasonNeedsCode  = "needs_code"   // needs a person's single-use code (CheckAtSignIn)
	ReasonNotMember  = "not_member"   // OK: the API answered, the person is no longer in the corp
)

// Permissions (权限点) the APIs need, as DingTalk's developer console names
// them (dingtalk-api.md §3.5, §4, §5.3). The old API's "no permission" error
// (60011) does not name the permission, so the check names it from here.
const (
	ScopeMember          = "qyapi_get_member"  // 成员信息读权限: U1, U2
	ScopeBase            = "qyapi_base"        // granted by default: H1
	ScopeContactUserRead = "Contact.User.Read" // 个人权限 (personal info): L3
)

// Probe is a person of the corp whom the self-check may look up: the
// directory APIs need someone to ask about. Either id may be empty; with
// both empty, those APIs are skipped.
type Probe struct {
	UserID  string
	UnionID string
}

// Check is the outcome of one API.
type Check struct {
	API API
	// Endpoint is the method and path called, e.g. "POST /topapi/v2/user/get".
	Endpoint string
	Status   CheckStatus
	// Scopes are, for CheckMissingPermission, the permissions to grant:
	// those DingTalk's answer names (APIError.RequiredScopes), else the
	// API's documented one; for CheckAtSignIn, the permissions the API needs.
	Scopes []string
	// Reason qualifies Skipped, AtSignIn and some OK results (Reason…).
	Reason string
	// Code and RequestID are DingTalk's error code and request id, if it
	// answered with an error; for support tickets.
	Code      string
	RequestID string
	// Err is the error behind a problem, for the caller's log; its text
	// holds no secrets (APIError and transport errors are redacted).
	Err error
}

// Report is the outcome of a self-check of one corp's app.
type Report struct {
	CorpID string
	AppKey string
	// Probe is the person looked up, with the userid learnt from the unionId
	// when the caller knew only that.
	Probe    Probe
	Started  time.Time
	Duration time.Duration
	Checks   []Check
}

// Problems counts the checks that found something to fix.
func (r Report) Problems() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status.Problem() {
			n++
		}
	}
	return n
}

// SelfCheck calls, with harmless arguments, each API the sign-in needs and
// reports what works and what the app lacks. It fetches a fresh app token
// (not a cached one, which could predate a changed secret), then looks up
// p with U1 and U2. The APIs that need a person's single-use code are
// reported as CheckAtSignIn. It spends a few calls of DingTalk's quota:
// callers should not run it often.
func (c *Client) SelfCheck(ctx context.Context, p Probe) Report {
	rep := Report{CorpID: c.cfg.CorpID, AppKey: c.cfg.AppKey, Probe: p, Started: c.cfg.Now()}
	start := time.Now()

	tokenCheck := Check{API: APIAppToken, Endpoint: "POST /v1.0/oauth2/accessToken"}
	if c.cfg.LegacyTokenEndpoint {
		tokenCheck.Endpoint = "GET /gettoken"
	}
	token, expireIn, err := c.fetchAppToken(ctx)
	if err == nil {
		// DingTalk renews and returns the same token while it is valid
		// (§2.1), so keeping it is as good as the cached one and saves the
		// next calls a fetch.
		c.keepAppToken(token, expireIn)
	}
	rep.Checks = append(rep.Checks, outcomeOf(tokenCheck, err))
	haveToken := err == nil

	u1 := Check{API: APIUserByUnionID, Endpoint: "POST /topapi/user/getbyunionid", Scopes: []string{ScopeMember}}
	switch {
	case !haveToken:
		u1 = skipped(u1, ReasonNoAppToken)
	case p.UnionID == "":
		u1 = skipped(u1, ReasonNoPerson)
	default:
		userID, _, err := c.UserIDByUnionID(ctx, p.UnionID)
		if err == nil && rep.Probe.UserID == "" {
			rep.Probe.UserID = userID
		}
		u1 = outcomeOf(u1, err)
	}
	rep.Checks = append(rep.Checks, u1)

	u2 := Check{API: APIUser, Endpoint: "POST /topapi/v2/user/get", Scopes: []string{ScopeMember}}
	switch {
	case !haveToken:
		u2 = skipped(u2, ReasonNoAppToken)
	case rep.Probe.UserID == "":
		u2 = skipped(u2, ReasonNoPerson)
	default:
		_, err := c.User(ctx, rep.Probe.UserID)
		u2 = outcomeOf(u2, err)
	}
	rep.Checks = append(rep.Checks, u2)

	atSignIn := []Check{
		{API: APIUserToken, Endpoint: "POST /v1.0/oauth2/userAccessToken"},
		{API: APIMe, Endpoint: "GET /v1.0/contact/users/me", Scopes: []string{ScopeContactUserRead}},
		{API: APIUserByAuthCode, Endpoint: "POST /topapi/v2/user/getuserinfo", Scopes: []string{ScopeBase}},
	}
	if c.cfg.SNSAppID != "" {
		atSignIn = append(atSignIn, Check{API: APISNSUser, Endpoint: "POST /sns/getuserinfo_bycode"})
	}
	for _, ck := range atSignIn {
		ck.Status, ck.Reason = CheckAtSignIn, ReasonNeedsCode
		rep.Checks = append(rep.Checks, ck)
	}
	rep.Duration = time.Since(start)
	return rep
}

// keepAppToken caches a token fetched outside AppToken, unless a fetch or
// another token is already there.
func (c *Client) keepAppToken(token string, expireIn int64) {
	t := &c.tokens
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refresh == nil && (t.token == "" || !c.cfg.Now().Before(t.expiresAt)) {
		t.token, t.expiresAt = token, c.cfg.Now().Add(c.tokenLifetime(expireIn))
	}
}

func skipped(ck Check, reason string) Check {
	ck.Status, ck.Reason, ck.Scopes = CheckSkipped, reason, nil
	return ck
}

// outcomeOf classifies the error of ck's call. ck.Scopes holds the API's
// documented permission, kept only when the app lacks it.
func outcomeOf(ck Check, err error) Check {
	documented := ck.Scopes
	ck.Scopes = nil
	if err == nil {
		ck.Status = CheckOK
		return ck
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		ck.Code, ck.RequestID = apiErr.Code, apiErr.RequestID
	} else if bad, ok := errors.AsType[*BadResponseError](err); ok {
		ck.RequestID = bad.RequestID
	}
	switch {
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrNotFound):
		// The API answered about the person: it is allowed and works.
		ck.Status, ck.Reason = CheckOK, ReasonNotMember
		return ck
	case slices.Contains([]string{"60020", "Forbidden.AccessDenied.IpNotInWhiteList", "IpNotInWhiteList"}, ck.Code):
		ck.Status = CheckIPNotAllowed
	case ck.Code == "50002" || ck.Code == "50004":
		ck.Status = CheckOutsideRange
	case errors.Is(err, ErrPermissionDenied):
		ck.Status, ck.Scopes = CheckMissingPermission, documented
		if apiErr != nil && len(apiErr.RequiredScopes) > 0 {
			ck.Scopes = slices.Clone(apiErr.RequiredScopes)
		}
	case errors.Is(err, ErrBadCredentials):
		ck.Status = CheckBadCredentials
	case errors.Is(err, ErrThrottled):
		ck.Status = CheckThrottled
	case apiErr != nil && apiErr.HTTPStatus < http.StatusInternalServerError:
		ck.Status = CheckFailed
	default:
		// Transport errors, timeouts, gateway pages, DingTalk's 5xx.
		ck.Status = CheckUnreachable
	}
	ck.Err = err
	return ck
}
