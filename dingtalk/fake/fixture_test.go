package fake

import (
	"testing"
)

func TestDefaultFixture(t *testing.T) {
	f := DefaultFixture()
	if len(f.Corps) < 2 {
		t.Fatalf("%d corps, want at least 2", len(f.Corps))
	}
	unionIDs := map[string]bool{}
	// Base64 of 43 characters drops the low bits of the last one, so keys
	// that differ only there are the same key.
	aesKeys := map[string]string{}
	for _, c := range f.Corps {
		t.Run(c.Name, func(t *testing.T) {
			if len(c.Apps) != 1 || c.department(1) == nil {
				t.Errorf("corp %s: %d apps, root %v; want one app and a root department", c.ID, len(c.Apps), c.department(1))
			}
			for _, a := range c.Apps {
				cc, err := newCallbackCipher(a.CallbackToken, a.CallbackAESKey, a.AppKey)
				if err != nil {
					t.Errorf("app %s callback settings: %v", a.AppKey, err)
					continue
				}
				if other, ok := aesKeys[string(cc.key)]; ok {
					t.Errorf("app %s callback aes key decodes to the same key as app %s's", a.AppKey, other)
				}
				aesKeys[string(cc.key)] = a.AppKey
			}
			if n := len(c.Employees); n < 5 || n > 8 {
				t.Errorf("%d employees, want 5 to 8", n)
			}
			for _, e := range c.Employees {
				if unionIDs[e.UnionID] || e.UnionID == "" || e.OpenID == "" {
					t.Errorf("employee %s: unionId %q missing or not unique", e.UserID, e.UnionID)
				}
				unionIDs[e.UnionID] = true
				for _, d := range e.DeptIDs {
					if c.department(d) == nil {
						t.Errorf("employee %s in unknown department %d", e.UserID, d)
					}
				}
			}
			for _, d := range c.Departments {
				if d.ID != 1 && c.department(d.ParentID) == nil {
					t.Errorf("department %d has unknown parent %d", d.ID, d.ParentID)
				}
			}
		})
	}
	c := f.corp(DemoCorpID)
	if c == nil || c.Apps[0].SNSAppID != DemoSNSAppID {
		t.Fatalf("corp %s with SNS app %s missing", DemoCorpID, DemoSNSAppID)
	}
	if e := c.employee("zhaoliu"); e == nil || !e.Left {
		t.Error("want zhaoliu, who left")
	}
	if e := c.employee("184919295227658120"); e == nil {
		t.Error("want the numeric-looking userid 184919295227658120")
	}
	if e := c.employee("zhangsan"); e == nil || !e.Admin {
		t.Error("want zhangsan, an admin")
	}
}

func TestNewCopiesFixture(t *testing.T) {
	f := DefaultFixture()
	s := New(Options{Fixture: &f})
	s.SetLeft(DemoCorpID, "zhangsan", true)
	if f.Corps[0].Employees[0].Left {
		t.Error("SetLeft changed the caller's fixture")
	}
	f.Corps[0].Employees[1].Left = true
	if _, err := s.IssueJSAPICode(DemoCorpID, DemoAppKey, "184919295227658120"); err != nil {
		t.Errorf("change to the caller's fixture reached the server: %v", err)
	}
}
