package dingtalk

import (
	"net/http"
	"reflect"
	"testing"
)

func TestUserIDByUnionID(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/user/getbyunionid", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/user/getbyunionid", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"unionid":"z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ"}`,
		})
		serveFile(t, "getbyunionid.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)
	userID, contactType, err := c.UserIDByUnionID(t.Context(), "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ")
	if err != nil {
		t.Fatalf("UserIDByUnionID: %v", err)
	}
	if userID != "zhangsan" || contactType != ContactTypeEmployee {
		t.Errorf("userID, contactType = %q, %d, want zhangsan, %d", userID, contactType, ContactTypeEmployee)
	}
}

func TestUserIDByUnionIDNotMember(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/user/getbyunionid", serveFile(t, "error_not_member.json", http.StatusOK))
	c, _ := newTestClient(t, srv)
	_, _, err := c.UserIDByUnionID(t.Context(), testUnionID)
	checkIs(t, err, ErrNotMember)
	checkIsNot(t, err, ErrNotFound)
}

func TestUser(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", func(w http.ResponseWriter, r *http.Request) {
		checkRequest(t, r, wantRequest{
			method: http.MethodPost, path: "/topapi/v2/user/get", query: appTokenQuery(),
			header: oldAPIHeaders, body: `{"userid":"184919295227658120","language":"zh_CN"}`,
		})
		serveFile(t, "user_get.json", http.StatusOK)(w, r)
	})
	c, _ := newTestClient(t, srv)
	got, err := c.User(t.Context(), testUserID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	want := &User{
		UserID: "184919295227658120", UnionID: "z21HjQliSzpw0YWxxxxx", Name: "张三",
		Avatar: "https://static.example.com/avatar/zs.png", Mobile: "185xxxx7676", StateCode: "86",
		HideMobile: false, Telephone: "010-86123456", JobNumber: "4", Title: "技术总监",
		Email: "test@example.com", OrgEmail: "zs@corp.example.com", WorkPlace: "杭州", Remark: "备注",
		Extension:     `{"爱好":"旅游","年龄":"24"}`,
		HiredDate:     1597573616828,
		DeptIDList:    []int64{581208264, 432825033},
		DeptOrderList: []DeptOrder{{DeptID: 581208264, Order: 176294576350761512}},
		LeaderInDept:  []DeptLeader{{DeptID: 581208264, Leader: true}, {DeptID: 432825033, Leader: false}},
		ManagerUserID: "manager240",
		Active:        true, Admin: true, Boss: false, Senior: false, RealAuthed: true, ExclusiveAccount: false,
		RoleList: []Role{{ID: 100, Name: "总监", GroupName: "职务"}},
		UnionEmpExt: &UnionEmpExt{
			UserID: "184919295227658120", CorpID: testCorpID,
			UnionEmpMapList: []UnionEmp{{UserID: "5000", CorpID: "dingc7c5220402493357f2c783f7214b6d69"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("User =\n%+v\nwant\n%+v", got, want)
	}
}

func TestUserNumericUserIDIsRejected(t *testing.T) {
	// A userid sent as a JSON number would lose precision in float64; it
	// must fail loudly rather than be mangled.
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/get", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":0,"result":{"userid":184919295227658120}}`)))
	c, _ := newTestClient(t, srv)
	_, err := c.User(t.Context(), testUserID)
	checkIs(t, err, ErrBadResponse)
}

func TestUserErrors(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		target error
	}{
		{"invalid userid", `{"errcode":33012,"errmsg":"无效的userId"}`, ErrNotFound},
		{"resigned", `{"errcode":60121,"errmsg":"找不到该用户"}`, ErrNotMember},
		{"outside scope", `{"errcode":50002,"errmsg":"员工不在授权范围"}`, ErrPermissionDenied},
		{"throttled", `{"errcode":90018,"errmsg":"请求频率过快"}`, ErrThrottled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle("/topapi/v2/user/get", serveBytes("application/json", http.StatusOK, []byte(tt.body)))
			c, _ := newTestClient(t, srv)
			_, err := c.User(t.Context(), testUserID)
			checkIs(t, err, tt.target)
		})
	}
}
