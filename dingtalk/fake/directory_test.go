package fake

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDepartments(t *testing.T) {
	e := newEnv(t, Options{})
	q := "?access_token=" + e.appToken(DemoAppKey, DemoAppSecret)

	t.Run("listsub", func(t *testing.T) {
		m := checkOldOK(t, e.postJSON("/topapi/v2/department/listsub"+q, map[string]any{"dept_id": 1, "language": "zh_CN"}))
		list := m["result"].([]any)
		if len(list) != 3 {
			t.Fatalf("got %d departments, want 3: %v", len(list), list)
		}
		first := list[0].(map[string]any)
		checkShape(t, first, map[string]string{
			"dept_id": "number", "name": "string", "parent_id": "number", "create_dept_group": "bool", "auto_add_user": "bool",
		})
		if first["dept_id"] != json.Number("581208264") || first["name"] != "研发部" || first["parent_id"] != json.Number("1") {
			t.Errorf("first = %v, want 研发部 581208264 under 1", first)
		}
		// dept_id defaults to the root.
		if got := checkOldOK(t, e.postJSON("/topapi/v2/department/listsub"+q, map[string]any{}))["result"].([]any); len(got) != 3 {
			t.Errorf("without dept_id: %d departments, want 3", len(got))
		}
		leaf := checkOldOK(t, e.postJSON("/topapi/v2/department/listsub"+q, map[string]any{"dept_id": 432825033}))
		if got := leaf["result"].([]any); len(got) != 0 {
			t.Errorf("leaf has children %v", got)
		}
	})
	t.Run("listsubid", func(t *testing.T) {
		m := checkOldOK(t, e.postJSON("/topapi/v2/department/listsubid"+q, map[string]any{"dept_id": "581208264"}))
		result := m["result"].(map[string]any)
		checkShape(t, result, map[string]string{"dept_id_list": "array"})
		if got := result["dept_id_list"]; !reflect.DeepEqual(got, []any{json.Number("432825033")}) {
			t.Errorf("dept_id_list = %v, want [432825033]", got)
		}
	})
	t.Run("get", func(t *testing.T) {
		m := checkOldOK(t, e.postJSON("/topapi/v2/department/get"+q, map[string]any{"dept_id": 581208264, "language": "zh_CN"}))
		result := m["result"].(map[string]any)
		checkShape(t, result, map[string]string{
			"dept_id": "number", "name": "string", "parent_id": "number", "source_identifier": "string", "order": "number",
			"create_dept_group": "bool", "auto_add_user": "bool", "group_contain_sub_dept": "bool",
			"org_dept_owner": "string", "dept_manager_userid_list": "array", "outer_dept": "bool", "hide_dept": "bool",
		})
		if result["org_dept_owner"] != "zhangsan" {
			t.Errorf("org_dept_owner = %v, want zhangsan", result["org_dept_owner"])
		}
		root := checkOldOK(t, e.postJSON("/topapi/v2/department/get"+q, map[string]any{"dept_id": 1}))["result"].(map[string]any)
		if _, ok := root["parent_id"]; ok || root["name"] != "示例科技有限公司" {
			t.Errorf("root = %v, want the corp name and no parent_id", root)
		}
	})

	errs := []struct {
		name    string
		path    string
		body    map[string]any
		errcode int
	}{
		{"listsub unknown dept", "/topapi/v2/department/listsub", map[string]any{"dept_id": 760412385}, 60003},
		{"listsubid unknown dept", "/topapi/v2/department/listsubid", map[string]any{"dept_id": 42}, 60003},
		{"get unknown dept", "/topapi/v2/department/get", map[string]any{"dept_id": 42}, 60003},
		{"get without dept_id", "/topapi/v2/department/get", map[string]any{}, 40035},
		{"get bad dept_id", "/topapi/v2/department/get", map[string]any{"dept_id": "abc"}, 40035},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { checkOldError(t, e.postJSON(tt.path+q, tt.body), tt.errcode) })
	}
}

func TestUserIDs(t *testing.T) {
	e := newEnv(t, Options{})
	q := "?access_token=" + e.appToken(DemoAppKey, DemoAppSecret)
	tests := []struct {
		dept int64
		want []any
	}{
		{581208264, []any{"zhangsan", "wangwu"}},            // direct members; wangwu is in two departments
		{432825033, []any{"184919295227658120", "zhoujiu"}}, // numeric-looking userids stay strings
		{581208266, []any{}},                                // zhaoliu left
		{1, []any{"manager4927"}},
	}
	for _, tt := range tests {
		m := checkOldOK(t, e.postJSON("/topapi/user/listid"+q, map[string]any{"dept_id": tt.dept}))
		result := m["result"].(map[string]any)
		checkShape(t, result, map[string]string{"userid_list": "array"})
		if got := result["userid_list"]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("dept %d: userid_list = %v, want %v", tt.dept, got, tt.want)
		}
	}
	checkOldError(t, e.postJSON("/topapi/user/listid"+q, map[string]any{"dept_id": 7}), 60003)
}

func TestUserList(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/topapi/v2/user/list?access_token=" + e.appToken(DemoAppKey, DemoAppSecret)
	page := func(cursor int64) map[string]any {
		m := checkOldOK(t, e.postJSON(path, map[string]any{
			"dept_id": 581208264, "cursor": cursor, "size": 1, "order_field": "modify_desc", "contain_access_limit": false, "language": "zh_CN",
		}))
		return m["result"].(map[string]any)
	}

	first := page(0)
	checkShape(t, first, map[string]string{"has_more": "bool", "next_cursor": "number", "list": "array"})
	if first["has_more"] != true || first["next_cursor"] != json.Number("1") {
		t.Errorf("first page = %v, want has_more and next_cursor 1", first)
	}
	user := first["list"].([]any)[0].(map[string]any)
	checkShape(t, user, map[string]string{
		"userid": "string", "unionid": "string", "name": "string", "avatar": "string", "state_code": "string",
		"mobile": "string", "hide_mobile": "bool", "telephone": "string", "job_number": "string", "title": "string",
		"email": "string", "org_email": "string", "work_place": "string", "remark": "string", "dept_id_list": "array",
		"dept_order": "number", "extension": "string", "hired_date": "number", "active": "bool", "admin": "bool",
		"boss": "bool", "leader": "bool", "exclusive_account": "bool",
	})
	if user["userid"] != "zhangsan" || user["leader"] != true {
		t.Errorf("first user = %v, want zhangsan, leader", user)
	}

	second := page(1)
	checkShape(t, second, map[string]string{"has_more": "bool", "list": "array"})
	if second["has_more"] != false || second["list"].([]any)[0].(map[string]any)["userid"] != "wangwu" {
		t.Errorf("second page = %v, want wangwu and no more", second)
	}

	errs := []struct {
		name    string
		body    map[string]any
		errcode int
	}{
		{"size 101", map[string]any{"dept_id": 1, "cursor": 0, "size": 101}, 40069},
		{"size 0", map[string]any{"dept_id": 1, "cursor": 0, "size": 0}, 40069},
		{"no size", map[string]any{"dept_id": 1, "cursor": 0}, 40035},
		{"no cursor", map[string]any{"dept_id": 1, "size": 10}, 40035},
		{"negative cursor", map[string]any{"dept_id": 1, "cursor": -1, "size": 10}, 40035},
		{"bad order_field", map[string]any{"dept_id": 1, "cursor": 0, "size": 10, "order_field": "name"}, 40035},
		{"unknown dept", map[string]any{"dept_id": 99, "cursor": 0, "size": 10}, 60003},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { checkOldError(t, e.postJSON(path, tt.body), tt.errcode) })
	}
}
