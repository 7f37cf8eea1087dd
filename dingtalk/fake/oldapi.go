package fake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
)

// scopeMember is the permission U1 and U2 need (成员信息读权限).
const scopeMember = "qyapi_get_member"

// msgNoPermission is the errmsg of the old API's 60011, which, unlike the
// new API's 403, does not name the missing permission.
const msgNoPermission = "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp-server/add-api-permission"

// topRequest is an authenticated topapi call.
type topRequest struct {
	params
	corp *Corp // the app's corp
	app  *App
}

// topAPI adapts a topapi handler: it reads the JSON or form body and
// authenticates the app token, answering failures through the gateway
// wrapper (88 + sub_code) itself. h runs with s.mu held.
func (s *Server) topAPI(h func(w http.ResponseWriter, r *http.Request, req topRequest)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, perr := readParams(r)
		s.mu.Lock()
		defer s.mu.Unlock()
		corp, app, state := s.checkAppTokenLocked(accessToken(r, p))
		switch {
		case state == tokenUnknown:
			writeGatewayError(w, r, 40014)
		case state == tokenExpired:
			writeGatewayError(w, r, 42001)
		case perr != nil:
			writeOldError(w, r, 40035, "")
		default:
			h(w, r, topRequest{params: p, corp: corp, app: app})
		}
	}
}

// handleGetToken is A2: GET /gettoken?appkey=&appsecret=.
func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key, secret := q.Get("appkey"), q.Get("appsecret")
	if key == "" || secret == "" {
		writeOldError(w, r, 40035, "缺少参数 corpid or appkey")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app := s.fixture.app(key)
	if app == nil || !secretEqual(app.AppSecret, secret) {
		writeOldError(w, r, 40096, "")
		return
	}
	writeOldOK(w, r, map[string]any{
		"access_token": s.appTokenLocked(corp, app),
		"expires_in":   int64(s.appTokenTTL.Seconds()),
	})
}

// handleUserByUnionID is U1: POST /topapi/user/getbyunionid.
func (s *Server) handleUserByUnionID(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	if req.app.denied(scopeMember) {
		writeOldError(w, r, 60011, msgNoPermission)
		return
	}
	unionID := p.str("unionid")
	if unionID == "" {
		writeOldError(w, r, 400002, "")
		return
	}
	e := corp.memberByUnionID(unionID)
	if e == nil {
		writeOldError(w, r, 60121, "")
		return
	}
	writeOldOK(w, r, map[string]any{"result": map[string]any{"contact_type": 0, "userid": e.UserID}})
}

// deptOrder and the other types below give U2/D5 results their exact JSON shape.
type deptOrder struct {
	DeptID int64 `json:"dept_id"`
	Order  int64 `json:"order"`
}

type deptLeader struct {
	DeptID int64 `json:"dept_id"`
	Leader bool  `json:"leader"`
}

type role struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	GroupName string `json:"group_name"`
}

// userDetail is the result of U2 (topapi/v2/user/get).
type userDetail struct {
	UserID           string       `json:"userid"`
	UnionID          string       `json:"unionid"`
	Name             string       `json:"name"`
	Avatar           string       `json:"avatar,omitempty"`
	StateCode        string       `json:"state_code,omitempty"`
	ManagerUserID    string       `json:"manager_userid,omitempty"`
	Mobile           string       `json:"mobile,omitempty"`
	HideMobile       bool         `json:"hide_mobile"`
	Telephone        string       `json:"telephone,omitempty"`
	JobNumber        string       `json:"job_number"`
	Title            string       `json:"title"`
	Email            string       `json:"email,omitempty"`
	WorkPlace        string       `json:"work_place,omitempty"`
	Remark           string       `json:"remark,omitempty"`
	OrgEmail         string       `json:"org_email,omitempty"`
	DeptIDList       []int64      `json:"dept_id_list"`
	DeptOrderList    []deptOrder  `json:"dept_order_list"`
	Extension        string       `json:"extension,omitempty"`
	HiredDate        int64        `json:"hired_date,omitempty"`
	Active           bool         `json:"active"`
	RealAuthed       bool         `json:"real_authed"`
	Senior           bool         `json:"senior"`
	Admin            bool         `json:"admin"`
	Boss             bool         `json:"boss"`
	ExclusiveAccount bool         `json:"exclusive_account"`
	LeaderInDept     []deptLeader `json:"leader_in_dept"`
	RoleList         []role       `json:"role_list"`
}

