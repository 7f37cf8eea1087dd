package fake

import (
	"net/http"
	"slices"
)

// deptIDParam reads dept_id; fallback is used when it is absent, and a
// fallback of 0 makes it required. It writes 40035 itself on failure.
func deptIDParam(w http.ResponseWriter, r *http.Request, p params, fallback int64) (int64, bool) {
	id, present, err := p.int64("dept_id")
	switch {
	case err != nil, !present && fallback == 0:
		writeOldError(w, r, 40035, "不合法的参数 dept_id")
		return 0, false
	case !present:
		return fallback, true
	}
	return id, true
}

// knownDept returns the corp's department id, writing 60003 when absent.
func knownDept(w http.ResponseWriter, r *http.Request, corp *Corp, id int64) (*Department, bool) {
	d := corp.department(id)
	if d == nil {
		writeOldError(w, r, 60003, "")
		return nil, false
	}
	return d, true
}

// children returns the direct sub-departments of id, in fixture order.
func (c *Corp) children(id int64) []*Department {
	var out []*Department
	for i := range c.Departments {
		if d := &c.Departments[i]; d.ParentID == id && d.ID != id {
			out = append(out, d)
		}
	}
	return out
}

// members returns the current direct members of a department.
func (c *Corp) members(deptID int64) []*Employee {
	var out []*Employee
	for i := range c.Employees {
		if e := &c.Employees[i]; !e.Left && slices.Contains(e.DeptIDs, deptID) {
			out = append(out, e)
		}
	}
	return out
}

// handleDepartmentSub is D1: POST /topapi/v2/department/listsub.
func (s *Server) handleDepartmentSub(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	id, ok := deptIDParam(w, r, p, 1)
	if !ok {
		return
	}
	if _, ok := knownDept(w, r, corp, id); !ok {
		return
	}
	result := []map[string]any{}
	for _, d := range corp.children(id) {
		result = append(result, map[string]any{
			"dept_id":           d.ID,
			"name":              d.Name,
			"parent_id":         d.ParentID,
			"create_dept_group": false,
			"auto_add_user":     false,
		})
	}
	writeOldOK(w, r, map[string]any{"result": result})
}

// handleDepartmentSubIDs is D2: POST /topapi/v2/department/listsubid.
func (s *Server) handleDepartmentSubIDs(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	id, ok := deptIDParam(w, r, p, 1)
	if !ok {
		return
	}
	if _, ok := knownDept(w, r, corp, id); !ok {
		return
	}
	ids := []int64{}
	for _, d := range corp.children(id) {
		ids = append(ids, d.ID)
	}
	writeOldOK(w, r, map[string]any{"result": map[string]any{"dept_id_list": ids}})
}

// handleDepartment is D3: POST /topapi/v2/department/get.
func (s *Server) handleDepartment(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	id, ok := deptIDParam(w, r, p, 0)
	if !ok {
		return
	}
	d, ok := knownDept(w, r, corp, id)
	if !ok {
		return
	}
	managers := []string{}
	for i := range corp.Employees {
		if e := &corp.Employees[i]; !e.Left && slices.Contains(e.LeaderDeptIDs, d.ID) {
			managers = append(managers, e.UserID)
		}
	}
	result := map[string]any{
		"dept_id":                  d.ID,
		"name":                     d.Name,
		"source_identifier":        "",
		"order":                    d.ID,
		"create_dept_group":        false,
		"auto_add_user":            false,
		"group_contain_sub_dept":   false,
		"dept_manager_userid_list": managers,
		"outer_dept":               false,
		"hide_dept":                false,
	}
	if d.ParentID != 0 {
		result["parent_id"] = d.ParentID
	}
	if len(managers) > 0 {
		result["org_dept_owner"] = managers[0]
	}
	writeOldOK(w, r, map[string]any{"result": result})
}

