package web

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dingbridge/dingbridge/mapping"
)

// attrs returns the values of attribute name on the page, in order.
func attrs(body, name string) []string {
	var out []string
	for _, m := range regexp.MustCompile(name+`="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func (tc *testConsole) get(t *testing.T, target, lang string) (int, string) {
	t.Helper()
	ck, _ := tc.signIn(t, tc.admin)
	rec := tc.do(t, http.MethodGet, target, ck, nil, map[string]string{"Accept-Language": lang})
	return rec.Code, rec.Body.String()
}

func TestAuditPageFilters(t *testing.T) {
	tc := newTestConsole(t)
	ctx := t.Context()
	me := mapping.Meta{Actor: tc.admin.ID, RequestID: "r1"}
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		tc.now = tc.now.Add(time.Hour)
	}
	// The accounts newTestConsole made are from 09:00; then one change an hour.
	tc.now = tc.now.Add(time.Hour)
	_, err := tc.store.SetAccountDisabled(ctx, me, tc.staff.ID, true) // 10:00
	step(err)
	_, err = tc.store.SetAccountDisabled(ctx, me, tc.staff.ID, false) // 11:00
	step(err)
	step(tc.store.RecordEvent(ctx, mapping.Meta{Actor: "system"}, mapping.Event{Action: "signin.deny", TargetType: "identity",
		TargetID: "dingcorp1/u1", Detail: map[string]string{"reason": "not_linked"}})) // 12:00
	_, err = tc.store.CreateBinding(ctx, me, mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "u1"}}) // 13:00
	step(err)

	tests := []struct {
		name, query string
		want        []string // actions, newest first
	}{
		{"everything", "", []string{"identity.create", "signin.deny", "account.enable", "account.disable", "account.create", "account.create"}},
		{"actor by username", "actor=zhangsan", []string{"identity.create", "account.enable", "account.disable"}},
		{"actor by id", "actor=" + tc.admin.ID, []string{"identity.create", "account.enable", "account.disable"}},
		{"actor that is no account", "actor=system", []string{"signin.deny"}},
		{"actor and action", "actor=zhangsan&action=account.disable", []string{"account.disable"}},
		{"action family", "action=account.", []string{"account.enable", "account.disable", "account.create", "account.create"}},
		{"target by username", "target=lisi", []string{"account.enable", "account.disable", "account.create"}},
		{"target identity", "target=dingcorp1/u1", []string{"identity.create", "signin.deny"}},
		{"time window", "since=2026-03-01T10:00&until=2026-03-01T12:00", []string{"account.enable", "account.disable"}},
		{"until a day includes the day", "until=2026-03-01", []string{"identity.create", "signin.deny", "account.enable", "account.disable", "account.create", "account.create"}},
		{"nothing matches", "actor=nobody", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := tc.get(t, "/admin/audit?"+tt.query, "")
			if code != http.StatusOK {
				t.Fatalf("status %d:\n%s", code, body)
			}
			if got := attrs(body, "data-action"); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
			if tt.want == nil && !strings.Contains(body, `id="no-events"`) {
				t.Errorf("no empty-state message:\n%s", body)
			}
		})
	}
}

func TestAuditDiffIsTextAndMarksChanges(t *testing.T) {
	tc := newTestConsole(t)
	const evil = `<img src=x onerror=alert(1)>`
	a := tc.staff
	a.DisplayName, a.Groups = evil, []string{`"quoted" & <b>bold</b>`}
	if _, err := tc.store.UpdateAccount(t.Context(), mapping.Meta{Actor: tc.admin.ID}, a); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		code, body := tc.get(t, "/admin/audit?action=account.update", lang)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if strings.Contains(body, "<img") || strings.Contains(body, "<b>bold") {
			t.Errorf("%s: data rendered as HTML", lang)
		}
		if !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") || !strings.Contains(body, `[&#34;\&#34;quoted\&#34; &amp; &lt;b&gt;bold&lt;/b&gt;&#34;]`) {
			t.Errorf("%s: data not shown as text", lang)
		}
		// display_name and email changed, and only they (the version too).
		changed := regexp.MustCompile(`<tr class="changed" data-field="([^"]+)"`).FindAllStringSubmatch(body, -1)
		var got []string
		for _, m := range changed {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != "display_name groups version" {
			t.Errorf("%s: changed fields %q, want display_name groups version", lang, got)
		}
		if !regexp.MustCompile(`data-field="username">\s*<th scope="row"><code>username</code></th>\s*<td class="before">lisi</td><td class="after">lisi</td>`).MatchString(body) {
			t.Errorf("%s: the unchanged username row is not shown as before and after", lang)
		}
		marker := map[string]string{"zh-CN": "已更改", "en": "changed"}[lang]
		if !strings.Contains(body, `<span class="tag changed">`+marker+`</span>`) {
			t.Errorf("%s: no %q marker in words", lang, marker)
		}
	}
}

func TestAuditInvalidFilters(t *testing.T) {
	tc := newTestConsole(t)
	tests := []struct {
		query      string
		zh, en     string
		wantStatus int
	}{
		{"since=yesterday", "时间格式不正确", "A time is not valid", http.StatusBadRequest},
		{"until=2026-13-01T00:00", "时间格式不正确", "A time is not valid", http.StatusBadRequest},
		{"since=2026-03-02T00:00&until=2026-03-01T00:00", "结束时间必须晚于开始时间", "The end time must be after the start time", http.StatusBadRequest},
		{"after=garbage!", "筛选条件不正确", "A filter is not valid", http.StatusBadRequest},
		{"action=" + strings.Repeat("x", 65), "筛选条件不正确", "A filter is not valid", http.StatusBadRequest},
	}
	for _, tt := range tests {
		for lang, want := range map[string]string{"zh-CN": tt.zh, "en": tt.en} {
			code, body := tc.get(t, "/admin/audit?"+tt.query, lang)
			if code != tt.wantStatus || !strings.Contains(body, `role="alert"`) || !strings.Contains(body, want) {
				t.Errorf("%s (%s): status %d, want %d with %q", tt.query, lang, code, tt.wantStatus, want)
			}
			if strings.Contains(body, `id="no-events"`) {
				t.Errorf("%s (%s): says nothing matches instead of what is wrong", tt.query, lang)
			}
		}
	}
	// The filters typed stay in the form, escaped.
	_, body := tc.get(t, "/admin/audit?since=yesterday&actor="+url.QueryEscape(`"><script>`), "")
	if strings.Contains(body, "<script>") || !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;"`) {
		t.Errorf("the actor filter is not kept as escaped text")
	}
}

