package dingtalk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func TestDirectoryRequests(t *testing.T) {
	tests := []struct {
		name string
		path string
		body string
		file string
		call func(*Client) (any, error)
		want any
	}{
		{
			name: "SubDepartments", path: "/topapi/v2/department/listsub",
			body: `{"dept_id":1,"language":"zh_CN"}`, file: "department_listsub.json",
			call: func(c *Client) (any, error) { return c.SubDepartments(t.Context(), 1) },
			want: []Department{
				{DeptID: 581208264, Name: "研发部", ParentID: 1, CreateDeptGroup: true, AutoAddUser: true},
				{DeptID: 432825033, Name: "市场部", ParentID: 1},
			},
		},
		{
			name: "SubDepartmentIDs", path: "/topapi/v2/department/listsubid",
			body: `{"dept_id":1}`, file: "department_listsubid.json",
			call: func(c *Client) (any, error) { return c.SubDepartmentIDs(t.Context(), 1) },
			want: []int64{581208264, 432825033},
		},
		{
			name: "Department", path: "/topapi/v2/department/get",
			body: `{"dept_id":581208264,"language":"zh_CN"}`, file: "department_get.json",
			call: func(c *Client) (any, error) { return c.Department(t.Context(), 581208264) },
			want: &Department{
				DeptID: 581208264, Name: "研发部", ParentID: 1, CreateDeptGroup: true, AutoAddUser: true,
				SourceIdentifier: "src-001", OrgDeptOwner: "manager240",
				DeptManagerUserIDList: []string{"manager240", "184919295227658120"},
			},
		},
		{
			name: "DepartmentUserIDs", path: "/topapi/user/listid",
			body: `{"dept_id":581208264}`, file: "user_listid.json",
			call: func(c *Client) (any, error) { return c.DepartmentUserIDs(t.Context(), 581208264) },
			want: []string{"184919295227658120", "manager240"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle(tt.path, func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, wantRequest{
					method: http.MethodPost, path: tt.path, query: appTokenQuery(), header: oldAPIHeaders, body: tt.body,
				})
				serveFile(t, tt.file, http.StatusOK)(w, r)
			})
			c, _ := newTestClient(t, srv)
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}

func TestDepartmentNotFound(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/department/get", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":60003,"errmsg":"部门不存在"}`)))
	c, _ := newTestClient(t, srv)
	_, err := c.Department(t.Context(), 999999999)
	checkIs(t, err, ErrNotFound)
}

func TestDepartmentUsers(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		wantSize int
	}{
		{"requested size", 50, 50},
		{"capped at 100", 500, 100},
		{"zero means 100", 0, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.handle("/topapi/v2/user/list", func(w http.ResponseWriter, r *http.Request) {
				checkRequest(t, r, wantRequest{
					method: http.MethodPost, path: "/topapi/v2/user/list", query: appTokenQuery(), header: oldAPIHeaders,
					body: fmt.Sprintf(`{"dept_id":581208264,"cursor":20,"size":%d,"order_field":"modify_desc",`+
						`"contain_access_limit":false,"language":"zh_CN"}`, tt.wantSize),
				})
				serveFile(t, "user_list.json", http.StatusOK)(w, r)
			})
			c, _ := newTestClient(t, srv)
			users, next, more, err := c.DepartmentUsers(t.Context(), 581208264, 20, tt.size)
			if err != nil {
				t.Fatalf("DepartmentUsers: %v", err)
			}
			if next != 100 || !more {
				t.Errorf("nextCursor, hasMore = %d, %v, want 100, true", next, more)
			}
			if len(users) != 2 {
				t.Fatalf("got %d users, want 2", len(users))
			}
			u := users[0]
			if u.UserID != "184919295227658120" || u.DeptOrder != 176294576350761512 || !u.Leader ||
				!slices.Equal(u.DeptIDList, []int64{581208264, 432825033}) {
				t.Errorf("users[0] = %+v, want userid 184919295227658120, dept_order 176294576350761512, leader, depts [581208264 432825033]", u)
			}
		})
	}
}

// directory is a fake corp directory for AllUsers.
type directory struct {
	children map[int64][]int64
	members  map[int64][]string // in page order; pages hold pageSize users
	pageSize int
}

func (d directory) serve(t *testing.T, srv *testServer) {
	srv.handle("/topapi/v2/department/listsubid", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DeptID int64 `json:"dept_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("listsubid body: %v", err)
		}
		writeJSON(t, w, map[string]any{"errcode": 0, "result": map[string]any{"dept_id_list": d.children[in.DeptID]}})
	})
	srv.handle("/topapi/v2/user/list", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			DeptID int64 `json:"dept_id"`
			Cursor int64 `json:"cursor"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			t.Errorf("user/list body: %v", err)
		}
		all := d.members[in.DeptID]
		end := min(int(in.Cursor)+d.pageSize, len(all))
		var list []map[string]any
		for _, id := range all[in.Cursor:end] {
			list = append(list, map[string]any{"userid": id, "name": "n-" + id})
		}
		writeJSON(t, w, map[string]any{"errcode": 0, "result": map[string]any{
			"has_more": end < len(all), "next_cursor": end, "list": list,
		}})
	})
}

func writeJSON(t *testing.T, w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Errorf("encode: %v", err)
	}
}

func TestAllUsers(t *testing.T) {
	d := directory{
		children: map[int64][]int64{1: {581208264, 432825033}, 581208264: {700000001}, 700000001: {1}},
		members: map[int64][]string{
			1:         {"boss"},
			581208264: {"a", "b", "c", "184919295227658120"},
			432825033: {"c", "d"},
			700000001: {"184919295227658120", "e"},
		},
		pageSize: 2,
	}
	srv := newTestServer(t)
	d.serve(t, srv)
	c, _ := newTestClient(t, srv)
	var got []string
	err := c.AllUsers(t.Context(), func(u User) error {
		got = append(got, u.UserID)
		return nil
	})
	if err != nil {
		t.Fatalf("AllUsers: %v", err)
	}
	want := []string{"boss", "a", "b", "c", "184919295227658120", "d", "e"}
	if !slices.Equal(got, want) {
		t.Errorf("users = %v, want %v", got, want)
	}
	if n := srv.count("/topapi/v2/department/listsubid"); n != 4 {
		t.Errorf("listsubid calls = %d, want 4 (each department once)", n)
	}
}

func TestAllUsersStopsOnCallbackError(t *testing.T) {
	srv := newTestServer(t)
	directory{children: map[int64][]int64{}, members: map[int64][]string{1: {"a", "b"}}, pageSize: 100}.serve(t, srv)
	c, _ := newTestClient(t, srv)
	stop := errors.New("stop")
	calls := 0
	err := c.AllUsers(t.Context(), func(User) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err, calls = %v, %d, want %v, 1", err, calls, stop)
	}
}

func TestAllUsersCursorMustAdvance(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/list", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":0,"result":{"has_more":true,"next_cursor":0,"list":[]}}`)))
	c, _ := newTestClient(t, srv)
	err := c.AllUsers(t.Context(), func(User) error { return nil })
	checkIs(t, err, ErrBadResponse)
}

func TestAllUsersReportsDirectoryErrors(t *testing.T) {
	srv := newTestServer(t)
	srv.handle("/topapi/v2/user/list", serveBytes("application/json", http.StatusOK,
		[]byte(`{"errcode":50004,"errmsg":"部门不在授权范围"}`)))
	c, _ := newTestClient(t, srv)
	err := c.AllUsers(t.Context(), func(User) error { return nil })
	checkIs(t, err, ErrPermissionDenied)
}