// handleUserIDs is D4: POST /topapi/user/listid.
func (s *Server) handleUserIDs(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	id, ok := deptIDParam(w, r, p, 0)
	if !ok {
		return
	}
	if _, ok := knownDept(w, r, corp, id); !ok {
		return
	}
	ids := []string{}
	for _, e := range corp.members(id) {
		ids = append(ids, e.UserID)
	}
	writeOldOK(w, r, map[string]any{"result": map[string]any{"userid_list": ids}})
}

// listUser is one item of D5 (topapi/v2/user/list).
type listUser struct {
	UserID           string  `json:"userid"`
	UnionID          string  `json:"unionid"`
	Name             string  `json:"name"`
	Avatar           string  `json:"avatar,omitempty"`
	StateCode        string  `json:"state_code,omitempty"`
	Mobile           string  `json:"mobile,omitempty"`
	HideMobile       bool    `json:"hide_mobile"`
	Telephone        string  `json:"telephone,omitempty"`
	JobNumber        string  `json:"job_number"`
	Title            string  `json:"title"`
	Email            string  `json:"email,omitempty"`
	OrgEmail         string  `json:"org_email,omitempty"`
	WorkPlace        string  `json:"work_place,omitempty"`
	Remark           string  `json:"remark,omitempty"`
	DeptIDList       []int64 `json:"dept_id_list"`
	DeptOrder        int64   `json:"dept_order"`
	Extension        string  `json:"extension,omitempty"`
	HiredDate        int64   `json:"hired_date,omitempty"`
	Active           bool    `json:"active"`
	Admin            bool    `json:"admin"`
	Boss             bool    `json:"boss"`
	Leader           bool    `json:"leader"`
	ExclusiveAccount bool    `json:"exclusive_account"`
}

// orderFields are the order_field values D5 accepts.
func validOrderField(v string) bool {
	switch v {
	case "entry_asc", "entry_desc", "modify_asc", "modify_desc", "custom":
		return true
	}
	return false
}

// handleUserList is D5: POST /topapi/v2/user/list, paged by cursor/size.
func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request, req topRequest) {
	p, corp := req.params, req.corp
	id, ok := deptIDParam(w, r, p, 0)
	if !ok {
		return
	}
	cursor, hasCursor, errCursor := p.int64("cursor")
	size, hasSize, errSize := p.int64("size")
	switch {
	case !hasCursor || errCursor != nil || cursor < 0:
		writeOldError(w, r, 40035, "不合法的参数 cursor")
		return
	case !hasSize || errSize != nil:
		writeOldError(w, r, 40035, "不合法的参数 size")
		return
	case size < 1 || size > 100:
		writeOldError(w, r, 40069, "")
		return
	case p.has("order_field") && !validOrderField(p.str("order_field")):
		writeOldError(w, r, 40035, "不合法的参数 order_field")
		return
	}
	if _, ok := knownDept(w, r, corp, id); !ok {
		return
	}

	members := corp.members(id)
	list := []listUser{}
	end := min(int64(len(members)), cursor+size)
	for i := cursor; i < end; i++ {
		d := detail(members[i])
		list = append(list, listUser{
			UserID: d.UserID, UnionID: d.UnionID, Name: d.Name, Avatar: d.Avatar, StateCode: d.StateCode,
			Mobile: d.Mobile, Telephone: d.Telephone, JobNumber: d.JobNumber, Title: d.Title,
			Email: d.Email, OrgEmail: d.OrgEmail, WorkPlace: d.WorkPlace, Remark: d.Remark,
			DeptIDList: d.DeptIDList, DeptOrder: 176294576350761512 - i, Extension: d.Extension,
			HiredDate: d.HiredDate, Active: d.Active, Admin: d.Admin, Boss: d.Boss,
			Leader: slices.Contains(members[i].LeaderDeptIDs, id),
		})
	}
	result := map[string]any{"has_more": end < int64(len(members)), "list": list}
	if end < int64(len(members)) {
		result["next_cursor"] = end
	}
	writeOldOK(w, r, map[string]any{"result": result})
}
