package dingtalk

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

var sentinels = []error{
	ErrTokenInvalid, ErrInvalidCode, ErrNotMember, ErrThrottled, ErrPermissionDenied, ErrBadCredentials, ErrNotFound,
}

func TestAPIErrorIs(t *testing.T) {
	tests := []struct {
		code string
		want error // nil: no sentinel
	}{
		{"40001", ErrTokenInvalid},
		{"40014", ErrTokenInvalid},
		{"42001", ErrTokenInvalid},
		{"InvalidAuthentication", ErrTokenInvalid},
		{"accesstoken.expired", ErrTokenInvalid},
		{"AuthenticationFailed.MissingParameter", ErrTokenInvalid},
		{"40078", ErrInvalidCode},
		{"40102", ErrInvalidCode},
		{"41026", ErrInvalidCode},
		{"invalidCode", ErrInvalidCode},
		{"60121", ErrNotMember},
		{"90002", ErrThrottled},
		{"90006", ErrThrottled},
		{"90018", ErrThrottled},
		{"90020", ErrThrottled},
		{"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", ErrThrottled},
		{"Forbidden.AccessDenied.QpmLimitForAppkeyAndApi", ErrThrottled},
		{"Forbidden.AccessDenied.QpsLimitForApi", ErrThrottled},
		{"Forbidden.AccessDenied.ApiCountLimitForOrg", ErrThrottled},
		{"60011", ErrPermissionDenied},
		{"50002", ErrPermissionDenied},
		{"50004", ErrPermissionDenied},
		{"60020", ErrPermissionDenied},
		{"Forbidden.AccessDenied.AccessTokenPermissionDenied", ErrPermissionDenied},
		{"Forbidden.AccessDenied.IpNotInWhiteList", ErrPermissionDenied},
		{"40089", ErrBadCredentials},
		{"40096", ErrBadCredentials},
		{"invalidClientIdOrSecret", ErrBadCredentials},
		{"853003", ErrBadCredentials},
		{"60003", ErrNotFound},
		{"33012", ErrNotFound},
		{"invalidParameter.user.notFound", ErrNotFound},
		{"-1", nil}, // busy is not throttling
		{"88", nil},
		{"40035", nil},
		{"unknownError", nil},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := error(&APIError{Endpoint: "/x", HTTPStatus: 200, Code: tt.code})
			for _, s := range sentinels {
				if got, want := errors.Is(err, s), s == tt.want; got != want {
					t.Errorf("errors.Is(code %s, %v) = %v, want %v", tt.code, s, got, want)
				}
			}
			if errors.Is(err, ErrBadResponse) {
				t.Errorf("errors.Is(code %s, ErrBadResponse) = true, want false", tt.code)
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	err := &APIError{Endpoint: "/topapi/v2/user/get", HTTPStatus: 200, Code: "60121", Message: "找不到该用户", RequestID: "2o4svlmzzsig"}
	want := `dingtalk /topapi/v2/user/get: error 60121: 找不到该用户 (http 200, request_id "2o4svlmzzsig")`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestBadResponseErrorIs(t *testing.T) {
	tests := []struct {
		name          string
		err           *BadResponseError
		wantThrottled bool
	}{
		{"plain", &BadResponseError{Endpoint: "/x", HTTPStatus: 502, Reason: "html body"}, false},
		{"punish", &BadResponseError{Endpoint: "/x", HTTPStatus: 200, Reason: "rate-limit page", Throttled: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkIs(t, tt.err, ErrBadResponse)
			if got := errors.Is(tt.err, ErrThrottled); got != tt.wantThrottled {
				t.Errorf("errors.Is(ErrThrottled) = %v, want %v", got, tt.wantThrottled)
			}
		})
	}
}

// TestDecodeResponse covers classification corners the endpoint matrix
// does not reach.
func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name       string
		family     family
		status     int
		ctype      string
		header     map[string]string
		body       string
		wantCode   string // expected APIError code
		wantBad    bool   // expected *BadResponseError
		wantThrot  bool
		wantReqID  string
		wantResult string
	}{
		{name: "old success", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":0,"errmsg":"ok","result":"r","request_id":"rq"}`, wantResult: "r", wantReqID: "rq"},
		{name: "old success without errcode", family: oldAPI, status: 200, ctype: "application/json", body: `{"result":"r"}`, wantResult: "r"},
		{name: "old success with unrelated code field", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":0,"code":"x","result":"r"}`, wantResult: "r"},
		{name: "errcode as string", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":"40014","errmsg":"bad"}`, wantCode: "40014"},
		{name: "88 without sub_code keeps 88", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":88,"errmsg":"gw"}`, wantCode: "88"},
		{name: "88 with numeric sub_code", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":88,"sub_code":42001,"sub_msg":"expired"}`, wantCode: "42001"},
		{name: "busy", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":-1,"errmsg":"系统繁忙"}`, wantCode: "-1"},
		{name: "new error on 5xx", family: newAPI, status: 500, ctype: "application/json", body: `{"code":"unknownError","message":"未知错误"}`, wantCode: "unknownError"},
		{name: "new error with header request id", family: newAPI, status: 400, ctype: "application/json", header: map[string]string{headerRequestID: "h1"}, body: `{"code":"invalidCode"}`, wantCode: "invalidCode", wantReqID: "h1"},
		{name: "new success", family: newAPI, status: 200, ctype: "application/json", body: `{"result":"r"}`, wantResult: "r"},
		{name: "json without content type", family: newAPI, status: 200, body: `{"result":"r"}`, wantResult: "r"},
		{name: "4xx without code", family: newAPI, status: 404, ctype: "application/json", body: `{"message":"not found"}`, wantBad: true},
		{name: "empty body", family: oldAPI, status: 200, ctype: "application/json", body: ``, wantBad: true},
		{name: "json array", family: oldAPI, status: 200, ctype: "application/json", body: `[1,2]`, wantBad: true},
		{name: "html without content type", family: oldAPI, status: 200, body: `<html>punish</html>`, wantBad: true, wantThrot: true},
		{name: "wrong result type", family: oldAPI, status: 200, ctype: "application/json", body: `{"errcode":0,"result":5}`, wantBad: true},
		{name: "punish json with 403", family: oldAPI, status: 403, ctype: "application/json", body: `{"status":1111,"wait":5,"source":"x5","punish":"deny","uuid":"u"}`, wantBad: true, wantThrot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
			if tt.ctype != "" {
				resp.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				resp.Header.Set(k, v)
			}
			res := outcome{requestID: resp.Header.Get(headerRequestID)}
			var out struct {
				Result string `json:"result"`
			}
			err := decodeResponse(request{family: tt.family, path: "/x"}, resp, []byte(tt.body), &out, &res)

			var apiErr *APIError
			var badErr *BadResponseError
			switch {
			case tt.wantCode != "":
				if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode || apiErr.HTTPStatus != tt.status {
					t.Fatalf("err = %v, want APIError code %s status %d", err, tt.wantCode, tt.status)
				}
			case tt.wantBad:
				if !errors.As(err, &badErr) {
					t.Fatalf("err = %v, want *BadResponseError", err)
				}
				if badErr.Throttled != tt.wantThrot {
					t.Errorf("Throttled = %v, want %v", badErr.Throttled, tt.wantThrot)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				if out.Result != tt.wantResult {
					t.Errorf("result = %q, want %q", out.Result, tt.wantResult)
				}
			}
			if tt.wantReqID != "" && res.requestID != tt.wantReqID {
				t.Errorf("request id = %q, want %q", res.requestID, tt.wantReqID)
			}
			if err != nil && strings.Contains(err.Error(), tt.body) && tt.body != "" {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
}