// detail builds the U2 view of an employee.
func detail(e *Employee) userDetail {
	d := userDetail{
		UserID: e.UserID, UnionID: e.UnionID, Name: e.Name, Avatar: e.Avatar,
		StateCode: e.StateCode, ManagerUserID: e.ManagerUserID, Mobile: e.Mobile,
		Telephone: e.Telephone, JobNumber: e.JobNumber, Title: e.Title, Email: e.Email,
		WorkPlace: e.WorkPlace, Remark: e.Remark, OrgEmail: e.OrgEmail,
		DeptIDList:    append([]int64{}, e.DeptIDs...),
		DeptOrderList: []deptOrder{}, LeaderInDept: []deptLeader{}, RoleList: []role{},
		Active: e.Active, RealAuthed: e.Active, Admin: e.Admin, Boss: e.Boss,
	}
	if e.Remark != "" {
		d.Extension = fmt.Sprintf(`{"备注":%q}`, e.Remark)
	}
	if !e.HiredDate.IsZero() {
		d.HiredDate = e.HiredDate.UnixMilli()
	}
	for i, id := range e.DeptIDs {
		// Orders are large opaque numbers in DingTalk; keep them distinct.
		d.DeptOrderList = append(d.DeptOrderList, deptOrder{DeptID: id, Order: 176294576350761512 - int64(i)})
		leader := false
		for _, l := range e.LeaderDeptIDs {
			leader = leader || l == id
		}
		d.LeaderInDept = append(d.LeaderInDept, deptLeader{DeptID: id, Leader: leader})
	}
	if e.Admin {
		d.RoleList = append(d.RoleList, role{ID: 1001, Name: "主管理员", GroupName: "默认"})
	}
	if e.Boss {
		d.RoleList = append(d.RoleList, role{ID: 1002, Name: "负责人", GroupName: "职务"})
	}
	return d
}

// handleUser is U2: POST /topapi/v2/user/get.
func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	if req.app.denied(scopeMember) {
		writeOldError(w, r, 60011, msgNoPermission)
		return
	}
	userID := p.str("userid")
	if userID == "" {
		writeOldError(w, r, 33012, "")
		return
	}
	e := corp.member(userID)
	if e == nil {
		writeOldError(w, r, 60121, "")
		return
	}
	writeOldOK(w, r, map[string]any{"result": detail(e)})
}

// deviceID is a stable fake device id for an employee.
func deviceID(e *Employee) string {
	sum := sha256.Sum256([]byte("device:" + e.UnionID))
	return hex.EncodeToString(sum[:16])
}

// redeemJSAPICodeLocked consumes a JSAPI code for the app, returning the
// member it was issued for, or the errcode to answer. s.mu must be held.
func (s *Server) redeemJSAPICodeLocked(code string, corp *Corp, app *App) (*Employee, int) {
	c, ok := s.redeemCodeLocked(code, codeJSAPI, func(c *authCode) bool {
		return c.corpID == corp.ID && (c.clientID == "" || c.clientID == app.AppKey)
	})
	if !ok {
		return nil, 40078
	}
	e := corp.member(c.userID)
	if e == nil {
		return nil, 60121
	}
	return e, 0
}

// handleUserInfoByCode is H1: POST /topapi/v2/user/getuserinfo.
func (s *Server) handleUserInfoByCode(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp, app := req.params, req.corp, req.app
	e, errcode := s.redeemJSAPICodeLocked(p.str("code"), corp, app)
	if errcode != 0 {
		writeOldError(w, r, errcode, "")
		return
	}
	writeOldOK(w, r, map[string]any{"result": map[string]any{
		"userid":             e.UserID,
		"unionid":            e.UnionID,
		"associated_unionid": "",
		"name":               e.Name,
		"device_id":          deviceID(e),
		"sys":                e.sysLevel() != 0,
		"sys_level":          e.sysLevel(),
	}})
}

// handleLegacyUserInfo is H2: GET /user/getuserinfo?access_token=&code=.
// Not a topapi path, so token errors come without the 88 wrapper.
func (s *Server) handleLegacyUserInfo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	corp, app, state := s.checkAppTokenLocked(q.Get("access_token"))
	switch state {
	case tokenUnknown:
		writeOldError(w, r, 40014, "")
		return
	case tokenExpired:
		writeOldError(w, r, 42001, "")
		return
	}
	e, errcode := s.redeemJSAPICodeLocked(q.Get("code"), corp, app)
	if errcode != 0 {
		writeOldError(w, r, errcode, "")
		return
	}
	writeOldOK(w, r, map[string]any{
		"userid":    e.UserID,
		"name":      e.Name,
		"deviceId":  deviceID(e),
		"is_sys":    e.sysLevel() != 0,
		"sys_level": e.sysLevel(),
	})
}
