package dingtalk

import (
	"context"
	"errors"
	"net/http"
)

// Contact types returned by UserIDByUnionID.
const (
	ContactTypeEmployee = 0 // internal employee
	ContactTypeExternal = 1 // external contact
)

// User is an employee's directory record (§4.2; D5 list items use the same
// shape). UserID is a string even when it looks numeric; department ids are
// int64. Mobile and email are empty unless the app holds those permissions.
type User struct {
	UserID     string `json:"userid"`
	UnionID    string `json:"unionid"`
	Name       string `json:"name"`
	Avatar     string `json:"avatar"`
	Mobile     string `json:"mobile"`
	StateCode  string `json:"state_code"`
	HideMobile bool   `json:"hide_mobile"`
	Telephone  string `json:"telephone"`
	JobNumber  string `json:"job_number"`
	Title      string `json:"title"`
	Email      string `json:"email"`
	OrgEmail   string `json:"org_email"`
	WorkPlace  string `json:"work_place"`
	Remark     string `json:"remark"`
	// Extension is a JSON object encoded as a string, as DingTalk sends it.
	Extension string `json:"extension"`
	// HiredDate is in Unix milliseconds; 0 when not set.
	HiredDate int64 `json:"hired_date"`
	// DeptIDList is not ordered by importance: the first entry is not
	// documented to be the main department.
	DeptIDList    []int64      `json:"dept_id_list"`
	DeptOrderList []DeptOrder  `json:"dept_order_list"`
	LeaderInDept  []DeptLeader `json:"leader_in_dept"`
	ManagerUserID string       `json:"manager_userid"`
	// Active is true once the user has activated DingTalk.
	Active           bool         `json:"active"`
	Admin            bool         `json:"admin"`
	Boss             bool         `json:"boss"`
	Senior           bool         `json:"senior"`
	RealAuthed       bool         `json:"real_authed"`
	ExclusiveAccount bool         `json:"exclusive_account"`
	RoleList         []Role       `json:"role_list"`
	UnionEmpExt      *UnionEmpExt `json:"union_emp_ext"`

	// DeptOrder and Leader are set by DepartmentUsers only: the user's order
	// in, and leadership of, the department listed.
	DeptOrder int64 `json:"dept_order"`
	Leader    bool  `json:"leader"`
}

// DeptOrder is a user's sort order within one department.
type DeptOrder struct {
	DeptID int64 `json:"dept_id"`
	Order  int64 `json:"order"`
}

// DeptLeader says whether a user leads one department.
type DeptLeader struct {
	DeptID int64 `json:"dept_id"`
	Leader bool  `json:"leader"`
}

// Role is a role (角色) assigned to a user.
type Role struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	GroupName string `json:"group_name"`
}

// UnionEmpExt links a user to their accounts in associated (关联组织) corps.
type UnionEmpExt struct {
	UserID          string     `json:"userid"`
	CorpID          string     `json:"corp_id"`
	UnionEmpMapList []UnionEmp `json:"union_emp_map_list"`
}

// UnionEmp is a user's account in one associated corp.
type UnionEmp struct {
	UserID string `json:"userid"`
	CorpID string `json:"corp_id"`
}

// UserIDByUnionID returns the userid of unionID in this corp and its contact
// type (ContactTypeEmployee or ContactTypeExternal). A unionId that is not in
// the corp fails with ErrNotMember: treat it as "not an employee".
func (c *Client) UserIDByUnionID(ctx context.Context, unionID string) (userID string, contactType int, err error) {
	if unionID == "" {
		return "", 0, errors.New("dingtalk: empty unionid")
	}
	in := struct {
		UnionID string `json:"unionid"`
	}{unionID}
	r := c.oapi(http.MethodPost, "/topapi/user/getbyunionid", in).withThrottleRetry()
	var out struct {
		Result struct {
			ContactType int    `json:"contact_type"`
			UserID      string `json:"userid"`
		} `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return "", 0, err
	}
	if out.Result.UserID == "" {
		return "", 0, missingField(r, "result.userid")
	}
	return out.Result.UserID, out.Result.ContactType, nil
}

// User returns the directory record of userID, in Chinese (zh_CN).
func (c *Client) User(ctx context.Context, userID string) (*User, error) {
	if userID == "" {
		return nil, errors.New("dingtalk: empty userid")
	}
	in := struct {
		UserID   string `json:"userid"`
		Language string `json:"language"`
	}{userID, "zh_CN"}
	r := c.oapi(http.MethodPost, "/topapi/v2/user/get", in).withThrottleRetry()
	var out struct {
		Result *User `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.Result == nil || out.Result.UserID == "" {
		return nil, missingField(r, "result.userid")
	}
	return out.Result, nil
}
