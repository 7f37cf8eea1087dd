package fake

import (
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Fixture is the simulated DingTalk world: organisations with their apps,
// departments and employees. Tests and the demo may build their own; New
// copies it, so later changes to the value do not affect a running Server.
type Fixture struct {
	Corps []Corp
}

// Corp is one DingTalk organisation (企业, 组织).
type Corp struct {
	ID          string // corpId, "ding…"
	Name        string
	Apps        []App
	Departments []Department // include the root department, ID 1
	Employees   []Employee
}

// App is an internal app (企业内部应用) of a corp.
type App struct {
	Name      string // shown on the simulated login page
	AppKey    string // = Client ID
	AppSecret string // = Client Secret
	AgentID   string

	// SNSAppID and SNSAppSecret describe an optional legacy scan-login
	// app (扫码登录应用) used by /connect/... and /sns/getuserinfo_bycode.
	SNSAppID     string
	SNSAppSecret string

	// CallbackToken and CallbackAESKey (43 characters) encrypt HTTP event
	// pushes; the owner key is AppKey, as for console-configured subscriptions.
	CallbackToken  string
	CallbackAESKey string

	// RedirectHosts lists the host names (port ignored) allowed in
	// redirect_uri; empty allows any host.
	RedirectHosts []string

	// DeniedScopes are permissions the app has not been granted: without
	// "Contact.User.Read" users/me answers 403 AccessTokenPermissionDenied
	// naming it in requiredScopes; without "qyapi_get_member" getbyunionid
	// and v2/user/get answer errcode 60011, which names none.
	DeniedScopes []string
}

// denied reports whether the app lacks the permission scope.
func (a *App) denied(scope string) bool {
	return a != nil && slices.Contains(a.DeniedScopes, scope)
}

// LogValue keeps the app's secrets out of logs.
func (a App) LogValue() slog.Value {
	return slog.GroupValue(slog.String("app_key", a.AppKey), slog.String("name", a.Name))
}

// Department is one node of a corp's department tree; the root has ID 1
// and ParentID 0.
type Department struct {
	ID       int64
	ParentID int64
	Name     string
}

// Employee is a DingTalk account that is (or was) a member of a corp.
type Employee struct {
	UserID    string // userid inside the corp; may look numeric, always a string
	UnionID   string
	OpenID    string
	Name      string // name in the corp directory
	Nick      string // personal DingTalk nickname; Name when empty
	Mobile    string
	StateCode string // phone country code, "86"
	Telephone string
	Email     string // personal email
	OrgEmail  string // corp mailbox
	JobNumber string
	Title     string
	WorkPlace string
	Remark    string
	Avatar    string
	// ManagerUserID is the direct manager's userid, if any.
	ManagerUserID string
	HiredDate     time.Time
	DeptIDs       []int64
	// LeaderDeptIDs lists the departments this employee leads.
	LeaderDeptIDs []int64
	Admin         bool // primary administrator
	Boss          bool
	Active        bool // has activated DingTalk
	// Left means the person left the corp: the DingTalk account still
	// exists (it can sign in and read its own profile), but the corp's
	// directory no longer knows the userid (60121).
	Left bool
}

// nick is the personal nickname DingTalk shows outside the corp.
func (e *Employee) nick() string {
	if e.Nick != "" {
		return e.Nick
	}
	return e.Name
}

// sysLevel is the admin level reported by the free-login APIs:
// 1 primary admin, 100 boss, 0 other.
func (e *Employee) sysLevel() int {
	switch {
	case e.Admin:
		return 1
	case e.Boss:
		return 100
	default:
		return 0
	}
}

// clone returns a deep copy, so SetLeft never writes to the caller's value.
func (f Fixture) clone() Fixture {
	out := Fixture{Corps: make([]Corp, len(f.Corps))}
	for i, c := range f.Corps {
		c.Apps = slices.Clone(c.Apps)
		for j := range c.Apps {
			c.Apps[j].RedirectHosts = slices.Clone(c.Apps[j].RedirectHosts)
		}
		c.Departments = slices.Clone(c.Departments)
		c.Employees = slices.Clone(c.Employees)
		for j := range c.Employees {
			c.Employees[j].DeptIDs = slices.Clone(c.Employees[j].DeptIDs)
			c.Employees[j].LeaderDeptIDs = slices.Clone(c.Employees[j].LeaderDeptIDs)
		}
		out.Corps[i] = c
	}
	return out
}

func (f *Fixture) corp(id string) *Corp {
	for i := range f.Corps {
		if f.Corps[i].ID == id {
			return &f.Corps[i]
		}
	}
	return nil
}

// app finds an internal app by its app key (Client ID).
func (f *Fixture) app(appKey string) (*Corp, *App) {
	if appKey == "" {
		return nil, nil
	}
	for i := range f.Corps {
		c := &f.Corps[i]
		for j := range c.Apps {
			if c.Apps[j].AppKey == appKey {
				return c, &c.Apps[j]
			}
		}
	}
	return nil, nil
}

// snsApp finds a legacy scan-login app by its appid.
func (f *Fixture) snsApp(appID string) (*Corp, *App) {
	if appID == "" {
		return nil, nil
	}
	for i := range f.Corps {
		c := &f.Corps[i]
		for j := range c.Apps {
			if c.Apps[j].SNSAppID == appID {
				return c, &c.Apps[j]
			}
		}
	}
	return nil, nil
}

// account finds a DingTalk account by unionId in any corp, former members
// included: the account outlives the membership.
func (f *Fixture) account(unionID string) (*Corp, *Employee) {
	if unionID == "" {
		return nil, nil
	}
	for i := range f.Corps {
		c := &f.Corps[i]
		for j := range c.Employees {
			if c.Employees[j].UnionID == unionID {
				return c, &c.Employees[j]
			}
		}
	}
	return nil, nil
}

// employee finds a userid in the corp, former members included.
func (c *Corp) employee(userID string) *Employee {
	if userID == "" {
		return nil
	}
	for i := range c.Employees {
		if c.Employees[i].UserID == userID {
			return &c.Employees[i]
		}
	}
	return nil
}

// member finds a current member by userid.
func (c *Corp) member(userID string) *Employee {
	e := c.employee(userID)
	if e == nil || e.Left {
		return nil
	}
	return e
}

// memberByUnionID finds a current member by unionId.
func (c *Corp) memberByUnionID(unionID string) *Employee {
	for i := range c.Employees {
		e := &c.Employees[i]
		if unionID != "" && e.UnionID == unionID && !e.Left {
			return e
		}
	}
	return nil
}

func (c *Corp) department(id int64) *Department {
	for i := range c.Departments {
		if c.Departments[i].ID == id {
			return &c.Departments[i]
		}
	}
	return nil
}

// allowsRedirect reports whether redirect_uri may be used with the app:
// an absolute http(s) URL whose host (port ignored) is registered.
func (a *App) allowsRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if len(a.RedirectHosts) == 0 {
		return true
	}
	return slices.ContainsFunc(a.RedirectHosts, func(h string) bool {
		return strings.EqualFold(h, u.Hostname())
	})
}

