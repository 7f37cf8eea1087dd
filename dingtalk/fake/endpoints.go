package fake

import "net/http"

// Endpoint names, for Calls and InjectFault. Each is the HTTP method and the
// path pattern the Server routes; a request with the wrong method is still
// counted under its path's name (and answered with DingTalk's method error).
const (
	// api.dingtalk.com (new API)
	EndpointAppToken    = "POST /v1.0/oauth2/accessToken"     // A1
	EndpointCorpToken   = "POST /v1.0/oauth2/{corpId}/token"  // A3
	EndpointUserToken   = "POST /v1.0/oauth2/userAccessToken" // L2
	EndpointContactUser = "GET /v1.0/contact/users/{unionId}" // L3

	// oapi.dingtalk.com (old API)
	EndpointGetToken         = "GET /gettoken"                        // A2
	EndpointUserByUnionID    = "POST /topapi/user/getbyunionid"       // U1
	EndpointUser             = "POST /topapi/v2/user/get"             // U2
	EndpointUserInfoByCode   = "POST /topapi/v2/user/getuserinfo"     // H1
	EndpointLegacyUserInfo   = "GET /user/getuserinfo"                // H2
	EndpointQRConnect        = "GET /connect/qrconnect"               // S1
	EndpointSNSAuthorize     = "GET /connect/oauth2/sns_authorize"    // S2
	EndpointSNSUserInfo      = "POST /sns/getuserinfo_bycode"         // S3
	EndpointDepartmentSub    = "POST /topapi/v2/department/listsub"   // D1
	EndpointDepartmentSubIDs = "POST /topapi/v2/department/listsubid" // D2
	EndpointDepartment       = "POST /topapi/v2/department/get"       // D3
	EndpointUserIDs          = "POST /topapi/user/listid"             // D4
	EndpointUserList         = "POST /topapi/v2/user/list"            // D5

	// login.dingtalk.com
	EndpointLogin = "GET /oauth2/auth" // L1

	// Simulator-only paths: what a person (or the DingTalk client) does.
	EndpointLoginApprove   = "POST /fake/oauth2/approve" // L1 picker submit
	EndpointSNSApprove     = "POST /fake/sns/approve"    // S1/S2 picker submit
	EndpointJSAPIScript    = "GET /fake/jsapi.js"        // window.dd shim
	EndpointJSAPIAuthCode  = "POST /fake/jsapi/authcode" // shim → code
	EndpointJSAPIEmployees = "GET /fake/jsapi/employees" // shim picker list
	EndpointFrameLogin     = "GET /fake/ddlogin.js"      // DTFrameLogin shim
)

// family is the error shape an endpoint speaks.
type family int

const (
	familyOld family = iota // oapi: HTTP 200 {"errcode","errmsg","request_id"}
	familyNew               // api: HTTP 4xx/5xx {"code","message","requestid"}
	familyWeb               // pages and scripts: HTML / plain text
)

// route binds an endpoint name to its handler.
type route struct {
	endpoint string
	family   family
	cors     bool // answered to any origin, preflight included (JSAPI shim calls)
	handle   http.HandlerFunc
}

// routes lists every endpoint the Server answers.
func (s *Server) routes() []route {
	return []route{
		{EndpointAppToken, familyNew, false, s.handleAppToken},
		{EndpointCorpToken, familyNew, false, s.handleCorpToken},
		{EndpointUserToken, familyNew, false, s.handleUserToken},
		{EndpointContactUser, familyNew, false, s.handleContactUser},

		{EndpointGetToken, familyOld, false, s.handleGetToken},
		{EndpointUserByUnionID, familyOld, false, s.topAPI(s.handleUserByUnionID)},
		{EndpointUser, familyOld, false, s.topAPI(s.handleUser)},
		{EndpointUserInfoByCode, familyOld, false, s.topAPI(s.handleUserInfoByCode)},
		{EndpointLegacyUserInfo, familyOld, false, s.handleLegacyUserInfo},
		{EndpointQRConnect, familyWeb, false, s.handleSNSAuthorize},
		{EndpointSNSAuthorize, familyWeb, false, s.handleSNSAuthorize},
		{EndpointSNSUserInfo, familyOld, false, s.handleSNSUserInfo},
		{EndpointDepartmentSub, familyOld, false, s.topAPI(s.handleDepartmentSub)},
		{EndpointDepartmentSubIDs, familyOld, false, s.topAPI(s.handleDepartmentSubIDs)},
		{EndpointDepartment, familyOld, false, s.topAPI(s.handleDepartment)},
		{EndpointUserIDs, familyOld, false, s.topAPI(s.handleUserIDs)},
		{EndpointUserList, familyOld, false, s.topAPI(s.handleUserList)},

		{EndpointLogin, familyWeb, false, s.handleLogin},
		{EndpointLoginApprove, familyWeb, false, s.handleLoginApprove},
		{EndpointSNSApprove, familyWeb, false, s.handleSNSApprove},
		{EndpointJSAPIScript, familyWeb, true, s.handleJSAPIScript},
		{EndpointJSAPIAuthCode, familyWeb, true, s.handleJSAPIAuthCode},
		{EndpointJSAPIEmployees, familyWeb, true, s.handleJSAPIEmployees},
		{EndpointFrameLogin, familyWeb, true, s.handleFrameLoginScript},
	}
}
