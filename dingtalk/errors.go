package dingtalk

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for the outcomes callers branch on. An *APIError matches
// (errors.Is) the sentinel its DingTalk code belongs to; a *BadResponseError
// matches ErrBadResponse, and ErrThrottled when it was the rate-limit page.
var (
	// ErrBadResponse means DingTalk answered with something that is not a
	// well-formed API response: HTML, empty, truncated or oversized bodies,
	// or an HTTP error status without a DingTalk error body.
	ErrBadResponse = errors.New("dingtalk: bad response")
	// ErrTokenInvalid means the access token (app or user) was rejected as
	// invalid or expired.
	ErrTokenInvalid = errors.New("dingtalk: access token invalid or expired")
	// ErrInvalidCode means an auth code was empty, expired, already used or
	// of the wrong kind. Codes are single use: start the login again.
	ErrInvalidCode = errors.New("dingtalk: auth code invalid, expired or already used")
	// ErrNotMember means the user is not a member of the app's corp
	// (errcode 60121), or is only an external contact.
	ErrNotMember = errors.New("dingtalk: user is not a member of the corp")
	// ErrThrottled means DingTalk rate-limited the call; back off.
	ErrThrottled = errors.New("dingtalk: rate limited")
	// ErrPermissionDenied means the app lacks the permission, scope or IP
	// allow-listing the call needs.
	ErrPermissionDenied = errors.New("dingtalk: permission denied")
	// ErrBadCredentials means the app key/secret (or SNS app id) was rejected.
	ErrBadCredentials = errors.New("dingtalk: invalid app credentials")
	// ErrNotFound means the user or department does not exist.
	ErrNotFound = errors.New("dingtalk: not found")
	// ErrSNSNotConfigured means a legacy SNS call was made on a Client
	// without SNSAppID/SNSAppSecret.
	ErrSNSNotConfigured = errors.New("dingtalk: legacy SNS login app not configured")
	// ErrCorpMismatch means a web login completed for a corp other than the
	// Client's CorpID.
	ErrCorpMismatch = errors.New("dingtalk: login is for another corp")
)

// APIError is an error reported by DingTalk in either of its shapes: the old
// API's HTTP 200 {"errcode","errmsg","request_id"} or the new API's HTTP
// 4xx/5xx {"code","message","requestid"}.
type APIError struct {
	// Endpoint is the URL path that was called (never the query).
	Endpoint string
	// HTTPStatus is the HTTP status of the response (200 for the old API).
	HTTPStatus int
	// Code is the decimal errcode of the old API (the sub_code when errcode
	// is the gateway wrapper 88) or the string code of the new API.
	Code string
	// Message is DingTalk's description of the error.
	Message string
	// RequestID is DingTalk's request id, for support tickets and audit.
	RequestID string
	// RequiredScopes are the permissions a 403 permission error says the
	// app lacks (accessdenieddetail.requiredScopes), e.g. Contact.User.Read:
	// what an administrator must grant in the developer console.
	RequiredScopes []string
}

// Error describes the failure without any request parameters.
func (e *APIError) Error() string {
	s := fmt.Sprintf("dingtalk %s: error %s: %s (http %d, request_id %q)",
		e.Endpoint, e.Code, e.Message, e.HTTPStatus, e.RequestID)
	if len(e.RequiredScopes) > 0 {
		s += fmt.Sprintf(" requires %v", e.RequiredScopes)
	}
	return s
}

// Is reports whether target is the sentinel error e.Code maps to.
func (e *APIError) Is(target error) bool {
	s := sentinelFor(e.Code)
	return s != nil && s == target
}

// sentinelFor maps DingTalk's error codes (§9 of the protocol notes) to the
// sentinel errors. Unknown codes, and -1 "system busy", map to nil: busy is a
// transient server condition, not throttling.
func sentinelFor(code string) error {
	switch code {
	case "40001", "40014", "42001",
		"InvalidAuthentication", "accesstoken.expired", "AuthenticationFailed.MissingParameter":
		return ErrTokenInvalid
	case "40078", "40102", "41026", "invalidCode":
		return ErrInvalidCode
	case "60121":
		return ErrNotMember
	case "90002", "90006", "90018", "90020", "Forbidden.AccessDenied.ApiCountLimitForOrg":
		return ErrThrottled
	case "60011", "50002", "50004", "60020",
		"Forbidden.AccessDenied.AccessTokenPermissionDenied",
		"Forbidden.AccessDenied.IpNotInWhiteList", "IpNotInWhiteList":
		return ErrPermissionDenied
	case "40089", "40096", "invalidClientIdOrSecret", "853003":
		return ErrBadCredentials
	case "60003", "33012", "invalidParameter.user.notFound":
		return ErrNotFound
	}
	// QpsLimitForAppkeyAndApi, QpmLimitForAppkeyAndApi, QpsLimitForApi, …
	if strings.HasPrefix(code, "Forbidden.AccessDenied.Qps") || strings.HasPrefix(code, "Forbidden.AccessDenied.Qpm") {
		return ErrThrottled
	}
	return nil
}

// BadResponseError is a response that could not be understood as a DingTalk
// API response. It matches ErrBadResponse, and also ErrThrottled when the body
// was DingTalk's rate-limit ("punish") page.
type BadResponseError struct {
	// Endpoint is the URL path that was called (never the query).
	Endpoint string
	// HTTPStatus is the HTTP status of the response.
	HTTPStatus int
	// ContentType is the response's Content-Type header.
	ContentType string
	// RequestID is the x-acs-request-id header or body request id, if any.
	RequestID string
	// Reason says what was wrong, without quoting the body.
	Reason string
	// Throttled is true when the body was the rate-limit page.
	Throttled bool
	// Err is the underlying decoding error, if any.
	Err error
}

// Error describes the failure without quoting the body.
func (e *BadResponseError) Error() string {
	msg := fmt.Sprintf("dingtalk %s: bad response (http %d, content-type %q): %s",
		e.Endpoint, e.HTTPStatus, e.ContentType, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrBadResponse, or ErrThrottled for the
// rate-limit page.
func (e *BadResponseError) Is(target error) bool {
	return target == ErrBadResponse || (e.Throttled && target == ErrThrottled)
}

// Unwrap returns the underlying decoding error.
func (e *BadResponseError) Unwrap() error { return e.Err }
