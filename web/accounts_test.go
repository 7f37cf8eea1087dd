package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dingbridge/dingbridge/mapping"
	"github.com/dingbridge/dingbridge/migrations/pgtest"
)

// accountsConsole is the console on a given store, signed in as the
// administrator 张三 (zhangsan); 李四 (lisi) is staff and has an identity
// in corp dingcorp1, 王五's identity there is not linked yet.
type accountsConsole struct {
	*testConsole
	st       mapping.Store
	ck       *http.Cookie
	csrf     string
	lisiID   mapping.Binding
	wangwuID mapping.Binding
}

// testStores are the stores the account page's tests run on.
var testStores = []struct {
	name string
	new  func(t *testing.T, now func() time.Time) mapping.Store
}{
	{"memory", func(t *testing.T, now func() time.Time) mapping.Store {
		return mapping.NewMemory(mapping.Options{Now: now})
	}},
	{"postgres", func(t *testing.T, now func() time.Time) mapping.Store {
		return mapping.NewPostgres(pgtest.NewDatabase(t), mapping.Options{Now: now})
	}},
}

// eachStore runs fn once per store.
func eachStore(t *testing.T, corps []DingTalkCorp, fn func(t *testing.T, c *accountsConsole)) {
	for _, st := range testStores {
		t.Run(st.name, func(t *testing.T) {
			fn(t, newAccountsConsole(t, st.new, corps))
		})
	}
}

func newAccountsConsole(t *testing.T, newStore func(*testing.T, func() time.Time) mapping.Store, corps []DingTalkCorp) *accountsConsole {
	t.Helper()
	tc := &testConsole{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	st := newStore(t, func() time.Time { return tc.now })
	ctx, m := t.Context(), mapping.Meta{Actor: "test"}
	var err error
	if tc.admin, err = st.CreateAccount(ctx, m, mapping.Account{Username: "zhangsan", DisplayName: "张三", Groups: []string{"admins", "staff"}}); err != nil {
		t.Fatal(err)
	}
	if tc.staff, err = st.CreateAccount(ctx, m, mapping.Account{Username: "lisi", DisplayName: "李四", Groups: []string{"staff"}}); err != nil {
		t.Fatal(err)
	}
	c := &accountsConsole{testConsole: tc, st: st}
	if c.lisiID, err = st.CreateBinding(ctx, m, mapping.Binding{
		Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "lisi01", UnionID: "unionLisi", AppKey: "app1", Name: "李四"}, AccountID: tc.staff.ID,
	}); err != nil {
		t.Fatal(err)
	}
	if c.wangwuID, err = st.CreateBinding(ctx, m, mapping.Binding{
		Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "wangwu", UnionID: "unionWangwu", AppKey: "app1", Name: "王五"},
	}); err != nil {
		t.Fatal(err)
	}
	tc.s, err = New(Config{
		Issuer: "https://sso.example.com", ClientID: "dingbridge-admin", ClientSecret: "secret",
		BaseURL: "https://sso.example.com/admin", Store: st, AdminGroups: []string{"admins"},
		CookieHashKey: make([]byte, 32), CookieBlockKey: make([]byte, 32), Secure: true,
		Now: func() time.Time { return tc.now }, DingTalkCorps: corps,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/admin", tc.s.Routes())
	tc.h = r
	var sess session
	c.ck, sess = tc.signIn(t, tc.admin)
	c.csrf = sess.CSRF
	return c
}

var inEnglish = map[string]string{"Accept-Language": "en"}

// post sends a form as the signed-in administrator, with the CSRF token.
func (c *accountsConsole) post(t *testing.T, path string, form url.Values) (int, string, string) {
	t.Helper()
	form.Set("csrf", c.csrf)
	rec := c.do(t, http.MethodPost, path, c.ck, form, inEnglish)
	return rec.Code, rec.Header().Get("Location"), rec.Body.String()
}

func (c *accountsConsole) get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := c.do(t, http.MethodGet, path, c.ck, nil, inEnglish)
	return rec.Code, rec.Body.String()
}

