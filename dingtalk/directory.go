package dingtalk

import (
	"context"
	"fmt"
	"net/http"
)

// RootDeptID is the id of a corp's root department.
const RootDeptID int64 = 1

// maxPageSize is the largest page DepartmentUsers asks for (40069 above).
const maxPageSize = 100

// Department is a department record. SubDepartments fills the first five
// fields; Department fills all.
type Department struct {
	DeptID          int64  `json:"dept_id"`
	Name            string `json:"name"`
	ParentID        int64  `json:"parent_id"`
	CreateDeptGroup bool   `json:"create_dept_group"`
	AutoAddUser     bool   `json:"auto_add_user"`

	SourceIdentifier      string   `json:"source_identifier"`
	OrgDeptOwner          string   `json:"org_dept_owner"`
	DeptManagerUserIDList []string `json:"dept_manager_userid_list"`
	OuterDept             bool     `json:"outer_dept"`
	HideDept              bool     `json:"hide_dept"`
}

type deptRequest struct {
	DeptID   int64  `json:"dept_id"`
	Language string `json:"language,omitempty"`
}

// SubDepartmentIDs returns the ids of deptID's direct children (D2).
func (c *Client) SubDepartmentIDs(ctx context.Context, deptID int64) ([]int64, error) {
	r := c.oapi(http.MethodPost, "/topapi/v2/department/listsubid", deptRequest{DeptID: deptID}).withThrottleRetry()
	var out struct {
		Result struct {
			DeptIDList []int64 `json:"dept_id_list"`
		} `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Result.DeptIDList, nil
}

// SubDepartments returns deptID's direct children, one level only (D1).
func (c *Client) SubDepartments(ctx context.Context, deptID int64) ([]Department, error) {
	// dept_id is documented as optional with an unconfirmed default, so it
	// is always sent.
	r := c.oapi(http.MethodPost, "/topapi/v2/department/listsub", deptRequest{DeptID: deptID, Language: "zh_CN"}).withThrottleRetry()
	var out struct {
		Result []Department `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Result, nil
}

// Department returns one department's details (D3); an unknown id fails
// with ErrNotFound.
func (c *Client) Department(ctx context.Context, deptID int64) (*Department, error) {
	r := c.oapi(http.MethodPost, "/topapi/v2/department/get", deptRequest{DeptID: deptID, Language: "zh_CN"}).withThrottleRetry()
	var out struct {
		Result *Department `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		return nil, missingField(r, "result")
	}
	return out.Result, nil
}

// DepartmentUserIDs returns the userids of deptID's direct members (D4).
func (c *Client) DepartmentUserIDs(ctx context.Context, deptID int64) ([]string, error) {
	r := c.oapi(http.MethodPost, "/topapi/user/listid", deptRequest{DeptID: deptID}).withThrottleRetry()
	var out struct {
		Result struct {
			UserIDList []string `json:"userid_list"`
		} `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, err
	}
	return out.Result.UserIDList, nil
}

// DepartmentUsers returns one page of deptID's direct members with details
// (D5), most recently modified first. Start with cursor 0 and pass back
// nextCursor while hasMore is true. size is capped at 100; size <= 0 means
// 100.
func (c *Client) DepartmentUsers(ctx context.Context, deptID int64, cursor int64, size int) (users []User, nextCursor int64, hasMore bool, err error) {
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	in := struct {
		DeptID             int64  `json:"dept_id"`
		Cursor             int64  `json:"cursor"`
		Size               int    `json:"size"`
		OrderField         string `json:"order_field"`
		ContainAccessLimit bool   `json:"contain_access_limit"`
		Language           string `json:"language"`
	}{deptID, cursor, size, "modify_desc", false, "zh_CN"}
	r := c.oapi(http.MethodPost, "/topapi/v2/user/list", in).withThrottleRetry()
	var out struct {
		Result struct {
			HasMore    bool   `json:"has_more"`
			NextCursor int64  `json:"next_cursor"`
			List       []User `json:"list"`
		} `json:"result"`
	}
	if err := c.doWithAppToken(ctx, r, &out); err != nil {
		return nil, 0, false, err
	}
	return out.Result.List, out.Result.NextCursor, out.Result.HasMore, nil
}

// AllUsers calls fn once for every user visible to the app: a breadth-first
// walk from the root department (D2), listing each department's members
// page by page (D5). Users in several departments are reported once. An
// error from fn stops the walk and is returned unchanged.
func (c *Client) AllUsers(ctx context.Context, fn func(User) error) error {
	seenUsers := make(map[string]bool)
	seenDepts := map[int64]bool{RootDeptID: true}
	queue := []int64{RootDeptID}
	for len(queue) > 0 {
		dept := queue[0]
		queue = queue[1:]
		if err := c.eachDepartmentUser(ctx, dept, seenUsers, fn); err != nil {
			return err
		}
		children, err := c.SubDepartmentIDs(ctx, dept)
		if err != nil {
			return fmt.Errorf("dingtalk: list departments under %d: %w", dept, err)
		}
		for _, child := range children {
			// Guards against a malformed tree looping for ever.
			if !seenDepts[child] {
				seenDepts[child] = true
				queue = append(queue, child)
			}
		}
	}
	return nil
}

func (c *Client) eachDepartmentUser(ctx context.Context, dept int64, seen map[string]bool, fn func(User) error) error {
	var cursor int64
	for {
		users, next, more, err := c.DepartmentUsers(ctx, dept, cursor, maxPageSize)
		if err != nil {
			return fmt.Errorf("dingtalk: list users of department %d: %w", dept, err)
		}
		for _, u := range users {
			if seen[u.UserID] {
				continue
			}
			seen[u.UserID] = true
			if err := fn(u); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		if next <= cursor {
			// A cursor that does not advance would repeat the page for ever.
			return &BadResponseError{Endpoint: "/topapi/v2/user/list", HTTPStatus: http.StatusOK, Reason: "next_cursor did not advance"}
		}
		cursor = next
	}
}
