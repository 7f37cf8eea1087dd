package mappingtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dingbridge/dingbridge/mapping"
)

// seedSearch creates a small directory: two corps, linked and unlinked identities.
func seedSearch(e *env) {
	e.t.Helper()
	zs := e.account("zhangsan", func(a *mapping.Account) {
		a.DisplayName, a.Email, a.Phone = "张三", "zhangsan@corp.example.com", "+86 185 1234 7676"
	})
	ww := e.account("wangwu", func(a *mapping.Account) { a.DisplayName, a.Email = "王五", "ww@corp.example.com" })
	e.account("lonely", func(a *mapping.Account) { a.DisplayName = "无身份" })
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "184919295227658120",
		UnionID: "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ", AppKey: "app1", Name: "张三", Mobile: "18512347676",
		JobNumber: "E0042", OrgEmail: "zs@corp.example.com"}, AccountID: zs.ID})
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp2", UserID: "manager240", Name: "张三丰",
		Mobile: "13900001111", JobNumber: "E0043"}, AccountID: zs.ID})
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "lisi01", Name: "李四",
		Mobile: "13812345678", JobNumber: "A1001"}})
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "ww", Name: "王五"}, AccountID: ww.ID})
}

func testSearch(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedSearch(e)
	all := "dingcorp1/184919295227658120 dingcorp1/lisi01 dingcorp1/ww dingcorp2/manager240"
	tests := []struct {
		text string
		want string // keys in page order
	}{
		{"", all},
		{"张三", "dingcorp1/184919295227658120 dingcorp2/manager240"},             // DingTalk name, two characters
		{"三丰", "dingcorp2/manager240"},                                          // a fragment of a name
		{"张", "dingcorp1/184919295227658120 dingcorp2/manager240"},              // one character: no index, still found
		{"李四", "dingcorp1/lisi01"},                                              // an unlinked identity
		{"王五", "dingcorp1/ww"},                                                  // name and the account's display name
		{"5227658", "dingcorp1/184919295227658120"},                             // part of a userId
		{"MANAGER", "dingcorp2/manager240"},                                     // userId, ignoring case
		{"7676", "dingcorp1/184919295227658120 dingcorp2/manager240"},           // mobile suffix; the account's phone
		{"0043", "dingcorp2/manager240"},                                        // job number
		{"e004", "dingcorp1/184919295227658120 dingcorp2/manager240"},           // job number prefix, ignoring case
		{"zhangsan", "dingcorp1/184919295227658120 dingcorp2/manager240"},       // the account's username
		{"zs@corp", "dingcorp1/184919295227658120"},                             // org email
		{"ww@corp.example", "dingcorp1/ww"},                                     // the account's email
		{"z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSZ", "dingcorp1/184919295227658120"}, // a whole unionId
		{"z21HjQliSzpw", ""},                                                    // a unionId fragment matches nothing
		{"nobody", ""},                                                          // no match
		{"无身份", ""},                                                             // an account without identities is not an identity
		{"%", ""},                                                               // LIKE wildcards are literal
		{"e_0", ""},                                                             // …both of them
		{"  张三丰  ", "dingcorp2/manager240"},                                     // trimmed
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			page, err := e.s.Search(t.Context(), mapping.Query{Text: tt.text})
			ok(t, "Search", err)
			if got := resultKeys(page); got != tt.want {
				t.Errorf("Search(%q) = %q, want %q", tt.text, got, tt.want)
			}
			if page.Next != "" {
				t.Errorf("Search(%q).Next = %q, want none", tt.text, page.Next)
			}
		})
	}

	// Results carry the account of linked identities and none for the others.
	page, err := e.s.Search(t.Context(), mapping.Query{})
	ok(t, "Search", err)
	for _, r := range page.Results {
		if r.Binding.Linked() != (r.Account != nil) || r.Account != nil && r.Account.ID != r.Binding.AccountID {
			t.Errorf("result %s: account %v, want the linked account or nil", r.Binding.Key(), r.Account)
		}
	}

	for _, q := range []mapping.Query{{Limit: -1}, {Limit: mapping.MaxPageSize + 1}, {After: "not a cursor!"}, {Text: "a\nb"}} {
		_, err := e.s.Search(t.Context(), q)
		wantIs(t, fmt.Sprintf("Search(%+v)", q), err, mapping.ErrInvalid)
	}
}

func resultKeys(p mapping.SearchPage) string {
	var keys []string
	for _, r := range p.Results {
		keys = append(keys, r.Binding.Key().String())
	}
	return strings.Join(keys, " ")
}

func testSearchPaging(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	for i := range 7 {
		e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: fmt.Sprintf("u%02d", i), Name: "张伟"}})
	}
	e.binding(mapping.Binding{Identity: mapping.Identity{CorpID: "dingcorp1", UserID: "other", Name: "李四"}})
	var pages []string
	q := mapping.Query{Text: "张伟", Limit: 3}
	for range 10 {
		page, err := e.s.Search(t.Context(), q)
		ok(t, "Search", err)
		pages = append(pages, resultKeys(page))
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	want := []string{
		"dingcorp1/u00 dingcorp1/u01 dingcorp1/u02",
		"dingcorp1/u03 dingcorp1/u04 dingcorp1/u05",
		"dingcorp1/u06",
	}
	if strings.Join(pages, " | ") != strings.Join(want, " | ") {
		t.Errorf("pages =\n\t%q\nwant\n\t%q", pages, want)
	}
}