func (c *accountsConsole) account(t *testing.T, id string) mapping.Account {
	t.Helper()
	a, err := c.st.AccountByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (c *accountsConsole) binding(t *testing.T, k mapping.Key) mapping.Binding {
	t.Helper()
	b, err := c.st.Binding(t.Context(), k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// audit returns a record's audit rows, newest first.
func (c *accountsConsole) audit(t *testing.T, targetType, targetID string) []mapping.AuditEvent {
	t.Helper()
	es, err := c.st.AuditEvents(t.Context(), mapping.AuditQuery{TargetType: targetType, TargetID: targetID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// wantAudit checks that the record's newest audit row is action, by the
// administrator, from the request's IP with its request id, and that its
// before and after give field these values (ADM-07); nil before: a
// creation, with no before at all.
func (c *accountsConsole) wantAudit(t *testing.T, targetType, targetID, action, field string, before, after any) {
	t.Helper()
	es := c.audit(t, targetType, targetID)
	if len(es) == 0 {
		t.Fatalf("%s %s has no audit rows, want %s", targetType, targetID, action)
	}
	e := es[0]
	if e.Action != action || e.Actor != c.admin.ID || !e.ClientIP.IsValid() || e.RequestID == "" {
		t.Errorf("newest audit row = %s by %q from %v, request %q; want %s by the administrator %q with IP and request id",
			e.Action, e.Actor, e.ClientIP, e.RequestID, action, c.admin.ID)
	}
	var b, a map[string]any
	if e.Before != nil {
		if err := json.Unmarshal(e.Before, &b); err != nil {
			t.Fatalf("audit before %s: %v", e.Before, err)
		}
	}
	if err := json.Unmarshal(e.After, &a); err != nil {
		t.Fatalf("audit after %s: %v", e.After, err)
	}
	gotBefore := any(nil)
	if b != nil {
		gotBefore = b[field]
	}
	if fmt.Sprint(gotBefore) != fmt.Sprint(before) || fmt.Sprint(a[field]) != fmt.Sprint(after) {
		t.Errorf("audit %s: before %v, after %v; want %v → %v (row %s → %s)", field, gotBefore, a[field], before, after, e.Before, e.After)
	}
}

func accountPath(id string) string { return "/admin/accounts/" + id }

// editForm is the edit form for a with the given display name.
func editForm(a mapping.Account, displayName string) url.Values {
	f := url.Values{
		"username": {a.Username}, "display_name": {displayName}, "email": {a.Email}, "phone": {a.Phone},
		"groups": {strings.Join(a.Groups, ", ")}, "version": {strconv.FormatInt(a.Version, 10)},
	}
	if a.EmailVerified {
		f.Set("email_verified", "true")
	}
	return f
}

func TestEditAccount(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		lisi := c.staff
		t.Run("saved", func(t *testing.T) {
			form := editForm(lisi, "李四 Li Si")
			form.Set("email", "lisi@example.com")
			form.Set("email_verified", "true")
			form.Set("groups", "staff，finance")
			status, loc, body := c.post(t, accountPath(lisi.ID)+"/edit", form)
			if status != http.StatusSeeOther || loc != accountPath(lisi.ID)+"?ok=ok_saved" {
				t.Fatalf("status %d to %q, want 303 to the account with ok_saved:\n%s", status, loc, body)
			}
			got := c.account(t, lisi.ID)
			if got.DisplayName != "李四 Li Si" || got.Email != "lisi@example.com" || !got.EmailVerified ||
				strings.Join(got.Groups, ",") != "finance,staff" || got.Version != lisi.Version+1 {
				t.Errorf("stored %+v, want the edit at version %d", got, lisi.Version+1)
			}
			c.wantAudit(t, "account", lisi.ID, "account.update", "display_name", "李四", "李四 Li Si")
			lisi = got
		})
		t.Run("stale version", func(t *testing.T) {
			rows := len(c.audit(t, "account", lisi.ID))
			form := editForm(lisi, "Someone Else")
			form.Set("version", strconv.FormatInt(lisi.Version-1, 10)) // the page was read before the last edit
			status, _, body := c.post(t, accountPath(lisi.ID)+"/edit", form)
			if status != http.StatusConflict {
				t.Fatalf("status %d, want 409", status)
			}
			if got := c.account(t, lisi.ID); got.DisplayName != lisi.DisplayName || got.Version != lisi.Version {
				t.Errorf("stored %q v%d, want unchanged %q v%d", got.DisplayName, got.Version, lisi.DisplayName, lisi.Version)
			}
			if n := len(c.audit(t, "account", lisi.ID)); n != rows {
				t.Errorf("audit rows %d, want %d: a refused edit is no change", n, rows)
			}
			for _, want := range []string{
				"Someone else changed this account just now",
				`<td class="current">李四 Li Si</td><td class="yours">Someone Else</td>`, // both values, side by side
				`name="display_name" maxlength="200" value="李四 Li Si"`,                 // the form holds the current values
				`name="version" value="` + strconv.FormatInt(lisi.Version, 10) + `"`,   // and the current version
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s:\n%s", want, body)
				}
			}
		})
		t.Run("missing version", func(t *testing.T) {
			form := editForm(lisi, "No Version")
			form.Del("version")
			if status, _, _ := c.post(t, accountPath(lisi.ID)+"/edit", form); status != http.StatusConflict {
				t.Errorf("status %d, want 409", status)
			}
			if got := c.account(t, lisi.ID); got.DisplayName != lisi.DisplayName {
				t.Errorf("stored %q, want unchanged", got.DisplayName)
			}
		})
		t.Run("invalid keeps what was typed", func(t *testing.T) {
			form := editForm(lisi, "Typed Name")
			form.Set("username", "Li Si!")
			status, _, body := c.post(t, accountPath(lisi.ID)+"/edit", form)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
			for _, want := range []string{"The username is not valid", `value="Li Si!" aria-invalid="true"`, `value="Typed Name"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			if got := c.account(t, lisi.ID); got.Username != "lisi" || got.Version != lisi.Version {
				t.Errorf("stored %q v%d, want unchanged", got.Username, got.Version)
			}
		})
		t.Run("username taken", func(t *testing.T) {
			form := editForm(lisi, lisi.DisplayName)
			form.Set("username", "ZhangSan")
			status, _, body := c.post(t, accountPath(lisi.ID)+"/edit", form)
			if status != http.StatusConflict || !strings.Contains(body, "Another account already has this username") {
				t.Errorf("status %d, want 409 saying the username is taken", status)
			}
		})
		t.Run("unchanged", func(t *testing.T) {
			rows := len(c.audit(t, "account", lisi.ID))
			status, loc, _ := c.post(t, accountPath(lisi.ID)+"/edit", editForm(lisi, lisi.DisplayName))
			if status != http.StatusSeeOther || !strings.HasSuffix(loc, "ok=ok_unchanged") {
				t.Errorf("status %d to %q, want 303 with ok_unchanged", status, loc)
			}
			if n := len(c.audit(t, "account", lisi.ID)); n != rows {
				t.Errorf("audit rows %d, want %d", n, rows)
			}
		})
	})
}

// TestConcurrentEdits: administrators who all read version v and save at
// once: exactly one change is made, the others are told, none is lost
// silently.
func TestConcurrentEdits(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		const n = 6
		lisi := c.staff
		admins := make([]*accountsConsole, n)
		for i := range admins {
			ck, sess := c.signIn(t, c.admin)
			admins[i] = &accountsConsole{testConsole: c.testConsole, st: c.st, ck: ck, csrf: sess.CSRF}
		}
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i, a := range admins {
			wg.Go(func() {
				statuses[i], _, _ = a.post(t, accountPath(lisi.ID)+"/edit", editForm(lisi, fmt.Sprintf("Editor %d", i)))
			})
		}
		wg.Wait()
		winner, conflicts := -1, 0
		for i, s := range statuses {
			switch s {
			case http.StatusSeeOther:
				if winner >= 0 {
					t.Errorf("editors %d and %d both saved", winner, i)
				}
				winner = i
			case http.StatusConflict:
				conflicts++
			default:
				t.Errorf("editor %d: status %d, want 303 or 409", i, s)
			}
		}
		if winner < 0 || conflicts != n-1 {
			t.Fatalf("statuses %v: want one 303 and %d × 409", statuses, n-1)
		}
		if got := c.account(t, lisi.ID); got.DisplayName != fmt.Sprintf("Editor %d", winner) || got.Version != lisi.Version+1 {
			t.Errorf("stored %q v%d, want the winner's Editor %d at v%d", got.DisplayName, got.Version, winner, lisi.Version+1)
		}
		updates := 0
		for _, e := range c.audit(t, "account", lisi.ID) {
			if e.Action == "account.update" {
				updates++
			}
		}
		if updates != 1 {
			t.Errorf("%d account.update audit rows, want 1", updates)
		}
	})
}

// TestRemovingOwnAdminGroup: the console checks admin membership on every
// request, so an administrator who edits themselves out of the admin
// groups is refused at once.
func TestRemovingOwnAdminGroup(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		_, page := c.get(t, accountPath(c.admin.ID))
		if !strings.Contains(page, `id="edit-self"`) {
			t.Errorf("own account page does not warn about leaving the admin groups")
		}
		form := editForm(c.admin, c.admin.DisplayName)
		form.Set("groups", "staff")
		if status, _, body := c.post(t, accountPath(c.admin.ID)+"/edit", form); status != http.StatusSeeOther {
			t.Fatalf("status %d, want 303:\n%s", status, body)
		}
		status, body := c.get(t, accountPath(c.admin.ID))
		if status != http.StatusForbidden || !strings.Contains(body, "No access to the admin console") {
			t.Errorf("next request: status %d, want 403 with the no-access page", status)
		}
		if es := c.audit(t, "account", c.admin.ID); len(es) == 0 || es[0].Action != "admin.denied" {
			t.Errorf("newest audit row of the admin is not admin.denied: %+v", es)
		}
	})
}

func TestLink(t *testing.T) {
	corps := []DingTalkCorp{{ID: "dingcorp1", Name: "示例科技"}, {ID: "dingcorp2", Name: "星河制造"}}
	eachStore(t, corps, func(t *testing.T, c *accountsConsole) {
		admin := accountPath(c.admin.ID)
		t.Run("invalid", func(t *testing.T) {
			for _, tt := range []struct {
				name string
				form url.Values
				want string
			}{
				{"userId charset", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wang wu"}}, "The userId is not valid"},
				{"userId length", url.Values{"corp_id": {"dingcorp1"}, "user_id": {strings.Repeat("a", 65)}}, "The userId is not valid"},
				{"unionId charset", url.Values{"corp_id": {"dingcorp1"}, "union_id": {"union<id>"}}, "The unionId is not valid"},
				{"neither", url.Values{"corp_id": {"dingcorp1"}}, "Enter either a userId or a unionId"},
				{"both", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}, "union_id": {"unionWangwu"}}, "Enter either a userId or a unionId"},
				{"corp not configured", url.Values{"corp_id": {"dingother"}, "user_id": {"wangwu"}}, "The organisation is not valid"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					status, _, body := c.post(t, admin+"/link", tt.form)
					if status != http.StatusBadRequest || !strings.Contains(body, tt.want) {
						t.Errorf("status %d, want 400 saying %q", status, tt.want)
					}
					if b := c.binding(t, c.wangwuID.Key()); b.Linked() {
						t.Errorf("wangwu got linked")
					}
				})
			}
		})
		t.Run("linked elsewhere", func(t *testing.T) {
			status, _, body := c.post(t, admin+"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"lisi01"}})
			if status != http.StatusConflict {
				t.Fatalf("status %d, want 409 (ADM-06)", status)
			}
			for _, want := range []string{
				"linked to another account",
				`id="conflict-account">lisi</a>`,
				`action="/admin/accounts/` + c.staff.ID + `/relink"`, // the offer to move it here
				`name="to" value="zhangsan"`,
				`name="version" value="` + strconv.FormatInt(c.lisiID.Version, 10) + `"`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			if b := c.binding(t, c.lisiID.Key()); b.AccountID != c.staff.ID || b.Version != c.lisiID.Version {
				t.Errorf("lisi01 is now %q v%d, want unchanged", b.AccountID, b.Version)
			}
		})
		t.Run("by userId", func(t *testing.T) {
			status, loc, body := c.post(t, accountPath(c.staff.ID)+"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}})
			if status != http.StatusSeeOther || !strings.HasSuffix(loc, "ok=ok_linked") {
				t.Fatalf("status %d to %q, want 303 with ok_linked:\n%s", status, loc, body)
			}
			if b := c.binding(t, c.wangwuID.Key()); b.AccountID != c.staff.ID {
				t.Errorf("wangwu linked to %q, want lisi's account", b.AccountID)
			}
			c.wantAudit(t, "identity", "dingcorp1/wangwu", "identity.link", "account_id", "", c.staff.ID)
			status, _, body = c.post(t, accountPath(c.staff.ID)+"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}})
			if status != http.StatusConflict || !strings.Contains(body, "already linked to this account") {
				t.Errorf("again: status %d, want 409 saying it is linked here already", status)
			}
		})
		t.Run("by unionId", func(t *testing.T) {
			if _, err := c.st.Unlink(t.Context(), mapping.Meta{Actor: "test"}, c.wangwuID.Key(), c.binding(t, c.wangwuID.Key()).Version); err != nil {
				t.Fatal(err)
			}
			status, _, body := c.post(t, admin+"/link", url.Values{"corp_id": {"dingcorp1"}, "union_id": {"unionWangwu"}})
			if status != http.StatusSeeOther {
				t.Fatalf("status %d, want 303:\n%s", status, body)
			}
			if b := c.binding(t, c.wangwuID.Key()); b.AccountID != c.admin.ID {
				t.Errorf("wangwu linked to %q, want zhangsan's account", b.AccountID)
			}
			status, _, body = c.post(t, admin+"/link", url.Values{"corp_id": {"dingcorp1"}, "union_id": {"unionNobody"}})
			if status != http.StatusNotFound || !strings.Contains(body, "link by userId instead") {
				t.Errorf("unknown unionId: status %d, want 404 asking for a userId", status)
			}
		})
		t.Run("unknown identity needs confirmation", func(t *testing.T) {
			k := mapping.Key{CorpID: "dingcorp2", UserID: "newcomer"}
			status, _, body := c.post(t, admin+"/link", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}})
			if status != http.StatusOK || !strings.Contains(body, `id="link-unknown"`) || !strings.Contains(body, `name="create" value="yes"`) {
				t.Fatalf("status %d, want 200 asking to confirm:\n%s", status, body)
			}
			if _, err := c.st.Binding(t.Context(), k); err == nil {
				t.Fatalf("the identity was created without confirmation")
			}
			status, _, _ = c.post(t, admin+"/link", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "create": {"yes"}})
			if status != http.StatusSeeOther {
				t.Fatalf("confirmed: status %d, want 303", status)
			}
			if b := c.binding(t, k); b.AccountID != c.admin.ID || b.Source != mapping.SourceAdmin {
				t.Errorf("created %+v, want linked to zhangsan by an admin", b)
			}
			c.wantAudit(t, "identity", k.String(), "identity.create", "account_id", nil, c.admin.ID)
		})
	})
}

// TestLinkWithoutConfiguredCorps: a console that does not know the corps
// takes a corp id of the right shape.
func TestLinkWithoutConfiguredCorps(t *testing.T) {
	c := newAccountsConsole(t, testStores[0].new, nil)
	_, page := c.get(t, accountPath(c.admin.ID))
	if !strings.Contains(page, `<input name="corp_id" required`) || strings.Contains(page, "<select") {
		t.Errorf("the link form has no corp id field")
	}
	status, _, body := c.post(t, accountPath(c.admin.ID)+"/link", url.Values{"corp_id": {"ding corp"}, "user_id": {"wangwu"}})
	if status != http.StatusBadRequest || !strings.Contains(body, "The organisation is not valid") {
		t.Errorf("status %d, want 400 about the corp", status)
	}
	if status, _, _ := c.post(t, accountPath(c.admin.ID)+"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}}); status != http.StatusSeeOther {
		t.Errorf("status %d, want 303", status)
	}
}

// TestLinkFieldsAgreeWithStore keeps the link form's checks in step with
// the store's (ADM-06): every value the form accepts, the store accepts.
func TestLinkFieldsAgreeWithStore(t *testing.T) {
	s := &Server{}
	st := mapping.NewMemory(mapping.Options{})
	m := mapping.Meta{Actor: "test"}
	for i, v := range []string{"a", "wangwu", "184919295227658120", "a.b_c@d-e", strings.Repeat("x", 64), strings.Repeat("x", 65),
		"", "wang wu", "王五", "a/b", "a+b", "a=b", "<x>", "a\nb", "a;b"} {
		t.Run(strconv.Quote(v), func(t *testing.T) {
			corp := fmt.Sprintf("dingc%d", i)
			checks := []struct {
				field string
				form  linkForm
				id    mapping.Identity
			}{
				{"user_id", linkForm{CorpID: corp, UserID: v}, mapping.Identity{CorpID: corp, UserID: v}},
				{"union_id", linkForm{CorpID: corp, UnionID: v}, mapping.Identity{CorpID: corp, UserID: "u1", UnionID: v, AppKey: "k"}},
				{"corp_id", linkForm{CorpID: v, UserID: "u2"}, mapping.Identity{CorpID: v, UserID: "u2"}},
			}
			for _, c := range checks {
				if v == "" && c.field == "union_id" {
					continue // empty means "not given" to both
				}
				formOK := s.checkLink(c.form) == ""
				_, err := st.CreateBinding(t.Context(), m, mapping.Binding{Identity: c.id})
				if storeOK := err == nil; formOK != storeOK {
					t.Errorf("%s %q: form accepts %v, store accepts %v (%v)", c.field, v, formOK, storeOK, err)
				}
				if err == nil {
					if err := st.DeleteBinding(t.Context(), m, c.id.Key(), 1); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func TestRelink(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		from, k := accountPath(c.staff.ID), c.lisiID.Key()
		t.Run("confirmation names both accounts", func(t *testing.T) {
			status, body := c.get(t, from+"?relink_corp=dingcorp1&relink_user=lisi01&to=ZhangSan")
			if status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			for _, want := range []string{`id="relink-confirm"`, `class="relink-from">lisi</a>`, `class="relink-to">zhangsan</a>`,
				`name="version" value="` + strconv.FormatInt(c.lisiID.Version, 10) + `"`} {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %s", want)
				}
			}
			if b := c.binding(t, k); b.AccountID != c.staff.ID {
				t.Errorf("a GET moved the identity")
			}
			if _, body := c.get(t, from+"?relink_corp=dingcorp1&relink_user=lisi01&to=nobody"); !strings.Contains(body, "There is no account with this username") {
				t.Errorf("unknown target: page does not say so")
			}
		})
		t.Run("stale version", func(t *testing.T) {
			status, loc, _ := c.post(t, from+"/relink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "to": {"zhangsan"}, "version": {"99"}})
			if status != http.StatusSeeOther || loc != from+"?err=err_stale" {
				t.Errorf("status %d to %q, want 303 to %s?err=err_stale", status, loc, from)
			}
			if b := c.binding(t, k); b.AccountID != c.staff.ID {
				t.Errorf("a stale relink moved the identity")
			}
		})
		t.Run("unknown target", func(t *testing.T) {
			_, loc, _ := c.post(t, from+"/relink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "to": {"nobody"}, "version": {"1"}})
			if loc != from+"?err=err_no_account" {
				t.Errorf("to %q, want err_no_account", loc)
			}
		})
		t.Run("moved", func(t *testing.T) {
			status, loc, _ := c.post(t, from+"/relink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "to": {"zhangsan"},
				"version": {strconv.FormatInt(c.lisiID.Version, 10)}, "back": {"to"}})
			if status != http.StatusSeeOther || loc != accountPath(c.admin.ID)+"?ok=ok_relinked" {
				t.Errorf("status %d to %q, want 303 to zhangsan's page with ok_relinked", status, loc)
			}
			if b := c.binding(t, k); b.AccountID != c.admin.ID {
				t.Errorf("lisi01 linked to %q, want zhangsan's account", b.AccountID)
			}
			c.wantAudit(t, "identity", k.String(), "identity.relink", "account_id", c.staff.ID, c.admin.ID)
			// The page it came from no longer owns it: a second move is stale.
			_, loc, _ = c.post(t, from+"/relink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "to": {"zhangsan"}, "version": {"2"}})
			if loc != from+"?err=err_stale" {
				t.Errorf("second move: to %q, want err_stale", loc)
			}
		})
	})
}

func TestIdentityDisabledAndUnlink(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		p, k := accountPath(c.staff.ID), c.lisiID.Key()
		form := func(version int64, disabled string) url.Values {
			return url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {strconv.FormatInt(version, 10)}, "disabled": {disabled}}
		}
		if _, loc, _ := c.post(t, p+"/identity-disabled", form(c.lisiID.Version+1, "true")); loc != p+"?err=err_stale" {
			t.Errorf("stale: to %q, want err_stale", loc)
		}
		if c.binding(t, k).Disabled {
			t.Fatalf("a stale request disabled the identity")
		}
		if _, loc, _ := c.post(t, p+"/identity-disabled", form(c.lisiID.Version, "true")); loc != p+"?ok=ok_identity_disabled" {
			t.Errorf("to %q, want ok_identity_disabled", loc)
		}
		b := c.binding(t, k)
		if !b.Disabled {
			t.Fatalf("identity not disabled")
		}
		c.wantAudit(t, "identity", k.String(), "identity.disable", "disabled", false, true)
		if _, loc, _ := c.post(t, p+"/identity-disabled", form(b.Version, "false")); loc != p+"?ok=ok_identity_enabled" {
			t.Errorf("to %q, want ok_identity_enabled", loc)
		}
		b = c.binding(t, k)
		if _, loc, _ := c.post(t, p+"/unlink", url.Values{"corp_id": {k.CorpID}, "user_id": {k.UserID}, "version": {strconv.FormatInt(b.Version, 10)}}); loc != p+"?ok=ok_unlinked" {
			t.Errorf("unlink: to %q, want ok_unlinked", loc)
		}
		if c.binding(t, k).Linked() {
			t.Errorf("identity still linked")
		}
		c.wantAudit(t, "identity", k.String(), "identity.unlink", "account_id", c.staff.ID, "")
	})
}

// TestAccountChangesNeedCSRF: every change on the account page is refused
// without the session's token, and changes nothing (ADM-02).
func TestAccountChangesNeedCSRF(t *testing.T) {
	c := newAccountsConsole(t, testStores[0].new, nil)
	k := c.lisiID.Key()
	id := mapping.Key{CorpID: k.CorpID, UserID: k.UserID}
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/edit", editForm(c.staff, "Changed")},
		{"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}}},
		{"/relink", url.Values{"corp_id": {id.CorpID}, "user_id": {id.UserID}, "to": {"zhangsan"}, "version": {"1"}}},
		{"/unlink", url.Values{"corp_id": {id.CorpID}, "user_id": {id.UserID}, "version": {"1"}}},
		{"/identity-disabled", url.Values{"corp_id": {id.CorpID}, "user_id": {id.UserID}, "version": {"1"}, "disabled": {"true"}}},
		{"/disabled", url.Values{"version": {"1"}, "disabled": {"true"}}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			for _, token := range []string{"", randomToken()} {
				form := url.Values{}
				for k, v := range tt.form {
					form[k] = v
				}
				if token != "" {
					form.Set("csrf", token)
				}
				if rec := c.do(t, http.MethodPost, accountPath(c.staff.ID)+tt.path, c.ck, form, nil); rec.Code != http.StatusForbidden {
					t.Errorf("token %q: status %d, want 403", token, rec.Code)
				}
			}
		})
	}
	if a := c.account(t, c.staff.ID); a.Version != c.staff.Version {
		t.Errorf("the account changed")
	}
	if b := c.binding(t, k); b.Version != c.lisiID.Version {
		t.Errorf("lisi01 changed")
	}
	if b := c.binding(t, c.wangwuID.Key()); b.Linked() {
		t.Errorf("wangwu got linked")
	}
}

var tags = regexp.MustCompile(`<[^>]*>`)

// text is a page's text without tags, whitespace collapsed.
func text(body string) string {
	s := strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(body, " "))), " ")
	return strings.ReplaceAll(s, " :", ":")
}

// TestAccountHistory: the account page shows the account's and its
// identities' audit rows with what changed, and its sign-ins, all escaped.
func TestAccountHistory(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		const evil = `<img src=x onerror=alert(1)>`
		form := editForm(c.staff, evil)
		if status, _, _ := c.post(t, accountPath(c.staff.ID)+"/edit", form); status != http.StatusSeeOther {
			t.Fatalf("edit: %d", status)
		}
		if status, _, _ := c.post(t, accountPath(c.staff.ID)+"/link", url.Values{"corp_id": {"dingcorp1"}, "user_id": {"wangwu"}}); status != http.StatusSeeOther {
			t.Fatalf("link: %d", status)
		}
		m := mapping.Meta{Actor: c.staff.ID, Source: mapping.SourceAdmin}
		if err := c.st.RecordEvent(t.Context(), m, mapping.Event{Action: "admin.signin", TargetType: "account", TargetID: c.staff.ID}); err != nil {
			t.Fatal(err)
		}
		if err := c.st.RecordEvent(t.Context(), mapping.Meta{Actor: "system"}, mapping.Event{
			Action: "signin.deny", TargetType: "identity", TargetID: "dingcorp1/lisi01", Detail: map[string]string{"reason": "identity disabled"},
		}); err != nil {
			t.Fatal(err)
		}
		status, body := c.get(t, accountPath(c.staff.ID))
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		if strings.Contains(body, "<img") {
			t.Errorf("an audit value is rendered as HTML")
		}
		history, signIns := cardSection(t, body, "history"), cardSection(t, body, "signins")
		for _, want := range []string{
			"Account edited this account Name: 李四 → " + evil + " zhangsan", // before → after, by whom
			"Linked dingcorp1/wangwu Account: (empty) → lisi zhangsan",     // account ids shown as usernames
			"Identity created dingcorp1/lisi01",                            // the identity's own history
			"Account created this account Username: (empty) → lisi",        // a creation lists what it set
		} {
			if !strings.Contains(text(history), want) {
				t.Errorf("history lacks %q:\n%s", want, text(history))
			}
		}
		if strings.Contains(text(history), "Signed in") || strings.Contains(text(history), "refused") {
			t.Errorf("sign-ins are listed as changes")
		}
		for _, want := range []string{"Signed in to the console this account", "Sign-in refused dingcorp1/lisi01 Reason: (empty) → identity disabled"} {
			if !strings.Contains(text(signIns), want) {
				t.Errorf("sign-ins lack %q:\n%s", want, text(signIns))
			}
		}
		// Newest first: the link came after the edit.
		if h := text(history); strings.Index(h, "Linked") > strings.Index(h, "Account edited") {
			t.Errorf("history is not newest first:\n%s", h)
		}
	})
}

// section returns the page's <section id=id>.
func cardSection(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `<section class="card" id="`+id+`">`)
	if i < 0 {
		t.Fatalf("no section %s", id)
	}
	j := strings.Index(body[i:], "</section>")
	return body[i : i+j]
}

// racingStore is a real store whose BindingByUnionID lets another
// administrator act right after the console read the identity.
type racingStore struct {
	mapping.Store
	afterRead func(b mapping.Binding)
}

func (s *racingStore) BindingByUnionID(ctx context.Context, corpID, unionID string) (mapping.Binding, error) {
	b, err := s.Store.BindingByUnionID(ctx, corpID, unionID)
	if err == nil && s.afterRead != nil {
		s.afterRead(b)
	}
	return b, err
}

// TestLinkLosesRace: an identity linked by someone else between the
// console's read and its link is a conflict naming that account, not an
// error and not a silent move.
func TestLinkLosesRace(t *testing.T) {
	eachStore(t, nil, func(t *testing.T, c *accountsConsole) {
		rs := &racingStore{Store: c.st}
		c.s.cfg.Store = rs
		rs.afterRead = func(b mapping.Binding) {
			if _, err := c.st.Link(t.Context(), mapping.Meta{Actor: "other-admin"}, b.Key(), c.staff.ID); err != nil {
				t.Errorf("the other administrator's link: %v", err)
			}
		}
		status, _, body := c.post(t, accountPath(c.admin.ID)+"/link", url.Values{"corp_id": {"dingcorp1"}, "union_id": {"unionWangwu"}})
		if status != http.StatusConflict || !strings.Contains(body, `id="conflict-account">lisi</a>`) {
			t.Errorf("status %d, want 409 naming lisi:\n%s", status, body)
		}
		if b := c.binding(t, c.wangwuID.Key()); b.AccountID != c.staff.ID {
			t.Errorf("wangwu linked to %q, want the winner's lisi", b.AccountID)
		}
	})
}