func TestAuditPaging(t *testing.T) {
	tc := newTestConsole(t)
	for i := range mapping.DefaultPageSize + 5 {
		if err := tc.store.RecordEvent(t.Context(), mapping.Meta{Actor: "system"}, mapping.Event{
			Action: "signin.fail", TargetType: "signin", TargetID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	_, body := tc.get(t, "/admin/audit?actor=system", "")
	first := attrs(body, "data-id")
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body)
	if len(first) != mapping.DefaultPageSize || next == nil {
		t.Fatalf("first page: %d events, next link %v; want %d and a link", len(first), next, mapping.DefaultPageSize)
	}
	u, _ := url.Parse(html.UnescapeString(next[1]))
	if u.Query().Get("actor") != "system" {
		t.Errorf("next page link %s drops the actor filter", u)
	}
	_, body = tc.get(t, u.String(), "")
	second := attrs(body, "data-id")
	if len(second) != 5 || second[0] >= first[len(first)-1] && len(second[0]) >= len(first[len(first)-1]) {
		t.Errorf("second page: %v after %v, want the 5 older events", second, first[len(first)-1])
	}
	if strings.Contains(body, `id="next"`) {
		t.Errorf("the last page has a next link")
	}
}

func TestOverviewFigures(t *testing.T) {
	tc := newTestConsole(t)
	ctx := t.Context()
	cst := time.FixedZone("CST", 8*3600)
	// 01:30 on 2 March in the server's zone; still 1 March in UTC.
	tc.now = time.Date(2026, 3, 2, 1, 30, 0, 0, cst)
	m := mapping.Meta{Actor: "test"}
	for _, b := range []mapping.Binding{
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "zs"}, AccountID: tc.admin.ID},
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "ls"}, AccountID: tc.staff.ID},
	} {
		if _, err := tc.store.CreateBinding(ctx, m, b); err != nil {
			t.Fatal(err)
		}
	}
	r, err := mapping.NewResolver(mapping.ResolverConfig{Store: tc.store, Corps: []mapping.Corp{{ID: "dingcorp1"}}})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(at time.Time, user string) {
		tc.now = at
		_, _ = r.Resolve(ctx, mapping.Identity{CorpID: "dingcorp1", UserID: user}, mapping.Meta{})
	}
	resolve(time.Date(2026, 3, 1, 23, 30, 0, 0, cst), "ls")   // yesterday, here
	resolve(time.Date(2026, 3, 2, 0, 30, 0, 0, cst), "zs")    // today, here, though 1 March in UTC
	resolve(time.Date(2026, 3, 2, 1, 0, 0, 0, cst), "zs")     // the same person again
	resolve(time.Date(2026, 3, 2, 1, 0, 0, 0, cst), "newbie") // not linked: pending
	if _, err := tc.store.SetAccountDisabled(ctx, m, tc.staff.ID, true); err != nil {
		t.Fatal(err)
	}
	resolve(time.Date(2026, 3, 2, 1, 10, 0, 0, cst), "ls") // refused
	if err := tc.store.RecordEvent(ctx, mapping.Meta{Actor: "system"}, mapping.Event{Action: "signin.fail", TargetType: "signin",
		Detail: map[string]string{"reason": "some_new_code", "mode": "qr"}}); err != nil {
		t.Fatal(err)
	}
	tc.now = time.Date(2026, 3, 2, 1, 30, 0, 0, cst)

	for _, tt := range []struct{ lang, signIns, notLinked, disabled, other string }{
		{"zh-CN", "今天登录的人数", "钉钉账号尚未关联企业账号（已进入待审批）", "企业账号已停用", "其他原因 (some_new_code)"},
		{"en", "People who signed in today", "DingTalk account not linked yet (now waiting under Pending)", "Account disabled", "Other reason (some_new_code)"},
	} {
		code, body := tc.get(t, "/admin/", tt.lang)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for id, want := range map[string]string{"count-accounts": "2", "count-identities": "3", "count-unlinked": "1", "count-pending": "1", "count-signins": "1"} {
			if !regexp.MustCompile(`id="` + id + `"><span class="n">` + want + `</span>`).MatchString(body) {
				t.Errorf("%s: %s is not %s:\n%s", tt.lang, id, want, body)
			}
		}
		for _, want := range []string{tt.signIns, tt.notLinked, tt.disabled, tt.other, "CST +08:00"} {
			if !strings.Contains(html.UnescapeString(body), want) {
				t.Errorf("%s: the overview does not say %q", tt.lang, want)
			}
		}
		if got := attrs(body, "data-reason"); strings.Join(got, " ") != "account_disabled not_linked some_new_code" {
			t.Errorf("%s: reasons %q, want account_disabled not_linked some_new_code", tt.lang, got)
		}
		if strings.Contains(body, "≈") {
			t.Errorf("%s: the memory store's exact counts are shown as estimates", tt.lang)
		}
	}
	// A day later, the failures are older than 24 hours.
	tc.now = tc.now.Add(25 * time.Hour)
	if _, body := tc.get(t, "/admin/", "en"); !strings.Contains(body, `id="no-failures"`) || !regexp.MustCompile(`id="count-signins"><span class="n">0<`).MatchString(body) {
		t.Errorf("a day later: failures or sign-ins still counted:\n%s", body)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", 123456789: "123,456,789", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestIdentitiesLinkFilter(t *testing.T) {
	tc := newTestConsole(t)
	m := mapping.Meta{Actor: "test"}
	for _, b := range []mapping.Binding{
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "zs", Name: "张三"}, AccountID: tc.admin.ID},
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "w1", Name: "王一"}},
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "w2", Name: "王二"}},
		{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "ls", Name: "王李四"}, AccountID: tc.staff.ID},
	} {
		if _, err := tc.store.CreateBinding(t.Context(), m, b); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ query, want string }{
		{"", "ls w1 w2 zs"},
		{"link=unlinked", "w1 w2"},
		{"link=linked", "ls zs"},
		{"link=unlinked&q=" + url.QueryEscape("王"), "w1 w2"},
		{"link=linked&q=" + url.QueryEscape("王"), "ls"},
		{"link=unlinked&q=zs", ""},
	}
	for _, tt := range tests {
		code, body := tc.get(t, "/admin/identities?"+tt.query, "")
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", tt.query, code)
		}
		if got := strings.Join(attrs(body, "data-user-id"), " "); got != tt.want {
			t.Errorf("%s: identities %q, want %q", tt.query, got, tt.want)
		}
		u, _ := url.ParseQuery(tt.query)
		if link := u.Get("link"); link != "" && !strings.Contains(body, `<input type="hidden" name="link" value="`+link+`">`) {
			t.Errorf("%s: the search form drops the filter", tt.query)
		}
	}
	// The filter is kept on the next page.
	for i := range mapping.DefaultPageSize {
		if _, err := tc.store.CreateBinding(t.Context(), m, mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp2", UserID: fmt.Sprintf("p%02d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	_, body := tc.get(t, "/admin/identities?link=unlinked", "")
	next := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatal("no next page link")
	}
	_, body = tc.get(t, html.UnescapeString(next[1]), "")
	if got := attrs(body, "data-user-id"); len(got) != 2 || got[0] != "p48" || got[1] != "p49" {
		t.Errorf("next unlinked page = %q, want p48 p49", got)
	}
	// A filter that is not one.
	code, body := tc.get(t, "/admin/identities?link=maybe", "en")
	if code != http.StatusBadRequest || !strings.Contains(body, "That filter is not valid") {
		t.Errorf("link=maybe: status %d, want 400 with a message", code)
	}
}