// testSearchFollowsAccountChanges checks that identities are found by their account's
// current fields after relinking and renaming.
func testSearchFollowsAccount(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	zs, ls := e.account("zhangsan"), e.account("lisi")
	k := key("dingcorp1", "u1")
	b := e.binding(mapping.Binding{Identity: ident("dingcorp1", "u1"), AccountID: zs.ID})
	find := func(text, want string) {
		t.Helper()
		page, err := e.s.Search(ctx, mapping.Query{Text: text})
		ok(t, "Search", err)
		if got := resultKeys(page); got != want {
			t.Errorf("Search(%q) = %q, want %q", text, got, want)
		}
	}
	find("zhangsan", "dingcorp1/u1")
	b, err := e.s.Relink(ctx, admin, k, ls.ID, b.Version)
	ok(t, "Relink", err)
	find("zhangsan", "")
	find("lisi", "dingcorp1/u1")

	ls.Username, ls.DisplayName = "lisi2", "李四"
	_, err = e.s.UpdateAccount(ctx, admin, ls)
	ok(t, "UpdateAccount", err)
	find("lisi2", "dingcorp1/u1")
	find("李四", "dingcorp1/u1")

	_, err = e.s.Unlink(ctx, admin, k, b.Version)
	ok(t, "Unlink", err)
	find("lisi", "")
}

func testSearchAccounts(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	seedSearch(e)
	tests := []struct{ text, want string }{
		{"", "lonely wangwu zhangsan"},
		{"无身份", "lonely"},
		{"张三", "zhangsan"},
		{"7676", "zhangsan"},
		{"corp.example", "wangwu zhangsan"},
		{"E0042", ""}, // a job number is an identity's, not an account's
	}
	for _, tt := range tests {
		page, err := e.s.SearchAccounts(t.Context(), mapping.Query{Text: tt.text})
		ok(t, "SearchAccounts", err)
		var got []string
		for _, a := range page.Accounts {
			got = append(got, a.Username)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("SearchAccounts(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	page, err := e.s.SearchAccounts(t.Context(), mapping.Query{Limit: 2})
	ok(t, "SearchAccounts", err)
	next, err := e.s.SearchAccounts(t.Context(), mapping.Query{Limit: 2, After: page.Next})
	ok(t, "SearchAccounts", err)
	if len(page.Accounts) != 2 || page.Next == "" || len(next.Accounts) != 1 || next.Accounts[0].Username != "zhangsan" || next.Next != "" {
		t.Errorf("paging accounts by 2: %v then %v, want two then zhangsan", page, next)
	}
}

// testSearchAccountFilters checks the status and group filters of an account search,
// alone, together, with text and with paging.
func testSearchAccountFilters(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := t.Context()
	e.account("alice", func(a *mapping.Account) { a.Groups = []string{"ops", "staff"} })
	bob := e.account("bob", func(a *mapping.Account) { a.Groups = []string{"staff"} })
	carol := e.account("carol", func(a *mapping.Account) { a.Groups = []string{"ops"}; a.DisplayName = "王卡罗" })
	e.account("dave")
	e.account("erin", func(a *mapping.Account) { a.Groups = []string{"Ops", "staff-2"} })
	for _, id := range []string{bob.ID, carol.ID} {
		_, err := e.s.SetAccountDisabled(ctx, admin, id, true)
		ok(t, "SetAccountDisabled", err)
	}
	usernames := func(p mapping.AccountPage) string {
		var got []string
		for _, a := range p.Accounts {
			got = append(got, a.Username)
		}
		return strings.Join(got, " ")
	}
	tests := []struct {
		q    mapping.Query
		want string
	}{
		{mapping.Query{}, "alice bob carol dave erin"},
		{mapping.Query{Status: mapping.StatusEnabled}, "alice dave erin"},
		{mapping.Query{Status: mapping.StatusDisabled}, "bob carol"},
		{mapping.Query{Group: "ops"}, "alice carol"},    // exact: not Ops
		{mapping.Query{Group: "staff"}, "alice bob"},    // exact: not staff-2
		{mapping.Query{Group: "  staff "}, "alice bob"}, // trimmed, as groups are stored
		{mapping.Query{Group: "sta"}, ""},               // no substring match
		{mapping.Query{Group: "ops", Status: mapping.StatusDisabled}, "carol"},
		{mapping.Query{Group: "ops", Status: mapping.StatusEnabled}, "alice"},
		{mapping.Query{Group: "ops", Text: "卡罗"}, "carol"},
		{mapping.Query{Status: mapping.StatusDisabled, Text: "alice"}, ""},
		{mapping.Query{Link: mapping.LinkLinked}, "alice bob carol dave erin"}, // account searches ignore Link
	}
	for _, tt := range tests {
		page, err := e.s.SearchAccounts(ctx, tt.q)
		ok(t, "SearchAccounts", err)
		if got := usernames(page); got != tt.want {
			t.Errorf("SearchAccounts(%+v) = %q, want %q", tt.q, got, tt.want)
		}
	}

	// Filters hold across pages.
	var pages []string
	q := mapping.Query{Status: mapping.StatusEnabled, Limit: 2}
	for range 5 {
		page, err := e.s.SearchAccounts(ctx, q)
		ok(t, "SearchAccounts", err)
		pages = append(pages, usernames(page))
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	if got, want := strings.Join(pages, " | "), "alice dave | erin"; got != want {
		t.Errorf("enabled pages = %q, want %q", got, want)
	}

	for _, q := range []mapping.Query{{Status: "maybe"}, {Status: "Disabled"}, {Group: "a\nb"}, {Group: strings.Repeat("g", 1001)}} {
		_, err := e.s.SearchAccounts(ctx, q)
		wantIs(t, fmt.Sprintf("SearchAccounts(%+v)", q), err, mapping.ErrInvalid)
	}
}