// Identifiers of DefaultFixture, for tests and the demo.
const (
	DemoCorpID       = "ding5f0c1a2b3c4d5e6f"
	DemoAppKey       = "dingdemoapp1"
	DemoAppSecret    = "demo-secret-1"
	DemoSNSAppID     = "dingoademosns1"
	DemoSNSAppSecret = "demo-sns-secret-1"

	DemoCorp2ID    = "dingc7c5220402493357"
	DemoApp2Key    = "dingdemoapp2"
	DemoApp2Secret = "demo-secret-2"
)

// DefaultFixture returns two organisations (DemoCorpID 示例科技有限公司 and
// DemoCorp2ID 星河制造集团), each with one internal app, a department tree
// and five or six employees: among them an admin (zhangsan, liuyang), a boss
// (manager4927), a numeric-looking userid (184919295227658120), one who left
// (zhaoliu) and one who never activated DingTalk (zhoujiu). Every call
// returns a fresh copy.
func DefaultFixture() Fixture {
	cst := time.FixedZone("CST", 8*3600)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 0, 0, 0, cst) }
	return Fixture{Corps: []Corp{
		{
			ID:   DemoCorpID,
			Name: "示例科技有限公司",
			Apps: []App{{
				Name:           "示例统一登录",
				AppKey:         DemoAppKey,
				AppSecret:      DemoAppSecret,
				AgentID:        "3012345601",
				SNSAppID:       DemoSNSAppID,
				SNSAppSecret:   DemoSNSAppSecret,
				CallbackToken:  "demotoken1",
				CallbackAESKey: "dingbridgeDemoCallbackAesKeyForCorpNumber01",
			}},
			Departments: []Department{
				{ID: 1, Name: "示例科技有限公司"},
				{ID: 581208264, ParentID: 1, Name: "研发部"},
				{ID: 432825033, ParentID: 581208264, Name: "后端组"},
				{ID: 581208265, ParentID: 1, Name: "产品部"},
				{ID: 581208266, ParentID: 1, Name: "行政部"},
			},
			Employees: []Employee{
				{
					UserID: "zhangsan", UnionID: "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ", OpenID: "Qn9xv0aJ2pTfgWqTm8hGz2QiEiE",
					Name: "张三", Nick: "张三", Mobile: "13800000001", StateCode: "86", Telephone: "010-8888-0001",
					Email: "zhangsan@example.com", OrgEmail: "zhangsan@corp1.example.com", JobNumber: "0001",
					Title: "技术总监", WorkPlace: "杭州", Remark: "系统管理员", Avatar: "https://static.example.com/avatar/zhangsan.png",
					ManagerUserID: "manager4927", HiredDate: day(2018, time.March, 1), DeptIDs: []int64{581208264}, LeaderDeptIDs: []int64{581208264},
					Admin: true, Active: true,
				},
				{
					UserID: "184919295227658120", UnionID: "iPlY4kfMEnV8RkbOLeeiSI2wiEiE", OpenID: "4m8HdcSZii6Cyfk2pZkWpOAiEiE",
					Name: "李四", Nick: "小李", Mobile: "13800000002", StateCode: "86",
					Email: "lisi@example.com", OrgEmail: "lisi@corp1.example.com", JobNumber: "0002",
					Title: "后端工程师", WorkPlace: "杭州", Avatar: "https://static.example.com/avatar/lisi.png",
					ManagerUserID: "zhangsan", HiredDate: day(2020, time.July, 15), DeptIDs: []int64{432825033},
					Active: true,
				},
				{
					UserID: "wangwu", UnionID: "Wv3cB6ZrY0tGmPOnUk5sQ1AiEiE", OpenID: "jQ0iFq6YxP7NnKlA2mW9uQAiEiE",
					Name: "王五", Mobile: "13800000003", StateCode: "86",
					Email: "wangwu@example.com", OrgEmail: "wangwu@corp1.example.com", JobNumber: "0003",
					Title: "产品经理", WorkPlace: "上海", Avatar: "https://static.example.com/avatar/wangwu.png",
					HiredDate: day(2021, time.January, 4), DeptIDs: []int64{581208265, 581208264}, LeaderDeptIDs: []int64{581208265},
					Active: true,
				},
				{
					UserID: "manager4927", UnionID: "ceoChenJing0YWCNxmii6u2OsiEiE", OpenID: "bT5sKx1LqZ3vR8yN6pW0eAAiEiE",
					Name: "陈静", Nick: "静姐", Mobile: "13800000004", StateCode: "86",
					Email: "chenjing@example.com", OrgEmail: "ceo@corp1.example.com", JobNumber: "0000",
					Title: "首席执行官", WorkPlace: "杭州", Avatar: "https://static.example.com/avatar/chenjing.png",
					HiredDate: day(2015, time.May, 20), DeptIDs: []int64{1}, LeaderDeptIDs: []int64{1},
					Boss: true, Active: true,
				},
				{
					UserID: "zhaoliu", UnionID: "LeftZhaoLiu9xKq2wPz7Rb1vEiE", OpenID: "Hh2Jk4Ll6Zz8Xx0Cc2Vv4BbAiEiE",
					Name: "赵六", Mobile: "13800000005", StateCode: "86",
					Email: "zhaoliu@example.com", OrgEmail: "zhaoliu@corp1.example.com", JobNumber: "0005",
					Title: "行政专员", WorkPlace: "杭州",
					HiredDate: day(2019, time.September, 9), DeptIDs: []int64{581208266},
					Active: true, Left: true,
				},
				{
					UserID: "zhoujiu", UnionID: "NewZhouJiu3mTn5bVc7xZa9sDiEiE", OpenID: "Pp1Oo2Ii3Uu4Yy5Tt6Rr7EeAiEiE",
					Name: "周九", Mobile: "13800000006", StateCode: "86",
					OrgEmail: "zhoujiu@corp1.example.com", JobNumber: "0006",
					Title: "实习生", HiredDate: day(2024, time.June, 1), DeptIDs: []int64{432825033},
					ManagerUserID: "zhangsan",
				},
			},
		},
		{
			ID:   DemoCorp2ID,
			Name: "星河制造集团",
			Apps: []App{{
				Name:           "星河门户",
				AppKey:         DemoApp2Key,
				AppSecret:      DemoApp2Secret,
				AgentID:        "3098765402",
				CallbackToken:  "demotoken2",
				CallbackAESKey: "dingbridgeDemoCallbackAesKeyForSecondCorp02",
			}},
			Departments: []Department{
				{ID: 1, Name: "星河制造集团"},
				{ID: 760412385, ParentID: 1, Name: "生产部"},
				{ID: 760412386, ParentID: 1, Name: "质量部"},
			},
			Employees: []Employee{
				{
					UserID: "liuyang", UnionID: "XhLiuYang5pQw8eRt2yUi4oPaiEiE", OpenID: "Aa9Ss8Dd7Ff6Gg5Hh4Jj3KkAiEiE",
					Name: "刘洋", Mobile: "13900000001", StateCode: "86",
					Email: "liuyang@example.net", OrgEmail: "liuyang@corp2.example.com", JobNumber: "X001",
					Title: "IT 经理", WorkPlace: "苏州", Avatar: "https://static.example.com/avatar/liuyang.png",
					HiredDate: day(2017, time.April, 10), DeptIDs: []int64{1}, Admin: true, Active: true,
				},
				{
					UserID: "chenchen", UnionID: "XhChenChen7zXc9vBn1mQw3eRiEiE", OpenID: "Zz1Xx2Cc3Vv4Bb5Nn6Mm7QqAiEiE",
					Name: "陈晨", Nick: "晨晨", Mobile: "13900000002", StateCode: "86",
					Email: "chenchen@example.net", OrgEmail: "chenchen@corp2.example.com", JobNumber: "X002",
					Title: "质检员", WorkPlace: "苏州",
					HiredDate: day(2022, time.February, 14), DeptIDs: []int64{760412386}, Active: true,
				},
				{
					UserID: "manager164", UnionID: "XhHuangLei2aSd4fGh6jKl8zXiEiE", OpenID: "Ww1Ee2Rr3Tt4Yy5Uu6Ii7OoAiEiE",
					Name: "黄磊", Mobile: "13900000003", StateCode: "86",
					Email: "huanglei@example.net", OrgEmail: "huanglei@corp2.example.com", JobNumber: "X003",
					Title: "生产主管", WorkPlace: "苏州",
					HiredDate: day(2016, time.August, 8), DeptIDs: []int64{760412385}, LeaderDeptIDs: []int64{760412385},
					Active: true,
				},
				{
					UserID: "sunli", UnionID: "XhSunLi4rTy6uIo8pAs0dFg2hiEiE", OpenID: "Ee1Rr2Tt3Yy4Uu5Ii6Oo7PpAiEiE",
					Name: "孙丽", Mobile: "13900000004", StateCode: "86",
					Email: "sunli@example.net", OrgEmail: "sunli@corp2.example.com", JobNumber: "X004",
					Title: "质量经理", WorkPlace: "无锡", ManagerUserID: "liuyang",
					HiredDate: day(2019, time.November, 11), DeptIDs: []int64{760412386}, LeaderDeptIDs: []int64{760412386},
					Active: true,
				},
				{
					UserID: "wuqiang", UnionID: "XhWuQiang1qAz2wSx3eDc4rFviEiE", OpenID: "Rr9Tt8Yy7Uu6Ii5Oo4Pp3AaAiEiE",
					Name: "吴强", Mobile: "13900000005", StateCode: "86",
					OrgEmail: "wuqiang@corp2.example.com", JobNumber: "X005",
					Title: "操作工", WorkPlace: "苏州", ManagerUserID: "manager164",
					HiredDate: day(2023, time.March, 6), DeptIDs: []int64{760412385}, Active: true,
				},
			},
		},
	}}
}

// AddPopulation adds n generated employees to the corp corpID, for load
// tests that need many different people, and returns their userids in
// order. Each is active, a member of the corp's root department, and has
// a userid, unionId, openId, mobile, org email and job number of its own
// (pop00001, 13900000001, pop00001@<corp>.example.com, P00001, …). The
// people already in f are left as they are. An unknown corp gets nobody.
func (f *Fixture) AddPopulation(corpID string, n int) []string {
	c := f.corp(corpID)
	if c == nil {
		return nil
	}
	root := int64(1)
	for _, d := range c.Departments {
		if d.ParentID == 0 {
			root = d.ID
			break
		}
	}
	ids := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("pop%05d", i)
		c.Employees = append(c.Employees, Employee{
			UserID:    id,
			UnionID:   fmt.Sprintf("popUnion%s%05d", strings.ToLower(corpID), i),
			OpenID:    fmt.Sprintf("popOpen%s%05d", strings.ToLower(corpID), i),
			Name:      fmt.Sprintf("测试员工%05d", i),
			Mobile:    fmt.Sprintf("139%08d", i),
			StateCode: "86",
			OrgEmail:  fmt.Sprintf("%s@%s.example.com", id, strings.ToLower(corpID)),
			JobNumber: fmt.Sprintf("P%05d", i),
			Title:     "工程师",
			DeptIDs:   []int64{root},
			Active:    true,
		})
		ids = append(ids, id)
	}
	return ids
}
